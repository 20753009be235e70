"""Per-layer latency tables for pruning, measured on this host (or read from a device profile JSON).

:func:`layer_specs` lists every conv and linear layer of a model with its geometry and its input / output
channel counts as affine functions of the pruning groups' kept channels (read off the groups' surgery ops,
so they are exactly what :func:`~autostruct.prune.surgery.prune_counts` produces). Each layer gets a grid of
counts: the ones the rounding allows (``round_to``), thinned to at most ``max_points`` per axis.

:func:`measure_cells` times one ONNX model per (layer geometry, in, out) cell (conv + bias + ReLU, as ONNX
Runtime fuses a conv with its batch norm and activation), batch 1, interleaved rounds, medians.
:func:`calibrate` times a few whole pruned models (uniform and random keep ratios) and fits the
:class:`~autostruct.prune.latency.LatencyModel`'s ``scale`` and ``overhead`` to them.

:func:`host_table` does all of this once per host and model (``$AUTOSTRUCT_CACHE/prune-lut/``) and returns a
:class:`~autostruct.measure.LatencyTable` (the project's device-profile format, ``meta.kind`` =
``prune-layer-latency``); :func:`load_table` reads one written on another device; :func:`latency_model` turns a
table into the cost model the budget wall uses.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from autostruct.errors import AutostructError
from autostruct.measure import LatencyTable
from autostruct.measure.latency import time_interleaved
from autostruct.measure.ort_timing import session_options, time_cells_shuffled
from autostruct.measure.rounding import host_profile
from autostruct.prune.budget import ceil_to_allowed
from autostruct.prune.groups import PruningGraph, group_allowed, prune_counts
from autostruct.prune.latency import LatencyModel, LayerTable, fit_calibration, monotone_envelope
from autostruct.utils.cache import cache_root, entry_lock

TABLE_KIND = "prune-layer-latency"
MAX_POINTS = 9
CALL_KEY = "__call__"
"""The table entry holding one session call's fixed cost (an identity-like model), subtracted from every layer."""


@dataclass(frozen=True)
class LayerSpec:
    """One conv / linear layer: geometry, channel forms (affine in the kept channels) and its table grid."""

    name: str
    op: str  # "conv", "dwconv" or "linear"
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    groups: int  # conv groups of a non-depthwise conv (depthwise: as many as channels)
    in_hw: tuple[int, int]
    in_const: float
    in_coef: tuple[float, ...]
    out_const: float
    out_coef: tuple[float, ...]
    in_grid: tuple[int, ...]
    out_grid: tuple[int, ...]

    def key(self, c_in: int, c_out: int) -> str:
        """The table key of this geometry at ``c_in`` -> ``c_out`` channels (depthwise: ``c_out`` only)."""
        if self.op == "linear":
            return f"linear:i{c_in}:o{c_out}"
        geo = (f"k{self.kernel[0]}x{self.kernel[1]}:s{self.stride[0]}x{self.stride[1]}:p{self.padding[0]}x"
               f"{self.padding[1]}:d{self.dilation[0]}x{self.dilation[1]}:{self.in_hw[0]}x{self.in_hw[1]}")
        if self.op == "dwconv":
            return f"dwconv:{geo}:c{c_out}"
        return f"conv:{geo}:g{self.groups}:i{c_in}:o{c_out}"

    def cells(self) -> list[tuple[int, int]]:
        ins = (0,) if self.op == "dwconv" else self.in_grid
        return [(i, o) for i in ins for o in self.out_grid]


