"""NAS on a user's own search space and evaluator: named decisions with choices, and a callable that scores them.

A :class:`CustomSpace` is an ordered list of named categorical decisions; a decision may carry a condition
(``when``) that makes it active only when earlier decisions hold given values. An architecture is a dict of the
active decisions' values, e.g. ``{"op1": "conv3", "depth": 2, "width2": 32}``. The evaluator is any Python
callable ``evaluate(arch, dataset) -> {"accuracy": ..., "flops"?: ..., "params"?: ..., "latency_ms"?: ...}`` (a
lookup table, a supernet, real training); a one-argument callable gets only the architecture.

>>> space = CustomSpace.from_dict({"decisions": [
...     {"name": "op", "choices": ["conv3", "conv5", "skip"]},
...     {"name": "depth", "choices": [1, 2]},
...     {"name": "width2", "choices": [16, 32], "when": {"depth": 2}},
... ]})
>>> space.choice_counts, space.num_architectures()
((3, 2, 2), 9)
>>> space.decode([1, 0, 1])                   # width2 is inactive at depth 1: dropped, its index canonical 0
{'op': 'conv5', 'depth': 1}
>>> space.encode({"op": "skip", "depth": 2, "width2": 32})
[2, 1, 1]

:class:`CustomNASEnv` is one task's MDP (it follows :class:`autostruct.rl.env.Env`): one decision per step,
the observation is the task (one-hot dataset, per cost: budgeted? and where the target lies among the run's
targets) plus the one-hot step and the one-hot choices so far; inactive decisions allow only option 0 (their
step is marked ``forced``); the reward at the last step is :class:`~autostruct.nas.rewards.RewardSpec` of the
evaluator's accuracy and costs against the task's budgets. The run: :mod:`autostruct.nas.custom_search`.
"""

from __future__ import annotations

import importlib
import inspect
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autostruct.errors import AutostructError
from autostruct.nas.costs import COST_NAMES
from autostruct.nas.rewards import RewardSpec, meets
from autostruct.rl.env import CategoricalSpec

Choice = str | int | float | bool
Evaluator = Callable[..., Mapping[str, Any]]


# ---------------------------------------------------------------------- the space


@dataclass(frozen=True)
class CustomDecision:
    """One named decision: the values it chooses between and when it is active.

    ``when`` maps earlier decisions to the values that activate this one (all must hold; a decision that is
    itself inactive never activates another).
    """

    name: str
    choices: tuple[Choice, ...]
    when: tuple[tuple[str, tuple[Choice, ...]], ...] = ()


