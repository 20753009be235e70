"""The typed config of a multi-task NAS run (``autostruct nas config.yaml``).

>>> cfg = parse_config(NASConfig, {"tasks": [{"dataset": "digits", "budgets": {"flops": 2e6}}]})
>>> cfg.tasks[0].budgets, cfg.search.reward
({'flops': 2000000.0}, 'mnas_soft')
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from autostruct.config import (
    BackendConfig,
    DatasetTask,
    RLConfig,
    ScoredSearchSettings,
    SearchSettings,
    StrictModel,
    TaskBase,
    TrainingRecipe,
    episodes_field,
    epochs_field,
    lr_field,
    min_steps_field,
    parse_config,
)
from autostruct.nas.costs import COST_NAMES

#: The NAS env's defaults, one home each (NASSearchConfig's fields and NASEnvFactory's arguments).
NAS_RECAL_BATCHES = 4
NAS_RECAL_BATCH_SIZE = 64
NAS_REWARD = "mnas_soft"
MASK_INFEASIBLE = True

__all__ = [
    "CustomNASConfig",
    "CustomSearchConfig",
    "CustomTask",
    "LutConfig",
    "MnasReward",
    "NASConfig",
    "NASRLConfig",
    "NASFinetuneConfig",
    "NASSearchConfig",
    "NASTask",
    "SupernetConfig",
    "parse_config",
]


def _check_budgets(v: dict[str, float]) -> dict[str, float]:
    """Known cost names, positive targets (a ValueError names the offending budget)."""
    for name, target in v.items():
        if name not in COST_NAMES:
            import difflib

            close = difflib.get_close_matches(name, COST_NAMES, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ValueError(f"unknown cost '{name}'.{hint} Valid costs: {', '.join(COST_NAMES)}")
        if not target > 0:
            raise ValueError(f"budget {name} must be > 0, got {target}")
    return v


class NASTask(DatasetTask):
    """One deployment: a dataset (optionally a class subset), its budgets, and the device latency is priced on."""

    budgets: dict[str, float] = Field(
        ..., description="Cost targets, one or several of: latency_ms, flops (MACs per image), params."
    )
    device: str = Field(
        "host",
        description="Where latency_ms is priced: 'host' (a table measured here, cached) or a device profile JSON "
        "written by `autostruct nas build-lut` on that device.",
    )

    @field_validator("budgets")
    @classmethod
    def _budgets_valid(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError("give at least one budget, e.g. {flops: 20000000} or {latency_ms: 2.0}")
        return _check_budgets(v)

    @property
    def key(self) -> str:
        classes = f"[{','.join(map(str, self.classes))}]" if self.classes else ""
        budgets = ",".join(f"{k}<={v:g}" for k, v in self.budgets.items())
        return f"{self.dataset}{classes} {budgets}"


class SupernetConfig(TrainingRecipe):
    """How each dataset's supernet is trained (once, then cached)."""

    epochs: int = epochs_field(5)
    lr: float = lr_field(0.05, description="Peak SGD learning rate (cosine decay to 0).")
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(4e-5, ge=0)
    sampling: Literal["uniform", "sandwich"] = Field(
        "uniform",
        description="uniform: one random path per step (SPOS); sandwich: largest, smallest and `sandwich_random` "
        "random paths per step (2 + sandwich_random times the compute).",
    )
    sandwich_random: int = Field(2, ge=0, description="Random paths per sandwich step besides largest and smallest.")
    distill: bool = Field(
        False,
        description="In-place distillation (sandwich only): the largest path learns the labels, every other path "
        "the largest's detached soft predictions (BigNAS / Once-for-All).",
    )
    train_size: int | None = Field(
        None, ge=1, description="Train on this many training images (a fixed subset); None for all of them."
    )
    min_steps: int = min_steps_field(300)


class MnasReward(StrictModel):
    """The multi-objective reward of both NAS searches (supernet and a user's space): accuracy times the cost's
    ratio to its target raised to an exponent (MnasNet), or an absolute penalty."""

    reward: Literal["mnas_soft", "mnas_hard", "abs"] = NAS_REWARD
    reward_alpha: float | None = Field(
        None, description="Exponent under the target (default per reward; mnas_soft: 0, MnasNet's paper: -0.07)."
    )
    reward_beta: float | None = Field(None, description="Exponent over the target, or abs's weight (default per reward).")


