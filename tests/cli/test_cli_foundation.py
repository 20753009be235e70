"""The foundation CLI through the real entry point: exit codes and messages for each bad input."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from autostruct.cli import app
from autostruct.export import save_model
from autostruct.models import create_model

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_help_has_examples():
    for cmd in ("info", "train", "measure", "export"):
        res = run(cmd, "--help")
        assert res.exit_code == 0, res.output
        assert "Example: autostruct " + cmd in res.output


def test_info_lists_datasets_and_models():
    res = run("info", "--json")
    assert res.exit_code == 0, res.output
    assert "resnet20" in res.output and "digits" in res.output and "torch" in res.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["train", "--model", "resnet21", "--dataset", "digits"], "Unknown model 'resnet21'"),
        (["train", "--model", "resnet20", "--dataset", "fashion-mnst"], "Unknown dataset 'fashion-mnst'"),
        (["train", "--dataset", "digits", "--classes", "3,12"], "12"),
        (["train", "--dataset", "digits", "--classes", "a,b"], "comma-separated"),
        (["train", "--dataset", "digits", "--epochs", "0"], "epochs"),
        (["train", "--dataset", "mnist", "--data-root", "/nonexistent/dir"], "mnist"),
        (["train", "--dataset", "digits", "--device", "cuda:7"], "cuda"),
        (["export", "/nonexistent/model.pt"], "does not exist"),
        (["measure", "not-a-model"], "neither an existing file nor a zoo model"),
    ],
)
def test_bad_input_exits_2_with_message(args, needle, tmp_path):
    res = run(*args)
    assert res.exit_code == 2, res.output
    assert needle in res.output
    assert "Traceback" not in res.output


def test_unreadable_checkpoint_exits_2_and_writes_nothing(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"this is not a checkpoint")
    out = tmp_path / "out"
    res = run("export", str(bad), "--out", str(out))
    assert res.exit_code == 2
    assert "Traceback" not in res.output
    assert not out.exists() or not any(out.iterdir())


def test_export_and_measure_a_checkpoint(tmp_path):
    model = create_model("resnet20", num_classes=3, in_channels=1, image_size=8, width=0.25)
    ckpt = save_model(model, tmp_path / "m" / "model.pt")
    res = run("export", str(ckpt), "--out", str(tmp_path / "exp"))
    assert res.exit_code == 0, res.output
    assert (tmp_path / "exp" / "model.onnx").is_file() and (tmp_path / "exp" / "model.pt").is_file()
    res = run("measure", str(tmp_path / "exp"), "--runs", "3", "--json")
    assert res.exit_code == 0, res.output
    assert '"flops"' in res.output and '"onnxruntime"' in res.output


def test_real_entry_point_exit_code():
    # The installed console script and `python -m`-style invocation go through main(), not CliRunner.
    proc = subprocess.run(
        [sys.executable, "-c", "from autostruct.cli import main; main()", "train", "--model", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Unknown model 'nope'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_train_digits_end_to_end(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOSTRUCT_CACHE", str(tmp_path))
    torch.manual_seed(0)
    res = run("train", "--model", "resnet20", "--dataset", "digits", "--epochs", "2", "--width", "0.25", "--json")
    assert res.exit_code == 0, res.output
    assert '"test_accuracy"' in res.output and "models" in res.output


def test_measure_against_a_base_prints_speedup(tmp_path):
    from autostruct.prune import apply_keep_ratios

    base = create_model("resnet20", num_classes=3, in_channels=1, image_size=8, width=0.5)
    small = apply_keep_ratios(base, torch.zeros(1, 1, 8, 8), 0.5, round_to=8)
    save_model(base, tmp_path / "base" / "model.pt")
    save_model(small, tmp_path / "small" / "model.pt")
    res = run("measure", str(tmp_path / "small" / "model.pt"), "--base", str(tmp_path / "base" / "model.pt"),
              "--runs", "3")
    assert res.exit_code == 0, res.output
    assert "speed-up" in res.output and "vs base" in res.output
    res = run("measure", str(tmp_path / "small" / "model.pt"), "--base", str(tmp_path / "base" / "model.pt"),
              "--runs", "3", "--json")
    assert res.exit_code == 0, res.output
    import json

    b = json.loads(res.output)["base"]
    assert b["flops"] > json.loads(res.output)["flops"]
    for key in ("latency_ms", "latency_p90_ms", "base_latency_ms", "base_latency_p90_ms", "speedup"):
        assert b[key] > 0, key
