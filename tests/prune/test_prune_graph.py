"""Pruning groups and surgery on every zoo model and on test-local structures."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from prune_testnets import LOCAL_NETS, LinearOnly
from torch import nn

from autostruct.errors import AutostructError
from autostruct.measure import count_flops
from autostruct.models import ZOO_MODELS, create_model
from autostruct.prune.graph import analyze, prunable_groups
from autostruct.prune.surgery import apply_keep_ratios, channel_importance, counts_from_ratios, prune_counts

SIZE = 16


def random_counts(graph, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.asarray([g.channel_groups * rng.integers(1, g.channels // g.channel_groups + 1) for g in graph.groups])


def check_surgery(model: nn.Module, x: torch.Tensor, seeds=(0, 1)) -> None:
    graph = analyze(model, x)
    base = count_flops(model, x)
    assert graph.base_flops == base.flops
    assert graph.flop_model.flops(graph.channels) == base.flops
    scores = channel_importance(model, graph, "l1")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out_shape = model(x).shape
    for seed in seeds:
        counts = random_counts(graph, seed)
        pruned = prune_counts(model, graph, counts, scores)
        cost = count_flops(pruned, x)
        assert pruned.eval()(x).shape == out_shape  # runs; classifier output untouched
        assert cost.flops == graph.flop_model.flops(counts)  # the FLOP model is exact
        if (counts < graph.channels).any():
            assert cost.flops < base.flops and cost.params < base.params
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the original is untouched


@pytest.mark.parametrize("name", ZOO_MODELS)
def test_zoo_models_prune_exactly(name):
    model = create_model(name, num_classes=10, in_channels=1, image_size=SIZE, width=0.5).eval()
    check_surgery(model, torch.randn(2, 1, SIZE, SIZE), seeds=(0,))


@pytest.mark.parametrize("name", sorted(LOCAL_NETS))
def test_local_structures_prune_exactly(name):
    torch.manual_seed(0)
    check_surgery(LOCAL_NETS[name]().eval(), torch.randn(2, 1, SIZE, SIZE))


def test_groups_tie_residual_and_concat_channels_and_come_in_forward_order():
    groups = prunable_groups(LOCAL_NETS["residual"]().eval(), torch.zeros(1, 1, SIZE, SIZE))
    names = [g.name for g in groups]
    assert names == ["stem.0", "a1.0", "short.0", "b1.0"]
    stage1 = groups[0]
    assert set(stage1.leading) == {"stem.0", "a2.0"}  # the add ties the block's output to the stem
    assert "fc" not in {g.name for g in groups}  # the classifier's output is never a group
    assert stage1.c_in == 1 and stage1.h == SIZE and stage1.kernel == 3

    grouped = prunable_groups(LOCAL_NETS["grouped"]().eval(), torch.zeros(1, 1, SIZE, SIZE))
    assert [g.channel_groups for g in grouped][:2] == [4, 4]  # both sides of the grouped conv


def test_se_gate_is_tied_to_the_block_channels():
    groups = prunable_groups(LOCAL_NETS["se"]().eval(), torch.zeros(1, 1, SIZE, SIZE))
    main = groups[0]
    assert {"stem.0", "conv.0", "fc2"} <= set(main.leading)
    assert "fc1" in main.consumers


def test_apply_keep_ratios_rounds_and_keeps_the_spec():
    model = create_model("resnet20", num_classes=10, in_channels=1, image_size=SIZE, width=0.5).eval()
    x = torch.zeros(1, 1, SIZE, SIZE)
    pruned = apply_keep_ratios(model, x, 0.5, round_to=4)
    assert pruned.autostruct_spec == model.autostruct_spec
    convs = [m for m in pruned.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].in_channels == 1  # the input is never pruned
    assert all(c.out_channels % 4 == 0 for c in convs)
    assert count_flops(pruned, x).flops < count_flops(model, x).flops
    graph = analyze(model, x)
    assert counts_from_ratios(graph, {"stem.0": 0.5}).tolist()[0] == graph.groups[0].channels // 2


@pytest.mark.parametrize("criterion", ["l1", "l2", "bn_scale", "taylor"])
def test_importance_criteria(criterion):
    torch.manual_seed(0)
    model = LOCAL_NETS["residual"]().eval()
    x = torch.randn(8, 1, SIZE, SIZE)
    batches = [(x, torch.randint(0, 10, (8,)))]
    pruned = apply_keep_ratios(model, x, 0.5, importance=criterion, taylor_batches=batches)
    assert pruned(x).shape == (8, 10)


def test_l1_keeps_the_largest_filters():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    with torch.no_grad():
        for i, scale in enumerate([0.1, 5.0, 0.2, 3.0]):
            model[0].weight[i].fill_(scale)
    pruned = apply_keep_ratios(model, torch.zeros(1, 1, 8, 8), 0.5)
    assert sorted(pruned[0].weight[:, 0, 0, 0].tolist()) == [3.0, 5.0]


def test_bad_inputs_are_user_errors():
    model = LOCAL_NETS["residual"]().eval()
    with pytest.raises(AutostructError, match=r"\(1, 3, 16, 16\)"):
        analyze(model, torch.zeros(1, 3, SIZE, SIZE))
    with pytest.raises(AutostructError, match="no prunable channel group"):
        analyze(LinearOnly(), torch.zeros(1, 1, 8, 8))
    with pytest.raises(AutostructError, match="outside"):
        apply_keep_ratios(model, torch.zeros(1, 1, SIZE, SIZE), 1.5)
    with pytest.raises(AutostructError, match="4 pruning groups"):
        apply_keep_ratios(model, torch.zeros(1, 1, SIZE, SIZE), [0.5, 0.5])
    with pytest.raises(AutostructError, match="Unknown importance"):
        apply_keep_ratios(model, torch.zeros(1, 1, SIZE, SIZE), 0.5, importance="l3")


class _Scale(nn.Module):
    """A per-channel parameter of no prunable layer (a layer scale)."""

    def __init__(self, c: int):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1, c, 1, 1))

    def forward(self, x):
        return x * self.gain


class _FixedScale(_Scale):
    """The same, with a forward that hard-codes the width: cutting the channels breaks it."""

    def forward(self, x):
        return x * self.gain.reshape(1, 8, 1, 1)


def test_parameters_of_no_layer_are_cut_with_their_channels():
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3), _Scale(8), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 3)
    ).eval()
    graph = analyze(model, torch.zeros(1, 1, 8, 8))
    assert [g.name for g in graph.groups] == ["0", "3"] and not graph.skipped
    pruned = prune_counts(model, graph, [4, 8], importance=None)
    assert pruned[1].gain.shape == (1, 4, 1, 1) and isinstance(pruned[1].gain, nn.Parameter)
    torch.testing.assert_close(pruned[1].gain, model[1].gain[:, :4])
    assert pruned(torch.zeros(2, 1, 8, 8)).shape == (2, 3)


def test_unhandled_layer_is_left_unpruned_with_a_reason(caplog):
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3), _FixedScale(8), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(8 * 4 * 4, 3)
    ).eval()
    with caplog.at_level(logging.INFO, logger="autostruct.prune.graph"):
        graph = analyze(model, torch.zeros(1, 1, 8, 8))
    assert [g.name for g in graph.groups] == ["3"]
    assert graph.skipped and graph.skipped[0][0] == "0" and "breaks the forward pass" in graph.skipped[0][1]
    assert "left unpruned" in caplog.text


def test_one_architecture_is_traced_once_per_process():
    x = torch.zeros(1, 1, 8, 8)
    a = create_model("resnet20", num_classes=10, in_channels=1, image_size=8, width=0.375)
    b = create_model("resnet20", num_classes=10, in_channels=1, image_size=8, width=0.375)
    graph = analyze(a, x)
    assert analyze(b, x) is graph  # same builder, same tensors: the same graph, no second trace
    assert analyze(a, torch.zeros(1, 1, 12, 12)) is not graph  # another input shape is traced
    assert analyze(a, x, validate=False) is not graph
    half = prune_counts(a, graph, np.maximum(graph.channels // 2, 1), None)
    assert analyze(half, x) is not graph  # a pruned copy keeps the spec but not the shapes
    plain = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))
    assert analyze(plain, x) is not analyze(plain, x)  # no spec: nothing tells two such models apart
    # The graph cut another instance of the architecture as it cuts the first one.
    cut = prune_counts(b, graph, np.maximum(graph.channels // 2, 1), None)
    assert [p.shape for p in cut.parameters()] == [p.shape for p in half.parameters()]
