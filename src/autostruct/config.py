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
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from autostruct.errors import AutostructError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    """Base for every config: unknown keys are errors, values are frozen after parsing."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RLConfig(StrictModel):
    """Learner and actor settings shared by both searches (IMPALA defaults from Espeholt et al. / MTACP)."""

    actors: int = Field(2, ge=1, description="Actor processes; each owns one or more task envs.")
    unroll_length: int = Field(20, ge=1, description="Steps per trajectory sent to the learner.")
    batch_size: int = Field(4, ge=1, description="Trajectories per learner update.")
    learning_rate: float = Field(4.8e-4, gt=0)
    rmsprop_decay: float = Field(0.99, gt=0, lt=1)
    rmsprop_eps: float = Field(0.01, gt=0)
    rmsprop_momentum: float = Field(0.5, ge=0, lt=1)
    grad_clip: float = Field(40.0, gt=0)
    discount: float = Field(0.99, ge=0, le=1)
    baseline_cost: float = Field(0.5, ge=0)
    entropy_cost: float = Field(0.01, ge=0)
    rho_bar: float = Field(1.0, gt=0, description="V-trace clip on importance weights for value targets.")
    c_bar: float = Field(1.0, gt=0, description="V-trace clip on trace-cutting coefficients.")
    pg_rho_bar: float = Field(1.0, gt=0, description="Clip on importance weights in the policy gradient.")
    vtrace_lambda: float = Field(1.0, ge=0, le=1)
    is_truncation: float = Field(1.0, gt=0, description="Truncation level of MC importance weights (NAS).")
    use_lstm: bool = True
    threads_per_actor: int = Field(1, ge=1, description="torch threads in each actor process.")
    checkpoint_every: int = Field(20, ge=1, description="Learner updates between checkpoints.")


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
            lines.append(f"'{_format_loc(loc)}': {e['msg']} (got {e.get('input')!r}).")
    return f"Invalid {source}: " + " ".join(lines)


def parse_config(model: type[M], data: dict[str, Any], source: str = "config") -> M:
    """Validate ``data`` against ``model``, raising :class:`AutostructError` with field names on failure."""
    if not isinstance(data, dict):
        raise AutostructError(f"Invalid {source}: expected a mapping at the top level, got {type(data).__name__}.")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise AutostructError(validation_message(model, err, source)) from None


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
