"""NAS on a user's own space and evaluator: the space, the env, the errors, and the worked example end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from nas_table import SPACE, TABLE, best, evaluate

import autostruct
from autostruct.errors import AutostructError
from autostruct.nas.custom import CustomNASEnv, CustomSpace, load_evaluator, load_space
from autostruct.rl.env import CategoricalSpec, Env

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "configs" / "custom-nas-table.yaml"
HERE = str(Path(__file__).resolve().parent)


def test_space_conditions_encode_decode():
    assert SPACE.choice_counts == (5, 5, 5, 2, 5)
    assert SPACE.num_architectures() == 750 == len(TABLE["easy"])
    assert SPACE.is_active(4, [0, 0, 0, 1]) and not SPACE.is_active(4, [0, 0, 0, 0])
    assert SPACE.action_mask([0, 0, 0, 0]).tolist() == [True, False, False, False, False]
    arch = {"op1": "skip", "op2": "conv3x3", "op3": "none", "depth": 2, "op4": "avgpool"}
    assert SPACE.decode(SPACE.encode(arch)) == arch
    assert SPACE.decode([1, 1, 1, 0, 3]) == {"op1": "skip", "op2": "skip", "op3": "skip", "depth": 1}
    assert SPACE.canonical([1, 1, 1, 0, 3]) == [1, 1, 1, 0, 0]
    assert CustomSpace.from_dict(SPACE.to_dict()) == SPACE
    rng = np.random.default_rng(0)
    assert all(SPACE.canonical(s) == s for s in (SPACE.sample(rng) for _ in range(20)))


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"decisions": []}, "no decisions"),
        ({"decisions": [{"name": "a", "choices": []}]}, "space.decisions.0 ('a').choices"),
        ({"decisions": [{"name": "a", "choices": [1]}, {"name": "a", "choices": [2]}]}, "duplicate decision name"),
        ({"decisions": [{"name": "a", "choices": [1, 2], "when": {"b": 1}}, {"name": "b", "choices": [1]}]},
         "later decision"),
        ({"decisions": [{"name": "a", "choices": [1, 2]}, {"name": "b", "choices": [1], "when": {"a": 3}}]},
         "space.decisions.1 ('b').when.a: 3 is not one of its choices"),
        ({"decisions": [{"name": "a", "choice": [1]}]}, "unknown key(s) ['choice']"),
        ({"decision": []}, "'decisions'"),
    ],
)
def test_bad_space_names_the_field(spec, needle):
    with pytest.raises(AutostructError, match=None) as err:
        load_space(spec)
    assert needle in str(err.value)


def test_encode_rejects_a_wrong_choice():
    with pytest.raises(AutostructError, match=r"arch.op1: 'conv7x7' is not one of its choices"):
        SPACE.encode({"op1": "conv7x7", "op2": "skip", "op3": "skip", "depth": 1})
    with pytest.raises(AutostructError, match="unknown decision"):
        SPACE.encode({"op9": "skip"})


def test_env_follows_the_protocol_and_reports_the_arch():
    env = CustomNASEnv(SPACE, evaluate, {"flops": 1.5e6}, dataset="hard", task_id=1, dataset_index=1, num_datasets=2)
    assert isinstance(env, Env) and isinstance(env.action_spec, CategoricalSpec)
    obs = env.reset()
    assert obs.shape == (env.observation_size,) and obs[1] == 1.0
    for a in (4, 4, 4, 0):
        obs, reward, done, info = env.step(a)
        assert not done and reward == 0.0
    assert env.action_mask().sum() == 1  # op4 inactive at depth 1
    _, reward, done, info = env.step(0)
    assert done and info["forced"]
    assert info["arch"] == {"op1": "conv3x3", "op2": "conv3x3", "op3": "conv3x3", "depth": 1}
    assert info["flops"] == 3.1e6 and not info["feasible"] and not info["meets_budgets"]
    assert reward == pytest.approx(info["accuracy"] * (3.1e6 / 1.5e6) ** -0.07)
    json.dumps(info)  # the final info goes to the episode log
    env.reset()
    with pytest.raises(ValueError, match="masked"):
        env.step(7)


def test_evaluator_errors_are_clear():
    env = CustomNASEnv(SPACE, lambda arch, dataset: {"flops": 1.0}, {"flops": 1e6}, name="t0")
    with pytest.raises(AutostructError, match="Task t0 .*no 'accuracy'"):
        env.evaluate([0, 0, 0, 0, 0])
    env = CustomNASEnv(SPACE, lambda arch: {"accuracy": 0.5}, {"flops": 1e6}, name="t0")
    with pytest.raises(AutostructError, match=r"budget\(s\) on \['flops'\]"):
        env.evaluate([0, 0, 0, 0, 0])
    with pytest.raises(AutostructError, match="evaluator: cannot import module 'no_such_module'"):
        load_evaluator("no_such_module:evaluate")
    with pytest.raises(AutostructError, match="evaluator: module 'nas_table' has no 'evaluat'"):
        load_evaluator("nas_table:evaluat")
    with pytest.raises(AutostructError, match="evaluator: expected 'module:name'"):
        load_evaluator("nas_table.evaluate")


def _config(tmp_path: Path, **changes) -> dict:
    cfg = yaml.safe_load(EXAMPLE.read_text())
    cfg.update({"output_dir": str(tmp_path / "run"), "import_paths": [HERE], **changes})
    return cfg


def test_worked_example_through_the_api(tmp_path):
    cfg = _config(tmp_path)
    result = autostruct.search(cfg, progress=False)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["format"] == "autostruct.nas-custom-results/1" and results["evaluator"] == "nas_table:evaluate"
    assert results["totals"]["episodes"] == 150
    for task, rec in zip(cfg["tasks"], result.tasks, strict=True):
        assert rec["episodes"] == 50 and rec["meets_budgets"]
        assert rec["flops"] <= task["budgets"]["flops"]
        assert rec["accuracy"] == evaluate(rec["arch"], task["dataset"])["accuracy"]
        assert rec["accuracy"] >= best(task["dataset"], task["budgets"]["flops"]) - 0.05
        assert len(results["evaluated"][rec["task"]]["reward"]) == 50
        assert json.loads((tmp_path / "run" / "tasks" / rec["task"] / "arch.json").read_text()) == rec["arch"]
    assert "op1" in result.report_path.read_text()
    # resume with more episodes continues the same run
    cfg["search"] = {**cfg["search"], "episodes": 180}
    more = autostruct.search(cfg, resume=True, progress=False)
    assert more.results["totals"]["episodes"] == 180


def test_search_custom_with_python_objects(tmp_path):
    tasks = [{"dataset": "easy", "budgets": {"params": 3e4}}, {"dataset": "hard"}]
    result = autostruct.search_custom(SPACE, evaluate, tasks, output_dir=str(tmp_path / "py"), search={"episodes": 40},
                                      rl={"actors": 1}, backend={"name": "inline"}, progress=False)
    assert [t["episodes"] for t in result.tasks] == [20, 20]
    assert result.tasks[0]["params"] <= 3e4
    assert result.results["space"]["name"] == "cell"


def test_bad_evaluator_fails_before_writing(tmp_path):
    cfg = _config(tmp_path, evaluator="nas_table:evaluate_without_accuracy")
    with pytest.raises(AutostructError, match="no 'accuracy'"):
        autostruct.search(cfg, progress=False)
    assert not (tmp_path / "run").exists()


def test_cli_runs_the_example_and_exits_2_on_errors(tmp_path):
    from typer.testing import CliRunner

    from autostruct.cli import app

    runner = CliRunner()
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(_config(tmp_path, search={"episodes": 30})))
    res = runner.invoke(app, ["nas", str(good)])
    assert res.exit_code == 0, res.output
    assert "t1-hard-flops1.5e+06" in res.output and "accuracy" in res.output
    assert (tmp_path / "run" / "report.html").is_file()
    for changes, needle in [
        ({"evaluator": "no_such_module:evaluate"}, "cannot import module 'no_such_module'"),
        ({"evaluator": "nas_table:evaluate_without_accuracy"}, "no 'accuracy'"),
        ({"space": {"decisions": [{"name": "op1", "choices": []}]}}, "space.decisions.0 ('op1').choices"),
        ({"tasks": [{"dataset": "easy", "budgets": {"flop": 1e6}}]}, "Did you mean 'flops'"),
    ]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(yaml.safe_dump(_config(tmp_path, output_dir=str(tmp_path / "bad"), **changes)))
        res = runner.invoke(app, ["nas", str(bad)])
        assert res.exit_code == 2, (changes, res.output)
        assert needle in res.output, res.output
        assert not (tmp_path / "bad").exists()
