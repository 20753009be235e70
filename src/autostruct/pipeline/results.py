"""results.json: the fields every search writes, in one place, checked against the typed schema
(:mod:`autostruct.results`) before they are written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autostruct.results import validate_results
from autostruct.utils.io import write_json_atomic
from autostruct.utils.runs import engine_totals
from autostruct.utils.versions import versions


def write_results(
    out: Path,
    *,
    fmt: str,
    cfg: Any,
    records: list[dict[str, Any]],
    totals: dict[str, Any],
    fields: dict[str, Any],
    policy_path: Path,
) -> dict[str, Any]:
    """Write ``out/results.json`` atomically and return it.

    Layout: ``format``, ``name``, ``tasks`` (one record per task), ``totals`` (``tasks``, ``episodes``, the
    search's own ``totals`` and the engine's), the search's other top-level ``fields``, then ``policy_path``,
    ``config`` (the validated config) and ``versions``. The whole is validated against its format's schema
    (:func:`autostruct.results.validate_results`) first, so a record that misses a field fails here, before the
    file is written; the file holds the values as given (the schema checks them, it does not rewrite them).
    """
    results = {
        "format": fmt,
        "name": cfg.name,
        "tasks": records,
        "totals": totals,
        **fields,
        "policy_path": str(policy_path),
        "config": cfg.model_dump(mode="json"),
        "versions": versions(),
    }
    validate_results(results, f"results.json of '{out}'")
    write_json_atomic(out / "results.json", results)
    return results


def run_totals(result: Any, n_tasks: int, search_wall: float, t_start: float, own: dict[str, Any]) -> dict[str, Any]:
    """``totals``: task and episode counts, the search's ``own`` fields, the engine's (:func:`engine_totals`)."""
    return {"tasks": n_tasks, "episodes": len(result.episodes), **own, **engine_totals(result, search_wall, t_start)}
