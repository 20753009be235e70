"""Helpers for example inputs and where a model lives, shared by the FLOPs counter, the latency timers and the
pruning graph's tracer."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

# What a model's forward takes: one tensor, positional tensors, or keyword tensors.
ExampleInputs = torch.Tensor | tuple[torch.Tensor, ...] | list[torch.Tensor] | dict[str, torch.Tensor]


def first_example(inputs: Any) -> Any:
    """Slice every tensor in ``inputs`` to batch 1."""
    if isinstance(inputs, torch.Tensor):
        return inputs[:1]
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(first_example(x) for x in inputs)
    if isinstance(inputs, dict):
        return {k: first_example(v) for k, v in inputs.items()}
    return inputs


def call_model(model: nn.Module, inputs: Any) -> Any:
    """``model`` on ``inputs``: one tensor, positional tensors (tuple or list) or keyword tensors (dict)."""
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    if isinstance(inputs, dict):
        return model(**inputs)
    return model(inputs)


def to_device(inputs: Any, device: torch.device) -> Any:
    """Move every tensor in ``inputs`` to ``device``."""
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device)
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(to_device(x, device) for x in inputs)
    if isinstance(inputs, dict):
        return {k: to_device(v, device) for k, v in inputs.items()}
    return inputs


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter or buffer (CPU for a model without either)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def describe(inputs: Any) -> str:
    """Shapes of ``inputs`` for error messages, e.g. ``(1, 3, 32, 32)``."""
    if isinstance(inputs, torch.Tensor):
        return str(tuple(inputs.shape))
    if isinstance(inputs, (tuple, list)):
        return "(" + ", ".join(describe(x) for x in inputs) + ")"
    if isinstance(inputs, dict):
        return "{" + ", ".join(f"{k}: {describe(v)}" for k, v in inputs.items()) + "}"
    return type(inputs).__name__
