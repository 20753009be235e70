"""Pruning functions beyond Torch-Pruning's per-layer ones, used by :mod:`autostruct.prune.graph` groups.

- :class:`WithExtras` wraps a Torch-Pruning handler so that a layer subclass's own per-channel tensors (a
  ``Linear`` subclass with a learnt output ``scale``) are cut with the layer;
- :class:`HeadDims` cuts the head dimensions of a timm-style attention block (fused ``qkv``, ``proj``,
  ``num_heads`` / ``head_dim`` attributes), a mapping Torch-Pruning's graph does not make through the head reshape;
- :class:`ParamCut` cuts a parameter that belongs to no prunable layer (a class token, a position embedding, a
  layer-scale ``gamma``) along its channel dimension.

Handlers are called as ``handler(module, indices_to_remove)`` on a deep copy, like Torch-Pruning's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

# Exact torch types: only subclasses can carry tensors of their own that Torch-Pruning does not know.
BASE_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear,
               nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.PReLU, nn.InstanceNorm1d,
               nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LayerNorm, nn.MultiheadAttention)


@dataclass(frozen=True)
class WithExtras:
    """A Torch-Pruning handler that also cuts a subclass's own per-channel tensors (e.g. a ``Linear`` subclass
    with a learnt output ``scale``): ``extras`` name parameters or buffers whose first dimension is the channels."""

    handler: Callable[[nn.Module, list[int]], Any]
    extras: tuple[str, ...]

    def __call__(self, layer: nn.Module, idxs: list[int]) -> Any:
        cut = set(idxs)
        for name in self.extras:
            t = getattr(layer, name)
            keep = torch.as_tensor([i for i in range(t.shape[0]) if i not in cut], dtype=torch.long, device=t.device)
            new = t.detach().index_select(0, keep)
            setattr(layer, name, nn.Parameter(new, requires_grad=t.requires_grad) if isinstance(t, nn.Parameter) else new)
        return self.handler(layer, idxs)


@dataclass(frozen=True)
class HeadDims:
    """Cut head dimensions of a timm-style attention block: ``qkv`` (a ``Linear`` to ``3 * num_heads * head_dim``
    laid out q | k | v), ``proj`` (a ``Linear`` from ``num_heads * head_dim``), and ``num_heads`` / ``head_dim``
    attributes read by its forward. Position ``p`` of the group is dimension ``p`` of q, k and v and input ``p``
    of ``proj``; ``head_dim`` is updated so the forward's reshape still fits. Torch-Pruning's graph does not map
    ``qkv`` onto ``proj`` through the head reshape, so this is autostruct's one convention-based pruner."""

    def __call__(self, attn: nn.Module, idxs: list[int]) -> nn.Module:
        import torch_pruning as tp

        width = attn.num_heads * attn.head_dim
        tp.prune_linear_out_channels(attn.qkv, sorted(p + s * width for s in range(3) for p in idxs))
        tp.prune_linear_in_channels(attn.proj, sorted(idxs))
        attn.head_dim = (width - len(idxs)) // attn.num_heads
        return attn


@dataclass(frozen=True)
class ParamCut:
    """Cut positions ``idxs`` of dimension ``dim`` of the parameter ``attr`` of a module (e.g. a ViT's
    ``cls_token`` of shape ``(1, 1, dim)`` along its last dimension); the module gets a new ``nn.Parameter``."""

    attr: str
    dim: int

    def __call__(self, owner: nn.Module, idxs: list[int]) -> nn.Module:
        old = getattr(owner, self.attr)
        cut = set(idxs)
        keep = torch.as_tensor([i for i in range(old.shape[self.dim]) if i not in cut], dtype=torch.long,
                               device=old.device)
        setattr(owner, self.attr, nn.Parameter(old.detach().index_select(self.dim, keep),
                                               requires_grad=old.requires_grad))
        return owner


def head_dims_block(module: nn.Module) -> bool:
    """Whether ``module`` follows the attention convention :class:`HeadDims` prunes."""
    qkv, proj = getattr(module, "qkv", None), getattr(module, "proj", None)
    heads, dim = getattr(module, "num_heads", None), getattr(module, "head_dim", None)
    if not (isinstance(qkv, nn.Linear) and isinstance(proj, nn.Linear) and isinstance(heads, int)
            and isinstance(dim, int)):
        return False
    return qkv.out_features == 3 * heads * dim and proj.in_features == heads * dim


def extra_tensors(module: nn.Module, channels: int) -> tuple[str, ...]:
    """A layer subclass's own tensors sized by its output channels, besides what Torch-Pruning cuts."""
    known = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked", "in_proj_weight",
             "in_proj_bias", "q_proj_weight", "k_proj_weight", "v_proj_weight", "bias_k", "bias_v"}
    own = [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
    return tuple(n for n, t in own if n not in known and t is not None and t.dim() >= 1 and t.shape[0] == channels)
