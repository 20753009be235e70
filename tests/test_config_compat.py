"""Every config class keeps its keys, defaults and constraints, and every shipped config parses to the same values.

``test_config_compat.json`` was written from main at 7a10e64, before the configs got their shared bases
(``TaskBase``, ``TrainingRecipe``, ``SearchSettings``; issue 14 item 2); regenerate it only for a deliberate change of
a key or a default: ``python tests/test_config_compat.py > tests/test_config_compat.json``. Keys added since (never
required) pass: the contract is that what users wrote keeps its meaning.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).with_suffix(".json")
CLASSES = {
    "autostruct.config": ["RLConfig", "BackendConfig", "PruneTask", "BaseTrainingConfig", "PruneSearchConfig",
                          "FinetuneConfig", "PruneConfig"],
    "autostruct.nas.config": ["NASTask", "SupernetConfig", "NASSearchConfig", "NASFinetuneConfig", "LutConfig",
                              "NASRLConfig", "NASConfig", "CustomTask", "CustomSearchConfig", "CustomNASConfig"],
}


def _plain(v: Any) -> Any:
    if isinstance(v, BaseModel):
        return v.model_dump(mode="json")
    return v if isinstance(v, (str, int, float, bool, type(None), list, dict)) else repr(v)


def _field(f: Any) -> dict[str, Any]:
    return {
        "required": f.is_required(),
        "default": "<factory>" if f.default_factory is not None else (None if f.is_required() else _plain(f.default)),
        "constraints": sorted(repr(m) for m in f.metadata),
        "alias": repr(f.validation_alias),
        "type": repr(f.annotation),
    }


def _parse(data: Any) -> tuple[str | None, Any]:
    from autostruct.config import PruneConfig
    from autostruct.nas.config import CustomNASConfig, NASConfig

    for cls in (PruneConfig, NASConfig, CustomNASConfig):
        try:
            return cls.__name__, cls.model_validate(data).model_dump(mode="json")
        except Exception:  # noqa: BLE001  (a config of another kind)
            continue
    return None, None


def snapshot() -> dict[str, Any]:
    """Keys, defaults and constraints of every config class; ``model_dump`` of configs/*.yaml and the docs' YAML."""
    import importlib

    fields = {}
    for module, names in CLASSES.items():
        mod = importlib.import_module(module)
        for name in names:
            fields[name] = {k: _field(f) for k, f in getattr(mod, name).model_fields.items()}
    files = {str(p.relative_to(ROOT)): _parse(yaml.safe_load(p.read_text())) for p in sorted((ROOT / "configs").glob("*.yaml"))}
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for i, block in enumerate(re.findall(r"```yaml\n(.*?)```", md.read_text(), re.S)):
            data = yaml.safe_load(block)
            if isinstance(data, dict) and "tasks" in data:
                files[f"{md.relative_to(ROOT)}#{i}"] = _parse(data)
    return {"fields": fields, "files": files}


def _without_new_keys(got: Any, want: Any) -> Any:
    """``got`` with the dict keys ``want`` lacks dropped, recursively (keys added since the snapshot)."""
    if isinstance(got, dict) and isinstance(want, dict):
        return {k: _without_new_keys(v, want[k]) for k, v in got.items() if k in want}
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        return [_without_new_keys(g, w) for g, w in zip(got, want, strict=True)]
    return got


def test_config_keys_defaults_and_constraints_unchanged() -> None:
    want, got = json.loads(SNAPSHOT.read_text())["fields"], snapshot()["fields"]
    assert set(got) == set(want)
    for name in want:
        assert set(want[name]) <= set(got[name]), (name, "a key was removed")
        # A nested default (e.g. PruneConfig.rl's) may gain keys too; what it had keeps its value.
        assert {k: _without_new_keys(got[name][k], want[name][k]) for k in want[name]} == want[name], name
        # Keys may be added (a new budget kind, a new setting), never required: old configs must still parse.
        assert not [k for k in set(got[name]) - set(want[name]) if got[name][k]["required"]], name


def test_shipped_configs_parse_to_the_same_values() -> None:
    want, got = json.loads(SNAPSHOT.read_text())["files"], snapshot()["files"]
    assert {k for k, v in want.items() if v[0]} <= {k for k, v in got.items() if v[0]}, "an example stopped parsing"
    for name, (kind, dump) in want.items():
        assert [got[name][0], _without_new_keys(got[name][1], dump)] == [kind, dump], name


def test_the_shared_bases_hold_the_shared_defaults() -> None:
    from autostruct.config import (
        BaseTrainingConfig,
        FinetuneConfig,
        PruneSearchConfig,
        PruneTask,
        ScoredSearchSettings,
        SearchSettings,
        TaskBase,
        TrainingRecipe,
    )
    from autostruct.nas.config import (
        CustomSearchConfig,
        CustomTask,
        NASFinetuneConfig,
        NASSearchConfig,
        NASTask,
        SupernetConfig,
    )

    for recipe in (BaseTrainingConfig, FinetuneConfig, NASFinetuneConfig, SupernetConfig):
        assert issubclass(recipe, TrainingRecipe)
        assert "batch_size" not in recipe.__annotations__  # declared once, on TrainingRecipe
    for task in (PruneTask, NASTask, CustomTask):
        assert issubclass(task, TaskBase)
    for search in (PruneSearchConfig, NASSearchConfig):
        assert issubclass(search, ScoredSearchSettings)
        for key in ("val_size", "holdout_size", "rescore_size", "top_k"):
            assert key not in search.__annotations__
    assert issubclass(CustomSearchConfig, SearchSettings)
    assert "reward" not in NASSearchConfig.__annotations__ and "reward" not in CustomSearchConfig.__annotations__
    # The one min_steps -> epochs rule: 1000 images, 128 per step = 8 steps per epoch; 600 steps need 75 epochs.
    assert BaseTrainingConfig().epochs_for(1000) == 75
    assert FinetuneConfig(epochs=0).epochs_for(1000) == 0
    assert PruneSearchConfig().holdout == 5000 and NASSearchConfig().holdout == 3000
    assert NASSearchConfig(holdout_size=4000, score_size=500).holdout == 4000


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    print(json.dumps(snapshot(), indent=1, sort_keys=True))
