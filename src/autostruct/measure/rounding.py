"""Channel rounding chosen by measurement: the multiple of kept channels that pays on this host.

ONNX Runtime's CPU convolutions work on channel blocks (8 floats for AVX2, 16 for AVX-512), so at batch 1 a
conv with 27 channels can be *slower* than one with 32: pruning to odd channel counts cuts FLOPs but not
latency. :func:`choose_round_to` sweeps a few small conv layers over channel counts on this host (ONNX Runtime,
batch 1, the configured threads, interleaved runs, medians), scores each candidate multiple with
:func:`decide_round_to` and caches the answer per host profile, so the sweep runs once.

The decision (a pure function of the timings): with kept channels restricted to multiples of ``k`` the search
can still reach any compute level in between by mixing layers, so a candidate's cost at ``c`` channels is the
latency linearly interpolated between the neighbouring multiples of ``k``. Its score is the mean of that cost
over every ``c`` in the swept range, divided by the mean measured latency at every ``c`` (what ``k = 1``
gets), averaged over the swept layers. The smallest candidate within ``tolerance`` of the best score wins
(finer steps give the search more choices).

>>> t = {"conv": {c: (1.0 if c % 8 == 0 else 1.5) for c in range(16, 33)}}
>>> decide_round_to(t, candidates=(1, 4, 8, 16)).round_to
8
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from autostruct.errors import AutostructError
from autostruct.measure.lut import default_device_name, host_info
from autostruct.measure.ort_timing import session_options, time_cells_shuffled
from autostruct.utils.cache import cache_root, entry_lock
from autostruct.utils.io import write_json_atomic

log = logging.getLogger(__name__)

CANDIDATES = (1, 4, 8, 16)
FALLBACK = 8
"""The multiple used when the sweep cannot run (no ONNX Runtime, an error): right for AVX2 and NEON hosts."""

# (name, kernel, spatial size): a residual-stage 3x3 conv and a MobileNet-style 1x1 conv, both c -> c.
SWEEP_LAYERS: tuple[tuple[str, int, int], ...] = (("conv3x3_14x14", 3, 14), ("conv1x1_14x14", 1, 14),
                                                  ("conv3x3_7x7", 3, 7))
FORMAT = "autostruct-rounding/1"


@dataclass(frozen=True)
class RoundingChoice:
    """The chosen multiple and each candidate's score (mean latency relative to ``round_to = 1``; lower pays)."""

    round_to: int
    scores: dict[int, float]
    source: str = "measured"
    meta: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scores"] = {str(k): v for k, v in self.scores.items()}
        return d


def _interpolated_mean(timings: Mapping[int, float], step: int) -> float:
    """Mean over every swept count of the latency interpolated between the neighbouring multiples of ``step``."""
    counts = np.asarray(sorted(timings), dtype=np.float64)
    values = np.asarray([timings[int(c)] for c in counts], dtype=np.float64)
    on_grid = [i for i, c in enumerate(counts) if int(c) % step == 0]
    if len(on_grid) < 2:
        raise ValueError(f"the swept counts hold fewer than two multiples of {step}")
    lo, hi = counts[on_grid[0]], counts[on_grid[-1]]
    inside = (counts >= lo) & (counts <= hi)
    return float(np.interp(counts[inside], counts[on_grid], values[on_grid]).mean())


