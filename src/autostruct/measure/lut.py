"""Latency lookup tables: a device profile mapping caller-chosen keys to measured milliseconds.

The NAS search prices an architecture as the sum of its blocks' latencies (ProxylessNAS, Once-for-All) and the
latency-aware pruning reward does the same per layer; both need the blocks timed once per device, then looked
up thousands of times. A :class:`LatencyTable` holds one such profile. Keys are opaque strings that the caller
builds (e.g. ``"mbconv:k3:e6:c24->c32:s2:28x28"``) so the table knows nothing about search spaces.

>>> table = LatencyTable(device="laptop")
>>> table.set("conv3x3:c8:8x8", 0.05)
>>> table.total(["conv3x3:c8:8x8", "conv3x3:c8:8x8"])
0.1
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from autostruct.errors import AutostructError
from autostruct.measure.latency import LatencyStats, check_backend, measure_latency
from autostruct.utils.io import write_json_atomic

FORMAT = "autostruct-latency-table"
FORMAT_VERSION = 1


def _cpu_model() -> str:
    # platform.processor() is empty on most Linux builds; /proc/cpuinfo names the CPU.
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_info() -> dict[str, Any]:
    """What a latency profile was measured on: OS, CPU, core count and library versions."""
    import onnxruntime
    import torch

    return {
        "system": platform.system(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def default_device_name() -> str:
    """A device name for tables measured on this host, e.g. ``linux-x86_64``."""
    return f"{platform.system().lower()}-{platform.machine()}"


def measure_op_latency(
    module: nn.Module,
    input_shape: Sequence[int],
    backend: str = "torch",
    *,
    warmup: int = 10,
    runs: int = 50,
    threads: int = 1,
) -> LatencyStats:
    """Time one block (any ``nn.Module``) on a random input of ``input_shape`` (batch dimension included).

    The same protocol as :func:`~autostruct.measure.measure_latency`, so a table's entries and a whole model's
    measured latency are comparable (their sum still misses the glue between blocks and framework overhead per
    call, which is why tables are best used to rank architectures, not to predict absolute latency).
    """
    return measure_latency(
        module, input_shape=input_shape, backend=backend, warmup=warmup, runs=runs, threads=threads
    )


@dataclass
class LatencyTable:
    """A device profile: ``entries`` maps caller-chosen keys to median latency in milliseconds.

    ``backend`` and ``threads`` say how every entry was measured; ``host`` describes the machine; ``meta`` is
    free-form for the caller (e.g. the search space the keys come from, to refuse a table built for another).
    """

    device: str = field(default_factory=default_device_name)
    backend: str = "torch"
    threads: int = 1
    host: dict[str, Any] = field(default_factory=host_info)
    entries: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_backend(self.backend)
        if not isinstance(self.threads, int) or self.threads < 1:
            raise AutostructError(f"LatencyTable threads must be an integer >= 1, got {self.threads!r}.")
        if not self.device:
            raise AutostructError("LatencyTable needs a non-empty device name, e.g. 'raspberry-pi-4'.")

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: object) -> bool:
        return key in self.entries

    def __getitem__(self, key: str) -> float:
        return self.entries[key]

    def set(self, key: str, ms: float) -> None:
        """Record ``ms`` milliseconds for ``key`` (replacing any earlier value)."""
        if not isinstance(key, str) or not key:
            raise AutostructError(f"Latency table keys must be non-empty strings, got {key!r}.")
        ms = float(ms)
        if not ms >= 0.0:  # also rejects NaN
            raise AutostructError(f"Latency for '{key}' must be a number >= 0 ms, got {ms!r}.")
        self.entries[key] = ms

    def measure(
        self, key: str, module: nn.Module, input_shape: Sequence[int], *, warmup: int = 10, runs: int = 50
    ) -> float:
        """Time ``module`` with this table's backend and threads, store the median under ``key``, return it."""
        stats = measure_op_latency(
            module, input_shape, self.backend, warmup=warmup, runs=runs, threads=self.threads
        )
        self.set(key, stats.median_ms)
        return stats.median_ms

    def missing(self, keys: Iterable[str]) -> list[str]:
        """The keys (in order, without repeats) that the table has no entry for."""
        return [k for k in dict.fromkeys(keys) if k not in self.entries]

    def total(self, keys: Iterable[str]) -> float:
        """Sum of the entries for ``keys`` (repeats count each time): an architecture's predicted latency."""
        keys = list(keys)
        absent = self.missing(keys)
        if absent:
            shown = ", ".join(f"'{k}'" for k in absent[:5]) + (" ..." if len(absent) > 5 else "")
            raise AutostructError(
                f"Latency table for device '{self.device}' has no entry for {len(absent)} key(s): {shown}. "
                "It was probably built for another search space or input size; measure the missing blocks "
                "or rebuild the table."
            )
        return sum(self.entries[k] for k in keys)

    # --- persistence ------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "device": self.device,
            "backend": self.backend,
            "threads": self.threads,
            "host": dict(self.host),
            "meta": dict(self.meta),
            "entries": dict(self.entries),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "latency table") -> LatencyTable:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise AutostructError(f'{source} is not an autostruct latency table (no "format": "{FORMAT}").')
        if data.get("version") != FORMAT_VERSION:
            raise AutostructError(
                f"{source} has format version {data.get('version')!r}; this autostruct reads version "
                f"{FORMAT_VERSION}. Rebuild the table with this version."
            )
        entries = data.get("entries", {})
        if not isinstance(entries, dict):
            raise AutostructError(f"{source}: 'entries' must be a mapping of key -> milliseconds.")
        try:
            table = cls(
                device=data["device"],
                backend=data.get("backend", "torch"),
                threads=data.get("threads", 1),
                host=dict(data.get("host", {})),
                meta=dict(data.get("meta", {})),
            )
        except KeyError as exc:
            raise AutostructError(f"{source} lacks the field {exc}.") from None
        for key, ms in entries.items():
            if isinstance(ms, bool) or not isinstance(ms, (int, float)):
                raise AutostructError(
                    f"{source}: entry '{key}' must be a number of milliseconds, got {ms!r}."
                )
            table.set(key, ms)
        return table

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the table as JSON, atomically (a crash never leaves half a table)."""
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LatencyTable:
        """Read a table written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise AutostructError(
                f"Latency table '{path}' does not exist. Build one with LatencyTable.measure."
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AutostructError(f"Latency table '{path}' is not readable JSON: {exc}") from None
        return cls.from_dict(data, source=f"Latency table '{path}'")
