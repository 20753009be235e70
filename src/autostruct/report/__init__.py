"""Reports: read a run folder's results.json (validated against :mod:`autostruct.results`), write a
self-contained report.html."""

from __future__ import annotations

from pathlib import Path

from autostruct.errors import AutostructError
from autostruct.report.nas_report import render_nas_report
from autostruct.report.prune_report import render_prune_report
from autostruct.results import read_results_json


def render_report(run_dir: str | Path) -> Path:
    """Render the report of a prune or NAS run folder (dispatches on results.json's ``format``)."""
    path, data = read_results_json(run_dir)
    fmt = data.get("format", "") if isinstance(data, dict) else ""
    if fmt.startswith("autostruct.prune-results"):
        return render_prune_report(run_dir)
    if fmt.startswith(("autostruct.nas-results", "autostruct.nas-custom-results")):
        return render_nas_report(run_dir)
    raise AutostructError(f"'{path}' is not an autostruct results file (format '{fmt}').")
