"""Train a supernet once per (space, dataset, classes, settings, seed) and cache it, like the zoo's base models.

Sampling (``SupernetConfig.sampling``):

- ``uniform``: single-path one-shot (SPOS, Guo et al. 2020): each step trains one architecture drawn uniformly
  from the space (depth per stage, then kernel and expand per active block).
- ``sandwich``: the sandwich rule (BigNAS / Slimmable networks): each step accumulates the gradients of the
  largest, the smallest and ``sandwich_random`` random architectures, so both ends of the space stay trained.
  With ``distill`` (in-place distillation, BigNAS / Once-for-All) only the largest path learns the labels;
  every other path learns the largest's soft predictions of the same batch, detached
  (:func:`inplace_distillation_loss`), which is what lets the supernet rank its sub-networks as they rank
  when trained alone.

SGD with Nesterov momentum and a per-step cosine schedule; seeded (weights, batches and sampled paths), so
the same settings give the same weights. Batch-norm statistics in the supernet are shared by all paths and
therefore meaningless for any one of them: evaluation always recalibrates them per architecture
(:func:`autostruct.models.bn.recalibrate_bn`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from autostruct.nas.config import SupernetConfig
from autostruct.nas.space import Architecture, SearchSpace
from autostruct.nas.supernet import Supernet
from autostruct.utils.cache import cache_root, entry_lock
from autostruct.utils.device import resolve_device
from autostruct.utils.io import torch_save_atomic
from autostruct.utils.progress import progress_bar

log = logging.getLogger(__name__)

_KEY_VERSION = 1


@dataclass(frozen=True)
class SupernetInfo:
    """Where a cached supernet lives, whether it was already there, and what training recorded."""

    path: Path
    hit: bool
    metrics: dict[str, Any] = field(default_factory=dict)


def supernet_cache_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """``root``, else ``$AUTOSTRUCT_CACHE/supernets``, else ``~/.cache/autostruct/supernets``."""
    if root is not None:
        return Path(root).expanduser()
    return cache_root() / "supernets"


def _key_config(config: SupernetConfig) -> dict[str, Any]:
    """The config as the key hashes it: settings at their defaults that older keys never held are left out,
    so supernets cached before those settings existed are still found."""
    dump = config.model_dump()
    for name in ("sandwich_random", "distill"):
        if dump[name] == SupernetConfig.model_fields[name].default:
            dump.pop(name)
    return dump


def supernet_key(space: SearchSpace, dataset: Any, config: SupernetConfig, seed: int, val_size: int) -> str:
    """A readable file stem plus a hash of everything that changes the trained weights."""
    fields = {
        "version": _KEY_VERSION,
        "space": space.to_dict(),
        "dataset": dataset.name,
        "classes": list(dataset.classes) if dataset.classes else None,
        "shape": [dataset.in_channels, dataset.image_size, dataset.num_classes],
        "val_size": val_size,
        "config": _key_config(config),
        "seed": seed,
    }
    digest = hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:10]
    classes = "-c" + "_".join(map(str, dataset.classes)) if dataset.classes else ""
    return f"{space.name}-{dataset.name}{classes}-e{config.epochs}-s{seed}-{digest}"


def sandwich_paths(space: SearchSpace, config: SupernetConfig, rng: np.random.Generator) -> list[Architecture]:
    """The paths one training step runs: the largest first (the distillation teacher), then the smallest and
    ``sandwich_random`` random ones; one random path under uniform sampling."""
    if config.sampling == "sandwich":
        return [space.largest(), space.smallest(), *(space.sample(rng) for _ in range(config.sandwich_random))]
    return [space.sample(rng)]


def inplace_distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the student against the teacher's soft labels, batch mean: ``-sum_c p_T(c) log p_S(c)``.

    The teacher is detached, so the gradient flows into the student's path only (and the teacher's own update
    comes from its label loss).
    """
    p_teacher = F.softmax(teacher_logits.detach(), dim=1)
    return -(p_teacher * F.log_softmax(student_logits, dim=1)).sum(dim=1).mean()


def sandwich_step(net: Supernet, xb: torch.Tensor, yb: torch.Tensor, paths: list[Architecture], distill: bool) -> float:
    """Accumulate the gradients of one step over ``paths`` (``paths[0]`` is the teacher); returns the summed loss.

    Each path's loss is divided by the number of paths, so the step's size does not grow with it.
    """
    total, teacher = 0.0, None
    for i, arch in enumerate(paths):
        logits = net(xb, arch)
        if distill and i > 0:
            loss = inplace_distillation_loss(logits, teacher)
        else:
            loss = F.cross_entropy(logits, yb)
            teacher = logits.detach()
        (loss / len(paths)).backward()
        total += loss.item() / len(paths)
    return total