@dataclass(frozen=True)
class CustomSpace:
    """An ordered list of named categorical decisions (see the module docstring)."""

    decisions: tuple[CustomDecision, ...]
    name: str = "custom"
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = "space.decisions"
        if not self.decisions:
            raise AutostructError(f"{where}: the space has no decisions; give at least one, e.g. "
                                  "[{name: op, choices: [conv3, conv5]}].")
        for i, d in enumerate(self.decisions):
            at = f"{where}.{i} ('{d.name}')"
            if not isinstance(d.name, str) or not d.name:
                raise AutostructError(f"{where}.{i}.name: every decision needs a non-empty name.")
            if d.name in self._index:
                raise AutostructError(f"{at}: duplicate decision name; names must be unique.")
            if not d.choices:
                raise AutostructError(f"{at}.choices: empty; give at least one value.")
            for c in d.choices:
                if not isinstance(c, (str, int, float, bool)):
                    raise AutostructError(f"{at}.choices: {c!r} is not a string or number.")
            if len(set(map(_key, d.choices))) != len(d.choices):
                raise AutostructError(f"{at}.choices: duplicate values in {list(d.choices)}.")
            for ref, values in d.when:
                if ref not in self._index:
                    later = any(e.name == ref for e in self.decisions)
                    raise AutostructError(
                        f"{at}.when: '{ref}' is " + ("a later decision; a condition may only name earlier ones."
                                                     if later else f"not a decision. Decisions before it: "
                                                     f"{', '.join(self._index) or '(none)'}.")
                    )
                allowed = self.decisions[self._index[ref]].choices
                for v in values:
                    if _key(v) not in map(_key, allowed):
                        raise AutostructError(f"{at}.when.{ref}: {v!r} is not one of its choices {list(allowed)}.")
            self._index[d.name] = i

    # ------------------------------------------------------------------ building
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str | None = None) -> CustomSpace:
        """From ``{"name"?: ..., "decisions": [{"name", "choices", "when"?}, ...]}`` or ``{"decisions": {name:
        [choices], ...}}`` (no conditions)."""
        if not isinstance(data, Mapping) or "decisions" not in data:
            raise AutostructError("space: expected a mapping with 'decisions' (a list of {name, choices, when?}), "
                                  f"got {type(data).__name__}{'' if not isinstance(data, Mapping) else ' without it'}.")
        unknown = set(data) - {"name", "decisions"}
        if unknown:
            raise AutostructError(f"space: unknown key(s) {sorted(unknown)}; a space has 'name' and 'decisions'.")
        raw = data["decisions"]
        if isinstance(raw, Mapping):
            raw = [{"name": k, "choices": v} for k, v in raw.items()]
        if not isinstance(raw, Sequence) or isinstance(raw, str):
            raise AutostructError("space.decisions: expected a list of {name, choices, when?}.")
        decisions = []
        for i, d in enumerate(raw):
            where = f"space.decisions.{i}"
            if not isinstance(d, Mapping):
                raise AutostructError(f"{where}: expected a mapping {{name, choices, when?}}, got {d!r}.")
            extra = set(d) - {"name", "choices", "when"}
            if extra:
                raise AutostructError(f"{where}: unknown key(s) {sorted(extra)}; a decision has name, choices, when.")
            for key in ("name", "choices"):
                if key not in d:
                    raise AutostructError(f"{where}.{key}: missing.")
            choices = d["choices"]
            if not isinstance(choices, Sequence) or isinstance(choices, str):
                raise AutostructError(f"{where}.choices: expected a list of values, got {choices!r}.")
            when = d.get("when") or {}
            if not isinstance(when, Mapping):
                raise AutostructError(f"{where}.when: expected a mapping {{decision: value or [values]}}.")
            cond = tuple(
                (str(ref), tuple(v) if isinstance(v, (list, tuple)) else (v,)) for ref, v in when.items()
            )
            decisions.append(CustomDecision(str(d["name"]), tuple(choices), cond))
        return cls(tuple(decisions), name=str(name or data.get("name") or "custom"))

    def to_dict(self) -> dict[str, Any]:
        out: list[dict[str, Any]] = []
        for d in self.decisions:
            rec: dict[str, Any] = {"name": d.name, "choices": list(d.choices)}
            if d.when:
                rec["when"] = {ref: list(v) for ref, v in d.when}
            out.append(rec)
        return {"name": self.name, "decisions": out}

    # ------------------------------------------------------------------ shape
    @property
    def num_decisions(self) -> int:
        return len(self.decisions)

    @property
    def choice_counts(self) -> tuple[int, ...]:
        return tuple(len(d.choices) for d in self.decisions)

    def num_architectures(self) -> int:
        """Distinct architectures (inactive decisions do not multiply), by walking the condition tree."""

        def count(prefix: list[int]) -> int:
            t = len(prefix)
            if t == self.num_decisions:
                return 1
            options = np.flatnonzero(self.action_mask(prefix))
            return sum(count([*prefix, int(a)]) for a in options)

        return count([])

    # ------------------------------------------------------------------ conditions and masks
    def is_active(self, step: int, prefix: Sequence[int]) -> bool:
        """Whether decision ``step`` is active given the choice indices of the decisions before it."""
        for ref, values in self.decisions[step].when:
            j = self._index[ref]
            if not self.is_active(j, prefix):
                return False
            if _key(self.decisions[j].choices[prefix[j]]) not in map(_key, values):
                return False
        return True

    def action_mask(self, prefix: Sequence[int]) -> np.ndarray:
        """Allowed options of the next decision over ``max(choice_counts)`` entries (inactive: only option 0)."""
        t = len(prefix)
        mask = np.zeros(max(self.choice_counts), dtype=bool)
        if self.is_active(t, prefix):
            mask[: len(self.decisions[t].choices)] = True
        else:
            mask[0] = True
        return mask

    # ------------------------------------------------------------------ architectures
    def canonical(self, indices: Sequence[int]) -> list[int]:
        """``indices`` with every inactive decision set to 0 (two lists that differ only there are one arch)."""
        out: list[int] = []
        for t, i in enumerate(indices):
            out.append(int(i) if self.is_active(t, out) else 0)
        return out

    def decode(self, indices: Sequence[int]) -> dict[str, Choice]:
        """The architecture of choice indices: ``{name: value}`` of the active decisions, in order."""
        if len(indices) != self.num_decisions:
            raise AutostructError(f"An architecture of this space has {self.num_decisions} choices, got {len(indices)}.")
        arch: dict[str, Choice] = {}
        prefix: list[int] = []
        for t, (d, i) in enumerate(zip(self.decisions, indices, strict=True)):
            if not 0 <= int(i) < len(d.choices):
                raise AutostructError(f"Choice index {i} of '{d.name}' is outside [0, {len(d.choices)}).")
            active = self.is_active(t, prefix)
            prefix.append(int(i) if active else 0)
            if active:
                arch[d.name] = d.choices[int(i)]
        return arch

    def encode(self, arch: Mapping[str, Any]) -> list[int]:
        """Choice indices of ``{name: value}``; every active decision must be given, inactive ones are ignored."""
        unknown = [k for k in arch if k not in self._index]
        if unknown:
            raise AutostructError(f"arch: unknown decision(s) {unknown}; decisions: {', '.join(self._index)}.")
        out: list[int] = []
        for t, d in enumerate(self.decisions):
            if not self.is_active(t, out):
                out.append(0)
                continue
            if d.name not in arch:
                raise AutostructError(f"arch.{d.name}: missing (it is active here); choices: {list(d.choices)}.")
            keys = [_key(c) for c in d.choices]
            if _key(arch[d.name]) not in keys:
                raise AutostructError(f"arch.{d.name}: {arch[d.name]!r} is not one of its choices {list(d.choices)}.")
            out.append(keys.index(_key(arch[d.name])))
        return out

    def sample(self, rng: np.random.Generator) -> list[int]:
        """Uniformly random allowed choice at every step (canonical indices)."""
        out: list[int] = []
        for _ in range(self.num_decisions):
            out.append(int(rng.choice(np.flatnonzero(self.action_mask(out)))))
        return out


