"""The one search pipeline both searches run through (see docs/architecture.md).

:func:`run_search` owns the phases every search shares (run folder and resume, checks, assets, env factories,
the IMPALA engine on a backend, the per-task finish, results.json and the report); a
:class:`~autostruct.pipeline.kind.SearchKind` supplies what differs. The kinds live with their searches:
``autostruct.mtacp.run.PruneSearch`` (channel pruning), ``autostruct.nas.search.NASSearch`` (supernet NAS) and
``autostruct.nas.custom_search.CustomNASSearch`` (a user's space and evaluator); ``autostruct.api`` maps the
names ``"prune"``, ``"nas"`` and ``"nas-custom"`` to them. This package imports none of them.
"""

from autostruct.pipeline.assets import load_any_model
from autostruct.pipeline.kind import SearchKind, SearchRun
from autostruct.pipeline.results import run_totals, write_results
from autostruct.pipeline.run import run_search
from autostruct.pipeline.steps import best_episode, onnx_latency_ms, task_episodes

__all__ = [
    "SearchKind",
    "SearchRun",
    "best_episode",
    "load_any_model",
    "onnx_latency_ms",
    "run_search",
    "run_totals",
    "task_episodes",
    "write_results",
]