class NASSearchConfig(ScoredSearchSettings, MnasReward):
    """The NAS MDP shared by every task (same env for MTNAS and the baselines).

    ``holdout_size`` unset: ``val_size + rescore_size`` (what every NAS run has used; also the supernets' cache
    key). The re-score removes the winner's curse: the best reward of hundreds of architectures on one subset is
    biased upward (83-85% there, 78-79% on test); images that never scored an episode are not (fewer re-score
    images when the hold-out is too small).
    """

    episodes: int = episodes_field(800, "episodes (architectures evaluated)")
    recal_batches: int = Field(NAS_RECAL_BATCHES, ge=0, description="Training batches for BN recalibration per architecture.")
    recal_batch_size: int = Field(NAS_RECAL_BATCH_SIZE, ge=1)
    mask_infeasible: bool = Field(
        MASK_INFEASIBLE,
        description="Mask choices after which even the smallest completion breaks a budget, so every sampled "
        "architecture meets its budgets (as MTACP/AMC limit actions).",
    )


class NASFinetuneConfig(TrainingRecipe):
    """Training of each task's chosen architecture after the search."""

    epochs: int = epochs_field(3, allow_zero=True)
    lr: float = lr_field(0.01, description="From inherited weights; from scratch uses 10x this.")
    from_scratch: bool = Field(False, description="Re-initialize the weights instead of inheriting the supernet's.")
    train_size: int | None = Field(None, ge=1, description="Train on this many training images; None for all.")
    min_steps: int = min_steps_field(150)


class LutConfig(StrictModel):
    """How the host's latency table is measured (when a task prices latency on device 'host')."""

    warmup: int = Field(10, ge=0)
    runs: int = Field(30, ge=1)
    rounds: int = Field(3, ge=1, description="Interleaved passes over all blocks; the median is kept.")
    threads: int = Field(1, ge=1)
    check_archs: int = Field(30, ge=0, description="Sampled networks for the Spearman check (0 = skip).")


class NASRLConfig(RLConfig):
    """:class:`~autostruct.config.RLConfig` with the NAS controller's defaults (issue 11; docs/nas.md, "Controller
    defaults", has the measurements). Episodes are short (one per architecture) and few (hundreds), and the
    best-found architecture is what counts, so the controller must learn from every episode without
    collapsing onto its first good guess.
    """

    #: Measured on tables (benchmarks/nas_controller_tuning.py): Adam's steps have the same size whatever the
    #: advantages (a few noisy episodes move the policy as far as a clear signal); its policy entropy fell to
    #: 0.07 nats and it found worse architectures. RMSProp with eps 0.01 (added outside the square root) takes
    #: steps in proportion to the gradient: an SGD-like step that grows with the advantage.
    optimizer: Literal["adam", "rmsprop"] = "rmsprop"
    rmsprop_eps: float = Field(0.01, gt=0)
    #: Returns are in units of the task's reward std (``reward_norm: task_std``), so the step and the entropy cost
    #: below mean the same on a supernet (architectures a few points apart) as on a table (tens of points): with
    #: centring alone, the same settings that beat regularized evolution on a wide table learned almost nothing
    #: on one with a supernet's spread (entropy 1.38 -> 1.29 nats over 200 evaluations per task).
    learning_rate: float = Field(5e-4, gt=0)
    #: 0.06 (in those units) keeps ~0.2-0.4 nats of policy entropy after 200 evaluations per task; 0.03 fell to
    #: ~0.15 and found worse architectures.
    entropy_cost: float = Field(0.06, ge=0)
    #: Per-task centring and scaling plus a moving-average baseline per (task, step): the value head's baseline
    #: was the weak part (issue 11).
    reward_norm: Literal["task", "task_std", "none"] = "task_std"
    mc_baseline: Literal["value", "moving_average"] = "moving_average"
    #: Two replayed batches per fresh one, each episode weighted by one truncated ratio (its probability under the
    #: current policy over the behaviour's). With per-step ratios and entropy cost 1e-3, replay narrowed the
    #: policy within the first evaluations and lost 5-8 points of best-found accuracy at 100 per task; with
    #: per-episode ratios and enough entropy it beat no replay.
    replay_ratio: float = Field(2.0, ge=0)
    is_mode: Literal["step", "trajectory"] = "trajectory"
    batch_size: int = Field(4, ge=1)
    use_lstm: bool = False
    #: A greedy episode evaluates an architecture outside the budget (a supernet evaluation on NAS), so NAS runs
    #: do not play them unless asked.
    greedy_every: int = Field(0, ge=0)


