"""Latency of a model on this host, in PyTorch or ONNX Runtime: warm-up runs, then the median of N timed runs.

Every latency autostruct reports is batch 1 unless said otherwise, single-threaded by default (the edge-device
setting, and the only one that is stable on a shared machine), and timed with ``time.perf_counter_ns`` around
one forward call each.
"""

from __future__ import annotations

import contextlib
import gc
import os
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from autostruct.errors import AutostructError, unknown_name
from autostruct.measure._inputs import ExampleInputs, model_device, to_device
from autostruct.measure.ort_timing import session_options
from autostruct.utils.io import disk_full_error, is_disk_full

if TYPE_CHECKING:
    import onnxruntime

BACKENDS = ("torch", "onnxruntime")


@dataclass(frozen=True)
class LatencyStats:
    """Summary of ``runs`` timed forward passes (milliseconds)."""

    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    runs: int
    backend: str
    threads: int
    batch: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(times_ns: Sequence[int], *, backend: str, threads: int, batch: int) -> LatencyStats:
    """Turn raw per-run times (nanoseconds) into :class:`LatencyStats`; p90 interpolates linearly."""
    if len(times_ns) == 0:
        raise ValueError("summarize needs at least one timing")
    ms = np.asarray(times_ns, dtype=np.float64) / 1e6
    return LatencyStats(
        median_ms=float(np.median(ms)),
        p90_ms=float(np.percentile(ms, 90)),
        mean_ms=float(ms.mean()),
        min_ms=float(ms.min()),
        runs=len(ms),
        backend=backend,
        threads=threads,
        batch=batch,
    )


def check_backend(backend: str) -> str:
    """Return ``backend`` if it is one of :data:`BACKENDS`, else raise an error listing them."""
    if backend not in BACKENDS:
        raise unknown_name("latency backend", backend, BACKENDS)
    return backend


def onnx_session(path: str | os.PathLike[str], threads: int = 1) -> onnxruntime.InferenceSession:
    """Open an ONNX model for CPU inference the way autostruct times it.

    ``threads`` intra-op threads, one inter-op thread, sequential execution, all graph optimizations.
    """
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise AutostructError(
            f"ONNX file '{path}' does not exist. Export one with `autostruct export` first."
        )
    _check_count("threads", threads, 1)
    try:
        return ort.InferenceSession(str(path), sess_options=session_options(threads),
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise AutostructError(f"ONNX Runtime could not load '{path}': {exc}") from exc


def measure_latency(
    model: nn.Module | None,
    example_inputs: ExampleInputs | None = None,
    *,
    input_shape: Sequence[int] | None = None,
    backend: str = "torch",
    warmup: int = 10,
    runs: int = 50,
    threads: int = 1,
    onnx_path: str | os.PathLike[str] | None = None,
) -> LatencyStats:
    """Time forward passes of ``model`` and summarize them.

    Inputs: ``example_inputs`` (a tensor or a tuple of positional tensors; the torch backend also takes a dict
    of keyword tensors), or ``input_shape``, the full shape of one random input *including the batch
    dimension*, e.g. ``(1, 3, 32, 32)`` for batch 1. With ``backend="onnxruntime"`` and an ``onnx_path`` whose
    input shapes are static, both may be omitted (and ``model`` may be ``None``).

    ``backend="torch"``: the model in eval mode under ``torch.inference_mode``, with ``torch.set_num_threads
    (threads)``; the previous thread count and training mode are restored afterwards. On CUDA each run is
    synchronized. ``backend="onnxruntime"``: the model is exported to a temporary ONNX file (opset chosen by
    torch's TorchScript exporter), unless ``onnx_path`` names an existing one, and run on the CPU through
    :func:`onnx_session`.

    The garbage collector is paused while timing, so a collection does not land inside one run.
    """
    check_backend(backend)
    _check_count("runs", runs, 1)
    _check_count("warmup", warmup, 0)
    _check_count("threads", threads, 1)
    if onnx_path is not None and backend != "onnxruntime":
        raise AutostructError(
            f"onnx_path is only used by backend='onnxruntime' (got backend='{backend}'). "
            "Drop onnx_path or pass backend='onnxruntime'."
        )
    if model is None and onnx_path is None:
        raise AutostructError("measure_latency needs a model, or backend='onnxruntime' with an onnx_path.")
    inputs = _make_inputs(example_inputs, input_shape, model)
    if backend == "torch":
        return _time_torch(model, inputs, warmup=warmup, runs=runs, threads=threads)
    return _time_onnxruntime(model, inputs, onnx_path, warmup=warmup, runs=runs, threads=threads)


# --- inputs -----------------------------------------------------------------------------------------------


def _check_count(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise AutostructError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def _make_inputs(
    example_inputs: ExampleInputs | None, input_shape: Sequence[int] | None, model: nn.Module | None
) -> ExampleInputs | None:
    if example_inputs is not None and input_shape is not None:
        raise AutostructError("Pass either example_inputs or input_shape to measure_latency, not both.")
    if example_inputs is not None:
        return example_inputs
    if input_shape is None:
        return None
    shape = tuple(input_shape)
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise AutostructError(
            f"input_shape must be positive integers including the batch dimension, e.g. (1, 3, 32, 32); "
            f"got {input_shape!r}."
        )
    device = model_device(model) if model is not None else torch.device("cpu")
    # Seeded so two measurements of the same model see the same input (latency should not depend on it, but
    # data-dependent kernels exist).
    gen = torch.Generator().manual_seed(0)
    return torch.randn(shape, generator=gen).to(device)


def _batch_of(inputs: ExampleInputs | None) -> int:
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0]) if inputs.dim() else 1
    if isinstance(inputs, (tuple, list)) and inputs:
        return _batch_of(inputs[0])
    if isinstance(inputs, dict) and inputs:
        return _batch_of(next(iter(inputs.values())))
    return 1


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Keep the garbage collector off inside the block (timed calls must not pay for a collection).

    No full collection first: in a process that holds torch it takes 0.1-0.3 s, more than most timed loops, and
    with the collector off none can start inside the block anyway.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --- torch ------------------------------------------------------------------------------------------------


