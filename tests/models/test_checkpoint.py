"""The checkpoint module: a model built outside the zoo records the module that registers its builder, so it loads in
a fresh process that imported nothing but the loader (models/ does not import nas/)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from autostruct.models.checkpoint import load_model, save_model
from autostruct.nas.space import mobilenetv2_space
from autostruct.nas.supernet import Supernet, extract

SRC = Path(__file__).resolve().parents[2] / "src"


def test_nas_child_loads_in_a_fresh_process(tmp_path):
    space = mobilenetv2_space(16)
    child = extract(Supernet(space, 4, 1).eval(), space.sample(np.random.default_rng(0)), image_size=16).eval()
    assert child.autostruct_spec["import"] == "autostruct.nas.supernet"
    new = save_model(child, tmp_path / "new.pt")
    # A checkpoint written before specs recorded the module (NAS exports of autostruct 0.1).
    ckpt = torch.load(new, weights_only=True)
    del ckpt["spec"]["import"]
    old = tmp_path / "old.pt"
    torch.save(ckpt, old)
    x = torch.randn(2, 1, 16, 16)
    torch.save(x, tmp_path / "x.pt")
    with torch.no_grad():
        torch.save(child(x), tmp_path / "y.pt")

    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    for path in (new, old):  # one process each: the first load registers the family for the second
        code = (
            "import sys, torch\n"
            "from autostruct.models.checkpoint import load_model\n"
            "assert 'autostruct.nas' not in sys.modules\n"
            f"x, y = torch.load({str(tmp_path / 'x.pt')!r}), torch.load({str(tmp_path / 'y.pt')!r})\n"
            f"m, _ = load_model({str(path)!r})\n"
            "with torch.no_grad():\n"
            "    assert torch.allclose(m(x), y, atol=1e-6)\n"
            "print('ok')\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert out.returncode == 0 and out.stdout.strip() == "ok", f"{path.name}: {out.stderr[-2000:]}"


def test_export_reexports_the_checkpoint_functions():
    from autostruct import export

    assert export.load_model is load_model and export.save_model is save_model


def test_a_checkpoint_cannot_make_the_loader_import_an_outside_module(tmp_path):
    """A checkpoint may name the module that registers its builder (a dotted name), never a .py file to run."""
    import pytest

    from autostruct.errors import AutostructError
    from autostruct.models import create_model

    marker = tmp_path / "ran"
    evil = tmp_path / "evil_builder.py"
    evil.write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    path = save_model(create_model("resnet20", num_classes=10, in_channels=1, image_size=8, width=0.25),
                      tmp_path / "m.pt")
    ckpt = torch.load(path, weights_only=True)
    ckpt["spec"]["name"] = "not_registered_anywhere"
    for module in (str(evil), str(tmp_path / "missing.py"), "../evil_builder"):
        ckpt["spec"]["import"] = module
        torch.save(ckpt, path)
        with pytest.raises(AutostructError, match="not registered"):
            load_model(path)
        assert not marker.exists(), f"loading imported {module}"