def _key(value: Any) -> tuple[str, Any]:
    """Compare choice values by type and value (so ``True`` is not ``1`` and ``1`` is not ``1.0``)."""
    return (type(value).__name__, value)


def arch_str(arch: Mapping[str, Any]) -> str:
    """``op=conv5 depth=2 width2=32``."""
    return " ".join(f"{k}={v}" for k, v in arch.items())


# ---------------------------------------------------------------------- loading by name


def _import_object(spec: str, field_name: str, import_paths: Sequence[str] = ()) -> Any:
    """Resolve ``module:attr`` (``attr`` may be dotted); errors name the config field."""
    if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
        raise AutostructError(f"{field_name}: expected 'module:name' (e.g. mypkg.table:evaluate), got {spec!r}.")
    module_name, attr = spec.split(":")
    for p in reversed(list(import_paths)):
        path = str(Path(p).resolve())
        if path not in sys.path:
            sys.path.insert(0, path)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise AutostructError(
                f"{field_name}: cannot import module '{module_name}' (from '{spec}'). Put its folder in import_paths "
                f"(now {list(import_paths)}) or install it."
            ) from None
        raise AutostructError(f"{field_name}: importing '{module_name}' failed: {exc}.") from None
    except Exception as exc:  # a user's module failing at import is the user's error, with its message
        raise AutostructError(f"{field_name}: importing '{module_name}' failed: {type(exc).__name__}: {exc}.") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(module) if not n.startswith("_")]
            raise AutostructError(f"{field_name}: module '{module_name}' has no '{attr}'. Its names: {', '.join(names)}.")
        obj = getattr(obj, part)
    return obj


