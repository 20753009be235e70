"""The typed schema of ``results.json``: what every run writes and what the report reads.

One pydantic model per results ``format``: :class:`PruneResults` (``autostruct.prune-results/1``),
:class:`NASResults` (``autostruct.nas-results/1``) and :class:`CustomNASResults` (``autostruct.nas-custom-results/1``),
each a :class:`RunResults` (the run-level fields) with its own per-task record (:class:`PruneTaskRecord`,
:class:`NASTaskRecord`, :class:`CustomNASTaskRecord`) and ``totals``. The writer
(:func:`autostruct.pipeline.write_results`) validates before it writes; the report reads through
:func:`load_results`, so a file missing a field fails with one message that names it.

Records keep extra keys (``extra="allow"``): a search may add fields, and a field the schema does not name is
written and read back unchanged. Fields that older runs did not write yet (the selection, greedy and random
references of pruning, for example) are optional.

>>> r = PruneResults.model_validate({"format": PRUNE_FORMAT, "name": "x", "tasks": [], "totals": {"tasks": 0,
...     "episodes": 0}, "config": {}})
>>> r.totals.episodes, r.curves
(0, {})
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autostruct.errors import AutostructError

PRUNE_FORMAT = "autostruct.prune-results/1"
NAS_FORMAT = "autostruct.nas-results/1"
CUSTOM_NAS_FORMAT = "autostruct.nas-custom-results/1"


class Record(BaseModel):
    """Base of every part of results.json: keys the schema does not name are kept as they are."""

    model_config = ConfigDict(extra="allow")


# ----------------------------------------------------------------------------------------------------- run level


class Totals(Record):
    """``totals``: task and episode counts and the engine's numbers (``autostruct.utils.runs.engine_totals``);
    each search adds its own."""

    tasks: int
    episodes: int
    search_seconds: float | None = None
    search_wall_seconds_this_session: float | None = None
    wall_seconds_this_session: float | None = None
    learner_updates: int | None = None
    env_steps: int | None = None
    actor_restarts: dict[str, int] = Field(default_factory=dict)


class RunResults(Record):
    """The run-level fields every results.json has, in the order they are written."""

    format: str
    name: str
    tasks: list[Record]
    totals: Totals
    policy_path: str | None = None
    config: dict[str, Any]
    versions: dict[str, str] = Field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------- pruning


class PruneReference(Record):
    """A strategy scored beside the selected one (``naive_best``, ``greedy``)."""

    search_score: float | None = None
    rescore: float | None = None
    test_accuracy: float | None = None
    channels: list[int] | None = None


class UniformReference(Record):
    """``uniform``: the same keep ratio in every group, at the task's budget."""

    keep_ratio: float | None = None
    flops: int
    val_accuracy: float | None = None
    accuracy_before_finetune: float


class RandomReference(Record):
    """``random_baseline``: rewards of ``search.random_episodes`` random episodes and random search's expected best."""

    episodes: int
    rewards: list[float]
    expected_best_of_n: list[float]


