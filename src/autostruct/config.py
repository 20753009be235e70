"""Typed configs, validated at the edge.

Every config is a frozen pydantic model that forbids unknown keys; :func:`load_yaml` turns validation errors
into one readable :class:`~autostruct.errors.AutostructError` that names the field (``tasks.1.ratios.0``) and,
for an unknown key, suggests the closest valid one.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from autostruct.errors import AutostructError
from autostruct.utils.recipes import epochs_for

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config: unknown keys are errors, values are frozen after parsing."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RLConfig(StrictModel):
    """Learner and actor settings shared by both searches; the defaults are the tuned pruning defaults.

    The learning-relevant choices (issue 10; docs/rl.md has the measurements): Adam instead of MTACP's RMSProp
    (whose eps = 0.01, added outside the square root, made every step ~1e-6), rewards centred per task,
    whole episodes per trajectory,
    replayed trajectories (V-trace corrects their lag) so a few hundred episodes give thousands of updates,
    forced steps of the budget wall kept out of the policy loss, and the entropy of the executed action.
    """

    algorithm: Literal["vtrace", "mc", "critic"] | None = Field(
        None, description="None: the search's own (pruning: vtrace, NAS: mc); 'critic': the multi-task off-policy "
        "actor-critic (rl/critic.py).",
    )
    actors: int = Field(2, ge=1, description="Actor processes; each owns one or more task envs.")
    unroll_length: int = Field(
        0, ge=0, description="Steps per trajectory sent to the learner; 0: one whole episode per trajectory."
    )
    batch_size: int = Field(8, ge=1, description="Trajectories per learner update.")
    optimizer: Literal["adam", "rmsprop"] = Field("adam", description="adam, or rmsprop (MTACP's).")
    learning_rate: float = Field(1e-3, ge=0, description="0 freezes the policy: the failing control of learning tests.")
    adam_eps: float = Field(1e-8, gt=0)
    rmsprop_decay: float = Field(0.99, gt=0, lt=1)
    rmsprop_eps: float = Field(
        1e-5, gt=0, description="Added outside the square root by PyTorch: MTACP's 0.01 swamps gradients of ~1e-5."
    )
    rmsprop_momentum: float = Field(0.5, ge=0, lt=1)
    grad_clip: float = Field(40.0, gt=0)
    discount: float = Field(0.99, ge=0, le=1)
    baseline_cost: float = Field(0.5, ge=0)
    entropy_cost: float = Field(0.01, ge=0)
    reward_norm: Literal["task", "task_std", "none"] = Field(
        "task", description="task: subtract each task's running mean return (a per-task baseline) before learning; "
        "task_std: also divide by its running std (advantages in units of the task's spread, whatever the scale).",
    )
    reward_norm_window: int = Field(
        50, ge=1, description="Episodes per task the running reward statistics average over (exponential)."
    )
    replay_ratio: float = Field(
        8.0, ge=0, description="Updates on replayed trajectories per update on fresh ones (0: no replay)."
    )
    replay_size: int = Field(256, ge=1, description="Most recent trajectories kept for replay.")
    mask_forced: bool = Field(
        True, description="Keep steps the env marks forced (info['forced']: no choice left) out of the policy loss."
    )
    greedy_every: int = Field(
        25, ge=0, description="Each actor plays one greedy episode every this many episodes of a task (0: never); "
        "diagnostics only, outside the episode budget."
    )
    screen: int = Field(
        0, ge=0, description="Candidate episodes the policy proposes (planned, not evaluated) for each one played; "
        "a surrogate of the reward shared by all tasks picks which is evaluated (rl/screen.py; 0 or 1: off).",
    )
    screen_kappa: float = Field(1.0, ge=0, description="Weight of the surrogate's uncertainty in the screen's pick.")
    screen_warmup: int = Field(
        3, ge=1, description="Episodes per task (on average) before the surrogate is fitted and the screen starts.",
    )
    rho_bar: float = Field(1.0, gt=0, description="V-trace clip on importance weights for value targets.")
    c_bar: float = Field(1.0, gt=0, description="V-trace clip on trace-cutting coefficients.")
    pg_rho_bar: float = Field(1.0, gt=0, description="Clip on importance weights in the policy gradient.")
    vtrace_lambda: float = Field(1.0, ge=0, le=1)
    is_truncation: float = Field(1.0, gt=0, description="Truncation level of MC importance weights (NAS).")
    is_mode: Literal["step", "trajectory"] = Field(
        "step", description="MC importance weights: per-step ratio or one product ratio per episode (NAS)."
    )
    mc_baseline: Literal["value", "moving_average"] = Field(
        "value", description="MC baseline: the value head, or a moving average of returns per (task, step)."
    )
    baseline_decay: float = Field(0.9, ge=0, lt=1, description="Decay of the moving-average baseline.")
    #: MTACP's agent has an LSTM; on the synthetic pruning landscape (6 tasks x 100 episodes, 5 seeds) the same
    #: agent without it selected better strategies (+1.9 vs +1.5 pt over random search) at 2.5x the speed.
    use_lstm: bool = False
    threads_per_actor: int = Field(1, ge=1, description="torch threads in each actor process.")
    checkpoint_every: int = Field(20, ge=1, description="Learner updates between checkpoints.")
    queue_size: int = Field(
        0, ge=0, description="Unrolls that may wait for the learner before actors pause (0: max(batch_size, 2 per actor))."
    )


class BackendConfig(StrictModel):
    """Where actors run: ``inline`` (one process), ``local`` (spawned processes), ``ray`` (a Ray cluster)."""

    name: Literal["inline", "local", "ray"] = "local"
    address: str | None = Field(None, description="Ray only: None starts a local Ray, 'auto' or 'ray://...' joins.")
    max_restarts: int = Field(3, ge=0, description="Restarts of a failing actor before the run gives up.")


def _format_loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "<root>"


def _suggest(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """Closest valid key for an unknown key at ``loc`` (walks nested models by field name)."""
    cls: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(cls, "model_fields", {}).get(part)
        if field is None:
            return ""
        ann = field.annotation
        for cand in (ann, *getattr(ann, "__args__", ())):
            for c in (cand, *getattr(cand, "__args__", ())):
                if isinstance(c, type) and issubclass(c, BaseModel):
                    cls = c
                    break
    names = list(getattr(cls, "model_fields", {}))
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    return f" Did you mean '{close[0]}'?" if close else f" Valid keys: {', '.join(names)}."


def validation_message(model: type[BaseModel], err: ValidationError, source: str = "config") -> str:
    lines = []
    for e in err.errors():
        loc = tuple(e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key '{_format_loc(loc)}'.{_suggest(model, loc)}")
        else:
            msg = str(e['msg']).removeprefix("Value error, ")
            lines.append(f"'{_format_loc(loc)}': {msg} (got {e.get('input')!r}).")
    return f"Invalid {source}: " + " ".join(lines)


class DefaultSize(int):
    """A size the user did not choose (a setting's default): where a dataset is too small for it and it is
    clamped, that is logged, not shown as a warning (:func:`autostruct.data.splits.resolve_val_size`)."""


def parse_config(model: type[M], data: dict[str, Any], source: str = "config") -> M:
    """Validate ``data`` against ``model``, raising :class:`AutostructError` with field names on failure."""
    if not isinstance(data, dict):
        raise AutostructError(f"Invalid {source}: expected a mapping at the top level, got {type(data).__name__}.")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise AutostructError(validation_message(model, err, source)) from None


def coerce_config(model: type[M], config: M | dict[str, Any] | str | Path) -> M:
    """``config`` as a validated ``model``: a YAML path, a mapping, or an instance already."""
    if isinstance(config, (str, Path)):
        return load_yaml(model, config)
    if isinstance(config, dict):
        return parse_config(model, config)
    return config


def load_yaml(model: type[M], path: str | Path) -> M:
    """Read a YAML file and validate it against ``model``."""
    path = Path(path)
    if not path.is_file():
        raise AutostructError(f"Config file '{path}' does not exist. Pass the path of a YAML file, e.g. configs/quickstart-prune.yaml.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise AutostructError(f"Config file '{path}' is not valid YAML: {exc}") from None
    return parse_config(model, data, source=f"config '{path}'")


# --------------------------------------------------------------------------------------------------------------
# Shared bases: what every search's tasks, training recipes and search settings have in common
# --------------------------------------------------------------------------------------------------------------

#: The one default of the scoring subset (``search.val_size`` / ``score_size``) of both searches and their envs.
SCORE_SIZE = 2000
#: Validation images that re-score the top candidates of each task (both searches).
RESCORE_SIZE = 1000
#: Distinct best candidates per task re-scored before one is selected (both searches).
TOP_K = 5
#: Images per SGD step of every training recipe (base models, supernets, fine-tuning).
BATCH_SIZE = 128
#: Pruning: the smallest keep ratio of a group (``search.lbound``, PruningEnv's ``lbound``).
LBOUND = 0.2
#: Pruning: BN recalibration batches per scored episode (``search.recal_batches``, PruningEnv's).
PRUNE_RECAL_BATCHES = 10
#: Pruning: latency_ms tasks aim their wall at ``(1 - margin) x`` the budget (``search.latency_margin``).
LATENCY_MARGIN = 0.05


class TaskBase(StrictModel):
    """What every task of every search names: its dataset."""

    dataset: str


class DatasetTask(TaskBase):
    """A task on a registered dataset (``autostruct.data``): the dataset, a class subset and where its files are."""

    classes: list[int] | None = Field(None, description="Class subset, relabelled 0..k-1.")
    root: str | None = Field(None, description="Folder with the dataset files (default: search the usual places).")


def epochs_field(default: int, *, allow_zero: bool = False, description: str | None = None) -> Any:
    """A recipe's ``epochs`` (``allow_zero``: 0 means "do not train", as for fine-tuning)."""
    return Field(default, ge=0 if allow_zero else 1, description=description)


def lr_field(default: float, description: str | None = None) -> Any:
    """A recipe's SGD learning rate."""
    return Field(default, gt=0, description=description)


def min_steps_field(default: int) -> Any:
    """A recipe's ``min_steps``: small datasets get more epochs until this many SGD steps."""
    return Field(default, ge=0, description="At least this many SGD steps (more epochs on small datasets such as "
                 "Digits).")


class TrainingRecipe(StrictModel):
    """What every training recipe has: ``epochs``, ``batch_size``, ``lr`` and ``min_steps``.

    Each recipe (:class:`BaseTrainingConfig`, :class:`FinetuneConfig`, ``NASFinetuneConfig``, ``SupernetConfig``)
    sets its own defaults of ``epochs``, ``lr`` and ``min_steps`` (they train different things); ``batch_size``
    means the same everywhere and has one default. :meth:`epochs_for` is the one min_steps -> epochs rule.
    """

    epochs: int = epochs_field(1)
    batch_size: int = Field(BATCH_SIZE, ge=1)
    lr: float = lr_field(0.1)
    min_steps: int = min_steps_field(0)

    def epochs_for(self, n_train: int, *, drop_last: bool = False) -> int:
        """``epochs``, raised so that training ``n_train`` images takes at least ``min_steps`` SGD steps
        (:func:`autostruct.utils.recipes.epochs_for`)."""
        return epochs_for(self.epochs, self.min_steps, n_train, self.batch_size, drop_last=drop_last)


def episodes_field(default: int, what: str = "episodes") -> Any:
    """A search's ``episodes``: its total budget over all tasks, split equally between them."""
    return Field(default, ge=1, description=f"Total {what} over all tasks, split equally between them.")


class SearchSettings(StrictModel):
    """What every search's ``search:`` section has: the episode budget."""

    episodes: int = episodes_field(1)


class ScoredSearchSettings(SearchSettings):
    """Settings of a search that scores candidates on a validation hold-out carved from the training set and
    re-scores the best ones on a disjoint part of it (pruning and supernet NAS).

    Two named sizes: the validation hold-out (``holdout_size``: how many training images are set aside) and the
    scoring subset (``val_size``, also spelled ``score_size``: how many of them score one episode).
    """

    val_size: int = Field(
        SCORE_SIZE, ge=1, validation_alias=AliasChoices("val_size", "score_size"),
        description="The scoring subset: validation images that score one episode (a fixed subset of the hold-out). "
        "Also spelled score_size.",
    )
    holdout_size: int | None = Field(
        None, ge=1, description="The validation hold-out: training images set aside for scoring and re-scoring (and "
        "the cache key of what is trained on the rest). None: the search's own default (see ``holdout``).",
    )
    rescore_size: int = Field(
        RESCORE_SIZE, ge=0, description="Validation images, disjoint from val_size's, that re-score the top_k best "
        "candidates per task (0: select by the search score).",
    )
    top_k: int = Field(TOP_K, ge=1, description="Distinct best candidates per task re-scored before one is selected.")

    @property
    def score_size(self) -> int:
        """The scoring subset (images per episode); the config key is ``val_size`` (or ``score_size``)."""
        return self.val_size

    @property
    def default_holdout(self) -> int:
        """The hold-out when ``holdout_size`` is unset."""
        return self.val_size + self.rescore_size

    @property
    def holdout(self) -> int:
        """The validation hold-out in images: ``holdout_size``, or :attr:`default_holdout` (as a
        :class:`DefaultSize`) when unset."""
        return DefaultSize(self.default_holdout) if self.holdout_size is None else self.holdout_size


# --------------------------------------------------------------------------------------------------------------
# MTACP: multi-task automated channel pruning
# --------------------------------------------------------------------------------------------------------------


def _budget_list(values: list[float] | None, ok: Any, rule: str, example: str, plural: str) -> list[float] | None:
    """A task's list of budgets of one kind: each passes ``ok`` (else ``rule``, the value and ``example``), none
    repeats."""
    for v in values or []:
        if not ok(v):
            raise ValueError(f"{rule}; got {v}. {example}")
    if values is not None and len(set(values)) != len(values):
        raise ValueError(f"{plural} must not repeat; got {values}")
    return values


class PruneTask(DatasetTask):
    """One dataset (optionally a class subset) and its budgets: FLOPs keep ratios, latency budgets, or both.

    Every budget is one task (one env): ``{dataset: fashion-mnist, ratios: [0.5], latency_ms: [0.2]}`` is two;
    ``latency_ratios: [0.6]`` is a latency budget relative to the base model (0.6x its latency).
    """

    ratios: list[float] | None = Field(None, min_length=1, description="FLOPs keep ratios alpha in (0, 1].")
    latency_ms: list[float] | None = Field(
        None, min_length=1, description="Latency budgets in ms (batch 1, onnxruntime, search.latency_threads), "
        "priced by the per-layer table of search.latency_table."
    )
    latency_ratios: list[float] | None = Field(
        None, min_length=1, description="Latency budgets as fractions in (0, 1] of the base model's latency "
        "(e.g. 0.6: run in 0.6x the base's time), priced by the same table as latency_ms and checked against the "
        "base timed in the same process: unlike milliseconds, they hold when the host's speed drifts."
    )

    @field_validator("ratios")
    @classmethod
    def _ratios_in_range(cls, v: list[float] | None) -> list[float] | None:
        return _budget_list(v, lambda r: 0 < r <= 1, "every ratio must be in (0, 1]",
                            "Use e.g. 0.5 to keep half the FLOPs", "ratios")

    @field_validator("latency_ratios")
    @classmethod
    def _latency_ratios_in_range(cls, v: list[float] | None) -> list[float] | None:
        return _budget_list(v, lambda r: 0 < r <= 1, "every latency ratio must be in (0, 1]",
                            "Use e.g. 0.6 to run in 0.6x the base model's latency", "latency_ratios")

    @field_validator("latency_ms")
    @classmethod
    def _latency_positive(cls, v: list[float] | None) -> list[float] | None:
        return _budget_list(v, lambda ms: ms > 0, "every latency budget must be > 0 ms",
                            "Use e.g. 0.25 for 0.25 ms", "latency budgets")

    @model_validator(mode="after")
    def _has_a_budget(self) -> PruneTask:
        if not self.ratios and not self.latency_ms and not self.latency_ratios:
            raise ValueError(
                f"task {self.dataset} has no budget: give ratios (e.g. [0.5]), latency_ms (e.g. [0.2]), "
                "latency_ratios (e.g. [0.6]) or several"
            )
        return self


class BaseTrainingConfig(TrainingRecipe):
    """How base models (one per dataset/classes) are trained when not found in the cache."""

    epochs: int = epochs_field(3)
    lr: float = lr_field(0.1)
    min_steps: int = min_steps_field(600)
    subsets_from_full: bool = Field(
        True, description="A class subset's model starts from the full dataset's (its classifier rows for the "
        "subset's classes) when the run also has the full dataset, and is trained subset_epochs at subset_lr; "
        "False: trained from scratch like the others."
    )
    subset_epochs: int = Field(1, ge=1, description="Epochs of a class subset's model started from the full one.")
    subset_lr: float = Field(0.01, gt=0, description="Peak learning rate of a class subset's model started from the full one.")
    retrain: bool = Field(
        False, description="Train the base models here even where autostruct ships one with the same key (model, "
        "width, dataset, classes, epochs, seed, hold-out, recipe); models trained here are cached and reused as before."
    )


#: Training images a pruning run sets aside for validation when ``search.holdout_size`` is unset.
PRUNE_HOLDOUT = 5000


class PruneSearchConfig(ScoredSearchSettings):
    """The pruning MDP shared by every task (same env settings for MTACP and the baselines).

    ``holdout_size`` unset: 5000 images (:data:`PRUNE_HOLDOUT`, what every pruning run has used; also the base
    models' cache key).
    """

    episodes: int = episodes_field(600)
    random_episodes: int = Field(
        0, ge=0, description="Uniformly random episodes per task after the search, as the report's reference "
        "(random search's expected best at equal episodes); 0 turns it off."
    )
    lbound: float = Field(LBOUND, gt=0, le=1, description="Smallest keep ratio of a group.")
    reward: Literal["acc", "acc_flops", "acc_latency", "latency"] = Field(
        "acc", description="acc: validation accuracy; acc_flops / acc_latency: AMC's -error * log(FLOPs) / "
        "-error * log(latency in us); latency: MnasNet's acc * (latency / target) ** w (docs/prune.md)."
    )
    latency_table: str = Field(
        "host", description="Where latency_ms budgets are priced: 'host' (a per-layer table measured here with "
        "onnxruntime, cached per host and model) or the path of a table JSON measured on the target device."
    )
    latency_threads: int = Field(1, ge=1, description="onnxruntime threads for latency tables and measurements.")
    latency_margin: float = Field(
        LATENCY_MARGIN, ge=0, lt=1, description="latency_ms tasks: the wall aims at (1 - margin) * budget, so that measured "
        "latencies, which scatter around the table's prediction, land in [1 - 2 * margin, 1] of the budget."
    )
    budget: Literal["exact", "amc", "none"] = Field("exact", description="Action wall (see docs/prune.md).")
    importance: Literal["l1", "l2", "bn_scale", "taylor"] = "l1"
    round_to: int | Literal["auto"] = Field(
        "auto", description="Kept channels are a multiple of this; 'auto': the multiple measured to pay on this host "
        "(onnxruntime, batch 1; autostruct.measure.rounding, cached per host; 8 if it cannot be measured), or the "
        "device's when latency_ms tasks are priced by a table built there (autostruct prune build-lut); then per "
        "FLOPs task a finer one where the task's episodes cannot land within 3% below its budget, or twice it "
        "where the task's own pruned models land as close and run > 10% faster with it "
        "(autostruct.prune.task_rounding). A task that still lands > 10% under its budget is named before the search."
    )
    recal_batches: int = Field(PRUNE_RECAL_BATCHES, ge=0, description="Batches for BN recalibration (0 = off).")
    reward_finetune_steps: int = Field(
        0, ge=0, description="SGD steps of fine-tune before an episode is scored (0: AMC's reward, no training). At "
        "low FLOPs ratios the untrained accuracy is near chance and ranks strategies unlike their fine-tuned accuracy; a "
        "short fine-tune (e.g. 20 steps) ranks them as the final fine-tune does, for more time per episode.")
    reward_finetune_lr: float = Field(0.01, gt=0, description="Peak learning rate of reward_finetune_steps (cosine).")

    @property
    def default_holdout(self) -> int:
        """:data:`PRUNE_HOLDOUT`: what every pruning run has used when ``holdout_size`` is unset."""
        return PRUNE_HOLDOUT

    @field_validator("round_to", mode="before")
    @classmethod
    def _round_to_positive(cls, v: int | str) -> int | str:
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v)  # round_to: "8" from an environment variable or a CLI override
        if v != "auto" and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"round_to must be a positive integer (e.g. 8) or 'auto', got {v!r}")
        return v


