"""`autostruct prune` / `train` with a user's model that cannot work: exit 2, no traceback, the field and the fix
named, and no run folder left behind."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from autostruct.cli import app

runner = CliRunner()
CUSTOM = str(Path(__file__).resolve().parents[1] / "mtacp" / "custom_models.py")


def _config(tmp_path, **over) -> str:
    cfg = {
        "name": "byo-preflight",
        "output_dir": str(tmp_path / "run"),
        "model": "custom_models:small_cnn",
        "imports": [CUSTOM],
        "tasks": [{"dataset": "digits", "ratios": [0.5]}],
        "search": {"episodes": 2},
        "backend": {"name": "inline"},
        **over,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _broken_module(tmp_path) -> str:
    path = tmp_path / "broken_models.py"
    path.write_text("raise RuntimeError('missing weights folder')\n")
    return str(path)


CASES = {
    "no such function": (lambda p: _config(p, model="custom_models:small_cnnn"),
                         ["'model'", "custom_models:small_cnnn", "has no 'small_cnnn'", "small_cnn"]),
    "module not found": (lambda p: _config(p, model="no_such_pkg.models:net", imports=[]),
                         ["'model'", "no_such_pkg", "PYTHONPATH", "imports"]),
    "import raises": (lambda p: _config(p, imports=[_broken_module(p)]),
                      ["'imports.0'", "broken_models", "RuntimeError", "missing weights folder"]),
    "wrong input shape": (lambda p: _config(p, model="custom_models:fixed_32px"),
                          ["'model'", "tasks.0.dataset", "custom_models:fixed_32px", "(1, 8, 8)", "in_channels"]),
    "not a module": (lambda p: _config(p, model="custom_models:not_a_model"), ["'model'", "not a torch.nn.Module"]),
    "bad model_kwargs": (lambda p: _config(p, model_kwargs={"depthh": 2}), ["'model_kwargs'", "depthh"]),
    "declares another input size": (lambda p: _config(p, model="custom_models:declared_32px"),
                                    ["'model'", "tasks.0.dataset", "default_cfg['input_size'] = 32 (px)",
                                     "1 channels of 8x8 px", "build it for the dataset"]),
    "model_kwargs set image_size": (lambda p: _config(p, model_kwargs={"image_size": 32}),
                                    ["'model_kwargs'", "image_size cannot be set here", "Remove 'image_size'"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_custom_model_exits_2_and_writes_nothing(tmp_path, case):
    make, needles = CASES[case]
    result = runner.invoke(app, ["prune", make(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    for needle in needles:
        assert needle in text, (needle, text)
    assert not (tmp_path / "run").exists()


def test_import_option_failures_exit_2(tmp_path):
    result = runner.invoke(app, ["train", "--import", "no_such_module_xyz", "--dataset", "digits"])
    assert result.exit_code == 2
    assert "--import no_such_module_xyz" in " ".join(result.output.split())


def test_train_factory_with_kwargs_and_export_with_import(tmp_path):
    result = runner.invoke(app, ["train", "--import", CUSTOM, "--model", "custom-tiny", "--dataset", "digits",
                                 "--epochs", "1", "--json"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train", "--model", "custom_models:small_cnn", "--model-kwargs", '{"depth": 1}',
                                 "--dataset", "digits", "--epochs", "1", "--json"])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(app, ["train", "--model", "custom_models:fixed_32px", "--dataset", "digits", "--epochs", "1"])
    assert bad.exit_code == 2 and "(1, 8, 8)" in " ".join(bad.output.split())
    bad = runner.invoke(app, ["train", "--model", "custom_models:small_cnn", "--model-kwargs", '{"image_size": 32}',
                              "--dataset", "digits", "--epochs", "1"])
    assert bad.exit_code == 2 and "image_size cannot be set there" in " ".join(bad.output.split())
    bad = runner.invoke(app, ["train", "--model", "custom_models:declared_32px", "--dataset", "digits", "--epochs", "1"])
    assert bad.exit_code == 2 and "default_cfg['input_size'] = 32 (px)" in " ".join(bad.output.split())
