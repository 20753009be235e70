"""Latency lookup tables (device profiles): per-block latencies measured with onnxruntime, summed per architecture.

ProxylessNAS and Once-for-All predict a network's latency on a device as the sum of its blocks' latencies,
each measured once on that device. :func:`build_lut` measures every distinct block of a space (stem, each
MBConv shape, head) as its own ONNX model with onnxruntime, batch 1, and stores a *device profile* (JSON).
Each block's time includes one call's fixed overhead, measured separately (an identity model) and counted
once per prediction::

    predicted = overhead + sum(max(block - overhead, 0) for block in arch)

:func:`check_lut` measures whole sampled networks and reports the Spearman rank correlation of predicted vs
measured latency (the target is >= 0.9). A profile built elsewhere (another device) is loaded with
:func:`load_profile`; a profile that lacks a block an architecture needs raises :class:`AutostructError`.

The table format, the timing protocol and the rank check are :mod:`autostruct.measure.lut`'s (the one
latency-table module); this module only says which blocks a search space has and how a profile prices an
architecture.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autostruct.errors import AutostructError
from autostruct.measure.lut import LatencyTable, spearman, time_blocks
from autostruct.nas.costs import all_block_shapes, block_costs
from autostruct.nas.space import Architecture, SearchSpace
from autostruct.nas.supernet import MBConv, NASNet, _conv_bn

PROFILE_KIND = "nas-block-latency"

__all__ = ["PROFILE_KIND", "LatencyProfile", "LutCheck", "build_lut", "check_lut", "load_profile", "save_profile",
           "spearman"]


@dataclass(frozen=True)
class LatencyProfile:
    """Per-block latencies (ms, batch 1) of one device for one space and input shape.

    Stored as an :class:`autostruct.measure.LatencyTable` (the project's one device-profile format): the block
    keys are its entries; the space, input shape, class count and per-call overhead live in its ``meta``.
    """

    table: LatencyTable
    source: str = "<memory>"

    def __post_init__(self) -> None:
        meta = self.table.meta
        where = f"Device profile '{self.source}'"
        if meta.get("kind") != PROFILE_KIND:
            raise AutostructError(
                f"{where} is a latency table but not a NAS block profile (meta.kind != '{PROFILE_KIND}'). "
                "Build one with `autostruct nas build-lut`."
            )
        for key in ("space", "image_size", "in_channels", "num_classes", "overhead_ms"):
            if key not in meta:
                raise AutostructError(f"{where} lacks meta.{key}; rebuild it with `autostruct nas build-lut`.")

    @property
    def device(self) -> str:
        return self.table.device

    @property
    def space(self) -> dict[str, Any]:
        return dict(self.table.meta["space"])

    @property
    def image_size(self) -> int:
        return int(self.table.meta["image_size"])

    @property
    def in_channels(self) -> int:
        return int(self.table.meta["in_channels"])

    @property
    def num_classes(self) -> int:
        return int(self.table.meta["num_classes"])

    @property
    def overhead_ms(self) -> float:
        return float(self.table.meta["overhead_ms"])

    @property
    def blocks(self) -> dict[str, float]:
        return self.table.entries

    def predict(self, arch: Architecture) -> float:
        """Predicted latency of ``arch`` in ms; :class:`AutostructError` if the profile lacks one of its blocks."""
        keys = [b.key for b in block_costs(arch, self.in_channels, self.image_size, self.num_classes)]
        missing = self.table.missing(keys)
        if missing:
            raise AutostructError(
                f"Device profile '{self.source}' (device '{self.device}') has no latency for {len(missing)} block(s) "
                f"of this architecture, e.g. '{missing[0]}'. It was measured for space '{self.space.get('name')}', "
                f"{self.in_channels}x{self.image_size}x{self.image_size} inputs and {self.num_classes} classes. "
                "Measure a profile for this task on the device with `autostruct nas build-lut` "
                "(options --space, --image-size, --in-channels, --num-classes)."
            )
        overhead = self.overhead_ms
        return overhead + sum(max(self.blocks[k] - overhead, 0.0) for k in keys)

    def covers(self, space: SearchSpace) -> list[str]:
        """Keys of ``space``'s blocks this profile lacks (empty when it covers the whole space)."""
        return self.table.missing(b.key for b in all_block_shapes(space, self.in_channels, self.image_size, self.num_classes))

    def with_meta(self, **meta: Any) -> LatencyProfile:
        """A copy with extra ``meta`` fields (e.g. the result of :func:`check_lut`)."""
        table = LatencyTable(
            device=self.table.device,
            backend=self.table.backend,
            threads=self.table.threads,
            host=dict(self.table.host),
            entries=dict(self.table.entries),
            meta={**self.table.meta, **meta},
        )
        return LatencyProfile(table, self.source)


def save_profile(profile: LatencyProfile, path: str | Path) -> Path:
    """Write the profile as JSON, atomically."""
    return profile.table.save(path)


def load_profile(path: str | Path) -> LatencyProfile:
    """Read a device profile written by :func:`save_profile` / ``autostruct nas build-lut``."""
    path = Path(path)
    if not path.is_file():
        raise AutostructError(
            f"Device profile '{path}' does not exist. Build one on the device with `autostruct nas build-lut --out {path}`."
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AutostructError(f"Device profile '{path}' is not valid JSON: {exc}.") from None
    table = LatencyTable.from_dict(data, source=f"Device profile '{path}'")
    return LatencyProfile(table, str(path))


# ---------------------------------------------------------------------- measurement

class _Head(nn.Module):
    def __init__(self, c_in: int, c_out: int, num_classes: int) -> None:
        super().__init__()
        self.head = _conv_bn(c_in, c_out, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_out, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.head(x)), 1))


