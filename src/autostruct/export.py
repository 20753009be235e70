"""Save, reload and export models, including ones whose layers were pruned to odd widths.

``model.pt`` is a plain dictionary that ``torch.load(..., weights_only=True)`` reads without unpickling any code::

    {"format": "autostruct.model/1",
     "spec": {"name": "resnet20", "kwargs": {...}},          # how create_model built the original
     "layers": {"layer1.0.conv1": {"type": "Conv2d", "in_channels": 16, "out_channels": 11, ...}, ...},
     "state_dict": {...}, "metadata": {...}}

:func:`load_model` rebuilds the model from ``spec`` with :func:`~autostruct.models.create_model`, swaps in a
layer of the recorded shape wherever the saved one differs (pruning changed it), and loads the weights
strictly. So pruned models round-trip as long as pruning resized layers in place (what Torch-Pruning does) and
the model's forward reads no hard-coded channel counts.

>>> paths = export(model, "exported/", torch.zeros(1, 1, 28, 28))      # doctest: +SKIP
>>> model, metadata = load_model(paths.model_pt)                        # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from autostruct.errors import AutostructError
from autostruct.utils.io import atomic_path, torch_save_atomic

FORMAT = "autostruct.model/1"

# Constructor arguments recorded per layer type; anything listed here can be rebuilt at a new shape.
_LAYER_ARGS: dict[type[nn.Module], tuple[str, ...]] = {
    nn.Conv1d: (
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "groups",
        "bias",
    ),
    nn.Conv2d: (
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "dilation",
        "groups",
        "bias",
    ),
    nn.Linear: ("in_features", "out_features", "bias"),
    nn.BatchNorm1d: ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    nn.BatchNorm2d: ("num_features", "eps", "momentum", "affine", "track_running_stats"),
    nn.GroupNorm: ("num_groups", "num_channels", "eps", "affine"),
    nn.LayerNorm: ("normalized_shape", "eps", "elementwise_affine", "bias"),
    nn.PReLU: ("num_parameters",),
}
_LAYER_TYPES = {cls.__name__: cls for cls in _LAYER_ARGS}


class ExportPaths(NamedTuple):
    """Files written by :func:`export`."""

    model_pt: Path
    onnx: Path


def _plain(value: Any) -> Any:
    """Tuples become lists so the description is JSON-like and loads under ``weights_only``."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def describe_layer(module: nn.Module) -> dict[str, Any] | None:
    """Constructor arguments of a resizable layer (``None`` for other modules)."""
    args = _LAYER_ARGS.get(type(module))
    if args is None:
        return None
    desc: dict[str, Any] = {"type": type(module).__name__}
    for name in args:
        if name == "bias":
            desc[name] = getattr(module, "bias", None) is not None
        elif name == "num_parameters":
            desc[name] = module.weight.numel()  # type: ignore[union-attr]
        else:
            desc[name] = _plain(getattr(module, name))
    return desc


def describe_layers(model: nn.Module) -> dict[str, dict[str, Any]]:
    """``{module_name: description}`` for every resizable layer of ``model``."""
    out = {}
    for name, module in model.named_modules():
        desc = describe_layer(module)
        if desc is not None and name:
            out[name] = desc
    return out


def _build_layer(desc: dict[str, Any]) -> nn.Module:
    kwargs = {k: v for k, v in desc.items() if k != "type"}
    for key in ("kernel_size", "stride", "padding", "dilation", "normalized_shape"):
        if isinstance(kwargs.get(key), list):
            kwargs[key] = tuple(kwargs[key])
    return _LAYER_TYPES[desc["type"]](**kwargs)


def _check_plain(obj: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(obj))
    except (TypeError, ValueError) as exc:
        raise AutostructError(
            f"{what} must hold only JSON-like values (numbers, strings, lists, dicts) so the checkpoint loads "
            f"with torch.load(weights_only=True): {exc}."
        ) from None


def checkpoint_path(path: str | os.PathLike[str]) -> Path:
    """``path`` itself for a file name, ``path/model.pt`` for a directory or a name without a suffix."""
    p = Path(path)
    return p / "model.pt" if p.is_dir() or not p.suffix else p


def save_model(
    model: nn.Module, path: str | os.PathLike[str], metadata: dict[str, Any] | None = None
) -> Path:
    """Write ``model`` (state dict + structure) atomically to ``path`` (a file, or a folder for ``model.pt``)."""
    spec = getattr(model, "autostruct_spec", None)
    if not spec:
        raise AutostructError(
            f"Cannot save a {type(model).__name__}: it has no autostruct_spec, so it could not be rebuilt. Build "
            "it with autostruct.models.create_model (register your own architecture with @register_model)."
        )
    checkpoint = {
        "format": FORMAT,
        "spec": _check_plain(spec, "The model's autostruct_spec"),
        "layers": describe_layers(model),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metadata": _check_plain(metadata or {}, "metadata"),
    }
    return torch_save_atomic(checkpoint, checkpoint_path(path))