class FinetuneConfig(TrainingRecipe):
    """Fine-tuning of each task's best pruned model (0 epochs: export it as pruned)."""

    epochs: int = epochs_field(2, allow_zero=True)
    lr: float = lr_field(0.01)
    min_steps: int = min_steps_field(300)
    distill: float = Field(
        0.0, ge=0, le=1, description="Weight of knowledge distillation from the unpruned base model (0: off): the loss "
        "is (1 - distill) * cross-entropy + distill * T^2 * KL(base || pruned) at temperature T "
        "(autostruct.models.train.distillation_loss)."
    )
    temperature: float = Field(4.0, gt=0, description="The distillation temperature T.")
    max_steps: int | None = Field(
        None, ge=1, description="Stop fine-tuning after this many SGD steps (the cosine schedule ends there), even "
        "inside the first epoch; None: epochs (and min_steps) decide."
    )
    recover_within: float | None = Field(
        None, gt=0, description="Fine-tune again (another cycle of `epochs` with a fresh schedule) while the pruned "
        "model's validation accuracy is more than this many points under its base model's, up to `max_cycles` "
        "cycles in all; None: one cycle. Only the tasks that need it pay for more steps."
    )
    max_cycles: int = Field(2, ge=1, description="Most fine-tuning cycles when `recover_within` is set.")


