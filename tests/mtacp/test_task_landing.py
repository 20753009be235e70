"""How close each FLOPs task's episodes can land on its budget, decided before the search.

The model is the issue's: a residual depthwise net with squeeze-excite whose 48-channel trunk is one group
(``byo_archs.se_trunk``); with channels in multiples of 8 or 16 its episodes end far under half the FLOPs.
"""

from __future__ import annotations

import pytest

from autostruct.config import PruneConfig, parse_config
from autostruct.mtacp.preflight import check_prune_inputs, choose_task_rounding, landing_warnings
from autostruct.mtacp.run import warn_landing


def _config(tmp_path, round_to):
    return parse_config(PruneConfig, {
        "name": "landing", "output_dir": str(tmp_path / "run"), "model": "byo_archs:se_trunk",
        "tasks": [{"dataset": "digits", "ratios": [0.5]}], "search": {"episodes": 2, "round_to": round_to},
        "backend": {"name": "inline"},
    })


def test_auto_takes_a_finer_multiple_for_a_task_the_runs_cannot_land(tmp_path):
    cfg = _config(tmp_path, "auto")
    run_multiple = check_prune_inputs(cfg)
    assert run_multiple == 8  # the (pinned) host multiple reaches the budget ...
    (rounding,) = choose_task_rounding(cfg, run_multiple).values()
    # ... but lands at 0.64 of it, so the task gets the finer multiple that lands closest, untimed.
    assert rounding.source == "landing" and rounding.round_to < 8
    assert rounding.meta["landing"] > 0.95 and rounding.scores[8] < 0.7
    assert landing_warnings(cfg, {"t": rounding.as_dict()}) == []


def test_an_integer_multiple_that_cannot_spend_the_budget_is_said_before_the_search(tmp_path, capsys):
    cfg = _config(tmp_path, 16)
    assert check_prune_inputs(cfg) == 16  # reachable: the run is not refused ...
    rounding = {name: r.as_dict() for name, r in choose_task_rounding(cfg, 16).items()}
    (rec,) = rounding.values()
    assert (rec["round_to"], rec["source"]) == (16, "config") and rec["meta"]["landing"] == pytest.approx(0.35, abs=0.01)
    lines = landing_warnings(cfg, rounding)  # ... but told, with the fix
    assert len(lines) == 1 and "multiples of 16" in lines[0] and "land at 0.35 of the FLOPs budget" in lines[0]
    assert "search.round_to: auto" in lines[0]
    warn_landing(lines)
    assert "warning" in capsys.readouterr().err