def load_space(spec: CustomSpace | Mapping[str, Any] | str, import_paths: Sequence[str] = ()) -> CustomSpace:
    """A space from an object, an inline mapping, or ``module:object`` (a space, a mapping, or a callable
    returning one)."""
    if isinstance(spec, CustomSpace):
        return spec
    if isinstance(spec, str):
        obj = _import_object(spec, "space", import_paths)
        if callable(obj) and not isinstance(obj, CustomSpace):
            obj = obj()
        if isinstance(obj, CustomSpace):
            return obj
        if isinstance(obj, Mapping):
            return CustomSpace.from_dict(obj)
        raise AutostructError(f"space: '{spec}' is a {type(obj).__name__}; expected a CustomSpace or a mapping "
                              "with 'decisions'.")
    return CustomSpace.from_dict(spec)


def load_evaluator(spec: Evaluator | str, import_paths: Sequence[str] = ()) -> Evaluator:
    """The evaluator callable, given or named ``module:function``."""
    fn = _import_object(spec, "evaluator", import_paths) if isinstance(spec, str) else spec
    if not callable(fn):
        raise AutostructError(f"evaluator: {spec!r} is a {type(fn).__name__}, not a callable arch -> metrics.")
    return fn


def evaluator_name(fn: Any) -> str:
    """``module:qualname`` of a callable (what a config would name it), or its repr if it has none."""
    if isinstance(fn, str):
        return fn
    module, qual = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if module and qual and "<" not in qual:
        return f"{module}:{qual}"
    return repr(fn)