class PruneConfig(StrictModel):
    """A multi-task pruning run (``autostruct prune config.yaml``)."""

    name: str = "autostruct-prune"
    output_dir: str = "runs/autostruct-prune"
    model: str = Field(
        "resnet20", description="Zoo or registered model name, a model.pt written by autostruct export, or "
        "package.module:function (a factory returning an nn.Module; see docs/models.md 'Your own model')."
    )
    model_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments of the model's builder (e.g. a factory's depth)."
    )
    imports: list[str] = Field(
        default_factory=list, description="Modules (dotted names or .py paths) imported before the model is "
        "resolved, e.g. ones that register architectures with @register_model."
    )
    width: float = Field(1.0, gt=0)
    tasks: list[PruneTask] = Field(..., description="Datasets and their ratios; one env per (dataset, ratio).")
    base_training: BaseTrainingConfig = BaseTrainingConfig()
    search: PruneSearchConfig = PruneSearchConfig()
    rl: RLConfig = RLConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    backend: BackendConfig = BackendConfig()
    latency_runs: int = Field(30, ge=1, description="Timed onnxruntime runs per model in the results.")
    threads: int | Literal["auto"] = Field(
        "auto", description="Torch threads of the main process while it trains base models and finishes tasks (the "
        "search's actors have rl.threads_per_actor each); 'auto': every core that is idle when the phase starts, at least 1 "
        "(autostruct.utils.threads)."
    )
    device: str = "cpu"
    seed: int = 0

    @field_validator("model_kwargs")
    @classmethod
    def _kwargs_not_dataset_args(cls, v: dict[str, Any]) -> dict[str, Any]:
        clash = [k for k in ("num_classes", "in_channels", "image_size", "width") if k in v]
        if clash:
            raise ValueError(
                f"{', '.join(clash)} cannot be set here: num_classes, in_channels and image_size come from each "
                "task's dataset (so the model fits its data) and width from the config's 'width'. Remove "
                f"{', '.join(repr(k) for k in clash)} from model_kwargs; a model for another input size needs a "
                "dataset of that size."
            )
        return v

    @field_validator("tasks")
    @classmethod
    def _tasks_valid(cls, v: list[PruneTask]) -> list[PruneTask]:
        if not v:
            raise ValueError("the task list is empty; add e.g. {dataset: fashion-mnist, ratios: [0.5]}")
        seen: set[tuple] = set()
        for t in v:
            budgets = ([("ratio", r) for r in t.ratios or []] + [("latency_ms", ms) for ms in t.latency_ms or []]
                       + [("latency_ratio", r) for r in t.latency_ratios or []])
            for kind, value in budgets:
                key = (t.dataset, tuple(t.classes) if t.classes else None, kind, value)
                if key in seen:
                    raise ValueError(f"duplicate task {t.dataset} classes={t.classes} {kind}={value}; list each once")
                seen.add(key)
        return v