def decide_round_to(
    timings: Mapping[str, Mapping[int, float]],
    candidates: Sequence[int] = CANDIDATES,
    tolerance: float = 0.02,
) -> RoundingChoice:
    """Pick the channel multiple from median latencies per layer and channel count (see the module docstring).

    ``timings[layer][c]`` is the median latency of ``layer`` with ``c`` channels; each layer's counts must hold at
    least two multiples of every candidate. Scores are relative to measuring every count (``k = 1`` scores 1.0
    when every count in the range of the largest candidate was swept).
    """
    if not timings:
        raise ValueError("decide_round_to needs timings of at least one layer")
    cands = sorted({int(k) for k in candidates})
    if not cands or cands[0] < 1:
        raise ValueError(f"candidates must be positive integers, got {candidates!r}")
    scores: dict[int, float] = {}
    for k in cands:
        rel = []
        for layer, t in timings.items():
            # Compare every candidate on the same range: the span of the largest candidate's multiples.
            top = cands[-1]
            grid = sorted(c for c in t if c % top == 0)
            if len(grid) < 2:
                raise ValueError(f"layer {layer!r}: the swept counts hold fewer than two multiples of {top}")
            span = {c: v for c, v in t.items() if grid[0] <= c <= grid[-1]}
            rel.append(_interpolated_mean(span, k) / float(np.mean(list(span.values()))))
        scores[k] = float(np.mean(rel))
    best = min(scores.values())
    chosen = next(k for k in cands if scores[k] <= best * (1 + tolerance))
    return RoundingChoice(round_to=chosen, scores=scores)


# --- measuring ---------------------------------------------------------------------------------------------


