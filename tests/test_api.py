"""autostruct.api: the functions the CLI's tool commands are made of, and the package's top-level names."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import autostruct
from autostruct import api
from autostruct.errors import AutostructError
from autostruct.models import create_model


def _tiny() -> torch.nn.Module:
    return create_model("resnet20", num_classes=3, in_channels=1, image_size=8, width=0.25)


def test_measure_counts_and_times_a_module_and_its_base():
    m = api.measure(_tiny(), runs=2, base="resnet20", num_classes=3, in_channels=1, image_size=8)
    out = m.as_dict()
    assert out["input_shape"] == [1, 1, 8, 8] and 0 < out["flops"] < out["base"]["flops"]
    assert set(out["latency_ms"]) == {"torch", "onnxruntime"} and out["latency_ms"]["torch"]["median"] > 0
    assert "base" not in api.measure(_tiny(), runs=1).as_dict()
    with pytest.raises(AutostructError, match="runs must be >= 1"):
        api.measure(_tiny(), runs=0)


def test_export_then_load_model_round_trips(tmp_path):
    net = _tiny().eval()
    paths = api.export(net, tmp_path / "out")
    assert paths.model_pt.is_file() and paths.onnx.is_file()
    again = api.load_model(paths.model_pt).eval()
    x = api.example_input_for(net, batch=2)
    assert torch.allclose(net(x), again(x), atol=1e-6)
    with pytest.raises(AutostructError, match="neither an existing file nor a zoo model"):
        api.load_model(tmp_path / "missing.pt")


def test_system_info_lists_models_and_datasets():
    info = api.system_info().as_dict()
    assert "resnet20" in info["models"] and "digits" in info["datasets"]
    assert info["versions"]["autostruct"] == autostruct.__version__


def test_build_nas_lut_names_what_is_missing(tmp_path):
    with pytest.raises(AutostructError, match="in_channels"):
        api.build_nas_lut(tmp_path / "p.json", image_size=8)
    with pytest.raises(AutostructError, match="does not exist"):
        api.build_nas_lut(tmp_path / "p.json", space=tmp_path / "nope.yaml", image_size=8, in_channels=1,
                          num_classes=3)


def test_prune_is_the_package_and_the_search():
    import autostruct.prune.env as env_module  # the dotted form a plain function in its place would break
    from autostruct.prune import PruningEnv

    assert env_module.PruningEnv is PruningEnv and autostruct.prune.env is env_module
    with pytest.raises(AutostructError, match="does not exist"):
        autostruct.prune("/nonexistent/config.yaml")


def test_cli_import_loads_neither_torch_nor_the_api():
    """`autostruct --help` stays fast: the commands import autostruct.api (and torch) only when they run."""
    code = "import sys, autostruct.cli; print(sorted({'torch', 'autostruct.api'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
