"""Save and reload models of any architecture, including ones whose layers were pruned to odd widths.

``model.pt`` is a plain dictionary that ``torch.load(..., weights_only=True)`` reads without unpickling any code::

    {"format": "autostruct.model/2",
     "spec": {"name": "resnet20", "kwargs": {...}},          # how create_model built the original
     "modules": {"layer1.0.conv1": {"type": "Conv2d",
                                    "attrs": {"in_channels": 16, "out_channels": 11, "groups": 1, ...},
                                    "tensors": {"weight": [11, 16, 3, 3]}}, ...},
     "state_dict": {...}, "buffers": {...non-persistent buffers...}, "metadata": {...}}

Every module is recorded, whatever its type (a ``BatchNorm2d`` subclass with a fused activation, a ``Linear``
subclass, a user's attention block): the shape of each of its own parameters and buffers, and its plain
attributes (numbers, strings, tuples: ``in_channels``, ``out_channels``, ``groups``, ``in_features``,
``num_features``, ``normalized_shape``, a block's ``num_heads`` ...). :func:`load_model` rebuilds the model from
``spec`` with the registered builder (:func:`~autostruct.models.create_model`), resizes each module's tensors
and restores its attributes where pruning changed them (the modules keep their own classes), and loads the
weights strictly. So any pruned model round-trips as long as pruning resized modules in place (what
Torch-Pruning and :mod:`autostruct.prune` do) and its forward reads widths from its modules, not from
constants.

A builder registered outside the zoo (a user's ``@register_model`` module, the NAS children of
:mod:`autostruct.nas.supernet`) is recorded in ``spec["import"]``, and :func:`load_model` imports that module
first, so a checkpoint loads in a fresh process without this module knowing who registers what.

This is the one checkpoint format: the model cache (:mod:`autostruct.models.cache`) and the exporter
(:mod:`autostruct.export`, which adds ``model.onnx``) both write it.

>>> path = save_model(model, "out/model.pt", metadata={"note": "pruned"})  # doctest: +SKIP
>>> model, metadata = load_model(path)                                     # doctest: +SKIP

A model that is not built by a registered builder cannot be saved (it could not be rebuilt): register its
factory with :func:`~autostruct.models.register_model` and build it with ``create_model``.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from autostruct.errors import AutostructError
from autostruct.models.registry import (
    create_model,
    import_module,
    is_factory_name,
    list_models,
    resolve_model,
)
from autostruct.utils.io import torch_save_atomic

FORMAT = "autostruct.model/2"
#: Older formats :func:`load_model` still reads (``/1`` recorded constructor arguments of a few layer types).
_READABLE = (FORMAT, "autostruct.model/1")
# Checkpoints written before specs recorded the module of a builder outside the zoo: the NAS children
# (format /2 files exported by NAS runs of autostruct 0.1). New checkpoints carry ``spec["import"]``.
_LEGACY_IMPORTS = {"nas-mobilenetv2": "autostruct.nas.supernet"}
# Module attributes that are runtime state, not structure.
_SKIP_ATTRS = frozenset({"training"})


def _plain_attr(value: Any) -> tuple[bool, Any]:
    """``(True, json_like)`` for numbers, strings, None and tuples/lists of them; ``(False, None)`` otherwise."""
    if value is None or isinstance(value, bool | int | float | str):
        return True, value
    if isinstance(value, tuple | list):
        items = [_plain_attr(v) for v in value]
        if all(ok for ok, _ in items):
            return True, [v for _, v in items]
    return False, None


def describe_module(module: nn.Module) -> dict[str, Any]:
    """Class name, plain public attributes and the shape of each own parameter and buffer of ``module``."""
    attrs = {}
    for key, value in vars(module).items():
        if key.startswith("_") or key in _SKIP_ATTRS:
            continue
        ok, plain = _plain_attr(value)
        if ok:
            attrs[key] = plain
    return {
        "type": type(module).__name__,
        "attrs": attrs,
        # None marks a slot that holds no tensor (e.g. ``bias=False``), so the rebuilt module mirrors it.
        "params": {n: None if t is None else list(t.shape) for n, t in module._parameters.items()},
        "buffers": {n: None if t is None else list(t.shape) for n, t in module._buffers.items()},
    }


def describe_modules(model: nn.Module) -> dict[str, dict[str, Any]]:
    """``{module_name: description}`` for every module of ``model`` (the root is ``""``)."""
    return {name: describe_module(module) for name, module in model.named_modules()}


def check_plain(obj: Any, what: str) -> Any:
    """``obj`` through JSON, or an :class:`AutostructError` naming ``what`` if it holds anything else."""
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


def spec_of(model: nn.Module) -> dict[str, Any]:
    """The build spec of ``model`` (JSON-like), or an error that says how to make the model savable."""
    spec = getattr(model, "autostruct_spec", None)
    if not spec:
        raise AutostructError(
            f"Cannot save a {type(model).__name__}: it has no autostruct_spec, so it could not be rebuilt. Register "
            "a factory that builds it with @autostruct.models.register_model('my-net') and build it with "
            "create_model('my-net', ...); pruned copies of it keep the spec."
        )
    return check_plain(spec, "The model's autostruct_spec")


def save_model(
    model: nn.Module, path: str | os.PathLike[str], metadata: dict[str, Any] | None = None
) -> Path:
    """Write ``model`` (state dict + structure) atomically to ``path`` (a file, or a folder for ``model.pt``)."""
    spec = spec_of(model)
    persistent = model.state_dict()
    extra = {
        name: t.detach().cpu()
        for name, t in model.named_buffers(remove_duplicate=False)
        if name not in persistent
    }
    checkpoint = {
        "format": FORMAT,
        "spec": spec,
        "modules": describe_modules(model),
        "state_dict": {k: v.detach().cpu() for k, v in persistent.items()},
        "buffers": extra,
        "metadata": check_plain(metadata or {}, "metadata"),
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
    if not isinstance(ckpt, dict) or ckpt.get("format") not in _READABLE:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise AutostructError(
            f"'{path}' is not an autostruct model checkpoint (expected format '{FORMAT}', found {found!r}). "
            "For a plain state dict, build the model with autostruct.models.create_model and call "
            "load_state_dict; otherwise re-save the model with autostruct.export.save_model."
        )
    return ckpt


def _module_records(ckpt: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-module records of a checkpoint; a ``/1`` checkpoint's are derived from its layers and state dict."""
    if "modules" in ckpt:
        return ckpt["modules"]
    records: dict[str, dict[str, Any]] = {}
    for key, tensor in ckpt["state_dict"].items():
        owner, _, local = key.rpartition(".")
        rec = records.setdefault(owner, {"type": None, "attrs": {}, "params": {}, "buffers": {}})
        rec["shapes"] = {**rec.get("shapes", {}), local: list(tensor.shape)}
    for name, desc in ckpt.get("layers", {}).items():
        attrs = {k: v for k, v in desc.items() if k not in ("type", "bias", "num_parameters")}
        records.setdefault(name, {"type": None, "attrs": {}, "params": {}, "buffers": {}})["attrs"] = attrs
    return records