def _read_checkpoint(path: Path, map_location: str | torch.device) -> dict[str, Any]:
    if not path.is_file():
        raise AutostructError(
            f"Checkpoint '{path}' does not exist. Pass the model.pt written by save_model/export."
        )
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files
        # torch's unpickling message advises weights_only=False, which would run code from the file: omit it.
        detail = "" if isinstance(exc, pickle.UnpicklingError) else f": {str(exc).splitlines()[0][:200]}"
        raise AutostructError(
            f"Could not read checkpoint '{path}' ({type(exc).__name__}{detail}). The file is damaged or not an "
            "autostruct checkpoint; delete it and re-create it (autostruct train / export)."
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise AutostructError(
            f"'{path}' is not an autostruct model checkpoint (expected format '{FORMAT}', found {found!r}). "
            "For a plain state dict, build the model with autostruct.models.create_model and call "
            "load_state_dict; otherwise re-save the model with autostruct.export.save_model."
        )
    return ckpt


def load_model(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the exact (possibly pruned) model saved by :func:`save_model`; returns ``(model, metadata)``.

    The model comes back in eval mode on ``map_location``.
    """
    from autostruct.models import create_model, list_models

    path = checkpoint_path(path)
    ckpt = _read_checkpoint(path, map_location)
    spec = ckpt["spec"]
    if spec["name"] not in list_models() and spec["name"].startswith("nas-"):
        import autostruct.nas.supernet  # noqa: F401  (registers the searched-architecture families)
    if spec["name"] not in list_models():
        raise AutostructError(
            f"Checkpoint '{path}' holds model '{spec['name']}', which is not registered. Import the module that "
            "defines it (decorated with @register_model) before loading. Registered: "
            + ", ".join(list_models())
            + "."
        )
    # Fresh random init is thrown away; keep the caller's RNG stream untouched.
    with torch.random.fork_rng(devices=[]):
        model = create_model(spec["name"], **spec["kwargs"])
    for name, desc in ckpt["layers"].items():
        try:
            current = model.get_submodule(name)
        except AttributeError:
            raise AutostructError(
                f"Checkpoint '{path}': layer '{name}' does not exist in a freshly built '{spec['name']}'. The "
                "model's structure changed beyond resizing layers; save it with a registered builder that "
                "creates this structure."
            ) from None
        if describe_layer(current) != desc:
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child, _build_layer(desc))
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as exc:
        raise AutostructError(
            f"Checkpoint '{path}' does not match the rebuilt '{spec['name']}': {str(exc).splitlines()[0][:300]} "
            "(only Conv, Linear, BatchNorm, GroupNorm, LayerNorm and PReLU layers can change shape)."
        ) from None
    return model.to(map_location).eval(), ckpt.get("metadata", {})


def export_onnx(
    model: nn.Module,
    example_inputs: torch.Tensor | tuple[torch.Tensor, ...],
    path: str | os.PathLike[str],
    opset: int = 17,
    dynamo: bool = False,
) -> Path:
    """Write ``model`` (in eval mode) to ONNX with a dynamic batch axis, checked with ``onnx.checker``.

    The TorchScript exporter (``dynamo=False``) is the default: for these CNNs it gives the same graph as the
    torch.export-based one in a fraction of a second instead of ~10 s, and honours ``opset``.
    """
    import onnx

    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    input_names = ["input"] if len(inputs) == 1 else [f"input{i}" for i in range(len(inputs))]
    path = Path(path)
    was_training = model.training
    model.eval()
    try:
        with atomic_path(path) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if dynamo:
                batch = torch.export.Dim("batch", min=1)
                torch.onnx.export(
                    model,
                    inputs,
                    str(tmp),
                    dynamo=True,
                    input_names=input_names,
                    output_names=["logits"],
                    dynamic_shapes=tuple({0: batch} for _ in inputs),
                    opset_version=opset,
                    external_data=False,
                )
            else:
                torch.onnx.export(
                    model,
                    inputs,
                    str(tmp),
                    dynamo=False,
                    input_names=input_names,
                    output_names=["logits"],
                    dynamic_axes={n: {0: "batch"} for n in [*input_names, "logits"]},
                    opset_version=opset,
                )
            onnx.checker.check_model(str(tmp))
    finally:
        model.train(was_training)
    return path


def export(
    model: nn.Module,
    out_dir: str | os.PathLike[str],
    example_inputs: torch.Tensor | tuple[torch.Tensor, ...],
    metadata: dict[str, Any] | None = None,
    opset: int = 17,
) -> ExportPaths:
    """Write ``out_dir/model.pt`` and ``out_dir/model.onnx``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return ExportPaths(
        model_pt=save_model(model, out / "model.pt", metadata),
        onnx=export_onnx(model, example_inputs, out / "model.onnx", opset=opset),
    )
