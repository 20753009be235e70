"""Bring your own model: a ``package.module:function`` factory goes through a tiny MTACP run (base training and
cache, search, export) and its task model.pt reloads in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from autostruct.config import PruneConfig, parse_config
from autostruct.export import load_model
from autostruct.mtacp import run_prune, zero_shot_prune

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"


def _config(out, **over):
    cfg = {
        "name": "byo",
        "output_dir": str(out),
        "model": "custom_models:small_cnn",
        "model_kwargs": {"depth": 2, "channels": 8},
        "tasks": [{"dataset": "digits", "ratios": [0.5]}],
        "base_training": {"epochs": 2, "min_steps": 30},
        "search": {"episodes": 4, "val_size": 100, "rescore_size": 50, "top_k": 2, "recal_batches": 1, "round_to": 2},
        "rl": {"actors": 1, "unroll_length": 2, "batch_size": 2},
        "finetune": {"epochs": 0},
        "backend": {"name": "inline"},
        "latency_runs": 2,
        **over,
    }
    return parse_config(PruneConfig, cfg)


@pytest.mark.slow
def test_factory_model_prunes_exports_and_reloads_in_a_fresh_process(tmp_path):
    res = run_prune(_config(tmp_path / "run"), progress=False)
    (task,) = res.results["tasks"]
    assert task["flops"] <= task["ratio"] * task["base_flops"]
    base = json.loads(next((tmp_path / "run" / "base").glob("*.json")).read_text())
    assert "custom_models-small_cnn-digits" in Path(base["checkpoint"]).name  # cached like a zoo model

    model, _ = load_model(task["model_path"])
    assert model.autostruct_spec["name"] == "custom_models:small_cnn"
    assert model.autostruct_spec["kwargs"]["depth"] == 2
    assert res.results["skipped_groups"] == {"digits": []} and task["skipped_groups"] == []

    # Zero-shot on a dataset the run never saw builds the same architecture: model_kwargs reach it.
    zs = zero_shot_prune(res.policy_path, "digits", 0.5, classes=[0, 1, 2], output_dir=tmp_path / "zs", progress=False)
    zs_model, _ = load_model(zs["model_path"])
    assert zs_model.autostruct_spec["kwargs"]["channels"] == 8 and zs["flops"] <= 0.5 * zs["base_flops"]
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        ref = model(x)
    torch.save(x, tmp_path / "x.pt")
    code = (
        "import sys, torch\n"
        "from autostruct.export import load_model\n"
        f"m, _ = load_model({task['model_path']!r})\n"
        f"x = torch.load({str(tmp_path / 'x.pt')!r})\n"
        f"torch.save(m(x).detach(), {str(tmp_path / 'y.pt')!r})\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE)]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    torch.testing.assert_close(torch.load(tmp_path / "y.pt"), ref)

    # Without the module on the path the error says how to fix it.
    env["PYTHONPATH"] = str(SRC)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode != 0
    assert "custom_models" in proc.stderr and "PYTHONPATH" in proc.stderr


def test_registered_architecture_checkpoint_reimports_its_module(tmp_path):
    import custom_models  # noqa: F401  (registers custom-tiny, as `imports:` does)

    from autostruct.export import save_model
    from autostruct.models import create_model

    model = create_model("custom-tiny", num_classes=3, in_channels=1, image_size=8)
    assert model.autostruct_spec["import"] == "custom_models"
    path = save_model(model, tmp_path / "model.pt")
    code = f"from autostruct.export import load_model; m, _ = load_model({str(path)!r}); print(type(m).__name__)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE)]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Sequential" in proc.stdout


@pytest.mark.slow
def test_group_that_fails_the_trial_cut_is_warned_once_and_listed(tmp_path, capsys):
    res = run_prune(_config(tmp_path / "run", model="custom_models:fixed_width_head", model_kwargs={}), progress=False)
    err = " ".join(capsys.readouterr().err.split())
    assert err.count("stay at full width") == 1 and "hidden" in err
    (skipped,) = res.results["skipped_groups"]["digits"]
    assert skipped["layer"] == "hidden" and "surgery breaks the forward pass" in skipped["reason"]
    (task,) = res.results["tasks"]
    assert task["skipped_groups"] == [skipped]
    assert task["flops"] <= task["ratio"] * task["base_flops"]