def _where(path: Path, spec_name: str) -> str:
    return f"Checkpoint '{path}' (model '{spec_name}')"


_STRUCTURE_HINT = (
    "load_model rebuilds the model with its registered builder and only resizes the parameters and buffers of "
    "existing modules; re-save from a builder that creates this structure (same module names and types)."
)


def _restore_attr(module: nn.Module, key: str, value: Any) -> None:
    current = vars(module).get(key)
    ok, plain = _plain_attr(current)
    if key in vars(module) and ok and plain == value:
        return
    if isinstance(value, list) and not isinstance(current, list):
        value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
    setattr(module, key, value)


def _resize_tensor(
    module: nn.Module, local: str, shape: list[int] | None, kind: str, source: torch.Tensor | None,
    replaced: dict[int, torch.Tensor], persistent: bool = True,
) -> None:
    """Make ``module``'s parameter or buffer ``local`` a tensor of ``shape`` (None: no tensor); ties are kept."""
    slots = module._parameters if kind == "params" else module._buffers
    current = slots.get(local)
    if shape is None:
        if local in slots:
            slots[local] = None
        return
    if current is not None and list(current.shape) == shape:
        return
    if current is not None and id(current) in replaced:  # a tied tensor already resized elsewhere
        slots[local] = replaced[id(current)]
        return
    like = source if source is not None else current
    dtype = like.dtype if like is not None else torch.get_default_dtype()
    new: torch.Tensor = torch.zeros(shape, dtype=dtype)
    if kind == "params":
        new = nn.Parameter(new, requires_grad=current.requires_grad if current is not None else True)
        module._parameters[local] = new
    elif local in module._buffers or current is not None:
        module._buffers[local] = new
    else:
        module.register_buffer(local, new, persistent=persistent)
    if current is not None:
        replaced[id(current)] = new