def _takes_dataset(fn: Evaluator) -> bool:
    """Whether the evaluator takes ``(arch, dataset)`` rather than ``(arch)``."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return any(p.kind == p.VAR_POSITIONAL for p in params) or len(positional) >= 2


def check_metrics(metrics: Any, budgets: Mapping[str, float], where: str) -> dict[str, Any]:
    """Validate what an evaluator returned: a mapping with a finite ``accuracy`` and every budgeted cost."""
    if not isinstance(metrics, Mapping):
        raise AutostructError(f"{where}: the evaluator returned {type(metrics).__name__}; expected a dict such as "
                              "{'accuracy': 0.91, 'flops': 1.2e6}.")
    if "accuracy" not in metrics:
        raise AutostructError(f"{where}: the evaluator's result has no 'accuracy' (keys: {sorted(metrics)}).")
    out = dict(metrics)
    for name in ("accuracy", *COST_NAMES):
        if name not in metrics or (name != "accuracy" and metrics[name] is None):
            continue
        try:
            value = float(metrics[name])
        except (TypeError, ValueError):
            raise AutostructError(f"{where}: the evaluator's '{name}' is {metrics[name]!r}, not a number.") from None
        if not math.isfinite(value):
            raise AutostructError(f"{where}: the evaluator's '{name}' is {value}; it must be finite.")
        out[name] = value
    missing = [k for k in budgets if out.get(k) is None]
    if missing:
        raise AutostructError(f"{where}: the task has budget(s) on {missing} but the evaluator's result lacks "
                              f"them (keys: {sorted(metrics)}); return them or drop those budgets.")
    return out


# ---------------------------------------------------------------------- the MDP


def custom_observation_size(space: CustomSpace, num_datasets: int) -> int:
    """Length of :class:`CustomNASEnv`'s observation (the policy's input)."""
    return num_datasets + 2 * len(COST_NAMES) + space.num_decisions + sum(space.choice_counts)


class CustomNASEnv:
    """One task's NAS environment on a :class:`CustomSpace` (implements :class:`autostruct.rl.env.Env`).

    ``budget_ranges`` gives, per cost, the smallest and largest target over the run's tasks, so the observation
    can place this task's target between them (log scale); without it a budgeted cost sits at 0.5.
    """

    def __init__(
        self,
        space: CustomSpace,
        evaluator: Evaluator,
        budgets: Mapping[str, float] | None = None,
        *,
        dataset: str = "task",
        reward: RewardSpec | None = None,
        task_id: int = 0,
        dataset_index: int = 0,
        num_datasets: int = 1,
        budget_ranges: Mapping[str, tuple[float, float]] | None = None,
        name: str = "task",
    ) -> None:
        if not 0 <= dataset_index < num_datasets:
            raise ValueError(f"dataset_index {dataset_index} outside [0, {num_datasets})")
        self.budgets = dict(budgets or {})
        bad = [k for k in self.budgets if k not in COST_NAMES]
        if bad:
            raise AutostructError(f"Task {name}: unknown cost(s) {bad} in budgets; valid: {', '.join(COST_NAMES)}.")
        self.space = space
        self.evaluator = evaluator
        self.dataset = dataset
        self.reward_fn = reward or RewardSpec()
        self.task_id = task_id
        self.dataset_index = dataset_index
        self.num_datasets = num_datasets
        self.name = name
        self.action_spec = CategoricalSpec(space.choice_counts)
        self.max_episode_steps = space.num_decisions
        self.observation_size = custom_observation_size(space, num_datasets)
        self._offsets = np.cumsum([0, *space.choice_counts[:-1]]).tolist()
        self._task_features = self._encode_task(budget_ranges or {})
        self._with_dataset = _takes_dataset(evaluator)
        self._memo: dict[tuple[int, ...], dict[str, Any]] = {}
        self._prefix: list[int] = []
        self._done = True

    # ------------------------------------------------------------------ Env protocol
    def reset(self, seed: int | None = None) -> np.ndarray:
        self._prefix = []
        self._done = False
        return self._observation()

    def action_mask(self) -> np.ndarray:
        return self.space.action_mask(self._prefix)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError("step() after the episode ended; call reset()")
        a = int(action)
        mask = self.action_mask()
        t = len(self._prefix)
        if not (0 <= a < len(mask) and mask[a]):
            raise ValueError(f"action {a} is masked at step {t} ('{self.space.decisions[t].name}')")
        forced = int(mask.sum()) == 1
        self._prefix.append(a)
        if len(self._prefix) < self.max_episode_steps:
            return self._observation(), 0.0, False, {"forced": forced}
        self._done = True
        info = self.evaluate(self._prefix)
        info["forced"] = forced
        obs = np.zeros(self.observation_size, dtype=np.float32)
        obs[: len(self._task_features)] = self._task_features
        return obs, float(info["reward"]), True, info

    # ------------------------------------------------------------------ evaluation
    def metrics(self, indices: Sequence[int]) -> tuple[dict[str, Any], bool]:
        """The evaluator's checked metrics of an architecture (memoized per canonical architecture)."""
        key = tuple(self.space.canonical(indices))
        if key in self._memo:
            return self._memo[key], True
        arch = self.space.decode(key)
        raw = self.evaluator(arch, self.dataset) if self._with_dataset else self.evaluator(arch)
        metrics = check_metrics(raw, self.budgets, where=f"Task {self.name} ({arch_str(arch)})")
        self._memo[key] = metrics
        return metrics, False

    def evaluate(self, indices: Sequence[int]) -> dict[str, Any]:
        """Reward and record of a whole architecture (what the last step returns; JSON-serializable)."""
        t0 = time.perf_counter()
        canonical = self.space.canonical(indices)
        metrics, cached = self.metrics(canonical)
        costs = {k: metrics[k] for k in COST_NAMES if metrics.get(k) is not None}
        reward = self.reward_fn(metrics["accuracy"], costs, self.budgets)
        ok = meets(costs, self.budgets)
        arch = self.space.decode(canonical)
        extra = {k: v for k, v in metrics.items() if k not in ("accuracy", *COST_NAMES) and _is_json_scalar(v)}
        return {
            "arch": arch,
            "indices": canonical,
            "arch_str": arch_str(arch),
            "accuracy": metrics["accuracy"],
            **{k: costs.get(k) for k in COST_NAMES},
            "reward": float(reward),
            "meets_budgets": bool(ok),
            "feasible": bool(ok),
            "metrics": extra,
            "task_id": self.task_id,
            "cached": cached,
            "eval_s": round(time.perf_counter() - t0, 4),
        }

    # ------------------------------------------------------------------ observation
    def _encode_task(self, ranges: Mapping[str, tuple[float, float]]) -> np.ndarray:
        feats = np.zeros(self.num_datasets + 2 * len(COST_NAMES), dtype=np.float32)
        feats[self.dataset_index] = 1.0
        for i, cost in enumerate(COST_NAMES):
            if cost in self.budgets:
                j = self.num_datasets + 2 * i
                lo, hi = ranges.get(cost, (self.budgets[cost], self.budgets[cost]))
                feats[j] = 1.0
                feats[j + 1] = _log_position(self.budgets[cost], lo, hi)
        return feats

    def _observation(self) -> np.ndarray:
        obs = np.zeros(self.observation_size, dtype=np.float32)
        k = len(self._task_features)
        obs[:k] = self._task_features
        t = len(self._prefix)
        obs[k + min(t, self.space.num_decisions - 1)] = 1.0
        base = k + self.space.num_decisions
        for i, a in enumerate(self._prefix):
            obs[base + self._offsets[i] + a] = 1.0
        return obs