class _Overhead(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1.0


def _block_modules(space: SearchSpace, in_channels: int, image_size: int, num_classes: int) -> list[tuple[str, nn.Module, torch.Tensor]]:
    """One small module (and its input) per distinct block key of the space."""
    items: list[tuple[str, nn.Module, torch.Tensor]] = []
    for b in all_block_shapes(space, in_channels, image_size, num_classes):
        kind, *fields = b.key.split("_")
        v = {f[0]: int(f[1:]) for f in fields}
        if kind == "stem":
            module = _conv_bn(v["i"], v["o"], 3, v["s"])
        elif kind == "mbconv":
            module = MBConv(v["i"], v["o"], v["s"], v["k"], v["e"])
        else:
            module = _Head(v["i"], v["o"], v["n"])
        items.append((b.key, module, torch.randn(1, v["i"], v["r"], v["r"])))
    return items


def build_lut(
    space: SearchSpace,
    image_size: int,
    in_channels: int,
    num_classes: int = 10,
    *,
    device: str = "host",
    threads: int = 1,
    warmup: int = 10,
    runs: int = 30,
    rounds: int = 3,
    seed: int = 0,
    progress: bool = True,
) -> LatencyProfile:
    """Measure every distinct block of ``space`` with onnxruntime on this machine; return the device profile.

    The default mobilenetv2 space has 74 distinct blocks; building takes ~15-30 s on one core.
    """
    torch.manual_seed(seed)
    items = _block_modules(space, in_channels, image_size, num_classes)
    items.append(("__overhead__", _Overhead(), torch.randn(1, in_channels, image_size, image_size)))
    times = time_blocks(items, threads=threads, warmup=warmup, runs=runs, rounds=rounds,
                        progress="measuring blocks" if progress else None)
    overhead = times.pop("__overhead__")
    meta = {
        "kind": PROFILE_KIND,
        "space": space.to_dict(),
        "image_size": image_size,
        "in_channels": in_channels,
        "num_classes": num_classes,
        "overhead_ms": overhead,
        "batch_size": 1,
        "warmup": warmup,
        "runs": runs,
        "rounds": rounds,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    table = LatencyTable(device=device, backend="onnxruntime", threads=threads, entries=times, meta=meta)
    return LatencyProfile(table)


@dataclass(frozen=True)
class LutCheck:
    """Predicted vs measured latency (ms) of sampled architectures and their rank correlation."""

    spearman: float
    predicted_ms: list[float]
    measured_ms: list[float]
    archs: list[list[int]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "spearman": self.spearman,
            "n": len(self.archs),
            "predicted_ms": self.predicted_ms,
            "measured_ms": self.measured_ms,
            "archs": self.archs,
        }


def check_lut(
    profile: LatencyProfile,
    space: SearchSpace,
    n: int = 30,
    *,
    seed: int = 0,
    threads: int | None = None,
    warmup: int = 10,
    runs: int = 30,
    rounds: int = 3,
    progress: bool = True,
) -> LutCheck:
    """Measure ``n`` sampled whole networks (plus the smallest and largest) and compare with the profile."""
    if n < 2:
        raise AutostructError(f"The latency check needs at least 2 architectures, got n={n}.")
    rng = np.random.default_rng(seed)
    archs = [space.smallest(), space.largest(), *(space.sample(rng) for _ in range(max(n - 2, 0)))][:n]
    torch.manual_seed(seed)
    items = [
        (str(i), NASNet(a, profile.num_classes, profile.in_channels), torch.randn(1, profile.in_channels, profile.image_size, profile.image_size))
        for i, a in enumerate(archs)
    ]
    measured = time_blocks(items, threads=threads or profile.table.threads, warmup=warmup, runs=runs, rounds=rounds,
                           progress="measuring networks" if progress else None)
    predicted = [profile.predict(a) for a in archs]
    meas = [measured[str(i)] for i in range(len(archs))]
    return LutCheck(spearman(predicted, meas), predicted, meas, [list(a.indices) for a in archs])