def _progress(enabled: bool):
    return progress_bar(enabled)


def train_supernet(
    space: SearchSpace,
    dataset: Any,
    config: SupernetConfig | None = None,
    *,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
) -> tuple[Supernet, dict[str, Any]]:
    """Train a fresh supernet of ``space`` on ``dataset.train`` (an ``autostruct.data.Dataset``).

    Returns the supernet (eval mode, on CPU) and metrics: loss per epoch, steps, seconds.
    """
    config = config or SupernetConfig()
    dev = resolve_device(device)
    torch.manual_seed(seed)
    # channels_last: PyTorch's CPU depthwise convolutions run 2-4x faster in NHWC.
    net = Supernet(space, dataset.num_classes, dataset.in_channels).to(dev, memory_format=torch.channels_last)
    train = dataset.train if config.train_size is None else dataset.train.subset(config.train_size, seed=seed)
    drop_last = len(train) >= config.batch_size
    steps_per_epoch = train.num_batches(config.batch_size, drop_last=drop_last)
    # Small datasets (Digits: 11 steps per epoch) get extra epochs up to config.min_steps optimizer steps.
    epochs = config.epochs_for(len(train), drop_last=drop_last)
    total = max(1, steps_per_epoch * epochs)
    decay, no_decay = [], []
    for p in net.parameters():
        (no_decay if p.dim() == 1 else decay).append(p)  # no weight decay on BN affine and biases
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.momentum > 0,
    )
    rng = np.random.default_rng(seed)
    losses: list[float] = []
    step = 0
    t0 = time.perf_counter()
    net.train()
    with _progress(progress) as prog:
        task = prog.add_task(f"supernet {dataset.name}", total=total, info="")
        for epoch in range(epochs):
            run_loss, seen = 0.0, 0
            batches = train.batches(config.batch_size, shuffle=True, seed=seed * 1000 + epoch, drop_last=drop_last)
            for xb, yb in batches:
                xb, yb = xb.to(dev, memory_format=torch.channels_last), yb.to(dev)
                for g in opt.param_groups:
                    g["lr"] = 0.5 * config.lr * (1 + math.cos(math.pi * step / total))
                opt.zero_grad(set_to_none=True)
                paths = sandwich_paths(space, config, rng)
                run_loss += sandwich_step(net, xb, yb, paths, config.distill and config.sampling == "sandwich") * len(xb)
                nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                opt.step()
                seen += len(xb)
                step += 1
                prog.update(task, advance=1, info=f"epoch {epoch + 1} loss {run_loss / max(seen, 1):.3f}")
            losses.append(run_loss / max(seen, 1))
    net = net.eval().to("cpu", memory_format=torch.contiguous_format)
    metrics = {
        "epochs": epochs,
        "steps": step,
        "train_images": len(train),
        "loss_per_epoch": losses,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    return net, metrics


def get_or_train_supernet(
    space: SearchSpace,
    dataset: Any,
    config: SupernetConfig | None = None,
    *,
    seed: int = 0,
    val_size: int = 0,
    root: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> tuple[Supernet, SupernetInfo]:
    """The cached supernet for these settings, training (and caching, atomically) it on a miss.

    ``val_size`` is the validation carve the dataset was loaded with (it changes the training split, so it is
    part of the key).
    """
    config = config or SupernetConfig()
    path = supernet_cache_dir(root) / f"{supernet_key(space, dataset, config, seed, val_size)}.pt"
    with entry_lock(path, f"loading or training {path.name}"):  # concurrent runs train one supernet once
        if path.is_file():
            try:
                blob = torch.load(path, map_location="cpu", weights_only=True)
                net = Supernet(space, dataset.num_classes, dataset.in_channels)
                net.load_state_dict(blob["state_dict"])
                return net.eval(), SupernetInfo(path, True, dict(blob.get("metrics", {})))
            except Exception as exc:  # torch raises many types for a truncated or damaged file
                log.warning("cached supernet %s is unreadable, training it again: %s", path, exc)
        net, metrics = train_supernet(space, dataset, config, seed=seed, device=device, progress=progress)
        torch_save_atomic(
            {"state_dict": net.state_dict(), "metrics": metrics, "space": space.to_dict(), "config": config.model_dump()},
            path,
        )
    return net, SupernetInfo(path, False, metrics)


def load_supernet(path: str | os.PathLike[str], num_classes: int, in_channels: int) -> Supernet:
    """Rebuild a supernet saved by :func:`get_or_train_supernet` (the space is stored in the file)."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    net = Supernet(SearchSpace.from_dict(blob["space"]), num_classes, in_channels)
    net.load_state_dict(blob["state_dict"])
    return net.eval()