def _log_position(value: float, lo: float, hi: float) -> float:
    if hi <= lo:
        return 0.5
    pos = (math.log(value) - math.log(lo)) / (math.log(hi) - math.log(lo))
    return float(min(max(pos, 0.0), 1.0))


def _is_json_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, bool, int)) or (isinstance(v, float) and math.isfinite(v))


@dataclass(frozen=True)
class CustomEnvFactory:
    """Builds a :class:`CustomNASEnv` inside an actor process (picklable: the space as a mapping or object, the
    evaluator as ``module:function`` or a module-level callable)."""

    space: CustomSpace | dict[str, Any] | str
    evaluator: Evaluator | str
    dataset: str
    budgets: dict[str, float]
    task_id: int = 0
    dataset_index: int = 0
    num_datasets: int = 1
    budget_ranges: tuple[tuple[str, float, float], ...] = ()
    reward: str = "mnas_soft"
    reward_alpha: float | None = None
    reward_beta: float | None = None
    import_paths: tuple[str, ...] = ()
    name: str = "task"

    def __call__(self) -> CustomNASEnv:
        return CustomNASEnv(
            load_space(self.space, self.import_paths),
            load_evaluator(self.evaluator, self.import_paths),
            self.budgets,
            dataset=self.dataset,
            reward=RewardSpec(self.reward, self.reward_alpha, self.reward_beta),
            task_id=self.task_id,
            dataset_index=self.dataset_index,
            num_datasets=self.num_datasets,
            budget_ranges={c: (lo, hi) for c, lo, hi in self.budget_ranges},
            name=self.name,
        )


__all__ = [
    "CustomDecision",
    "CustomEnvFactory",
    "CustomNASEnv",
    "CustomSpace",
    "arch_str",
    "check_metrics",
    "custom_observation_size",
    "evaluator_name",
    "load_evaluator",
    "load_space",
]
