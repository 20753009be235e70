"""Batch-norm recalibration (EagleEye's adaptive BN, Li et al. 2020), for pruned models and NAS children.

After channels are cut, the running statistics of the remaining batch norms describe activations the pruned
network no longer produces, so its accuracy without fine-tuning badly understates what it can do. Re-estimating
the statistics on a few training batches (no gradient step) makes that accuracy a far better proxy.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn


def _as_batches(data: Any, batches: int, batch_size: int, seed: int) -> Iterable[Any]:
    """Yield up to ``batches`` input batches from a Split-like object, (x, y) batches, or tensors."""
    if hasattr(data, "batches"):  # autostruct.data.Split
        source = data.batches(batch_size, shuffle=True, seed=seed, drop_last=False)
    elif hasattr(data, "x") and isinstance(data.x, torch.Tensor):
        source = (data.x[i : i + batch_size] for i in range(0, len(data.x), batch_size))
    else:
        source = data
    for i, item in enumerate(source):
        if i >= batches:
            break
        yield item[0] if isinstance(item, (tuple, list)) else item


def recalibrate_bn(
    model: nn.Module,
    data: Any,
    batches: int = 10,
    *,
    batch_size: int = 128,
    seed: int = 0,
) -> nn.Module:
    """Re-estimate every batch norm's running mean and variance of ``model`` in place; returns ``model``.

    ``data``: an ``autostruct.data.Split`` (shuffled ``batches`` of ``batch_size`` with ``seed``), or any
    iterable of input tensors or ``(x, y)`` batches (the first ``batches`` are used). Statistics are reset and
    then averaged over the batches with equal weight (``momentum=None``); only batch norms run in training
    mode (dropout stays off), nothing gets a gradient, and every module's mode and momentum are restored.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not bns or batches <= 0:
        return model
    modes = {m: m.training for m in model.modules()}
    momenta = {m: m.momentum for m in bns}
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    try:
        model.eval()
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative moving average: every batch counts the same
            m.train()
        with torch.no_grad():
            for x in _as_batches(data, batches, batch_size, seed):
                model(x.to(device))
    finally:
        for m, mode in modes.items():
            m.training = mode
        for m, momentum in momenta.items():
            m.momentum = momentum
    return model