def _time_torch(
    model: nn.Module, inputs: ExampleInputs | None, *, warmup: int, runs: int, threads: int
) -> LatencyStats:
    if inputs is None:
        raise AutostructError(
            "backend='torch' needs example_inputs or input_shape, e.g. input_shape=(1, 3, 32, 32)."
        )
    device = model_device(model)
    inputs = to_device(inputs, device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def forward() -> None:
        if isinstance(inputs, dict):
            model(**inputs)
        elif isinstance(inputs, (tuple, list)):
            model(*inputs)
        else:
            model(inputs)

    was_training = model.training
    old_threads = torch.get_num_threads()
    times: list[int] = []
    try:
        model.eval()
        torch.set_num_threads(threads)
        with torch.inference_mode():
            for _ in range(warmup):
                forward()
            sync()
            with gc_paused():
                for _ in range(runs):
                    t0 = time.perf_counter_ns()
                    forward()
                    sync()
                    times.append(time.perf_counter_ns() - t0)
    finally:
        torch.set_num_threads(old_threads)
        model.train(was_training)
    return summarize(times, backend="torch", threads=threads, batch=_batch_of(inputs))


# --- onnxruntime ------------------------------------------------------------------------------------------


def _as_tuple(inputs: ExampleInputs) -> tuple[torch.Tensor, ...]:
    if isinstance(inputs, torch.Tensor):
        return (inputs,)
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs)
    raise AutostructError(
        "backend='onnxruntime' takes a tensor or a tuple of positional tensors, not keyword inputs. "
        "Use backend='torch' for models whose forward needs keywords."
    )


def export_onnx_for_timing(model: nn.Module, inputs: tuple[torch.Tensor, ...], path: Path) -> None:
    """Export for timing only (``autostruct.export.export_onnx`` is the user-facing exporter)."""
    was_training = model.training
    model.eval()
    # Under no_grad nn.MultiheadAttention takes a fused fast path that has no ONNX export (as in export.py).
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter warns that it is legacy; it is the one that needs no extra packages
            # and handles every zoo model, so the warning is noise here.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            torch.onnx.export(
                model,
                inputs,
                str(path),
                dynamo=False,
                input_names=[f"input{i}" if i else "input" for i in range(len(inputs))],
                output_names=["output"],
            )
    except Exception as exc:  # the exporter raises many types; all but a full disk mean "this model does not export"
        if is_disk_full(exc):
            raise disk_full_error(path, exc) from None
        raise AutostructError(
            f"Could not export {type(model).__name__} to ONNX for timing: {exc}. Use backend='torch'."
        ) from exc
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        model.train(was_training)


def _inputs_from_session(session: onnxruntime.InferenceSession) -> tuple[torch.Tensor, ...]:
    tensors = []
    gen = torch.Generator().manual_seed(0)
    for meta in session.get_inputs():
        if not all(isinstance(d, int) and d > 0 for d in meta.shape):
            raise AutostructError(
                f"ONNX input '{meta.name}' has a dynamic shape {meta.shape}; pass input_shape, e.g. (1, 3, 32, 32)."
            )
        tensors.append(torch.randn(tuple(meta.shape), generator=gen))
    return tuple(tensors)


