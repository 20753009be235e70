"""The typed results.json schema (autostruct.results): a real run's file validates and reads back unchanged, the
writer refuses a record that misses a field, and `autostruct report` names a missing field instead of a KeyError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from autostruct import api
from autostruct.cli import app
from autostruct.errors import AutostructError
from autostruct.pipeline import write_results
from autostruct.report import render_report
from autostruct.results import (
    CUSTOM_NAS_FORMAT,
    PRUNE_FORMAT,
    SCHEMAS,
    CustomNASResults,
    PruneResults,
    RunResults,
    load_results,
    validate_results,
)

SPACE = {"decisions": [{"name": "op", "choices": ["a", "b", "c"]}, {"name": "depth", "choices": [1, 2]}]}


def evaluate(arch: dict[str, Any], dataset: str) -> dict[str, float]:
    return {"accuracy": {"a": 0.5, "b": 0.7, "c": 0.6}[arch["op"]] + 0.1 * arch["depth"],
            "flops": 1e6 * arch["depth"]}


@pytest.fixture(scope="module")
def custom_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("custom") / "run"
    cfg = {"space": SPACE, "evaluator": "unused:by_object", "output_dir": str(out), "search": {"episodes": 12},
           "tasks": [{"dataset": "x", "budgets": {"flops": 1.5e6}}, {"dataset": "y", "budgets": {"flops": 0.5e6}}],
           "rl": {"actors": 1}, "backend": {"name": "inline"}}
    api.run_search(cfg, "nas-custom", evaluator=evaluate, progress=False)
    return out


def test_a_real_runs_results_validate_and_read_back_unchanged(custom_run):
    raw = json.loads((custom_run / "results.json").read_text())
    res = load_results(custom_run)
    assert isinstance(res, CustomNASResults) and res.format == CUSTOM_NAS_FORMAT
    assert res.model_dump(mode="json", exclude_unset=True) == raw  # every field kept, extra ones included
    feasible, infeasible = res.tasks  # task y's budget (0.5 MFLOPs) is below every architecture's cost
    assert feasible.meets_budgets and feasible.flops <= 1.5e6 and feasible.arch["depth"] == 1
    assert not infeasible.meets_budgets and infeasible.arch is None
    assert res.totals.tasks == 2 and res.totals.episodes == 12 and res.totals.tasks_without_feasible_arch == 1


def test_every_format_has_a_schema_and_the_search_formats_are_its_constants():
    from autostruct.mtacp.run import RESULTS_FORMAT as PRUNE
    from autostruct.nas.custom_search import RESULTS_FORMAT as CUSTOM
    from autostruct.nas.search import RESULTS_FORMAT as NAS

    assert set(SCHEMAS) == {PRUNE, NAS, CUSTOM} and PRUNE == PRUNE_FORMAT
    assert SCHEMAS[PRUNE] is PruneResults


def test_the_writer_refuses_a_record_missing_a_field(custom_run, tmp_path):
    raw = json.loads((custom_run / "results.json").read_text())

    class Cfg:
        name = "bad"

        @staticmethod
        def model_dump(mode: str) -> dict[str, Any]:
            return raw["config"]

    broken = [{k: v for k, v in raw["tasks"][0].items() if k != "meets_budgets"}]
    with pytest.raises(AutostructError, match=r"'tasks\.0\.meets_budgets' is missing"):
        write_results(tmp_path, fmt=CUSTOM_NAS_FORMAT, cfg=Cfg, records=broken, totals=raw["totals"],
                      fields={k: raw[k] for k in ("space", "evaluator", "evaluated")}, policy_path=tmp_path / "p.pt")
    assert not (tmp_path / "results.json").exists()
    write_results(tmp_path, fmt=CUSTOM_NAS_FORMAT, cfg=Cfg, records=raw["tasks"], totals=raw["totals"],
                  fields={k: raw[k] for k in ("space", "evaluator", "evaluated")}, policy_path=tmp_path / "p.pt")
    assert validate_results(json.loads((tmp_path / "results.json").read_text())).name == "bad"


def _prune_results(**task_over: Any) -> dict[str, Any]:
    task = {"task": "digits-r0.5", "task_id": 0, "dataset": "digits", "classes": None, "ratio": 0.5,
            "base_accuracy": 0.95, "accuracy_before_finetune": 0.9, "accuracy_after_finetune": None, "flops": 500,
            "base_flops": 1000, "params": 10, "keep_ratios": [0.5, 0.7], "episodes": 4, "episodes_to_best": 2,
            **task_over}
    return {"format": PRUNE_FORMAT, "name": "hand", "tasks": [task], "totals": {"tasks": 1, "episodes": 4},
            "curves": {"digits-r0.5": [0.1, 0.2, 0.3, 0.4]}, "config": {}, "versions": {}}


def test_cli_report_names_a_missing_field(tmp_path):
    runner = CliRunner()
    data = _prune_results()
    (tmp_path / "results.json").write_text(json.dumps(data))
    ok = runner.invoke(app, ["report", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    del data["tasks"][0]["base_flops"]
    (tmp_path / "results.json").write_text(json.dumps(data))
    res = runner.invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 2, res.output
    assert "'tasks.0.base_flops' is missing" in res.output and "Traceback" not in res.output


def test_report_names_a_field_of_the_wrong_type_and_a_missing_totals_count(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(_prune_results(flops="many")))
    with pytest.raises(AutostructError, match=r"'tasks\.0\.flops'"):
        render_report(tmp_path)
    data = _prune_results()
    del data["totals"]["episodes"]
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(AutostructError, match=r"'totals\.episodes' is missing"):
        render_report(tmp_path)


def test_unknown_formats_are_checked_for_the_run_level_fields_only():
    res = validate_results({"format": "autostruct.toy-results/1", "name": "t", "tasks": [{"x": 1}],
                            "totals": {"tasks": 1, "episodes": 3}, "config": {}})
    assert type(res) is RunResults and res.tasks[0].model_extra == {"x": 1}
    with pytest.raises(AutostructError, match="'name' is missing"):
        validate_results({"format": "autostruct.toy-results/1", "tasks": [], "totals": {"tasks": 0, "episodes": 0},
                          "config": {}})
