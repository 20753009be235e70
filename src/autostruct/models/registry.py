"""Model registry: ``@register_model`` adds a builder, :func:`create_model` builds one by name.

Builders take ``(num_classes, in_channels, image_size, width, **kwargs)`` and return an ``nn.Module``.
Users add their own models with the decorator; every registered model must be buildable from its name and
keyword arguments alone, because exported checkpoints rebuild models that way (see ``autostruct.export``).

A name of the form ``package.module:function`` needs no decorator: :func:`resolve_model` imports the module and
registers the function under that very string (in every process that asks for it), called with those of
``num_classes``, ``in_channels``, ``image_size`` and ``width`` its signature takes, plus the model's keyword
arguments. Cache keys, checkpoints and :func:`autostruct.models.checkpoint.load_model` then treat it like a zoo
name.
:func:`import_modules` imports modules that register architectures with ``@register_model`` (a dotted name, or
the path of a ``.py`` file whose folder is put on ``sys.path``).
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from torch import nn

from autostruct.errors import AutostructError, unknown_name

ModelBuilder = Callable[..., nn.Module]

_REGISTRY: dict[str, ModelBuilder] = {}


def register_model(name: str | None = None) -> Callable[[ModelBuilder], ModelBuilder]:
    """Register a model builder under ``name`` (default: the function's name)."""

    def decorator(fn: ModelBuilder) -> ModelBuilder:
        key = name or fn.__name__
        if key in _REGISTRY and _REGISTRY[key] is not fn:
            raise ValueError(f"model '{key}' is already registered")
        _REGISTRY[key] = fn
        return fn

    return decorator


def list_models(pattern: str = "*") -> list[str]:
    """Names of registered models matching a shell-style ``pattern``."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def create_model(
    name: str,
    num_classes: int,
    in_channels: int = 3,
    image_size: int = 32,
    width: float = 1.0,
    **kwargs,
) -> nn.Module:
    """Build a registered model.

    >>> m = create_model("resnet20", num_classes=10, in_channels=1, image_size=28)
    """
    builder = resolve_model(name)
    if num_classes < 1:
        raise AutostructError(f"num_classes must be >= 1, got {num_classes}.")
    if in_channels < 1:
        raise AutostructError(f"in_channels must be >= 1, got {in_channels}.")
    if not 8 <= image_size <= 224:
        raise AutostructError(f"image_size must be in [8, 224], got {image_size}.")
    if width <= 0:
        raise AutostructError(f"width must be > 0, got {width}.")
    spec = {
        "name": name,
        "kwargs": dict(
            num_classes=num_classes, in_channels=in_channels, image_size=image_size, width=width, **kwargs
        ),
    }
    module = getattr(builder, "__module__", None) or ""
    if ":" not in name and module not in ("", "__main__") and not module.startswith("autostruct.models."):
        # A builder registered outside the zoo (a user's @register_model module, autostruct.nas.supernet's NAS
        # children): load_model imports its module again in a fresh process.
        spec["import"] = module
    model = builder(**spec["kwargs"])
    # Exported checkpoints rebuild a model from this spec (then resize pruned layers); see autostruct.export.
    model.autostruct_spec = spec
    return model


#: What a ``module:function`` factory may take from the dataset (and the config's ``width``).
FACTORY_ARGS = ("num_classes", "in_channels", "image_size", "width")

_FIX_IMPORT = (
    "Fix: install the package, run from the folder that holds the module, add that folder to PYTHONPATH, or "
    "name the module's .py file in the config's `imports:` (CLI: --import path/to/file.py)."
)


def is_factory_name(name: str) -> bool:
    """Whether ``name`` has the ``package.module:function`` form (not a zoo name, not a path)."""
    module, sep, attr = name.partition(":")
    return bool(sep) and bool(module) and bool(attr) and "/" not in name and "\\" not in name


def _ensure_cwd_on_path() -> None:
    # Console scripts do not put the working directory on sys.path (python -m does); users expect their
    # project's modules to import from where they run the command.
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


def import_module(name: str, what: str) -> object:
    """Import ``name`` (a dotted module or the path of a ``.py`` file); errors say ``what`` asked and the fix."""
    if name.endswith(".py") or "/" in name or "\\" in name:
        path = Path(name).expanduser().resolve()
        if path.suffix != ".py" or not path.is_file():
            raise AutostructError(f"{what}: '{name}' is not an existing .py file. Pass a dotted module name "
                                  "(mypkg.models) or the path of a .py file.")
        folder = str(path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)  # spawned actor processes inherit sys.path, so they import it too
        name = path.stem
    _ensure_cwd_on_path()
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise AutostructError(f"{what}: cannot import module '{name}' ({exc}). {_FIX_IMPORT}") from None
    except Exception as exc:  # the user's module raised while importing
        raise AutostructError(
            f"{what}: importing module '{name}' raised {type(exc).__name__}: {exc}. Fix the module so it imports "
            "cleanly (python -c 'import " + name + "')."
        ) from None


def import_modules(modules: Iterable[str], field: str = "imports") -> None:
    """Import every module of ``modules`` (e.g. the config's ``imports:``) so their ``@register_model`` run.

    ``field`` names the source in errors: a config key (``imports`` gives ``'imports.0'``) or a CLI option
    (``--import``)."""
    for i, name in enumerate(modules):
        import_module(name, f"{field} {name}" if field.startswith("-") else f"'{field}.{i}'")


def _factory_builder(fn: Callable[..., object], name: str) -> ModelBuilder:
    """Call ``fn`` with the dataset arguments its signature takes plus the model's keyword arguments."""
    try:
        params = inspect.signature(fn).parameters
        takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        accepted = {a for a in FACTORY_ARGS if takes_all or a in params}
    except (TypeError, ValueError):  # no introspectable signature: pass everything
        accepted = set(FACTORY_ARGS)

    def build(num_classes: int, in_channels: int, image_size: int, width: float = 1.0, **kwargs) -> nn.Module:
        given = {"num_classes": num_classes, "in_channels": in_channels, "image_size": image_size, "width": width}
        if width != 1.0 and "width" not in accepted:
            raise AutostructError(f"Model '{name}' takes no 'width' argument, so width={width:g} cannot apply. "
                                  "Remove width from the config or add a width parameter to the function.")
        args = {k: v for k, v in given.items() if k in accepted}
        try:
            model = fn(**args, **kwargs)
        except TypeError as exc:
            raise AutostructError(
                f"Model '{name}' could not be built with {sorted({**args, **kwargs})}: {exc}. Fix model_kwargs to "
                "match the function's parameters."
            ) from None
        if not isinstance(model, nn.Module):
            raise AutostructError(f"Model '{name}' returned a {type(model).__name__}, not a torch.nn.Module. "
                                  "The function must build and return the model.")
        return model

    build.__module__ = getattr(fn, "__module__", None) or __name__
    return build


def resolve_model(name: str) -> ModelBuilder:
    """The builder of ``name``: a registered name, or ``package.module:function`` (imported and registered)."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if not is_factory_name(name):
        if ":" in name:
            raise AutostructError(f"Model '{name}' is not of the form package.module:function "
                                  "(e.g. mypkg.models:small_cnn).")
        raise unknown_name("model", name, _REGISTRY)
    module_name, _, attr = name.partition(":")
    module = import_module(module_name, f"model '{name}'")
    fn: object = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            defined = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_"))
            raise AutostructError(f"Model '{name}': module '{module_name}' has no '{attr}'. Callables there: "
                                  f"{', '.join(defined) or 'none'}.")
    if not callable(fn):
        raise AutostructError(f"Model '{name}': '{attr}' is a {type(fn).__name__}, not a function that returns "
                              "an nn.Module.")
    _REGISTRY[name] = _factory_builder(fn, name)
    return _REGISTRY[name]


def _size(value: object) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, int) for v in value):
        return value[-1] if len(set(value[-2:])) == 1 else None
    return None


def declared_input(model: nn.Module) -> list[tuple[str, str, int]]:
    """What ``model`` says it was built for, as ``(where, "channels" | "size", value)``.

    Read from the conventions of popular libraries: timm's ``pretrained_cfg`` / ``default_cfg``
    ``input_size = (C, H, W)``, top-level ``in_chans`` / ``in_channels`` / ``img_size`` / ``image_size`` /
    ``input_size`` attributes, and a ``patch_embed.img_size``. A model that declares nothing gives ``[]``.
    """
    found: list[tuple[str, str, int]] = []
    for attr in ("pretrained_cfg", "default_cfg"):
        cfg = getattr(model, attr, None)
        shape = cfg.get("input_size") if isinstance(cfg, dict) else None
        if isinstance(shape, (tuple, list)) and len(shape) == 3 and all(isinstance(v, int) for v in shape):
            found += [(f"{attr}['input_size']", "channels", shape[0]), (f"{attr}['input_size']", "size", shape[-1])]
            break
    for attr, what in (("in_chans", "channels"), ("in_channels", "channels"), ("img_size", "size"),
                       ("image_size", "size"), ("input_size", "size")):
        value = model.__dict__.get(attr)  # plain attributes only, not submodules or properties
        value = value if what == "size" else (value if isinstance(value, int) else None)
        size = _size(value)
        if size is not None:
            found.append((attr, what, size))
    patch = getattr(model, "patch_embed", None)
    size = _size(getattr(patch, "img_size", None)) if isinstance(patch, nn.Module) else None
    if size is not None:
        found.append(("patch_embed.img_size", "size", size))
    return found


def check_model_input(model: nn.Module, name: str, num_classes: int, in_channels: int, image_size: int) -> None:
    """Check the model against the dataset's input: what it declares it was built for (see
    :func:`declared_input`), then one forward pass on a zero batch of that shape; a clear error names the model,
    both shapes and the fix."""
    import torch

    want = {"channels": in_channels, "size": image_size}
    wrong = [(where, what, value) for where, what, value in declared_input(model) if value != want[what]]
    if wrong:
        said = ", ".join(f"{where} = {value} ({'input channels' if what == 'channels' else 'px'})"
                         for where, what, value in wrong)
        raise AutostructError(
            f"Model '{name}' was built for other inputs than the dataset's {in_channels} channels of "
            f"{image_size}x{image_size} px: {said}. It may still run (global pooling hides the mismatch) but "
            "would be trained, pruned and exported for the wrong input. Fix: build it for the dataset (a "
            "factory receives in_channels and image_size when its signature has those parameters) or pick a "
            "dataset of the size it was built for."
        )

    shape = (2, in_channels, image_size, image_size)
    was_training = model.training
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            out = model.eval()(torch.zeros(shape))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AutostructError(
            f"Model '{name}' does not run on the dataset's input shape {tuple(shape[1:])} (channels, height, "
            f"width): {type(exc).__name__}: {first}. Fix: build the model for the dataset's in_channels and "
            "image_size (a factory receives them when its signature has those parameters) or pick a dataset of "
            "the shape the model expects."
        ) from None
    finally:
        model.train(was_training)
    if not hasattr(out, "shape") or tuple(out.shape) != (2, num_classes):
        got = tuple(out.shape) if hasattr(out, "shape") else type(out).__name__
        raise AutostructError(
            f"Model '{name}' returns {got} on a batch of 2 inputs, expected (2, {num_classes}) logits for the "
            f"dataset's {num_classes} classes. Fix: build the classifier with num_classes outputs (a factory "
            "receives num_classes when its signature has it) and return one tensor."
        )
