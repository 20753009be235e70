"""Selecting NAS architectures on a re-score split disjoint from the reward's (the winner's curse, issue 11)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from autostruct.errors import AutostructError
from autostruct.nas.env import holdout_indices, make_evaluator
from autostruct.nas.search import best_in_budget, select_architecture, selection_fields


@pytest.mark.parametrize(("n", "val", "rescore", "want"), [(1000, 300, 500, (300, 500)), (600, 300, 500, (300, 300)),
                                                          (300, 300, 500, (300, 0)), (200, 300, 500, (200, 0)),
                                                          (1000, 300, 0, (300, 0))])
def test_holdout_splits_are_disjoint_and_the_reward_keeps_its_size(n, val, rescore, want):
    search, rescore_idx = holdout_indices(n, val, rescore, seed=3)
    assert (len(search), len(rescore_idx)) == want
    assert not set(search.tolist()) & set(rescore_idx.tolist())
    assert all(0 <= i < n for i in search.tolist() + rescore_idx.tolist())
    assert torch.equal(holdout_indices(n, val, rescore, seed=3)[0], search)  # deterministic per seed


def test_rescore_zero_scores_the_same_images_as_before(digits, digits_supernet):
    net, _ = digits_supernet
    old = digits.val.subset(200, seed=0)  # how the reward's subset was drawn before the re-score split existed
    ev = make_evaluator(net, digits, 200, 2, 64, seed=0)
    assert torch.equal(ev.val_x, old.x.contiguous(memory_format=torch.channels_last)) and torch.equal(ev.val_y, old.y)
    assert torch.equal(make_evaluator(net, digits, 200, 2, 64, seed=0, rescore_size=50).val_y, old.y)


def test_rescore_evaluator_scores_the_other_images(digits, digits_supernet):
    net, _ = digits_supernet
    search_idx, rescore_idx = holdout_indices(len(digits.val), 200, 80, seed=0)
    ev = make_evaluator(net, digits, 200, 2, 64, seed=0, rescore_size=80, split="rescore")
    assert len(ev.val_y) == 80 and torch.equal(ev.val_y, digits.val.y[rescore_idx])
    with pytest.raises(AutostructError, match="No images left for the re-score split"):
        make_evaluator(net, digits, len(digits.val), 2, 64, seed=0, rescore_size=80, split="rescore")


def _episodes(rows):
    """Fake episodes: (task_id, arch indices, search reward, meets_budgets)."""
    return [SimpleNamespace(task_id=t, reward=r, wall_time=float(i),
                            info={"arch": list(a), "arch_str": str(a), "accuracy": r, "meets_budgets": m})
            for i, (t, a, r, m) in enumerate(rows)]


EPISODES = _episodes([
    (0, (0, 1), 0.80, True), (0, (1, 1), 0.90, True), (1, (2, 2), 0.99, True), (0, (0, 1), 0.80, True),
    (0, (2, 0), 0.95, False), (0, (1, 0), 0.85, True), (0, (0, 0), 0.70, True), (0, (1, 1), 0.90, True),
])
#: Accuracy on the re-score split: the best by reward (1, 1) was lucky.
RESCORE = {(1, 1): 0.78, (1, 0): 0.84, (0, 1): 0.84, (0, 0): 0.60}


def _rescore(indices):
    acc = RESCORE[tuple(indices)]
    return acc, {"accuracy": acc}


def test_selects_the_best_rescore_among_the_top_k_within_budget():
    selection, (episode, index, count) = select_architecture(EPISODES, 0, _rescore, top_k=3)
    assert [c.channels for c in selection.candidates] == [[1, 1], [1, 0], [0, 1]]  # distinct, within budget
    assert selection.selected.channels == [1, 0]  # 0.84 ties (0, 1)'s: the better search reward wins
    assert (episode.info["arch"], index, count) == ([1, 0], 5, 7)
    fields = selection_fields(selection, True, 80)
    assert fields["selection"] == "rescore" and fields["selected_rank"] == 2
    assert (fields["search_score"], fields["rescore"]) == (0.85, 0.84)
    assert fields["naive_best"]["arch"] == [1, 1] and fields["naive_best"]["rescore"] == 0.78


def test_without_rescore_the_pick_is_best_in_budget():
    selection, chosen = select_architecture(EPISODES, 0, None, top_k=5)
    best, index, count = best_in_budget(EPISODES, 0)
    assert chosen == (best, index, count) and best.info["arch"] == [1, 1] and index == 2
    fields = selection_fields(selection, False, 0)
    assert fields["selection"] == "search" and fields["rescore"] is None and fields["selected_rank"] == 1
    assert select_architecture(EPISODES, 0, _rescore, top_k=1)[1] == chosen
    assert select_architecture(_episodes([(0, (0, 0), 0.9, False)]), 0, _rescore, 5) is None