class NASConfig(StrictModel):
    """A multi-task NAS run (``autostruct nas config.yaml``)."""

    name: str = "autostruct-nas"
    output_dir: str = "runs/autostruct-nas"
    space: str | dict[str, Any] = Field("mobilenetv2", description="A space name or a mapping (see docs/nas.md).")
    width: float = Field(1.0, gt=0, description="Channel multiplier of the whole space.")
    tasks: list[NASTask]
    supernet: SupernetConfig = SupernetConfig()
    search: NASSearchConfig = NASSearchConfig()
    rl: NASRLConfig = NASRLConfig()
    finetune: NASFinetuneConfig = NASFinetuneConfig()
    backend: BackendConfig = BackendConfig()
    lut: LutConfig = LutConfig()
    latency_runs: int = Field(30, ge=1, description="Timed onnxruntime runs per exported model in the results.")
    device: str = Field("cpu", description="Torch device for supernet training, evaluation and fine-tuning.")
    seed: int = 0

    @field_validator("tasks")
    @classmethod
    def _tasks_valid(cls, v: list[NASTask]) -> list[NASTask]:
        if not v:
            raise ValueError("the task list is empty; add e.g. {dataset: fashion-mnist, budgets: {flops: 20000000}}")
        seen: set[tuple] = set()
        for t in v:
            key = (t.dataset, tuple(t.classes or ()), tuple(sorted(t.budgets.items())), t.device)
            if key in seen:
                raise ValueError(f"duplicate task {t.key}; list each once")
            seen.add(key)
        return v

    @model_validator(mode="after")
    def _episodes_cover_tasks(self) -> NASConfig:
        if self.search.episodes < len(self.tasks):
            raise ValueError(
                f"search.episodes ({self.search.episodes}) is smaller than the number of tasks ({len(self.tasks)}); "
                "give every task at least one episode"
            )
        return self


# ---------------------------------------------------------------------- NAS on a user's own space and evaluator


class CustomTask(TaskBase):
    """One task of a search on a user's space: a dataset name (passed to the evaluator) and its budgets."""

    dataset: str = Field(..., description="Passed to the evaluator as its second argument (any label).")
    budgets: dict[str, float] = Field(
        default_factory=dict, description="Cost targets among latency_ms, flops, params (the evaluator must report "
        "each budgeted cost); none: the reward is the accuracy."
    )

    @field_validator("budgets")
    @classmethod
    def _budgets_valid(cls, v: dict[str, float]) -> dict[str, float]:
        return _check_budgets(v)

    @property
    def key(self) -> str:
        return f"{self.dataset} " + ",".join(f"{k}<={v:g}" for k, v in self.budgets.items())


class CustomSearchConfig(SearchSettings, MnasReward):
    """The search on a user's space: episodes and the multi-objective reward (as :class:`NASSearchConfig`)."""

    episodes: int = episodes_field(200, "episodes (architectures evaluated)")
    check_evaluator: bool = Field(
        True, description="Evaluate one architecture per task before the run starts, so a broken evaluator fails "
        "before the run folder is written (turn off when one evaluation is expensive).",
    )


class CustomNASConfig(StrictModel):
    """A NAS run on a user's own search space and evaluator (``autostruct nas config.yaml`` with ``evaluator:``)."""

    name: str = "autostruct-nas-custom"
    output_dir: str = "runs/autostruct-nas-custom"
    space: str | dict[str, Any] = Field(
        ..., description="Inline {name?, decisions: [{name, choices, when?}]} or 'module:object' (see docs/nas.md)."
    )
    evaluator: str = Field(..., description="'module:function' called as function(arch, dataset) -> metrics dict.")
    import_paths: list[str] = Field(
        default_factory=lambda: ["."], description="Folders put on sys.path before importing space and evaluator."
    )
    tasks: list[CustomTask]
    search: CustomSearchConfig = CustomSearchConfig()
    rl: NASRLConfig = NASRLConfig()
    backend: BackendConfig = BackendConfig()
    seed: int = 0

    @field_validator("tasks")
    @classmethod
    def _tasks_valid(cls, v: list[CustomTask]) -> list[CustomTask]:
        if not v:
            raise ValueError("the task list is empty; add e.g. {dataset: cifar10, budgets: {flops: 2000000}}")
        seen: set[tuple] = set()
        for t in v:
            key = (t.dataset, tuple(sorted(t.budgets.items())))
            if key in seen:
                raise ValueError(f"duplicate task {t.key}; list each once")
            seen.add(key)
        return v

    @model_validator(mode="after")
    def _episodes_cover_tasks(self) -> CustomNASConfig:
        if self.search.episodes < len(self.tasks):
            raise ValueError(
                f"search.episodes ({self.search.episodes}) is smaller than the number of tasks ({len(self.tasks)}); "
                "give every task at least one episode"
            )
        return self
