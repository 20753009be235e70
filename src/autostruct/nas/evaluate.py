"""Score architectures with supernet weights: extract, recalibrate batch norm, measure accuracy; price their costs.

Used by the NAS environment (the reward), the baselines (same evaluation) and the search's final report, so
every searcher sees identical numbers for an architecture.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from autostruct.errors import AutostructError
from autostruct.models.bn import recalibrate_bn
from autostruct.nas.costs import arch_cost
from autostruct.nas.lut import LatencyProfile
from autostruct.nas.space import Architecture, SearchSpace
from autostruct.nas.supernet import NASNet, Supernet, extract


class ArchEvaluator:
    """Accuracy of architectures with inherited supernet weights, after per-architecture BN recalibration.

    ``calib`` are fixed input batches (from the training split) for recalibration; ``val_x``/``val_y`` the fixed
    validation subset. Results are memoized per architecture, so re-sampling one costs nothing and returns the
    same number (evaluation is deterministic on CPU with fixed batches).
    """

    def __init__(
        self,
        supernet: Supernet,
        val_x: torch.Tensor,
        val_y: torch.Tensor,
        calib: list[torch.Tensor],
        *,
        image_size: int,
        batch_size: int = 250,
    ) -> None:
        if len(val_y) == 0:
            raise AutostructError("The validation subset is empty; raise search.val_size.")
        self.supernet = supernet.eval()
        # channels_last: PyTorch's CPU depthwise convolutions run 2-4x faster in NHWC.
        self.val_x, self.val_y = val_x.contiguous(memory_format=torch.channels_last), val_y
        self.calib = [xb.contiguous(memory_format=torch.channels_last) for xb in calib]
        self.image_size = image_size
        self.batch_size = batch_size
        self._cache: dict[tuple[int, ...], float] = {}
        self.evaluations = 0  # distinct architectures actually evaluated

    def clear_cache(self) -> None:
        """Forget memoized accuracies (e.g. so that each compared searcher pays for its own evaluations)."""
        self._cache.clear()

    def model(self, arch: Architecture) -> NASNet:
        """The standalone network of ``arch`` with inherited weights and recalibrated BN (eval mode)."""
        child = extract(self.supernet, arch, image_size=self.image_size).to(memory_format=torch.channels_last)
        return recalibrate_bn(child, self.calib, len(self.calib)).eval()

    @torch.no_grad()
    def accuracy(self, arch: Architecture) -> tuple[float, bool]:
        """(validation accuracy, whether it came from the memo)."""
        key = arch.indices
        if key in self._cache:
            return self._cache[key], True
        child = self.model(arch)
        correct = 0
        for i in range(0, len(self.val_y), self.batch_size):
            logits = child(self.val_x[i : i + self.batch_size])
            correct += int((logits.argmax(1) == self.val_y[i : i + self.batch_size]).sum())
        acc = correct / len(self.val_y)
        self._cache[key] = acc
        self.evaluations += 1
        return acc, False


@dataclass(frozen=True)
class TaskCosts:
    """Prices architectures for one task: exact FLOPs and params, and latency from a device profile if any."""

    in_channels: int
    image_size: int
    num_classes: int
    profile: LatencyProfile | None = None

    def __call__(self, arch: Architecture) -> dict[str, float]:
        cost = arch_cost(arch, self.in_channels, self.image_size, self.num_classes)
        out: dict[str, float] = {"flops": float(cost.flops), "params": float(cost.params)}
        if self.profile is not None:
            out["latency_ms"] = float(self.profile.predict(arch))
        return out

    def check_budgets(self, space: SearchSpace, budgets: Mapping[str, float], where: str = "task") -> None:
        """Raise :class:`AutostructError` for unknown/unpriceable costs or budgets nothing in the space meets."""
        if "latency_ms" in budgets and self.profile is None:
            raise AutostructError(f"{where}: a latency_ms budget needs a device (profile); set device: host or a file.")
        smallest = self(space.smallest())
        unknown = [k for k in budgets if k not in smallest]
        if unknown:
            raise AutostructError(f"{where}: unknown cost(s) {unknown}; valid: {sorted(smallest)}.")
        for name, target in budgets.items():
            if smallest[name] > target:
                largest = self(space.largest())[name]
                raise AutostructError(
                    f"{where}: no architecture of space '{space.name}' meets {name} <= {target:g}; the minimum "
                    f"achievable is {smallest[name]:g} (the largest is {largest:g}). Raise the budget to at least "
                    f"{smallest[name]:g} or use a smaller space/width."
                )


def describe(arch: Architecture, accuracy: float, costs: Mapping[str, float], reward: float, meets: bool) -> dict[str, Any]:
    """The JSON record of one evaluated architecture (episode logs, baselines, results)."""
    return {
        "arch": list(arch.indices),
        "arch_str": str(arch),
        "accuracy": accuracy,
        "reward": reward,
        "flops": int(costs["flops"]),
        "params": int(costs["params"]),
        "latency_ms": costs.get("latency_ms"),
        "meets_budgets": bool(meets),
        "time": time.time(),
    }
