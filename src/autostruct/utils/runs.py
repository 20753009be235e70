"""What every search run folder shares: its owner lock, marker file, resume/overwrite rules, and status lines.

A run folder holds ``run.json`` (format, name, settings fingerprint) and ``config.yaml``. A folder that holds
another run is refused unless the user resumes it (same fingerprint) or overwrites it; a non-empty folder that
is not a run is never deleted. One process at a time owns a folder (:func:`run_folder_lock`, a ``flock`` on
``.lock`` in it, taken before any of these decisions): a second run on it is refused, whoever started it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from autostruct.errors import AutostructError
from autostruct.utils.io import write_json_atomic, write_text_atomic
from autostruct.utils.locks import holder, try_lock
from autostruct.utils.progress import format_seconds

log = logging.getLogger("autostruct")


@dataclass
class RunResult:
    """What a search returns: the parsed ``results.json`` plus where things are."""

    output_dir: Path
    results: dict[str, Any]
    report_path: Path
    policy_path: Path

    @property
    def tasks(self) -> list[dict[str, Any]]:
        return self.results["tasks"]


@dataclass(frozen=True)
class DataKey:
    """A dataset (or class subset of one): the unit that gets its own base model or supernet."""

    dataset: str
    classes: tuple[int, ...] | None
    root: str | None

    @property
    def label(self) -> str:
        return self.dataset + (f"-c{'.'.join(map(str, self.classes))}" if self.classes else "")


#: ``search`` settings added after run folders were written; unset (None) they leave a folder's fingerprint as it was.
_ADDED_AT_DEFAULT = ("holdout_size",)


#: (section or None for the top level, key, default) of settings added after run folders were written.
_ADDED_LATER = (
    ("base_training", "subsets_from_full", True), ("base_training", "subset_epochs", 1),
    ("base_training", "subset_lr", 0.01), ("finetune", "distill", 0.0), ("finetune", "temperature", 4.0),
    ("finetune", "max_steps", None), (None, "threads", "auto"),
)


def config_fingerprint(cfg: BaseModel, resumable: Iterable[str]) -> str:
    """Hash of the settings that must not change on resume (``resumable`` fields and search.episodes may)."""
    d = cfg.model_dump(mode="json")
    for k in resumable:
        d.pop(k, None)
    if isinstance(d.get("base_training"), dict):
        d["base_training"].pop("retrain", None)  # where the base models come from, recorded in base/*.json
    for section, key, default in _ADDED_LATER:  # settings added later leave older run folders resumable at their default
        holder_ = d if section is None else d.get(section)
        if isinstance(holder_, dict) and key in holder_ and holder_[key] == default:
            del holder_[key]
    if isinstance(d.get("search"), dict):
        d["search"].pop("episodes", None)  # a resumed run may extend its episode budget
        for key in _ADDED_AT_DEFAULT:  # settings added later leave older run folders resumable while unset
            if key in d["search"] and d["search"][key] is None:
                del d["search"][key]
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def say(progress: bool, msg: str, prefix: str = "autostruct") -> None:
    """A status line on stderr (and in the log)."""
    log.info(msg)
    if progress:
        from rich.console import Console

        Console(stderr=True).print(f"[bold cyan]{prefix}[/] {msg}", highlight=False)


@contextlib.contextmanager
def phase(progress: bool, name: str, prefix: str = "autostruct") -> Iterator[None]:
    """Status lines around one phase of a run: when it starts (wall clock) and how long it took.

    >>> with phase(False, "base models"):          # doctest: +SKIP
    ...     train_them()
    autostruct base models: started 20:41:07
    autostruct base models: done in 1m15s
    """
    say(progress, f"{name}: started {time.strftime('%H:%M:%S')}", prefix=prefix)
    t0 = time.monotonic()
    yield
    say(progress, f"{name}: done in {format_seconds(time.monotonic() - t0)}", prefix=prefix)


#: The lock file in a run folder; the folder's other rules (empty, overwrite) do not see it.
LOCK_FILE = ".lock"


@contextlib.contextmanager
def run_folder_lock(output_dir: str | Path) -> Iterator[Path]:
    """Own the run folder ``output_dir`` for the block, or raise naming the process that owns it.

    The folder is created for its lock file; a block that fails before writing anything else into a folder
    created here removes it again, so a refused start leaves nothing behind.
    """
    out = Path(output_dir)
    created = [p for p in (out, *out.parents) if not p.exists()]
    lock = out / LOCK_FILE
    fd = try_lock(lock)
    if fd is None:
        pid = holder(lock)
        raise AutostructError(
            f"output_dir '{out}' is in use by another autostruct run ({f'process {pid}' if pid else 'its process'} "
            "holds it). Wait for that run to finish, or stop it (a stopped run continues with --resume); two runs "
            "never write into one folder."
        )
    try:
        yield out
    except BaseException:
        if created and set(os.listdir(out)) <= {LOCK_FILE}:
            lock.unlink(missing_ok=True)
            for folder in created:  # innermost first
                with contextlib.suppress(OSError):
                    folder.rmdir()
        raise
    finally:
        os.close(fd)


def _contents(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if p.name != LOCK_FILE] if out.exists() else []


def prepare_run_dir(
    cfg: BaseModel,
    *,
    output_dir: str | Path,
    run_format: str,
    resumable: Iterable[str],
    resume: bool,
    overwrite: bool,
    what_changed: str = "tasks or search settings",
    dry_run: bool = False,
) -> Path:
    """Create or reuse a run folder; ``dry_run`` only raises the errors, touching nothing.

    The caller holds :func:`run_folder_lock`: overwriting keeps the lock file, and leftovers of writes that a
    killed process left unfinished (``.*.tmp``) are removed.
    """
    resumable = sorted(resumable)
    out = Path(output_dir)
    marker = out / "run.json"
    fingerprint = config_fingerprint(cfg, resumable)
    name = getattr(cfg, "name", "")
    if contents := _contents(out):
        if not marker.is_file():
            raise AutostructError(
                f"output_dir '{out}' exists and is not an autostruct run folder. Choose another output_dir."
            )
        info = json.loads(marker.read_text())
        if overwrite:
            if dry_run:
                return out
            for p in contents:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                else:
                    p.unlink()
        elif not resume:
            raise AutostructError(
                f"output_dir '{out}' already holds a run ('{info.get('name')}'). Pass --resume to continue it or "
                "--overwrite to start again."
            )
        elif info.get("format") != run_format or info.get("fingerprint") != fingerprint:
            raise AutostructError(
                f"Cannot resume '{out}': it was started with different {what_changed}. Only "
                f"{', '.join(resumable)} and search.episodes may change on --resume; use --overwrite or another "
                "output_dir."
            )
    if dry_run:
        return out
    out.mkdir(parents=True, exist_ok=True)
    for tmp in out.rglob(".*.tmp"):  # only this process writes here (the lock), so no write is in flight
        tmp.unlink(missing_ok=True)
    if not marker.is_file():
        write_text_atomic(out / "config.yaml", yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
        write_json_atomic(marker, {"format": run_format, "name": name, "fingerprint": fingerprint})
    return out


def mean_of(records: list[dict[str, Any]], key: str) -> float | None:
    """Mean of ``key`` over per-task records; None when any task lacks it (e.g. no fine-tune)."""
    values = [r.get(key) for r in records]
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)


def engine_totals(result: Any, search_wall: float, t_start: float) -> dict[str, Any]:
    """The search-engine part of a run's ``totals`` (an :class:`autostruct.rl.ImpalaResult`)."""
    import time

    return {
        "search_seconds": float(result.elapsed_s),
        "search_wall_seconds_this_session": search_wall,
        "wall_seconds_this_session": time.monotonic() - t_start,
        "learner_updates": result.updates,
        "env_steps": result.env_steps,
        "actor_restarts": {str(k): v for k, v in result.actor_restarts.items()},
    }
