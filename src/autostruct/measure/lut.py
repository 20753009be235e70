"""Latency lookup tables: a device profile mapping caller-chosen keys to measured milliseconds.

The NAS search prices an architecture as the sum of its blocks' latencies (ProxylessNAS, Once-for-All) and the
latency-aware pruning reward does the same per layer; both need the blocks timed once per device, then looked
up thousands of times. A :class:`LatencyTable` holds one such profile. Keys are opaque strings that the caller
builds (e.g. ``"mbconv:k3:e6:c24->c32:s2:28x28"``) so the table knows nothing about search spaces.

>>> table = LatencyTable(device="laptop")
>>> table.set("conv3x3:c8:8x8", 0.05)
>>> table.total(["conv3x3:c8:8x8", "conv3x3:c8:8x8"])
0.1

This is the one latency-table module: the table format, the protocol that fills a table with many small blocks
(:func:`time_blocks`: ONNX Runtime, batch 1, interleaved rounds) and the rank check of a table's predictions
against whole-network measurements (:func:`spearman`). Callers only say which blocks exist: the NAS block profiles
(:mod:`autostruct.nas.lut`) and the pruning layer tables (:mod:`autostruct.prune.latency_table`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autostruct.errors import AutostructError
from autostruct.measure.latency import (
    LatencyStats,
    check_backend,
    export_onnx_for_timing,
    gc_paused,
    measure_latency,
    onnx_session,
)
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


# --- filling a table: many small blocks, timed interleaved ------------------------------------------------


def _runner(module: nn.Module, x: torch.Tensor, threads: int, tmp: Path, name: str) -> Callable[[], None]:
    """One call of ``module`` in an ONNX Runtime session opened as autostruct times models."""
    path = tmp / f"{name}.onnx"
    with contextlib.redirect_stdout(io.StringIO()):
        # The TorchScript exporter takes ~0.1 s per block where the dynamo one takes seconds; a table holds ~75.
        export_onnx_for_timing(module.eval(), (x,), path)
    sess = onnx_session(path, threads)
    feed = {sess.get_inputs()[0].name: x.numpy()}
    return lambda: sess.run(None, feed)


def _median_ms(run: Callable[[], None], warmup: int, runs: int) -> float:
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        run()
        times.append(time.perf_counter_ns() - t0)
    return float(np.median(times) / 1e6)


@contextlib.contextmanager
def _progress(total: int, description: str, enabled: bool) -> Iterator[Callable[[], None]]:
    if not enabled:
        yield lambda: None
        return
    from rich.progress import Progress  # only for interactive builds; rich is not needed to time

    with Progress(transient=True) as prog:
        task = prog.add_task(description, total=total)
        yield lambda: prog.advance(task)


def time_blocks(
    blocks: Sequence[tuple[str, nn.Module, torch.Tensor]],
    *,
    threads: int = 1,
    warmup: int = 10,
    runs: int = 30,
    rounds: int = 3,
    progress: str | None = None,
) -> dict[str, float]:
    """Latency (ms) of each ``(key, module, input)`` in ONNX Runtime: per round, the median of ``runs`` calls
    after ``warmup``; over ``rounds`` passes that visit every block in turn (interleaving spreads host noise), the
    median. ``progress`` names a progress bar (None: silent). Runs without gradients, with the collector paused
    (a collection inside a timed run would land on one block only).
    """
    runners = []
    with (
        torch.no_grad(),
        _progress(len(blocks), progress or "", progress is not None) as tick,
        tempfile.TemporaryDirectory(prefix="autostruct-lut-") as tmp,
    ):
        for i, (key, module, x) in enumerate(blocks):
            runners.append((key, _runner(module, x, threads, Path(tmp), f"block{i}")))
            tick()
    per_round: dict[str, list[float]] = {k: [] for k, _ in runners}
    with gc_paused():
        for _ in range(rounds):
            for key, run in runners:
                per_round[key].append(_median_ms(run, warmup, runs))
    return {k: float(np.median(v)) for k, v in per_round.items()}


def spearman(a: np.ndarray | Sequence[float], b: np.ndarray | Sequence[float]) -> float:
    """Spearman rank correlation (Pearson correlation of average ranks; ties share their mean rank): how well a
    table's predictions order networks by their measured latency."""

    def ranks(v: np.ndarray) -> np.ndarray:
        order = np.argsort(v, kind="mergesort")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=float)
        for value in np.unique(v):
            tie = v == value
            r[tie] = r[tie].mean()
        return r

    x, y = ranks(np.asarray(a, dtype=float)), ranks(np.asarray(b, dtype=float))
    if x.std() == 0 or y.std() == 0:
        return 0.0
    return float(np.corrcoef(x, y)[0, 1])
