"""The one search pipeline: phases in order, results.json layout, resume, a failed start, the backend handed over,
and every search kind (by name through the API) running through it."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

import autostruct.pipeline.run as pipeline_run
from autostruct import api
from autostruct.backends.inline import InlineBackend
from autostruct.config import BackendConfig, RLConfig
from autostruct.errors import AutostructError
from autostruct.pipeline import SearchRun, best_episode, run_search
from autostruct.rl import CategoricalSpec, PolicySpec
from autostruct.rl.toy_envs import ChoiceEnv
from autostruct.utils.io import write_json_atomic
from autostruct.utils.runs import RunResult


class ToySearch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    episodes: int = 20
    tasks: int = 2


class ToyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "toy"
    output_dir: str
    seed: int = 0
    search: ToySearch = Field(default_factory=ToySearch)
    rl: RLConfig = Field(default_factory=lambda: RLConfig(actors=1, batch_size=2))
    backend: BackendConfig = Field(default_factory=lambda: BackendConfig(name="inline"))


class ToyKind:
    """A search over ChoiceEnv tasks that records which hooks ran (the pipeline's order) and whether it rebuilt
    its asset or a task on this call (what a resume must skip)."""

    run_format = "autostruct.toy-run/1"
    resumable = frozenset({"output_dir", "name", "backend"})
    what_changed = "toy settings"
    algorithm = "mc"
    prefix = "toy"

    def __init__(self, fail_preflight: bool = False) -> None:
        self.calls: list[str] = []
        self.built: list[str] = []
        self.fail_preflight = fail_preflight

    def parse(self, config: Any) -> ToyConfig:
        self.calls.append("parse")
        return config if isinstance(config, ToyConfig) else ToyConfig(**config)

    def preflight(self, run: SearchRun) -> int:
        self.calls.append("preflight")
        if self.fail_preflight:
            raise AutostructError("toy preflight refuses")
        return run.cfg.search.tasks

    def prepare_assets(self, run: SearchRun) -> dict[str, Any]:
        self.calls.append("prepare_assets")
        path = run.out / "assets.json"
        if not path.is_file():
            self.built.append("assets")
            write_json_atomic(path, {"tasks": run.plan})
        return json.loads(path.read_text())

    def make_factories(self, run: SearchRun) -> list[Any]:
        self.calls.append("make_factories")
        n = run.assets["tasks"]
        return [functools.partial(ChoiceEnv, i, n) for i in range(n)]

    def policy_spec(self, run: SearchRun) -> PolicySpec:
        self.calls.append("policy_spec")
        env = run.factories[0]()
        return PolicySpec(observation_size=env.observation_size, action_spec=CategoricalSpec(env.choices), use_lstm=False)

    def describe(self, run: SearchRun) -> str:
        self.calls.append("describe")
        return f"{len(run.factories)} toy tasks"

    def policy_metadata(self, run: SearchRun) -> dict[str, Any]:
        self.calls.append("policy_metadata")
        return {"tasks": run.plan}

    def finish_task(self, run: SearchRun, task_id: int) -> dict[str, Any]:
        self.calls.append(f"finish_task {task_id}")
        done = run.out / "tasks" / f"{task_id}.json"
        if done.is_file() and json.loads(done.read_text())["search_episodes"] == len(run.episodes):
            return json.loads(done.read_text())
        self.built.append(f"task {task_id}")
        best, index, count = best_episode(run.episodes, task_id)
        rec = {"task": f"t{task_id}", "reward": best.reward, "episodes_to_best": index, "episodes": count,
               "search_episodes": len(run.episodes)}
        write_json_atomic(done, rec)
        return rec

    def results(self, run: SearchRun, records: list[dict[str, Any]]) -> tuple[str, dict[str, Any], dict[str, Any]]:
        self.calls.append("results")
        return "autostruct.toy-results/1", {"best_reward": max(r["reward"] for r in records)}, {"toy": True}


class CountingBackend(InlineBackend):
    """The inline backend, counting its starts (to see that the pipeline used the object it was given)."""

    starts = 0

    def start(self, *args: Any, **kwargs: Any) -> None:
        CountingBackend.starts += 1
        super().start(*args, **kwargs)


@pytest.fixture(autouse=True)
def _no_html(monkeypatch):
    # The report dispatches on the results format; the toy format has no renderer of its own.
    def render(out: Path) -> Path:
        path = Path(out) / "report.html"
        path.write_text("toy report")
        return path

    monkeypatch.setattr(pipeline_run, "render_report", render)


def test_phases_run_in_order_and_write_one_results_layout(tmp_path):
    kind = ToyKind()
    result = run_search({"output_dir": str(tmp_path / "run")}, kind, progress=False)
    assert kind.calls == ["parse", "preflight", "prepare_assets", "make_factories", "describe", "policy_spec",
                          "policy_metadata", "finish_task 0", "finish_task 1", "results"]
    out = tmp_path / "run"
    results = json.loads((out / "results.json").read_text())
    assert list(results) == ["format", "name", "tasks", "totals", "toy", "policy_path", "config", "versions"]
    assert results["format"] == "autostruct.toy-results/1" and results["name"] == "toy"
    totals = results["totals"]
    assert totals["tasks"] == 2 and totals["episodes"] == 20
    assert totals["best_reward"] == max(r["reward"] for r in results["tasks"])
    for key in ("search_seconds", "learner_updates", "env_steps", "actor_restarts", "wall_seconds_this_session"):
        assert key in totals
    assert [r["episodes"] for r in results["tasks"]] == [10, 10]
    assert results["config"]["output_dir"] == str(out)
    assert json.loads((out / "run.json").read_text())["format"] == "autostruct.toy-run/1"
    assert isinstance(result, RunResult) and result.results == results and result.policy_path == out / "policy.pt"
    assert result.report_path.read_text() == "toy report"


def test_resume_skips_what_exists_and_extends_the_search(tmp_path):
    cfg = {"output_dir": str(tmp_path / "run")}
    first = ToyKind()
    run_search(cfg, first, progress=False)
    assert first.built == ["assets", "task 0", "task 1"]

    again = ToyKind()
    same = run_search(cfg, again, resume=True, progress=False)
    assert again.built == []  # assets, episodes and finished tasks are all reused
    assert same.results["totals"]["episodes"] == 20

    more = ToyKind()
    longer = run_search({**cfg, "search": {"episodes": 30}}, more, resume=True, progress=False)
    assert more.built == ["task 0", "task 1"]  # the search went on: tasks are finished again, assets kept
    assert longer.results["totals"]["episodes"] == 30
    assert [r["episodes"] for r in longer.tasks] == [15, 15]

    with pytest.raises(AutostructError, match="already holds a run"):
        run_search(cfg, ToyKind(), progress=False)
    with pytest.raises(AutostructError, match="different toy settings"):
        run_search({**cfg, "seed": 1}, ToyKind(), resume=True, progress=False)


def test_a_failed_preflight_writes_nothing(tmp_path):
    kind = ToyKind(fail_preflight=True)
    with pytest.raises(AutostructError, match="toy preflight refuses"):
        run_search({"output_dir": str(tmp_path / "run")}, kind, progress=False)
    assert not (tmp_path / "run").exists()
    assert kind.calls == ["parse", "preflight"]


def test_the_backend_object_given_is_the_one_the_engine_runs(tmp_path):
    CountingBackend.starts = 0
    run_search({"output_dir": str(tmp_path / "run")}, ToyKind(), backend=CountingBackend(), progress=False)
    assert CountingBackend.starts == 1
    recorded = json.loads((tmp_path / "run" / "search" / "config.json").read_text())["backend"]
    assert recorded == {"name": "inline", "address": None, "max_restarts": 3}


ENGINE_ONLY = """
import functools, sys
from autostruct.rl import run_impala, CategoricalSpec, PolicySpec
from autostruct.rl.actor import Actor
from autostruct.rl.toy_envs import ChoiceEnv

class OneActor:  # a backend written against the engine's protocol alone
    name = "one-actor"
    def start(self, specs, weights, version):
        self.actor = Actor(specs[0], 0)
        self.publish(weights, version)
    def publish(self, weights, version):
        self.weights, self.version = {k: v.clone() for k, v in weights.items()}, version
    def poll(self, timeout):
        if self.actor.version != self.version:
            self.actor.set_weights(self.weights, self.version)
        return [self.actor.unroll()]
    def restart(self, actor_id): raise AssertionError("no failures here")
    def close(self): pass

spec = PolicySpec(observation_size=5, action_spec=CategoricalSpec((3, 4, 3)), use_lstm=False)
r = run_impala([functools.partial(ChoiceEnv, 0, 2), functools.partial(ChoiceEnv, 1, 2)], spec, total_episodes=6,
               run_dir=sys.argv[1], backend=OneActor(), algorithm="mc", progress=False, tensorboard=False)
print(len(r.episodes), sorted(m for m in sys.modules if m.startswith("autostruct.backends")))
"""


def test_the_engine_runs_a_backend_object_without_importing_the_backends(tmp_path):
    import os

    import autostruct

    env = {**os.environ, "PYTHONPATH": str(Path(autostruct.__file__).parents[1])}  # the code under test
    out = subprocess.run([sys.executable, "-c", ENGINE_ONLY, str(tmp_path / "run")], capture_output=True, text=True,
                         check=True, env=env).stdout
    assert out.strip() == "6 []"


# ------------------------------------------------------------------ the real kinds, by name through the API

SPACE = {"decisions": [{"name": "op", "choices": ["a", "b", "c"]}, {"name": "depth", "choices": [1, 2]}]}


def evaluate(arch: dict[str, Any], dataset: str) -> dict[str, float]:
    return {"accuracy": {"a": 0.5, "b": 0.7, "c": 0.6}[arch["op"]] + 0.1 * arch["depth"],
            "flops": 1e6 * arch["depth"]}


def test_api_runs_a_kind_by_name(tmp_path):
    cfg = {"space": SPACE, "evaluator": "unused:by_object", "tasks": [{"dataset": "x", "budgets": {"flops": 1.5e6}}],
           "output_dir": str(tmp_path / "run"), "search": {"episodes": 12}, "rl": {"actors": 1},
           "backend": {"name": "inline"}}
    result = api.run_search(cfg, "nas-custom", evaluator=evaluate, progress=False)
    assert result.results["format"] == "autostruct.nas-custom-results/1"
    (task,) = result.tasks
    assert task["episodes"] == 12 and task["flops"] <= 1.5e6 and task["arch"]["depth"] == 1
    assert task["accuracy"] == evaluate(task["arch"], "x")["accuracy"]


def test_api_names_the_kinds_it_knows():
    assert set(api.KINDS) == {"prune", "nas", "nas-custom"}
    with pytest.raises(AutostructError, match="prune"):
        api.run_search({}, "prunning")


def test_the_engine_still_takes_a_backend_name(tmp_path):
    from autostruct.rl import run_impala

    factories = [functools.partial(ChoiceEnv, i, 2) for i in range(2)]
    spec = PolicySpec(observation_size=5, action_spec=CategoricalSpec((3, 4, 3)), use_lstm=False)
    result = run_impala(factories, spec, total_episodes=4, run_dir=tmp_path / "run", rl=RLConfig(actors=1),
                        backend="inline", algorithm="mc", progress=False, tensorboard=False)
    assert len(result.episodes) == 4
    assert json.loads((tmp_path / "run" / "config.json").read_text())["backend"]["name"] == "inline"


@pytest.mark.parametrize("call,kind,options", [
    (lambda: api.prune({"x": 1}, progress=False), "PruneSearch", {}),
    (lambda: api.search({"x": 1}, progress=False, from_scratch=True), "NASSearch", {"from_scratch": True}),
    (lambda: api.run_search({"x": 1}, "nas", progress=False), "NASSearch", {"from_scratch": None}),
])
def test_api_entry_points_go_through_the_pipeline(monkeypatch, call, kind, options):
    seen = []

    def spy(config, k, **kwargs):
        seen.append((config, k))
        return "result"

    import autostruct.mtacp.run
    import autostruct.nas.search

    for module in (autostruct.mtacp.run, autostruct.nas.search, api):
        monkeypatch.setattr(module, "run_search" if module is not api else "_run_search", spy)
    assert call() == "result"
    ((config, k),) = seen
    assert config == {"x": 1} and type(k).__name__ == kind
    assert {name: getattr(k, name) for name in options} == options


def test_cli_nas_goes_through_the_api(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from autostruct.cli import app

    calls = []

    def fake_search(config, **kwargs):
        calls.append((Path(config), kwargs))
        raise AutostructError("stop here")

    monkeypatch.setattr(api, "search", fake_search)
    cfg = tmp_path / "nas.yaml"
    cfg.write_text("tasks: []\n")
    res = CliRunner().invoke(app, ["nas", str(cfg), "--from-scratch"])
    assert res.exit_code != 0 and "stop here" in res.output
    assert calls == [(cfg, {"resume": False, "overwrite": False, "from_scratch": True})]