class PruneTaskRecord(Record):
    """One pruning task's record: the selected strategy, its accuracy before and after fine-tuning, cost and time.

    Latency tasks add ``latency_budget_ms``, ``predicted_latency_ms``, ``latency_vs_predicted``,
    ``latency_vs_budget``, ``budget_vs_base`` and ``latency_vs_budget_relative`` (``latency_ratio`` for a
    ``latency_ratios`` task); ``random_baseline`` is there when ``search.random_episodes > 0``.
    """

    task: str
    task_id: int
    dataset: str
    classes: list[int] | None = None
    ratio: float | None
    round_to: int | None = None  # kept channels are multiples of this (per task with round_to: auto)
    flops_vs_budget: float | None = None  # a FLOPs task: the selected model's FLOPs over its budget
    budget_warning: str | None = None  # the pre-flight's warning when episodes cannot land near the budget
    latency_budget_ms: float | None = None
    latency_ratio: float | None = None  # a latency_ratios task: the budget as a fraction of the base's latency
    predicted_latency_ms: float | None = None
    base_accuracy: float
    accuracy_before_finetune: float
    accuracy_after_finetune: float | None = None
    finetune_epochs: int | None = None
    finetune_cycles: int | None = None  # fine-tuning cycles run (> 1: finetune.recover_within asked for more)
    val_accuracy_in_search: float | None = None
    best_reward: float | None = None
    search_score: float | None = None
    rescore: float | None = None
    test_accuracy: float | None = None
    base_flops: int
    flops: int
    flops_ratio: float | None = None
    base_params: int | None = None
    params: int
    latency_ms: float | None = None
    base_latency_ms: float | None = None
    speedup: float | None = None
    keep_ratios: list[float]
    channels: list[int] | None = None
    episodes_to_best: int
    episodes: int
    search_episodes: int | None = None
    search_seconds: float | None = None
    selection: dict[str, Any] | None = None
    naive_best: PruneReference | None = None
    greedy: PruneReference | None = None
    uniform: UniformReference | None = None
    random_baseline: RandomReference | None = None
    skipped_groups: list[dict[str, str]] = Field(default_factory=list)
    model_path: str | None = None
    onnx_path: str | None = None

    @property
    def dataset_label(self) -> str:
        """The dataset and its class subset, as the report groups tasks."""
        return self.dataset + (f" {self.classes}" if self.classes else "")

    @property
    def budget(self) -> str:
        """The task's budget as one string: the FLOPs ratio, or the latency budget in ms."""
        return f"{self.ratio:g}" if self.ratio is not None else f"{self.latency_budget_ms:g} ms"


class PruneTotals(Totals):
    mean_accuracy_before_finetune: float | None = None
    mean_accuracy_after_finetune: float | None = None


class PruneResults(RunResults):
    """results.json of ``autostruct prune``."""

    tasks: list[PruneTaskRecord]  # type: ignore[assignment]  # each search narrows the record
    totals: PruneTotals
    curves: dict[str, list[float]] = Field(default_factory=dict)
    skipped_groups: dict[str, list[dict[str, str]]] = Field(default_factory=dict)
    latency_tables: dict[str, str] = Field(default_factory=dict)
    rounding: dict[str, Any] | None = None


# ----------------------------------------------------------------------------------------------------- NAS


class NASTaskRecord(Record):
    """One supernet-NAS task's record: the selected architecture, its costs, accuracies and the selection."""

    task: str
    task_id: int
    dataset: str
    classes: list[int] | None = None
    budgets: dict[str, float]
    device: str = "host"
    arch: dict[str, Any]
    arch_str: str
    flops: int
    params: int
    latency_ms: float | None
    predicted_latency_ms: float | None = None
    accuracy: float
    reward: float
    accuracy_before_finetune: float | None = None
    accuracy_after_finetune: float | None = None
    from_scratch: bool = False
    finetune_epochs: int | None = None
    episodes_to_best: int
    episodes: int
    search_episodes: int | None = None
    found_at_seconds: float | None = None
    search_score: float | None = None
    rescore: float | None = None
    selection: str | None = None
    selected_rank: int | None = None
    top_k: int | None = None
    rescore_images: int | None = None
    naive_best: dict[str, Any] | None = None
    rescore_candidates: list[dict[str, Any]] = Field(default_factory=list)
    model_path: str | None = None
    onnx_path: str | None = None


class NASTotals(Totals):
    datasets: int | None = None
    distinct_architectures: int | None = None
    supernet_training_seconds: float = 0.0
    mean_accuracy_after_finetune: float | None = None


class NASResults(RunResults):
    """results.json of ``autostruct nas`` on a supernet space."""

    tasks: list[NASTaskRecord]  # type: ignore[assignment]
    totals: NASTotals
    space: str | dict[str, Any]
    supernets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    profiles: dict[str, str] = Field(default_factory=dict)
    evaluated: dict[str, dict[str, list[Any]]] = Field(default_factory=dict)


