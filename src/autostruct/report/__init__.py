"""Reports: read a run folder's results.json (validated against :mod:`autostruct.results`), write a
self-contained report.html."""

from __future__ import annotations

import json
from pathlib import Path

from autostruct.errors import AutostructError
from autostruct.report.nas_report import render_nas_report
from autostruct.report.prune_report import render_prune_report


def render_report(run_dir: str | Path) -> Path:
    """Render the report of a prune or NAS run folder (dispatches on results.json's ``format``)."""
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise AutostructError(f"'{run_dir}' has no results.json. Pass the output_dir of a finished run.")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise AutostructError(f"'{path}' is not valid JSON ({exc}).") from None
    fmt = data.get("format", "") if isinstance(data, dict) else ""
    if fmt.startswith("autostruct.prune-results"):
        return render_prune_report(run_dir)
    if fmt.startswith(("autostruct.nas-results", "autostruct.nas-custom-results")):
        return render_nas_report(run_dir)
    raise AutostructError(f"'{path}' is not an autostruct results file (format '{fmt}').")
