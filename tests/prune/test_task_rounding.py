"""Per-task channel rounding (``search.round_to: auto``): the strategies it times, the decision, the cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autostruct.models import create_model
from autostruct.prune.budget import LANDING_TOLERANCE
from autostruct.prune.graph import analyze
from autostruct.prune.groups import group_allowed
from autostruct.prune.task_rounding import (
    choose_task_round_to,
    decide_task_round_to,
    fit_round_to,
    landing,
    reachable,
    unreachable_reason,
    wall_strategies,
)
from byo_archs import se_trunk


@pytest.fixture(scope="module")
def resnet8x8():
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10, in_channels=1, image_size=8, width=1.0).eval()
    x = torch.zeros(1, 1, 8, 8)
    return model, analyze(model, x), x


def test_decision_prefers_the_finer_multiple_unless_the_coarser_clearly_pays():
    assert decide_task_round_to({8: [0.72, 0.70], 16: [0.61, 0.60]}) == (16, {8: pytest.approx(0.71),
                                                                         16: pytest.approx(0.605)})
    assert decide_task_round_to({8: [0.63, 0.64], 16: [0.60]})[0] == 8  # 6% faster: not worth the choices lost
    assert decide_task_round_to({8: [0.63], 16: [0.60]}, tolerance=0.01)[0] == 16
    assert decide_task_round_to({8: [0.60], 16: [0.70]})[0] == 8  # the coarser one is slower
    with pytest.raises(ValueError):
        decide_task_round_to({8: []})


@pytest.mark.parametrize("round_to", [8, 16])
@pytest.mark.parametrize("ratio", [0.5, 0.7])
def test_wall_strategies_spend_the_budget_on_allowed_counts(resnet8x8, round_to, ratio):
    _, graph, _ = resnet8x8
    base = float(graph.flop_model(graph.channels))
    found = wall_strategies(graph, ratio, round_to, 8, lbound=0.2, seed=1)
    assert len(found) >= 2
    assert len({tuple(s) for s in found}) == len(found)
    for counts in found:
        for g, c in zip(graph.groups, counts, strict=True):
            assert int(c) in set(group_allowed(g, round_to).tolist())
        flops = float(graph.flop_model(np.asarray(counts)))
        # The uniform strategy (first) and the walks under the exact wall spend the budget, never more.
        assert 0.95 * ratio * base <= flops <= ratio * base * (1 + 1e-9)


def test_reachable_knows_what_a_multiple_cannot_prune(resnet8x8):
    _, graph, _ = resnet8x8
    assert reachable(graph, 0.3, 8, 0.2)
    assert not reachable(graph, 0.3, 16, 0.2)  # the 16-channel stage cannot shrink with multiples of 16
    assert reachable(graph, 0.5, 16, 0.2)


def test_choose_times_each_reachable_candidate_and_caches(resnet8x8, tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOSTRUCT_CACHE", str(tmp_path))
    model, graph, x = resnet8x8
    first = choose_task_round_to(model, graph, x, 0.5, (8, 16), strategies=3, runs=10, warmup=2)
    assert first.source == "measured" and first.round_to in (8, 16)
    assert set(first.scores) == {8, 16} and all(0 < v < 3 for v in first.scores.values())
    assert first.round_to == decide_task_round_to({int(k): v for k, v in first.meta["ratios"].items()})[0]
    again = choose_task_round_to(model, graph, x, 0.5, (8, 16), strategies=3, runs=10, warmup=2)
    assert again.source == "cache" and again.round_to == first.round_to and again.scores == first.scores
    # alpha 0.3: only 8 can reach it, nothing is timed
    only = choose_task_round_to(model, graph, x, 0.3, (8, 16), strategies=3, runs=10, warmup=2)
    assert (only.round_to, only.source) == (8, "single")
    with pytest.raises(ValueError, match="no channel multiple"):
        choose_task_round_to(model, graph, x, 0.01, (8, 16))


@pytest.fixture(scope="module")
def trunk():
    """The issue's model: a residual depthwise net with squeeze-excite whose 48-channel trunk is one group."""
    model = se_trunk(10, 1).eval()
    return analyze(model, torch.zeros(1, 1, 8, 8))


def test_fit_keeps_the_coarsest_multiple_that_lands(resnet8x8):
    _, graph, _ = resnet8x8
    fit = fit_round_to(graph, 0.5, 16, 0.2)
    assert (fit.round_to, fit.source, fit.meta["start"]) == (16, "auto", 16)
    assert fit.meta["landing"] >= 1 - LANDING_TOLERANCE and list(fit.scores) == [16]
    assert fit_round_to(graph, 0.3, 16, 0.2).round_to == 8  # out of reach with 16: halved


def test_fit_takes_a_finer_multiple_where_the_coarse_one_undershoots(trunk):
    # With multiples of 16 the trunk keeps 16, 32 or 48 channels: at half the FLOPs an episode ends at 0.35 of the
    # budget. Halving until episodes land within 3% ends at 1 here (the trunk is the only real decision).
    assert landing(trunk, 0.5, 16, 0.2) < 0.4
    fit = fit_round_to(trunk, 0.5, 16, 0.2)
    assert list(fit.scores) == [16, 8, 4, 2, 1] and fit.round_to == 1
    assert fit.meta["landing"] == max(fit.scores.values()) > 0.95
    assert fit_round_to(trunk, 0.7, 16, 0.2).round_to == 1
    # Multiples finer than the host runs fast are not taken just to land closer: the closest of the fast ones.
    fit = fit_round_to(trunk, 0.5, 16, 0.2, finest=4)
    assert (fit.round_to, list(fit.scores), fit.meta["finest"]) == (4, [16, 8, 4], 4)
    assert fit_round_to(trunk, 0.15, 16, 0.2, finest=8).round_to == 4  # but they are to reach a budget at all


def test_unreachable_reason_names_the_real_limit(trunk):
    why = unreachable_reason(trunk, 0.15, 16, 0.2)
    assert "round_to=16" in why and "channel multiple is the limit" in why and "round_to <= 4" in why
    assert "lbound" not in why.split("limit")[1].split(".")[1]  # the fix is the multiple, not lbound
    why = unreachable_reason(trunk, 0.01, 16, 0.2)
    assert "Use a ratio >= 0.089 or a smaller lbound" in why and "round_to" not in why