class CustomNASTaskRecord(Record):
    """One task of a search on a user's space: its best architecture within budget (``arch`` None when none met
    them) and the evaluator's metrics for it."""

    task: str
    task_id: int
    dataset: str
    budgets: dict[str, float]
    arch: dict[str, Any] | None
    arch_str: str | None
    indices: list[int] | None = None
    accuracy: float | None
    flops: float | None = None
    params: float | None = None
    latency_ms: float | None = None
    reward: float | None
    metrics: dict[str, Any] = Field(default_factory=dict)
    meets_budgets: bool
    episodes_to_best: int | None
    episodes: int
    found_at_seconds: float | None = None


class CustomNASTotals(Totals):
    datasets: int | None = None
    distinct_architectures: int | None = None
    tasks_without_feasible_arch: int | None = None


class CustomNASResults(RunResults):
    """results.json of ``autostruct nas`` with an ``evaluator`` (a user's space)."""

    tasks: list[CustomNASTaskRecord]  # type: ignore[assignment]
    totals: CustomNASTotals
    space: dict[str, Any]
    evaluator: str
    evaluated: dict[str, dict[str, list[Any]]] = Field(default_factory=dict)


#: results ``format`` -> its schema.
SCHEMAS: dict[str, type[RunResults]] = {
    PRUNE_FORMAT: PruneResults,
    NAS_FORMAT: NASResults,
    CUSTOM_NAS_FORMAT: CustomNASResults,
}


def schema_for(fmt: str) -> type[RunResults]:
    """The schema of a results ``format`` (:class:`RunResults` for one this module does not know)."""
    return SCHEMAS.get(fmt, RunResults)


def _message(err: ValidationError, source: str) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "missing":
            parts.append(f"'{loc}' is missing")
        else:
            parts.append(f"'{loc}': {e['msg']} (got {e.get('input')!r})")
    return f"{source} does not match the results schema: " + "; ".join(parts) + "."


def validate_results(data: dict[str, Any], source: str = "results.json") -> RunResults:
    """``data`` as its format's schema; an :class:`~autostruct.errors.AutostructError` names every bad field."""
    if not isinstance(data, dict):
        raise AutostructError(f"{source} must hold a JSON object, got {type(data).__name__}.")
    try:
        return schema_for(str(data.get("format", ""))).model_validate(data)
    except ValidationError as err:
        raise AutostructError(_message(err, source)) from None


def read_results_json(run_dir: str | Path) -> tuple[Path, Any]:
    """``run_dir/results.json``'s path and parsed JSON (not validated); errors say which run folder and the fix."""
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise AutostructError(f"'{run_dir}' has no results.json. Pass the output_dir of a finished run.")
    try:
        return path, json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise AutostructError(f"'{path}' is not valid JSON ({exc}); re-run the search with --resume.") from None


def load_results(run_dir: str | Path, schema: type[RunResults] | None = None) -> RunResults:
    """Read and validate ``run_dir/results.json`` (as ``schema``, or as its ``format`` says)."""
    path, data = read_results_json(run_dir)
    if schema is None:
        return validate_results(data, f"'{path}'")
    try:
        return schema.model_validate(data)
    except ValidationError as err:
        raise AutostructError(_message(err, f"'{path}'")) from None


__all__ = [
    "CUSTOM_NAS_FORMAT",
    "NAS_FORMAT",
    "PRUNE_FORMAT",
    "SCHEMAS",
    "CustomNASResults",
    "CustomNASTaskRecord",
    "NASResults",
    "NASTaskRecord",
    "PruneResults",
    "PruneTaskRecord",
    "RunResults",
    "Totals",
    "load_results",
    "read_results_json",
    "schema_for",
    "validate_results",
]