def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[-1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _thin(values: Sequence[int], max_points: int) -> tuple[int, ...]:
    """At most ``max_points`` of the sorted ``values``, evenly spread, always keeping the first and the last."""
    vals = sorted({int(v) for v in values if v >= 1})
    if len(vals) <= max_points:
        return tuple(vals)
    idx = np.unique(np.round(np.linspace(0, len(vals) - 1, max_points)).astype(int))
    return tuple(vals[i] for i in idx)


def _axis_grid(const: float, coef: np.ndarray, allowed: list[np.ndarray], full: int, max_points: int) -> tuple[int, ...]:
    nz = np.nonzero(coef)[0]
    if len(nz) == 0:
        return (full,)
    if len(nz) == 1:
        g = int(nz[0])
        return _thin([int(round(const + coef[g] * a)) for a in allowed[g]], max_points)
    least = const + sum(coef[g] * allowed[g][0] for g in nz)
    return _thin(np.linspace(least, full, max(2, min(max_points, full))).round().astype(int).tolist(), max_points)


def layer_specs(model: nn.Module, graph: PruningGraph, example: torch.Tensor, round_to: int = 1,
                max_points: int = MAX_POINTS) -> list[LayerSpec]:
    """Every conv / linear layer of ``model`` (forward order) with its channel forms and table grid."""
    shapes: dict[str, tuple[int, ...]] = {}
    names = {m: n for n, m in model.named_modules()}

    def hook(module, args, _out):
        if args and isinstance(args[0], torch.Tensor):
            shapes.setdefault(names[module], tuple(args[0].shape))

    layers = [m for m in model.modules() if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))]
    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        with torch.no_grad():
            model.eval()(example[:1])
    finally:
        for h in handles:
            h.remove()
    n_groups = len(graph.groups)
    coef: dict[tuple[str, str], np.ndarray] = {}
    for g in graph.groups:
        for op in g.ops:
            for side in (("in", "out") if op.kind == "io" else (op.kind,)):
                coef.setdefault((op.module, side), np.zeros(n_groups))[g.index] += len(op.positions) / g.channels
    allowed = [group_allowed(g, round_to) for g in graph.groups]
    nominal = graph.channels.astype(np.float64)
    zeros = np.zeros(n_groups)
    specs = []
    for m in layers:
        name = names[m]
        if name not in shapes:
            continue  # not called in the forward pass
        f_in, f_out = coef.get((name, "in"), zeros), coef.get((name, "out"), zeros)
        if isinstance(m, nn.Linear):
            full_in, full_out = m.in_features, m.out_features
            op, kernel, stride, padding, dilation, groups, hw = "linear", (1, 1), (1, 1), (0, 0), (1, 1), 1, (1, 1)
        else:
            if m.weight.dim() != 4 or isinstance(m.padding, str):
                raise AutostructError(
                    f"Layer '{name}' ({type(m).__name__}) is not a 2-d conv with numeric padding; the pruning "
                    "latency table prices Conv2d and Linear layers only. Use a FLOPs ratio for this model."
                )
            full_in, full_out = m.in_channels, m.out_channels
            depthwise = m.groups == m.out_channels == m.in_channels and m.groups > 1
            op = "dwconv" if depthwise else "conv"
            kernel, stride = _pair(m.kernel_size), _pair(m.stride)
            padding, dilation = _pair(m.padding), _pair(m.dilation)
            groups = 1 if depthwise else int(m.groups)
            hw = (int(shapes[name][2]), int(shapes[name][3]))
            if depthwise:
                f_in = zeros  # its input count is its output count; the table has one axis
        in_const = float(full_in - f_in @ nominal)
        out_const = float(full_out - f_out @ nominal)
        in_grid = (0,) if op == "dwconv" else _axis_grid(in_const, f_in, allowed, full_in, max_points)
        out_grid = _axis_grid(out_const, f_out, allowed, full_out, max_points)
        specs.append(LayerSpec(
            name=name, op=op, kernel=kernel, stride=stride, padding=padding, dilation=dilation, groups=groups,
            in_hw=hw, in_const=0.0 if op == "dwconv" else in_const, in_coef=tuple(float(v) for v in f_in),
            out_const=out_const, out_coef=tuple(float(v) for v in f_out), in_grid=in_grid, out_grid=out_grid,
        ))
    return specs


# --- measuring ---------------------------------------------------------------------------------------------


