"""End to end: a tiny two-task MTNAS run on Digits (real data), its outputs, resume, bad input and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from autostruct.errors import AutostructError
from autostruct.nas.search import search


def _config(tmp_path, **over):
    cfg = {
        "name": "tiny-nas",
        "output_dir": str(tmp_path / "run"),
        "tasks": [
            {"dataset": "digits", "budgets": {"flops": 1.2e6}},
            {"dataset": "digits", "budgets": {"latency_ms": 1.0, "params": 6e5}, "device": "host"},
        ],
        "supernet": {"epochs": 2, "batch_size": 64, "min_steps": 0},
        "search": {"episodes": 16, "val_size": 200, "recal_batches": 2},
        "rl": {"actors": 2, "batch_size": 2},
        "finetune": {"epochs": 1, "train_size": 400, "min_steps": 0},
        "backend": {"name": "inline"},
        "lut": {"runs": 5, "warmup": 2, "rounds": 1, "check_archs": 4},
        "latency_runs": 5,
    }
    cfg.update(over)
    return cfg


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nas-e2e")
    return tmp, search(_config(tmp), progress=False)


def test_results_meet_budgets_and_models_run(finished):
    import onnxruntime as ort

    from autostruct.export import load_model

    _, result = finished
    assert [t["task_id"] for t in result.tasks] == [0, 1]
    for t in result.tasks:
        for field in ("dataset", "classes", "budgets", "arch", "flops", "params", "latency_ms", "accuracy",
                      "accuracy_after_finetune", "model_path", "onnx_path", "episodes_to_best"):
            assert field in t, field
        assert 1 <= t["episodes_to_best"] <= t["episodes"]
        for name, target in t["budgets"].items():
            value = t["predicted_latency_ms"] if name == "latency_ms" else t[name]
            assert value <= target, (t["task"], name)
        model, _ = load_model(t["model_path"])
        x = torch.randn(3, 1, 8, 8)
        sess = ort.InferenceSession(t["onnx_path"], providers=["CPUExecutionProvider"])
        out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
        with torch.no_grad():
            assert np.allclose(out, model(x).numpy(), atol=1e-4)
    res = json.loads((result.output_dir / "results.json").read_text())
    assert res["format"] == "autostruct.nas-results/1" and res["totals"]["episodes"] == 16
    assert "config" in res and "versions" in res
    assert sum(len(v["reward"]) for v in res["evaluated"].values()) == 16
    assert result.report_path.is_file() and "<img" in result.report_path.read_text()


def test_selection_rescores_the_top_k_on_a_disjoint_split(finished):
    _, result = finished
    res = json.loads((result.output_dir / "results.json").read_text())
    for t in res["tasks"]:
        # Digits' hold-out is clamped to half its training set: 200 reward images leave room for a re-score.
        assert t["selection"] == "rescore" and 0 < t["rescore_images"] <= 1000
        cands = t["rescore_candidates"]
        assert 1 <= len(cands) <= t["top_k"] == 5
        assert len({tuple(c["arch"]) for c in cands}) == len(cands)
        assert [c["search_reward"] for c in cands] == sorted((c["search_reward"] for c in cands), reverse=True)
        chosen = cands[t["selected_rank"] - 1]
        assert chosen["arch"] == t["arch"]["indices"]
        assert chosen["rescore_reward"] == max(c["rescore_reward"] for c in cands)
        assert (t["search_score"], t["rescore"]) == (chosen["search_score"], chosen["rescore"]) == (t["accuracy"], t["rescore"])
        assert 0 <= t["rescore"] <= 1
        ev = res["evaluated"][t["task"]]
        best = max(r for r, m in zip(ev["reward"], ev["meets_budgets"], strict=True) if m)
        assert t["naive_best"]["arch"] == cands[0]["arch"] and t["naive_best"]["search_reward"] == best
        assert 0 <= t["naive_best"]["accuracy_before_finetune"] <= 1


def test_resume_extends_the_search_and_refuses_other_settings(finished):
    tmp, first = finished
    with pytest.raises(AutostructError, match="--resume"):
        search(_config(tmp), progress=False)
    again = search(_config(tmp), resume=True, progress=False)  # finished: nothing to redo
    assert again.tasks == first.tasks
    longer = search(_config(tmp, search={"episodes": 20, "val_size": 200, "recal_batches": 2}), resume=True,
                    progress=False)
    assert longer.results["totals"]["episodes"] == 20
    assert all(t["search_episodes"] == 20 for t in longer.tasks)
    other = _config(tmp, tasks=[{"dataset": "digits", "budgets": {"flops": 1.0e6}}])
    with pytest.raises(AutostructError, match="Cannot resume"):
        search(other, resume=True, progress=False)


def test_bad_input_fails_before_writing(tmp_path):
    cfg = _config(tmp_path, tasks=[{"dataset": "digits", "budgets": {"flops": 1000}}])
    with pytest.raises(AutostructError, match="minimum achievable is 472746"):
        search(cfg, progress=False)
    with pytest.raises(AutostructError, match="unknown cost 'flop'. Did you mean 'flops'"):
        search(_config(tmp_path, tasks=[{"dataset": "digits", "budgets": {"flop": 1e6}}]), progress=False)
    with pytest.raises(AutostructError, match="does not exist"):
        search(_config(tmp_path, tasks=[{"dataset": "digits", "budgets": {"latency_ms": 1}, "device": "nope.json"}]),
               progress=False)
    assert not (tmp_path / "run").exists()


def test_cli_exit_codes(tmp_path):
    import yaml
    from typer.testing import CliRunner

    import autostruct.cli.nas  # noqa: F401  (registers `nas` until the CLI imports it)
    from autostruct.cli import app

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_config(tmp_path, tasks=[{"dataset": "digits", "budgets": {"flops": 10}}])))
    res = CliRunner().invoke(app, ["nas", str(bad)])
    assert res.exit_code == 2 and "minimum achievable" in res.output
    res = CliRunner().invoke(app, ["nas", "build-lut", "--out", str(tmp_path / "p.json"), "--image-size", "8"])
    assert res.exit_code == 2 and "--in-channels" in res.output


def test_results_json_reads_back_through_its_schema(finished):
    from autostruct.results import NASResults, load_results

    _, result = finished
    res = load_results(result.output_dir)
    assert isinstance(res, NASResults)
    assert res.model_dump(mode="json", exclude_unset=True) == json.loads((result.output_dir / "results.json").read_text())
    assert [t.task for t in res.tasks] == [t["task"] for t in result.tasks]
