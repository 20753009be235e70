"""Channel rounding chosen by measurement: the decision on synthetic timings, the cache, the config key."""

from __future__ import annotations

import json

import pytest

from autostruct.config import PruneSearchConfig
from autostruct.errors import AutostructError
from autostruct.measure import rounding
from autostruct.measure.rounding import decide_round_to, resolve_rounding


def stepped(block: int, penalty: float, counts=range(16, 49)) -> dict[int, float]:
    """Latency growing with channels, ``penalty`` times slower off multiples of ``block`` (a blocked kernel)."""
    return {c: (0.01 * c) * (1.0 if c % block == 0 else penalty) for c in counts}


@pytest.mark.parametrize(("block", "want"), [(8, 8), (16, 16), (4, 4)])
def test_the_block_size_of_a_stepped_kernel_wins(block, want):
    choice = decide_round_to({"a": stepped(block, 1.5), "b": stepped(block, 1.3)})
    assert choice.round_to == want
    assert choice.scores[1] == pytest.approx(1.0)
    assert choice.scores[want] < 0.95


def test_smooth_latency_keeps_the_finest_step():
    # No penalty off the grid: every candidate scores about the same, and the smallest within tolerance wins.
    choice = decide_round_to({"a": stepped(8, 1.0)})
    assert choice.round_to == 1
    assert max(choice.scores.values()) - min(choice.scores.values()) < 0.02


def test_a_small_gain_within_tolerance_is_not_worth_coarser_steps():
    t = {"a": stepped(16, 1.01)}
    assert decide_round_to(t, tolerance=0.05).round_to == 1
    assert decide_round_to(t, tolerance=0.0).round_to == 16


def test_decision_errors():
    with pytest.raises(ValueError, match="at least one layer"):
        decide_round_to({})
    with pytest.raises(ValueError, match="two multiples of 16"):
        decide_round_to({"a": {c: 1.0 for c in range(16, 30)}})


def test_choice_is_measured_once_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOSTRUCT_CACHE", str(tmp_path))
    calls = []

    def fake(threads, counts):
        calls.append((threads, tuple(counts)))
        return {"conv": stepped(8, 1.4, counts)}

    monkeypatch.setattr(rounding, "measure_channel_timings", fake)
    first = rounding.choose_round_to(1)
    assert (first.round_to, first.source) == (8, "measured")
    assert calls == [(1, tuple(range(16, 49)))]
    second = rounding.choose_round_to(1)
    assert (second.round_to, second.source) == (8, "cache") and len(calls) == 1
    rec = json.loads(rounding.rounding_cache_path(1).read_text())
    assert rec["round_to"] == 8 and rec["threads"] == 1 and "timings_ms" in rec
    assert rounding.rounding_cache_path(1).name.startswith("rounding-")
    assert rounding.rounding_cache_path(1) != rounding.rounding_cache_path(2)  # per thread count


def test_fallback_when_measuring_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOSTRUCT_CACHE", str(tmp_path))

    def broken(threads, counts):
        raise RuntimeError("no onnxruntime here")

    monkeypatch.setattr(rounding, "measure_channel_timings", broken)
    choice = rounding.choose_round_to(1)
    assert (choice.round_to, choice.source) == (rounding.FALLBACK, "fallback") == (8, "fallback")
    assert not rounding.rounding_cache_path(1).exists()  # a failure is not cached


def test_real_sweep_is_small_and_sane():
    timings = rounding.measure_channel_timings(1, channels=(8, 12, 16), layers=(("c", 3, 7),), rounds=2, runs=2)
    assert set(timings["c"]) == {8, 12, 16} and all(v > 0 for v in timings["c"].values())


def test_config_round_to_accepts_auto_and_positive_ints():
    assert PruneSearchConfig().round_to == "auto"
    assert PruneSearchConfig(round_to=8).round_to == 8
    assert PruneSearchConfig(round_to="auto").round_to == "auto"
    for bad in (0, -8, "eight", 2.5, True):
        with pytest.raises(ValueError):
            PruneSearchConfig(round_to=bad)
    assert resolve_rounding(16).round_to == 16 and resolve_rounding(16).source == "config"
    with pytest.raises(AutostructError):
        resolve_rounding(0)


def test_auto_is_resolved_once_per_process(tmp_path, monkeypatch):
    # Every entry point's round_to="auto" starts from host_rounding: one sweep (or cache read) per process.
    monkeypatch.setenv("AUTOSTRUCT_CACHE", str(tmp_path))
    monkeypatch.setattr(rounding, "_HOST", {})
    calls = []

    def choose(threads=1):
        calls.append(threads)
        return rounding.RoundingChoice(16, {}, source="measured")

    monkeypatch.setattr(rounding, "choose_round_to", choose)
    assert rounding.host_rounding().round_to == 16 and resolve_rounding("auto").round_to == 16
    assert calls == [1]


def test_finest_fast_multiple_is_the_finest_scored_near_the_best():
    avx2 = rounding.RoundingChoice(8, {1: 1.0, 4: 0.856, 8: 0.813, 16: 0.807})
    assert rounding.finest_fast(avx2) == 4  # 6% over the best: fast; 1 is 24% over
    assert rounding.finest_fast(avx2, slack=0.02) == 8
    assert rounding.finest_fast(rounding.RoundingChoice(8, {}, source="fallback")) == 4