def _cell_onnx(spec: LayerSpec, c_in: int, c_out: int, seed: int) -> tuple[bytes, tuple[int, ...]]:
    """One-layer ONNX model of ``spec`` at ``c_in -> c_out`` (conv + bias + ReLU, or Gemm) and its input shape."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    if spec.op == "linear":
        w = rng.standard_normal((c_out, c_in)).astype(np.float32) * 0.1
        node = helper.make_node("Gemm", ["x", "w", "b"], ["out"], transB=1)
        nodes, shape, out_shape = [node], (1, c_in), [1, c_out]
    else:
        if spec.op == "dwconv":
            c_in, groups = c_out, c_out
        else:
            groups = spec.groups
        w = rng.standard_normal((c_out, c_in // groups, *spec.kernel)).astype(np.float32) * 0.1
        h, wd = spec.in_hw
        oh = (h + 2 * spec.padding[0] - spec.dilation[0] * (spec.kernel[0] - 1) - 1) // spec.stride[0] + 1
        ow = (wd + 2 * spec.padding[1] - spec.dilation[1] * (spec.kernel[1] - 1) - 1) // spec.stride[1] + 1
        nodes = [
            helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=list(spec.kernel), strides=list(spec.stride),
                             pads=[spec.padding[0], spec.padding[1]] * 2, dilations=list(spec.dilation), group=groups),
            helper.make_node("Relu", ["y"], ["out"]),
        ]
        shape, out_shape = (1, c_in, h, wd), [1, c_out, oh, ow]
    b = rng.standard_normal(c_out).astype(np.float32) * 0.1
    graph = helper.make_graph(
        nodes, "layer", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, out_shape)],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString(), shape


def measure_cells(specs: Sequence[LayerSpec], threads: int = 1, *, rounds: int = 5, runs: int = 5,
                  warmup: int = 3, seed: int = 0, skip: Sequence[str] = ()) -> dict[str, float]:
    """Median ONNX Runtime latency (ms, batch 1) of every distinct cell of ``specs`` not in ``skip``.

    Interleaved: each round times ``runs`` calls of every cell in a shuffled order, so load from other
    processes spreads over all cells.
    """
    import onnxruntime as ort

    opts = session_options(threads, quiet=True)
    rng = np.random.default_rng(seed)
    done = set(skip)
    cells = []
    for spec in specs:
        for c_in, c_out in spec.cells():
            key = spec.key(c_in, c_out)
            if key in done:
                continue
            done.add(key)
            blob, shape = _cell_onnx(spec, c_in, c_out, seed)
            sess = ort.InferenceSession(blob, sess_options=opts, providers=["CPUExecutionProvider"])
            feed = {"x": rng.standard_normal(shape).astype(np.float32)}
            for _ in range(warmup):
                sess.run(None, feed)
            cells.append((key, sess, feed))
    if CALL_KEY not in done:
        # A one-op model on a tiny tensor: what every session.run costs whatever the layer (subtracted per layer).
        from onnx import TensorProto, helper

        g = helper.make_graph([helper.make_node("Relu", ["x"], ["out"])], "call",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 1])])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        m.ir_version = 8
        sess = ort.InferenceSession(m.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])
        cells.append((CALL_KEY, sess, {"x": np.zeros((1, 1), dtype=np.float32)}))
    return time_cells_shuffled(cells, rounds=rounds, runs=runs, rng=rng)


def latency_model(specs: Sequence[LayerSpec], table: LatencyTable, scale: float | None = None,
                  overhead: float | None = None) -> LatencyModel:
    """The cost model of ``specs`` priced by ``table`` (its calibration unless ``scale``/``overhead`` are given).

    Raises :class:`AutostructError` naming the missing keys when the table lacks a cell.
    """
    missing = [spec.key(i, o) for spec in specs for i, o in spec.cells() if spec.key(i, o) not in table]
    if missing:
        raise AutostructError(
            f"Latency table for device '{table.device}' has no entry for {len(missing)} layer cell(s), e.g. "
            f"'{missing[0]}'. It was built for another model, input size or round_to; rebuild it for this one "
            "on the device (autostruct prune build-lut CONFIG --out TABLE.json)."
        )
    call = table.entries.get(CALL_KEY, 0.0)
    tables = []
    for spec in specs:
        ins = (0,) if spec.op == "dwconv" else spec.in_grid
        values = np.asarray([[max(table[spec.key(i, o)] - call, 0.0) for o in spec.out_grid] for i in ins])
        tables.append(LayerTable(np.asarray(ins, dtype=np.float64), np.asarray(spec.out_grid, dtype=np.float64),
                                 monotone_envelope(values)))
    cal = table.meta.get("calibration", {})
    return LatencyModel(
        in_const=np.asarray([s.in_const for s in specs], dtype=np.float64),
        in_coef=np.asarray([s.in_coef for s in specs], dtype=np.float64).reshape(len(specs), -1),
        out_const=np.asarray([s.out_const for s in specs], dtype=np.float64),
        out_coef=np.asarray([s.out_coef for s in specs], dtype=np.float64).reshape(len(specs), -1),
        tables=tuple(tables),
        scale=float(cal.get("scale", 1.0) if scale is None else scale),
        overhead=float(cal.get("overhead", 0.0) if overhead is None else overhead),
    )


def calibration_counts(graph: PruningGraph, round_to: int, n_random: int = 4, seed: int = 0) -> list[np.ndarray]:
    """Configurations the calibration times: uniform keep ratios from the smallest allowed to full, and random ones."""
    allowed = [group_allowed(g, round_to) for g in graph.groups]
    out = []
    for r in (0.0, 0.3, 0.5, 0.7, 1.0):
        out.append(np.asarray([a[min(len(a) - 1, int(math.ceil(r * (len(a) - 1))))] for a in allowed], dtype=np.int64))
    rng = np.random.default_rng(seed)
    for _ in range(n_random):
        out.append(np.asarray([rng.choice(a) for a in allowed], dtype=np.int64))
    return out


def calibrate(model: nn.Module, graph: PruningGraph, lat: LatencyModel, example: torch.Tensor,
              configs: Sequence[np.ndarray], threads: int = 1, runs: int = 40) -> dict[str, Any]:
    """Time the pruned ``configs`` end to end and fit ``scale``/``overhead`` of ``lat`` to them.

    Each configuration is timed interleaved with the base model only (as the run's results time a final model,
    :func:`~autostruct.measure.compare_latency`): timing many models in one rotation evicts each one's weights
    from the CPU caches between calls and makes all of them look slower than they run alone.

    The fit is to each configuration's time relative to the base timed beside it, times the median of the base's
    times (``normalised_ms``): a shared host's speed drifts between configurations (a base model's median moved by
    40% within 34 s on the development machine while a pruned / base ratio held to 3%), and an absolute fit then
    mistakes the drift for a fixed overhead (seen: overhead 0.26 of a 0.31 ms base, which priced every strategy
    within 5% of the base while they measured 20-30% faster).
    """
    measured, bases = [], []
    for c in configs:
        pruned = prune_counts(model, graph, c, importance=None).eval()
        base_st, st = time_interleaved([model, pruned], example[:1], runs=runs, warmup=5, threads=threads)
        measured.append(st.median_ms)
        bases.append(base_st.median_ms)
    base_ref = float(np.median(bases))
    normalised = [m / b * base_ref for m, b in zip(measured, bases, strict=True)]
    sums = [float(lat.layer_sum(c)) for c in configs]
    scale, overhead = fit_calibration(sums, normalised)
    fitted = [overhead + scale * s for s in sums]
    errors = [abs(f - m) / m for f, m in zip(fitted, normalised, strict=True)]
    return {"scale": scale, "overhead": overhead, "layer_sums_ms": sums, "measured_ms": measured,
            "base_measured_ms": bases, "normalised_ms": normalised,
            "configs": [[int(v) for v in c] for c in configs], "max_rel_error": max(errors),
            "mean_rel_error": float(np.mean(errors))}


# --- the cached host table, device profiles ----------------------------------------------------------------


def model_fingerprint(specs: Sequence[LayerSpec]) -> str:
    """A short digest of the layers' geometry and grids (what the table's keys and calibration depend on)."""
    parts = [(s.op, s.key(0, 0), s.in_const, s.in_coef, s.out_const, s.out_coef, s.in_grid, s.out_grid) for s in specs]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:12]


def host_table_path(specs: Sequence[LayerSpec], threads: int = 1) -> Path:
    """``$AUTOSTRUCT_CACHE/prune-lut/<host profile>-<model fingerprint>.json``."""
    return cache_root() / "prune-lut" / f"{host_profile(threads)}-{model_fingerprint(specs)}.json"


def host_table(model: nn.Module, graph: PruningGraph, example: torch.Tensor, round_to: int = 1, *,
               threads: int = 1, use_cache: bool = True, refresh: bool = False, recalibrate: bool = False,
               max_points: int = MAX_POINTS) -> tuple[LatencyTable, Path | None]:
    """The calibrated per-layer table of ``model`` on this host: read from the cache, or measured and cached.

    Measuring takes seconds (ResNet-20: ~50-150 cells and 9 whole models). ``recalibrate`` re-times the whole
    models of a cached table (a few seconds) and stores the new calibration: a host's speed drifts (load, clock),
    and a latency budget is checked against a measurement made now. Returns the table and its path (None when
    ``use_cache`` is off).
    """
    specs = layer_specs(model, graph, example, round_to, max_points)
    path = host_table_path(specs, threads) if use_cache else None
    with entry_lock(path, "measuring this host's latency table"):  # concurrent runs measure it once
        if path is not None and path.is_file() and not refresh:
            try:
                table = LatencyTable.load(path)
                if table.meta.get("kind") == TABLE_KIND and table.meta.get("fingerprint") == model_fingerprint(specs):
                    lat = latency_model(specs, table, scale=1.0, overhead=0.0)  # every cell present
                    if recalibrate:
                        table.meta["calibration"] = calibrate(model, graph, lat, example,
                                                              calibration_counts(graph, round_to), threads)
                        table.save(path)
                    return table, path
            except AutostructError:
                pass  # a damaged or stale cache file is measured again
        t0 = time.monotonic()
        entries = measure_cells(specs, threads)
        table = LatencyTable(backend="onnxruntime", threads=threads, entries=entries)
        lat = latency_model(specs, table, scale=1.0, overhead=0.0)
        cal = calibrate(model, graph, lat, example, calibration_counts(graph, round_to), threads)
        table.meta.update({
            "kind": TABLE_KIND, "fingerprint": model_fingerprint(specs), "round_to": round_to,
            "input_shape": list(example[:1].shape), "model": type(model).__name__, "calibration": cal,
            "seconds": time.monotonic() - t0, "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        })
        if path is not None:
            table.save(path)
        return table, path


def load_table(path: str | Path) -> LatencyTable:
    """A pruning latency table written on some device (:meth:`LatencyTable.save` of :func:`host_table`'s table)."""
    table = LatencyTable.load(path)
    if table.meta.get("kind") != TABLE_KIND:
        raise AutostructError(
            f"Latency table '{path}' is not a pruning layer table (meta.kind != '{TABLE_KIND}'). Build one on the "
            "device with `autostruct prune build-lut CONFIG --out TABLE.json`."
        )
    return table


def table_mismatch(table: LatencyTable, model: nn.Module, graph: PruningGraph, example: torch.Tensor,
                   round_to: int) -> str | None:
    """Why ``table`` does not price ``model`` at ``round_to`` (None when it was built for this very model, input
    and rounding).

    A table's calibration was fitted to whole models of *its* model, so one built for another model is refused
    even where its cells happen to cover this one. A table without a fingerprint (written by hand) is judged
    by its cells alone (:func:`latency_model`).
    """
    meta = table.meta
    theirs = meta.get("fingerprint")
    if theirs is None or theirs == model_fingerprint(layer_specs(model, graph, example, round_to)):
        return None
    shape = list(example[:1].shape)
    diffs = []
    if meta.get("model") not in (None, type(model).__name__):
        diffs.append(f"model {meta['model']} (this run: {type(model).__name__})")
    if meta.get("input_shape") not in (None, shape):
        diffs.append(f"input {'x'.join(map(str, meta['input_shape']))} (this run: {'x'.join(map(str, shape))})")
    r = meta.get("round_to")
    only_rounding = False
    if isinstance(r, int) and r >= 1 and r != round_to:
        only_rounding = not diffs and theirs == model_fingerprint(layer_specs(model, graph, example, r))
        diffs.append(f"round_to={r} (this run: {round_to}" + (f"; set search.round_to: {r} or rebuild the table)"
                                                            if only_rounding else ")"))
    if not only_rounding and not any(d.startswith(("model", "input")) for d in diffs):
        diffs.append("another layer geometry (width, model_kwargs or number of classes)")
    return (f"the table (device '{table.device}') was built for {'; '.join(diffs)}. A table prices one model, "
            "input shape and rounding; rebuild it on the device with this config: autostruct prune build-lut "
            "CONFIG --out TABLE.json.")


def smallest_latency(lat: LatencyModel, graph: PruningGraph, round_to: int, lbound: float) -> float:
    """Predicted latency with every group at its floor (``lbound`` of its channels, rounded up)."""
    floor = np.asarray([ceil_to_allowed(lbound, g.channels, group_allowed(g, round_to)) for g in graph.groups])
    return lat.latency_ms(floor)


__all__ = ["MAX_POINTS", "TABLE_KIND", "LayerSpec", "calibrate", "calibration_counts",
           "host_table", "host_table_path", "latency_model", "layer_specs", "load_table", "measure_cells",
           "model_fingerprint", "smallest_latency", "table_mismatch"]