def _conv_onnx(channels: int, kernel: int, size: int, seed: int) -> bytes:
    """A one-layer ONNX model: conv (``channels`` -> ``channels``, same padding) + bias + ReLU, batch 1."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    w = rng.standard_normal((channels, channels, kernel, kernel)).astype(np.float32) * 0.1
    b = rng.standard_normal(channels).astype(np.float32) * 0.1
    pad = kernel // 2
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[kernel, kernel], pads=[pad] * 4),
        helper.make_node("Relu", ["y"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes, "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, channels, size, size])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def measure_channel_timings(
    threads: int = 1,
    channels: Sequence[int] = tuple(range(16, 49)),
    layers: Sequence[tuple[str, int, int]] = SWEEP_LAYERS,
    *,
    rounds: int = 7,
    runs: int = 5,
    warmup: int = 5,
    seed: int = 0,
) -> dict[str, dict[int, float]]:
    """Median ONNX Runtime latency (ms, batch 1) of each sweep layer at each channel count.

    Interleaved: every round times ``runs`` calls of every (layer, count) in a shuffled order, so load from
    other processes spreads over all counts instead of landing on a few of them.
    """
    import onnxruntime as ort

    opts = session_options(threads, quiet=True)
    rng = np.random.default_rng(seed)
    cells = []
    for name, kernel, size in layers:
        for c in channels:
            sess = ort.InferenceSession(_conv_onnx(int(c), kernel, size, seed), sess_options=opts,
                                        providers=["CPUExecutionProvider"])
            feed = {"x": rng.standard_normal((1, int(c), size, size)).astype(np.float32)}
            for _ in range(warmup):
                sess.run(None, feed)
            cells.append(((name, int(c)), sess, feed))
    out: dict[str, dict[int, float]] = {}
    for (name, c), ms in time_cells_shuffled(cells, rounds=rounds, runs=runs, rng=rng).items():
        out.setdefault(name, {})[c] = ms
    return out


# --- the cached choice -------------------------------------------------------------------------------------


def host_profile(threads: int = 1) -> str:
    """A file-name-safe key for this host and thread count, e.g. ``linux-x86_64-t1-3f2a9c1b``."""
    info = {**host_info(), "threads": threads}
    digest = hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()[:8]
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{default_device_name()}-t{threads}-{digest}")


def rounding_cache_path(threads: int = 1):
    """``$AUTOSTRUCT_CACHE/rounding-<host profile>.json``."""
    return cache_root() / f"rounding-{host_profile(threads)}.json"


def choose_round_to(
    threads: int = 1,
    candidates: Sequence[int] = CANDIDATES,
    *,
    tolerance: float = 0.02,
    use_cache: bool = True,
    refresh: bool = False,
) -> RoundingChoice:
    """The channel multiple that pays on this host (measured once per host profile, then read from the cache).

    Falls back to :data:`FALLBACK` (``source="fallback"``, not cached) when the sweep cannot run.
    """
    cands = tuple(sorted({int(k) for k in candidates}))
    try:
        path = rounding_cache_path(threads)
    except Exception as exc:  # no onnxruntime: host_info cannot describe the host
        return RoundingChoice(FALLBACK, {}, source="fallback", meta={"error": str(exc)})
    # Concurrent runs sweep once (and do not time each other's sweeps).
    with entry_lock(path if use_cache else None, "measuring this host's channel rounding"):
        if use_cache and not refresh and path.is_file():
            try:
                rec = json.loads(path.read_text())
                if rec.get("format") == FORMAT and tuple(rec["candidates"]) == cands and rec["tolerance"] == tolerance:
                    return RoundingChoice(int(rec["round_to"]), {int(k): v for k, v in rec["scores"].items()},
                                          source="cache", meta={"path": str(path)})
            except (OSError, ValueError, KeyError, TypeError):
                pass  # a damaged cache file is measured again
        top = max(cands)
        counts = tuple(range(top, 3 * top + 1)) if top > 1 else tuple(range(2, 9))
        t0 = time.monotonic()
        try:
            timings = measure_channel_timings(threads, counts)
            choice = decide_round_to(timings, cands, tolerance)
        except Exception as exc:  # the sweep is an optimization; never fail a run on it
            log.warning("channel rounding could not be measured (%s); using round_to=%d", exc, FALLBACK)
            return RoundingChoice(FALLBACK, {}, source="fallback", meta={"error": str(exc)})
        seconds = time.monotonic() - t0
        if use_cache:
            write_json_atomic(path, {
                "format": FORMAT, "round_to": choice.round_to, "candidates": list(cands), "tolerance": tolerance,
                "scores": {str(k): v for k, v in choice.scores.items()}, "threads": threads, "host": host_info(),
                "seconds": seconds,
                "timings_ms": {name: {str(c): v for c, v in t.items()} for name, t in timings.items()},
            })
        return RoundingChoice(choice.round_to, choice.scores, source="measured",
                              meta={"path": str(path) if use_cache else None, "seconds": seconds})


_HOST: dict[tuple[int, str], RoundingChoice] = {}


def host_rounding(threads: int = 1) -> RoundingChoice:
    """:func:`choose_round_to` resolved once per process (and cache folder): what ``round_to="auto"`` starts from
    on every entry point (each then lowers it where a budget needs a finer multiple)."""
    key = (int(threads), str(cache_root()))
    if key not in _HOST:
        _HOST[key] = choose_round_to(threads)
    return _HOST[key]


FAST_SLACK = 0.10
""":func:`finest_fast`: a multiple whose sweep score is within this of the best still counts as fast."""


def finest_fast(choice: RoundingChoice, slack: float = FAST_SLACK) -> int:
    """The finest multiple the host sweep scored within ``slack`` of its best (on AVX2: 1.00 / 0.86 / 0.81 / 0.81
    for 1 / 4 / 8 / 16, so 4). ``round_to="auto"`` lowers the multiple below it only to reach a budget, never
    just to land closer to it: a conv pruned to 31 channels instead of 28 can run slower than the unpruned one.
    Without scores (an integer, the fallback), half the chosen multiple.

    >>> finest_fast(RoundingChoice(8, {1: 1.0, 4: 0.86, 8: 0.81, 16: 0.81}))
    4
    """
    if not choice.scores:
        return max(1, choice.round_to // 2)
    best = min(choice.scores.values())
    return min(k for k, v in choice.scores.items() if v <= best * (1 + slack))


def resolve_rounding(value: int | str, threads: int = 1) -> RoundingChoice:
    """``search.round_to`` resolved: an int as given (``source="config"``), ``"auto"`` by :func:`host_rounding`."""
    if value == "auto":
        return host_rounding(threads)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AutostructError(f"round_to must be a positive integer or 'auto', got {value!r}.")
    return RoundingChoice(value, {}, source="config")


def resolve_round_to(value: int | str, threads: int = 1) -> int:
    """``search.round_to`` as an integer: an int as given, ``"auto"`` the measured multiple for this host."""
    return resolve_rounding(value, threads).round_to
