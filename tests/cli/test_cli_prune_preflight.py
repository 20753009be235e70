"""`autostruct prune CONFIG` with malformed inputs: exit 2, no traceback, the field and the fix named, and no run
folder left behind (every check runs before the folder is created)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from autostruct.cli import app
from autostruct.export import save_model
from autostruct.models import create_model

runner = CliRunner()


def _config(tmp_path, **over):
    cfg = {
        "name": "preflight",
        "output_dir": str(tmp_path / "run"),
        "model": "resnet20",
        "width": 0.25,
        "tasks": [{"dataset": "digits", "ratios": [0.5]}],
        "search": {"episodes": 2},
        "backend": {"name": "inline"},
    }
    cfg.update(over)
    return cfg


def _write(tmp_path, cfg) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg))
    return str(path)


def _checkpoint(tmp_path, **kw) -> str:
    spec = {"num_classes": 10, "in_channels": 1, "image_size": 8, "width": 0.25, **kw}
    return str(save_model(create_model("resnet20", **spec), tmp_path / "ckpt" / "model.pt"))


def _garbage(tmp_path) -> str:
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"not a checkpoint at all")
    return str(path)


CASES = {
    "unknown dataset": (lambda p: _config(p, tasks=[{"dataset": "fashion-mnst", "ratios": [0.5]}]),
                        ["tasks.0.dataset", "Unknown dataset 'fashion-mnst'", "fashion-mnist"]),
    "missing dataset root": (lambda p: _config(p, tasks=[{"dataset": "mnist", "root": str(p / "nowhere"),
                                                          "ratios": [0.5]}]), ["tasks.0.dataset", "mnist"]),
    "class out of range": (lambda p: _config(p, tasks=[{"dataset": "digits", "classes": [3, 12], "ratios": [0.5]}]),
                           ["tasks.0.dataset", "12"]),
    "unknown model": (lambda p: _config(p, model="resnet21"), ["'model'", "resnet21", "resnet20"]),
    "missing checkpoint": (lambda p: _config(p, model=str(p / "nope.pt")), ["'model'", "does not exist"]),
    "corrupt checkpoint": (lambda p: _config(p, model=_garbage(p)), ["'model'", "damaged", "re-create"]),
    "checkpoint for other classes and channels": (
        lambda p: _config(p, model=_checkpoint(p, num_classes=3, in_channels=3)),
        ["'model'", "3 classes (the dataset has 10)", "3 input channels (the dataset has 1)", "autostruct train"],
    ),
    "checkpoint for another input size": (lambda p: _config(p, model=_checkpoint(p, image_size=16)),
                                          ["'model'", "16 px inputs (the dataset has 8 px)"]),
    "ratio out of range": (lambda p: _config(p, tasks=[{"dataset": "digits", "ratios": [1.5]}]),
                           ["tasks.0.ratios", "(0, 1]"]),
    "duplicate task": (lambda p: _config(p, tasks=[{"dataset": "digits", "ratios": [0.5]},
                                                   {"dataset": "digits", "ratios": [0.5]}]),
                       ["duplicate task", "list each once"]),
    "unknown key": (lambda p: {**_config(p), "serach": {"episodes": 3}}, ["serach", "Did you mean 'search'"]),
    "empty tasks": (lambda p: _config(p, tasks=[]), ["'tasks'", "empty"]),
    "wrong YAML type": (lambda p: _config(p, tasks="digits"), ["'tasks'", "list"]),
    "not a mapping": (lambda p: "- model: resnet20\n", ["mapping"]),
    "invalid YAML": (lambda p: "tasks: [unclosed\n", ["not valid YAML"]),
    "unreachable budget": (lambda p: _config(p, tasks=[{"dataset": "digits", "ratios": [0.02]}],
                                             search={"episodes": 2, "lbound": 0.5}),
                           ["tasks.0.ratios", "cannot be met", "smaller lbound"]),
    "multiple too coarse for the budget": (lambda p: _config(p, search={"episodes": 2, "round_to": 8}),
                                           ["tasks.0.ratios", "cannot be met with round_to=8",
                                            "channel multiple is the limit", "round_to <= 4"]),
    "unknown device": (lambda p: _config(p, device="gpu7"), ["'device'", "Unknown device"]),
    "zero width": (lambda p: _config(p, width=0), ["'width'", "greater than 0"]),
    "unknown importance": (lambda p: _config(p, search={"episodes": 2, "importance": "l3"}),
                           ["'search.importance'", "'l1'", "'taylor'", "got 'l3'"]),
    "lbound above 1": (lambda p: _config(p, search={"episodes": 2, "lbound": 1.5}), ["'search.lbound'", "1"]),
    "unknown budget": (lambda p: _config(p, search={"episodes": 2, "budget": "exactly"}),
                       ["'search.budget'", "'exact'", "'amc'"]),
    "unknown reward": (lambda p: _config(p, search={"episodes": 2, "reward": "accuracy"}),
                       ["'search.reward'", "'acc'", "got 'accuracy'"]),
    "round_to zero": (lambda p: _config(p, search={"episodes": 2, "round_to": 0}),
                      ["'search.round_to'", "positive integer", "'auto'"]),
    "zero actors": (lambda p: _config(p, rl={"actors": 0}), ["'rl.actors'", "greater than or equal to 1"]),
    "unknown backend": (lambda p: _config(p, backend={"name": "slurm"}), ["'backend.name'", "'inline'", "'local'"]),
    "duplicate class": (lambda p: _config(p, tasks=[{"dataset": "digits", "classes": [1, 1], "ratios": [0.5]}]),
                        ["tasks.0.dataset", "appears twice"]),
    "missing imports file": (lambda p: _config(p, imports=[str(p / "nope" / "models.py")]),
                             ["'imports.0'", "not an existing .py file"]),
    "model_kwargs set a dataset argument": (lambda p: _config(p, model_kwargs={"in_channels": 3}),
                                            ["'model_kwargs'", "in_channels", "come from each task's dataset",
                                             "Remove 'in_channels'"]),
    "model_kwargs with a checkpoint": (lambda p: _config(p, model=_checkpoint(p), model_kwargs={"depth": 3}),
                                       ["'model_kwargs'", "Remove model_kwargs"]),
    "unreachable latency budget": (lambda p: _config(p, tasks=[{"dataset": "digits", "ratios": [0.5],
                                                                "latency_ms": [0.0001]}]),
                                   ["tasks.0.latency_ms", "cannot be met", "latency table predicts",
                                    "smaller search.lbound"]),
    "latency budget not positive": (lambda p: _config(p, tasks=[{"dataset": "digits", "latency_ms": [0.0]}]),
                                    ["tasks.0.latency_ms", "> 0 ms"]),
    "unreachable latency ratio": (lambda p: _config(p, tasks=[{"dataset": "digits", "latency_ratios": [0.01]}]),
                                  ["tasks.0.latency_ratios", "cannot be met", "x the base model", "Use a ratio >="]),
    "latency ratio out of range": (lambda p: _config(p, tasks=[{"dataset": "digits", "latency_ratios": [1.2]}]),
                                   ["tasks.0.latency_ratios", "(0, 1]"]),
    "duplicate latency ratio": (lambda p: _config(p, tasks=[{"dataset": "digits", "latency_ratios": [0.8, 0.8]}]),
                                ["latency_ratios must not repeat"]),
    "task without a budget": (lambda p: _config(p, tasks=[{"dataset": "digits"}]),
                              ["no budget", "latency_ms", "latency_ratios"]),
    "missing latency table": (lambda p: _config(p, tasks=[{"dataset": "digits", "latency_ms": [0.5]}],
                                                search={"episodes": 2, "latency_table": str(p / "nope.json")}),
                              ["search.latency_table", "does not exist"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_prune_input_exits_2_and_writes_nothing(tmp_path, case):
    make, needles = CASES[case]
    res = runner.invoke(app, ["prune", _write(tmp_path, make(tmp_path))])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    for needle in needles:
        assert needle in res.output, (needle, res.output)
    assert not (tmp_path / "run").exists(), "a refused run must leave no folder"


def test_real_entry_point_leaves_nothing(tmp_path):
    cfg = _write(tmp_path, _config(tmp_path, tasks=[{"dataset": "no-such-data", "ratios": [0.5]}]))
    proc = subprocess.run(
        [sys.executable, "-c", "from autostruct.cli import main; main()", "prune", cfg],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "tasks.0.dataset" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()