def _time_onnxruntime(
    model: nn.Module | None,
    inputs: ExampleInputs | None,
    onnx_path: str | os.PathLike[str] | None,
    *,
    warmup: int,
    runs: int,
    threads: int,
) -> LatencyStats:
    if onnx_path is not None:
        session = onnx_session(onnx_path, threads)
        args = _as_tuple(inputs) if inputs is not None else _inputs_from_session(session)
    else:
        if inputs is None:
            raise AutostructError(
                "backend='onnxruntime' needs example_inputs or input_shape to export the model, "
                "e.g. input_shape=(1, 3, 32, 32)."
            )
        args = _as_tuple(to_device(inputs, model_device(model)))
        with tempfile.TemporaryDirectory(prefix="autostruct-onnx-") as tmp:
            path = Path(tmp) / "model.onnx"
            export_onnx_for_timing(model, args, path)
            session = onnx_session(path, threads)  # reads the file now; the directory can go
    names = [meta.name for meta in session.get_inputs()]
    if len(names) != len(args):
        raise AutostructError(
            f"The ONNX model takes {len(names)} inputs ({', '.join(names)}); got {len(args)}."
        )
    feeds = {name: t.detach().cpu().numpy() for name, t in zip(names, args, strict=True)}
    for _ in range(warmup):
        session.run(None, feeds)
    times: list[int] = []
    with gc_paused():
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            session.run(None, feeds)
            times.append(time.perf_counter_ns() - t0)
    return summarize(times, backend="onnxruntime", threads=threads, batch=_batch_of(args))


# --- base vs pruned, interleaved ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyComparison:
    """Two models timed in one process with interleaved runs; ``speedup`` = base median / model median."""

    base: LatencyStats
    model: LatencyStats

    @property
    def speedup(self) -> float:
        return self.base.median_ms / max(self.model.median_ms, 1e-12)

    def as_fields(self) -> dict[str, float]:
        """The results.json fields: ``latency_ms``, ``latency_p90_ms``, ``base_latency_ms``, ... ``speedup``."""
        return {
            "latency_ms": self.model.median_ms,
            "latency_p90_ms": self.model.p90_ms,
            "base_latency_ms": self.base.median_ms,
            "base_latency_p90_ms": self.base.p90_ms,
            "speedup": self.speedup,
        }


def compare_latency(
    base: nn.Module,
    model: nn.Module,
    example_inputs: torch.Tensor,
    *,
    warmup: int = 10,
    runs: int = 50,
    threads: int = 1,
) -> LatencyComparison:
    """Time ``base`` and ``model`` in ONNX Runtime with interleaved runs (base, model, model, base, ...).

    Both are exported and opened first; then each round times one call of each, alternating which goes first,
    so load from other processes and CPU frequency changes fall on both alike. Same input for both.
    """
    base_stats, model_stats = time_interleaved([base, model], example_inputs, warmup=warmup, runs=runs,
                                               threads=threads)
    return LatencyComparison(base=base_stats, model=model_stats)


def time_interleaved(
    models: Sequence[nn.Module],
    example_inputs: torch.Tensor,
    *,
    warmup: int = 5,
    runs: int = 30,
    threads: int = 1,
) -> list[LatencyStats]:
    """Time several models in ONNX Runtime with interleaved runs (as :func:`compare_latency`, for N models).

    Each round times one call of every model in a rotating order, so host load falls on all of them alike.
    """
    _check_count("runs", runs, 1)
    _check_count("warmup", warmup, 0)
    _check_count("threads", threads, 1)
    sessions = []
    with tempfile.TemporaryDirectory(prefix="autostruct-onnx-") as tmp:
        for i, m in enumerate(models):
            args = _as_tuple(to_device(example_inputs, model_device(m)))
            path = Path(tmp) / f"model{i}.onnx"
            export_onnx_for_timing(m, args, path)
            sess = onnx_session(path, threads)
            feeds = {meta.name: t.detach().cpu().numpy() for meta, t in zip(sess.get_inputs(), args, strict=True)}
            sessions.append((sess, feeds))
    for sess, feeds in sessions:
        for _ in range(warmup):
            sess.run(None, feeds)
    n = len(sessions)
    times: list[list[int]] = [[] for _ in range(n)]
    with gc_paused():
        for r in range(runs):
            for j in range(n):
                i = (r + j) % n
                sess, feeds = sessions[i]
                t0 = time.perf_counter_ns()
                sess.run(None, feeds)
                times[i].append(time.perf_counter_ns() - t0)
    batch = _batch_of(example_inputs)
    return [summarize(t, backend="onnxruntime", threads=threads, batch=batch) for t in times]
