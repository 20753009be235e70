"""`autostruct prune build-lut`: a device's pruning latency table, built through the real entry point, priced by a
run's preflight and env, refused when it was built for another model, input or rounding; bad input exits 2."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from autostruct.cli import app
from autostruct.config import PruneConfig, load_yaml
from autostruct.data import load_dataset
from autostruct.measure import LatencyTable
from autostruct.models import create_model
from autostruct.mtacp import build_prune_lut
from autostruct.mtacp.preflight import check_latency_budgets, check_prune_inputs, priced_model
from autostruct.mtacp.tasks import expand_tasks
from autostruct.prune.env import PruningEnv
from autostruct.prune.latency_table import (
    TABLE_KIND,
    latency_model,
    layer_specs,
    load_table,
    smallest_latency,
)

runner = CliRunner()
ROUND_TO = 8


def _config(tmp_path, name="config.yaml", **over) -> str:
    cfg = {
        "name": "lut", "output_dir": str(tmp_path / "run"), "model": "resnet20", "width": 0.25,
        "tasks": [{"dataset": "digits", "latency_ms": [1.0]}],
        "search": {"episodes": 2, "round_to": ROUND_TO}, "backend": {"name": "inline"},
    }
    search = over.pop("search", {})
    cfg.update(over)
    cfg["search"] = {**cfg["search"], **search}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The table of ResNet-20 x0.25 on digits (8x8x1), round_to 8, written by the installed entry point."""
    tmp = tmp_path_factory.mktemp("lut")
    cfg = _config(tmp)
    out = tmp / "profiles" / "box-resnet20.json"
    proc = subprocess.run(
        [sys.executable, "-c", "from autostruct.cli import main; main()", "prune", "build-lut", cfg,
         "--out", str(out), "--device-name", "test-box"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return tmp, out, json.loads(proc.stdout)


def test_build_lut_writes_a_device_table(built):
    _, out, summary = built
    table = load_table(out)
    assert table.device == "test-box" and table.backend == "onnxruntime" and table.threads == 1
    assert table.meta["kind"] == TABLE_KIND and table.meta["round_to"] == ROUND_TO
    assert table.meta["input_shape"] == [1, 1, 8, 8] and table.meta["datasets"] == ["digits"]
    assert table.meta["config_model"] == "resnet20" and table.meta["width"] == 0.25
    assert summary["table"] == str(out) and summary["cells"] == len(table.entries) > 1
    assert table.meta["calibration"]["scale"] > 0


def _steepened(out, tmp):
    """The built table with 0.01 ms added per output channel of every cell: a host whose measured table is flat
    at these tiny widths (least == base, seen in CI) would leave no budget strictly between the two to test."""
    data = json.loads(out.read_text())
    for key in data["entries"]:
        if key != "__call__":
            data["entries"][key] += 0.01 * int(re.search(r":[oc](\d+)$", key).group(1))
    steep = tmp / "profiles" / "steep-resnet20.json"
    steep.write_text(json.dumps(data))
    return steep


def test_a_run_prices_its_latency_task_with_the_table(built):
    tmp, built_out, _ = built
    out = _steepened(built_out, tmp)
    # The config's budget only has to pass the preflight's reachability check (the steepened table's scale is
    # fitted per host); the env below gets the budget this test sets between least and base.
    cfg = load_yaml(PruneConfig, _config(tmp, "run.yaml", tasks=[{"dataset": "digits", "latency_ms": [1000.0]}],
                                         search={"latency_table": str(out)}))
    round_to = check_prune_inputs(cfg)
    tables = check_latency_budgets(cfg, round_to)
    (key,) = expand_tasks(cfg)[0]
    assert tables == {key: str(out)}
    # The env of the latency task prices every episode with the device table and keeps it under the budget.
    model, graph, x = priced_model(cfg, key, None)
    lat = latency_model(layer_specs(model, graph, x, round_to), load_table(out))
    least, base = smallest_latency(lat, graph, round_to, 0.2), lat.latency_ms(graph.channels)
    budget = float(0.5 * (least + base))
    env = PruningEnv(create_model("resnet20", num_classes=10, in_channels=1, image_size=8, width=0.25),
                     load_dataset("digits", val_size=200, seed=0), 1.0, latency_table=tables[key],
                     latency_budget_ms=budget, round_to=round_to, val_size=50, rescore_size=0, recal_batches=0)
    assert env.base_latency_ms == pytest.approx(base)
    env.reset()
    done, info = False, {}
    while not done:
        _, _, done, info = env.step(np.array([1.0]))  # keep all it can: the wall must cut to the budget
    assert info["predicted_latency_ms"] <= budget < base


def test_unreachable_budget_is_priced_by_the_device_table(built):
    tmp, out, _ = built
    cfg = _config(tmp, "tight.yaml", tasks=[{"dataset": "digits", "latency_ms": [1e-6]}],
                  search={"latency_table": str(out)})
    res = runner.invoke(app, ["prune", cfg])
    assert res.exit_code == 2, res.output
    assert "tasks.0.latency_ms" in res.output and "latency table predicts" in res.output
    assert not (tmp / "run").exists()


@pytest.mark.parametrize(("over", "needles"), [
    ({"width": 0.5}, ["another layer geometry"]),
    ({"search": {"round_to": 4}}, ["round_to=8 (this run: 4", "search.round_to: 8"]),
    ({"tasks": [{"dataset": "digits", "classes": [0, 1, 2], "latency_ms": [1.0]}]}, ["another layer geometry"]),
    ({"model": "vgg11"}, ["model ResNet", "(this run: VGG"]),
    ({"width": 0.5, "search": {"round_to": 4}}, ["round_to=8 (this run: 4)", "another layer geometry"]),
])
def test_a_table_for_another_model_is_refused(built, tmp_path, over, needles):
    _, out, _ = built
    over.setdefault("search", {})["latency_table"] = str(out)
    res = runner.invoke(app, ["prune", _config(tmp_path, **over)])
    assert res.exit_code == 2, res.output
    assert "search.latency_table" in res.output and "does not price" in res.output, res.output
    assert "autostruct prune build-lut" in res.output
    for needle in needles:
        assert needle in res.output, (needle, res.output)
    assert not (tmp_path / "run").exists()


def test_round_to_auto_takes_the_device_tables_rounding(built, tmp_path, monkeypatch):
    """``auto`` means the multiple that pays on the device the table was measured on, not on this host."""
    import autostruct.mtacp.preflight as preflight  # the preflight's own reference to resolve_round_to

    _, out, _ = built
    monkeypatch.setattr(preflight, "resolve_round_to", lambda value, threads=1: 4 if value == "auto" else value)
    with_table = load_yaml(PruneConfig, _config(tmp_path, search={"round_to": "auto", "latency_table": str(out)}))
    host_only = load_yaml(PruneConfig, _config(tmp_path, "host.yaml", search={"round_to": "auto"}))
    assert check_prune_inputs(with_table) == ROUND_TO
    assert check_prune_inputs(host_only) == 4


def test_data_of_different_shapes_need_dataset(tmp_path):
    cfg = _config(tmp_path, tasks=[{"dataset": "digits", "latency_ms": [1.0]},
                                   {"dataset": "digits", "classes": [0, 1, 2], "latency_ms": [1.0]}])
    out = tmp_path / "t.json"
    res = runner.invoke(app, ["prune", "build-lut", cfg, "--out", str(out)])
    assert res.exit_code == 2, res.output
    assert "--dataset" in res.output and "digits-c0.1.2" in res.output
    assert not out.exists()
    res = runner.invoke(app, ["prune", "build-lut", cfg, "--out", str(out), "--dataset", "no-such-label"])
    assert res.exit_code == 2 and "digits, digits-c0.1.2" in res.output, res.output
    assert not out.exists()


def test_dataset_label_picks_the_task_data(tmp_path, monkeypatch):
    """``--dataset digits-c0.1.2`` prices the 3-class model (measuring is stubbed: the build is tested above)."""
    import autostruct.mtacp.latency_lut as lt  # the builder's own reference to host_table

    seen = []

    def fake_host_table(model, graph, x, round_to, **kw):
        seen.append((model.fc.out_features, round_to, kw["threads"], kw["use_cache"]))
        return LatencyTable(backend="onnxruntime", entries={"__call__": 0.01}, meta={"kind": TABLE_KIND}), None

    monkeypatch.setattr(lt, "host_table", fake_host_table)
    cfg = _config(tmp_path, tasks=[{"dataset": "digits", "ratios": [0.9]},
                                   {"dataset": "digits", "classes": [0, 1, 2], "latency_ms": [1.0]}])
    res = build_prune_lut(cfg, tmp_path / "t.json", threads=2)
    assert seen == [(3, ROUND_TO, 2, False)] and res.datasets == ["digits-c0.1.2"]
    res = build_prune_lut(cfg, tmp_path / "t.json", dataset="digits")  # no latency task there: still priced
    assert seen[-1][0] == 10 and res.datasets == ["digits"] and load_table(res.path).device == res.table.device


@pytest.mark.parametrize(("args", "needle"), [
    (["{missing}", "--out", "{out}"], "does not exist"),
    (["{cfg}", "--out", "{tmp}/t.txt"], ".json file"),
    (["{cfg}", "--out", "{tmp}"], ".json file"),
    (["{cfg}", "--out", "{out}", "--threads", "0"], "--threads"),
    (["{cfg}", "--out", "{out}", "--device-name", " "], "--device-name"),
    (["{cfg}", "--out", "{out}", "--dataset", "fashion-mnist"], "not among the config's task data"),
    (["{bad}", "--out", "{out}"], "resnet21"),
    (["{cfg}"], "--out"),
])
def test_bad_arguments_exit_2_and_write_nothing(tmp_path, args, needle):
    paths = {"cfg": _config(tmp_path), "bad": _config(tmp_path, "bad.yaml", model="resnet21"),
             "missing": str(tmp_path / "nope.yaml"), "out": str(tmp_path / "t.json"), "tmp": str(tmp_path)}
    res = runner.invoke(app, ["prune", "build-lut", *(a.format(**paths) for a in args)])
    assert res.exit_code == 2, res.output
    assert needle in res.output, res.output
    assert "Traceback" not in res.output
    assert not list(tmp_path.glob("*.json")) and not list(tmp_path.glob("*.txt"))


def test_prune_without_subcommand_still_runs_and_help_lists_build_lut():
    assert "Pass a config file" in runner.invoke(app, ["prune"]).output
    res = runner.invoke(app, ["prune", "--help"])
    assert res.exit_code == 0 and "build-lut" in res.output and "run" in res.output
    res = runner.invoke(app, ["prune", "--policy", "/nonexistent/policy.pt", "--dataset", "digits"])
    assert res.exit_code == 2 and "--ratio" in res.output
