"""Settings that both searches share: one default for the scoring subset, the hold-out and the scoring subset as
two named settings (``val_size`` kept as the scoring subset's name), and old run folders still resuming."""

from __future__ import annotations

import hashlib
import inspect
import json

import pytest

from autostruct.config import PRUNE_HOLDOUT, SCORE_SIZE, PruneConfig, PruneSearchConfig, parse_config
from autostruct.errors import AutostructError
from autostruct.mtacp.run import make_factories as prune_factories
from autostruct.mtacp.tasks import expand_tasks
from autostruct.nas.config import NASConfig, NASSearchConfig
from autostruct.nas.env import NASEnvFactory
from autostruct.nas.search import _data_key, holdout_size, task_name
from autostruct.nas.search import make_factories as nas_factories
from autostruct.prune.env import PruningEnv
from autostruct.utils.runs import config_fingerprint


def test_the_scoring_subset_has_one_default_everywhere():
    assert PruneSearchConfig().val_size == NASSearchConfig().val_size == SCORE_SIZE == 2000
    assert inspect.signature(PruningEnv).parameters["val_size"].default == SCORE_SIZE
    assert NASEnvFactory(space="mobilenetv2", dataset="digits", budgets={}, supernet_path="x").val_size == SCORE_SIZE


@pytest.mark.parametrize("schema", [PruneSearchConfig, NASSearchConfig])
def test_score_size_is_val_size(schema):
    assert schema(score_size=300).val_size == schema(val_size=300).score_size == 300
    assert "score_size" not in schema(score_size=300).model_dump()  # stored under its old name: configs compare equal
    with pytest.raises(ValueError, match="score_size"):
        schema(val_size=300, score_size=400)


def test_holdout_defaults_are_what_runs_used():
    assert PruneSearchConfig().holdout == PRUNE_HOLDOUT == 5000
    assert PruneSearchConfig(holdout_size=3000).holdout == 3000
    assert NASSearchConfig(val_size=500, rescore_size=300).holdout == 800
    assert NASSearchConfig(val_size=500, holdout_size=4000).holdout == 4000


def _prune(**search) -> PruneConfig:
    return parse_config(PruneConfig, {"tasks": [{"dataset": "digits", "ratios": [0.5]}], "search": search})


def test_pruning_envs_get_the_holdout_and_the_scoring_subset():
    for search, holdout in (({"score_size": 300}, 5000), ({"score_size": 300, "holdout_size": 1200}, 1200)):
        cfg = _prune(**search)
        keys, tasks = expand_tasks(cfg)
        (factory,) = prune_factories(cfg, tasks, {keys[0]: {"checkpoint": "base.pt"}})
        assert factory.val_split == holdout and factory.env_kwargs()["val_size"] == 300
        assert factory.search.score_size == 300 and factory.env == ()  # typed settings, no pairs


def test_nas_envs_get_the_holdout_and_the_scoring_subset():
    raw = {"tasks": [{"dataset": "digits", "budgets": {"flops": 1e6}}], "search": {"score_size": 300, "rescore_size": 100}}
    for extra, holdout in (({}, 400), ({"holdout_size": 900}, 900)):
        cfg = parse_config(NASConfig, {**raw, "search": {**raw["search"], **extra}})
        task = cfg.tasks[0]
        (factory,) = nas_factories(cfg, [task], [task_name(0, task)], {_data_key(task): {"path": "s.pt"}}, {})
        assert factory.val_size == 300 and holdout_size(cfg) == holdout
        assert (factory.holdout_size or factory.val_size + factory.rescore_size) == holdout


def _old_fingerprint(cfg: PruneConfig) -> str:
    """The fingerprint as written before ``search.holdout_size`` existed (same resumable fields)."""
    d = cfg.model_dump(mode="json")
    for k in ("output_dir", "name"):
        d.pop(k, None)
    d["search"].pop("episodes")
    d["search"].pop("holdout_size")
    for section, key in (("base_training", "retrain"), ("base_training", "subsets_from_full"),
                         ("base_training", "subset_epochs"), ("base_training", "subset_lr"), ("finetune", "distill"),
                         ("finetune", "temperature"), ("finetune", "max_steps")):
        d[section].pop(key)  # added since, like holdout_size
    d.pop("threads")
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def test_older_run_folders_still_resume():
    cfg = _prune()
    assert config_fingerprint(cfg, ["output_dir", "name"]) == _old_fingerprint(cfg)
    changed = _prune(holdout_size=3000)
    assert config_fingerprint(changed, ["output_dir", "name"]) != config_fingerprint(cfg, ["output_dir", "name"])


def test_a_bad_holdout_names_the_key():
    with pytest.raises(AutostructError, match="holdout_size"):
        _prune(holdout_size=0)
