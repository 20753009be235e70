"""What a search supplies to the pipeline (:class:`SearchKind`) and what the pipeline hands back to it (:class:`SearchRun`).

The pipeline (:func:`autostruct.pipeline.run_search`) owns the phases every search shares; a kind answers only
the questions whose answers differ between pruning and NAS. Each hook gets the one :class:`SearchRun` object, so a
kind keeps its own state (tasks, base models, supernets, latency tables) in ``run.plan`` and ``run.assets``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel


@dataclass
class SearchRun:
    """One run as the hooks see it, filled in phase by phase.

    ``plan`` is what :meth:`SearchKind.preflight` returned (the checked inputs), ``assets`` what
    :meth:`SearchKind.prepare_assets` returned, ``factories`` one env factory per task, ``result`` the engine's
    :class:`~autostruct.rl.ImpalaResult`, ``t_start`` the session's start (``time.monotonic()``).
    """

    cfg: Any
    progress: bool
    t_start: float
    out: Path = Path()
    plan: Any = None
    assets: Any = None
    factories: Sequence[Any] = ()
    result: Any = None
    search_wall: float = 0.0

    @property
    def episodes(self) -> list[Any]:
        """Every episode the engine logged (the whole run, resumes included)."""
        return list(self.result.episodes) if self.result is not None else []


class SearchKind(Protocol):
    """One search's specific parts. Pruning (``autostruct.mtacp.run.PruneSearch``), supernet NAS
    (``autostruct.nas.search.NASSearch``) and NAS on a user's space (``autostruct.nas.custom_search.CustomNASSearch``)
    implement it; the pipeline calls the hooks in the order they are listed here."""

    #: ``run.json``'s format of this kind's run folders (a resume must find the same).
    run_format: str
    #: Config fields that may change between a run and its resume (search.episodes always may).
    resumable: frozenset[str]
    #: How the resume error names the settings that must not change.
    what_changed: str
    #: The engine's default algorithm: ``"vtrace"`` (pruning) or ``"mc"`` (NAS).
    algorithm: str
    #: The status lines' prefix.
    prefix: str

    def parse(self, config: Any) -> BaseModel:
        """The validated config (from an object, a mapping or a YAML path), with this run's overrides applied."""
        ...

    def preflight(self, run: SearchRun) -> Any:
        """Check everything a user can get wrong before the run folder is touched; returns ``run.plan``."""
        ...

    def prepare_assets(self, run: SearchRun) -> Any:
        """Train or fetch what the envs score with (base models, supernets), recorded in ``run.out``; returns ``run.assets``."""
        ...

    def make_factories(self, run: SearchRun) -> list[Any]:
        """One picklable env factory per task; factory ``i`` builds task ``i``'s env."""
        ...

    def policy_spec(self, run: SearchRun) -> Any:
        """The engine's :class:`~autostruct.rl.PolicySpec`."""
        ...

    def describe(self, run: SearchRun) -> str:
        """The status line printed before the search starts."""
        ...

    def policy_metadata(self, run: SearchRun) -> dict[str, Any]:
        """What ``policy.pt`` records beside the weights."""
        ...

    def finish_task(self, run: SearchRun, task_id: int) -> dict[str, Any]:
        """Select, rebuild, train further, export and measure one task's result; its results.json record."""
        ...

    def results(self, run: SearchRun, records: list[dict[str, Any]]) -> tuple[str, dict[str, Any], dict[str, Any]]:
        """results.json's ``format``, this kind's ``totals`` fields and its other top-level fields."""
        ...
