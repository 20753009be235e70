"""Model registry: ``@register_model`` adds a builder, :func:`create_model` builds one by name.

Builders take ``(num_classes, in_channels, image_size, width, **kwargs)`` and return an ``nn.Module``.
Users add their own models with the decorator; every registered model must be buildable from its name and
keyword arguments alone, because exported checkpoints rebuild models that way (see ``autostruct.export``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable

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
    if name not in _REGISTRY:
        raise unknown_name("model", name, _REGISTRY)
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
    model = _REGISTRY[name](**spec["kwargs"])
    # Exported checkpoints rebuild a model from this spec (then resize pruned layers); see autostruct.export.
    model.autostruct_spec = spec
    return model
