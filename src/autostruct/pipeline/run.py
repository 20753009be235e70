"""The one orchestration of a search run: folder -> checks -> assets -> env factories -> engine -> per-task finish
-> results.json -> report. The search-specific parts come from a :class:`~autostruct.pipeline.kind.SearchKind`.

Every phase writes its outputs atomically and a resumed run skips what exists (the kind's assets and finished
tasks; the engine continues from its checkpoint and episode log), so an interrupted run loses at most the episode
in flight or the task being finished.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, TypeVar

from autostruct.backends import make_backend
from autostruct.pipeline.kind import SearchKind, SearchRun
from autostruct.pipeline.results import run_totals, write_results
from autostruct.report import render_report
from autostruct.rl import run_impala, save_policy
from autostruct.rl.impala import EngineBackend
from autostruct.utils.memory import release_free_memory
from autostruct.utils.progress import format_seconds
from autostruct.utils.runs import RunResult, phase, prepare_run_dir, run_folder_lock, say

R = TypeVar("R", bound=RunResult)


def _run_dir(kind: SearchKind, cfg: Any, *, resume: bool, overwrite: bool, dry_run: bool) -> Path:
    return prepare_run_dir(
        cfg, output_dir=cfg.output_dir, run_format=kind.run_format, resumable=kind.resumable, resume=resume,
        overwrite=overwrite, what_changed=kind.what_changed, dry_run=dry_run,
    )


def run_search(
    config: Any,
    kind: SearchKind,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    backend: EngineBackend | None = None,
    result_type: type[R] = RunResult,  # type: ignore[assignment]  # the default is R = RunResult
) -> R:
    """Run one search end to end in its ``output_dir`` and return its results (see the module docstring).

    ``config``: a config object, a mapping or a YAML path (what ``kind.parse`` takes). ``backend``: where the
    actors run; None builds the config's ``backend`` (``autostruct.backends.make_backend``). ``result_type`` is the
    :class:`~autostruct.utils.runs.RunResult` subclass returned (each search keeps its own name for it).
    """
    cfg = kind.parse(config)
    # One process per run folder: the lock comes before the dry run decides, so two runs started together cannot
    # both find the folder free.
    with run_folder_lock(cfg.output_dir):
        run = SearchRun(cfg=cfg, progress=progress, t_start=time.monotonic())
        prefix = kind.prefix
        # Everything that can fail is checked before anything but the lock is written: a failed start leaves no folder.
        _run_dir(kind, cfg, resume=resume, overwrite=overwrite, dry_run=True)
        with phase(progress, "checks", prefix):
            run.plan = kind.preflight(run)
        run.out = _run_dir(kind, cfg, resume=resume, overwrite=overwrite, dry_run=False)
        with phase(progress, getattr(kind, "assets_phase", "assets"), prefix):
            run.assets = kind.prepare_assets(run)
            run.factories = kind.make_factories(run)

        with phase(progress, "search", prefix):
            say(progress, kind.describe(run), prefix=prefix)
            t_search = time.monotonic()
            run.result = run_impala(
                run.factories, kind.policy_spec(run), total_episodes=cfg.search.episodes, run_dir=run.out / "search",
                rl=cfg.rl, backend=backend if backend is not None else make_backend(cfg.backend, cfg.rl),
                max_restarts=cfg.backend.max_restarts, algorithm=kind.algorithm, resume=True, seed=cfg.seed,
                progress=progress,
            )
            run.search_wall = time.monotonic() - t_search
        policy_path = save_policy(run.result.policy, run.out / "policy.pt", metadata=kind.policy_metadata(run))

        records = []
        for i in range(len(run.factories)):
            with phase(progress, f"task {i + 1}/{len(run.factories)}: finish", prefix):
                records.append(kind.finish_task(run, i))
            release_free_memory()  # a task's evaluations and reference episodes leave ~0.5 GB of free heap
        with phase(progress, "results and report", prefix):
            fmt, totals, fields = kind.results(run, records)
            results = write_results(
                run.out, fmt=fmt, cfg=cfg, records=records,
                totals=run_totals(run.result, len(records), run.search_wall, run.t_start, totals),
                fields=fields, policy_path=policy_path,
            )
            report = render_report(run.out)
        say(progress, f"done in {format_seconds(time.monotonic() - run.t_start)}: {run.out / 'results.json'} and "
                      f"{report}", prefix=prefix)
        return result_type(run.out, results, report, policy_path)