def _rebuild_shapes(model: nn.Module, ckpt: dict[str, Any], where: str) -> None:
    """Resize every recorded module of the freshly built ``model`` to the checkpoint's shapes and attributes."""
    state_dict, extra = ckpt["state_dict"], ckpt.get("buffers", {})
    replaced: dict[int, torch.Tensor] = {}
    for name, rec in _module_records(ckpt).items():
        try:
            module = model.get_submodule(name)
        except AttributeError:
            raise AutostructError(
                f"{where}: module '{name}' ({rec['type'] or 'a layer'}) is not in a freshly built model. "
                + _STRUCTURE_HINT
            ) from None
        if rec["type"] is not None and type(module).__name__ != rec["type"]:
            raise AutostructError(
                f"{where}: module '{name}' was saved as a {rec['type']} but the builder now makes a "
                f"{type(module).__name__}. " + _STRUCTURE_HINT
            )
        for key, value in rec["attrs"].items():
            _restore_attr(module, key, value)
        prefix = f"{name}." if name else ""
        shapes = [(kind, local, shape) for kind in ("params", "buffers") for local, shape in rec[kind].items()]
        shapes += [  # format /1: shapes from the state dict, the slot from the rebuilt module
            ("params" if local in module._parameters else "buffers", local, shape)
            for local, shape in rec.get("shapes", {}).items()
        ]
        for kind, local, shape in shapes:
            source = state_dict.get(prefix + local, extra.get(prefix + local))
            _resize_tensor(module, local, shape, kind, source, replaced, persistent=prefix + local in state_dict)


def _shape(t: torch.Tensor) -> list[int]:
    return list(t.shape)


def _load_weights(model: nn.Module, ckpt: dict[str, Any], where: str) -> None:
    """Strict load, with an error that names the module, the tensor and both shapes."""
    saved, own = ckpt["state_dict"], model.state_dict()
    problems = []
    for key in saved:
        owner, _, local = key.rpartition(".")
        if key not in own:
            problems.append(f"module '{owner}' has no '{local}' in the rebuilt model (checkpoint shape "
                            f"{_shape(saved[key])})")
        elif _shape(saved[key]) != _shape(own[key]):
            problems.append(f"module '{owner}' '{local}': checkpoint shape {_shape(saved[key])}, rebuilt model shape "
                            f"{_shape(own[key])}")
    for key in own:
        if key not in saved:
            owner, _, local = key.rpartition(".")
            problems.append(f"module '{owner}' '{local}' (shape {_shape(own[key])}) is missing from the checkpoint")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise AutostructError(f"{where} does not match the rebuilt model: " + "; ".join(problems[:3]) + more
                              + ". " + _STRUCTURE_HINT)
    try:
        model.load_state_dict(saved, strict=True)
    except RuntimeError as exc:  # anything the checks above missed: keep torch's whole message
        raise AutostructError(f"{where}: loading the weights failed: {' '.join(str(exc).split())[:600]}. "
                              + _STRUCTURE_HINT) from None
    for key, tensor in ckpt.get("buffers", {}).items():
        owner, _, local = key.rpartition(".")
        model.get_submodule(owner)._buffers[local] = tensor.clone()


def _trusted_module(name: str) -> bool:
    """A dotted module name (not a file path): importable only if installed or on ``sys.path`` already."""
    return all(part.isidentifier() for part in name.split("."))


def load_model(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the exact (possibly pruned) model saved by :func:`save_model`; returns ``(model, metadata)``.

    The model comes back in eval mode on ``map_location``.
    """
    path = checkpoint_path(path)
    ckpt = _read_checkpoint(path, map_location)
    spec = ckpt["spec"]
    module_name = spec.get("import") or _LEGACY_IMPORTS.get(spec["name"])
    if spec["name"] not in list_models() and module_name and _trusted_module(str(module_name)):
        # The module that registers the builder (recorded at build time); a failed import falls through to the
        # error below. Only a dotted module name is imported on a checkpoint's word (what create_model records:
        # an installed or importable module), never a .py path the file names: that would run any file.
        with contextlib.suppress(AutostructError):
            import_module(str(module_name), f"Checkpoint '{path}'")
    if is_factory_name(spec["name"]):
        try:
            resolve_model(spec["name"])  # imports package.module and registers the function in this process
        except AutostructError as exc:
            raise AutostructError(f"Checkpoint '{path}' holds model '{spec['name']}': {exc}") from None
    if spec["name"] not in list_models():
        module = f" (module '{spec['import']}')" if spec.get("import") else ""
        raise AutostructError(
            f"Checkpoint '{path}' holds model '{spec['name']}'{module}, which is not registered. Import the module "
            "that defines it (decorated with @register_model) before loading (CLI: --import MODULE or "
            "--import path/to/file.py). Registered: "
            + ", ".join(list_models())
            + "."
        )
    where = _where(path, spec["name"])
    # Fresh random init is thrown away; keep the caller's RNG stream untouched.
    with torch.random.fork_rng(devices=[]):
        model = create_model(spec["name"], **spec["kwargs"])
    _rebuild_shapes(model, ckpt, where)
    _load_weights(model, ckpt, where)
    return model.to(map_location).eval(), ckpt.get("metadata", {})
