"""The bring-your-own-model matrix: every third-party-style architecture of ``tests/byo_archs.py`` prunes to its
FLOPs target with the settings a user gets by default (``PruningEnv(model, data, 0.5)``: ``lbound`` 0.2,
``round_to="auto"``, whose host answer the test session pins to 8).

For each architecture: the env's FLOP model agrees exactly with :func:`autostruct.measure.count_flops` at keep
ratio 0.5 and at random keep ratios; an episode of the env (mid and random actions) and the uniform strategy land
within [0.97, 1.0] of a 50% FLOPs target by ``count_flops``; the pruned model saves, reloads with identical
outputs and runs in onnxruntime, where it is faster than the original (both timed side by side).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from autostruct.baselines import uniform_prune
from autostruct.export import export, load_model
from autostruct.measure import count_flops
from autostruct.measure.latency import time_interleaved
from autostruct.models import create_model
from autostruct.prune.env import PruningEnv
from autostruct.prune.graph import analyze
from autostruct.prune.surgery import channel_importance, counts_from_ratios, prune_counts
from byo_archs import MATRIX, FusedAttention, RepVGG, n_params, onnx_out, randomize

SIZE, CHANNELS, CLASSES = 16, 2, 5


def _model(name: str) -> torch.nn.Module:
    return randomize(create_model(name, num_classes=CLASSES, in_channels=CHANNELS, image_size=SIZE))


def _x(n: int = 3) -> torch.Tensor:
    return torch.randn(n, CHANNELS, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", list(MATRIX))
def test_flop_model_agrees_with_count_flops(name):
    model, x = _model(name), _x(1)
    graph = analyze(model, x)
    assert graph.base_flops == count_flops(model, x).flops
    rng = np.random.default_rng(0)
    for ratios in (0.5, rng.uniform(0.1, 1.0, len(graph.groups)), rng.uniform(0.1, 1.0, len(graph.groups))):
        counts = counts_from_ratios(graph, ratios)
        pruned = prune_counts(model, graph, counts, importance=None)
        assert graph.flop_model.flops(counts) == count_flops(pruned, x).flops, ratios


def _env(model: torch.nn.Module, ratio: float) -> PruningEnv:
    g = torch.Generator().manual_seed(2)
    data = [(torch.randn(n, CHANNELS, SIZE, SIZE, generator=g), torch.randint(0, CLASSES, (n,), generator=g))
            for n in (16, 8)]
    return PruningEnv(model, data, ratio, val_size=8, rescore_size=0, recal_batches=0)


@pytest.mark.parametrize("name", list(MATRIX))
def test_prunes_to_half_the_flops_saves_reloads_and_runs_in_onnxruntime(tmp_path, name):
    model, x = _model(name), _x()
    env = _env(model, 0.5)
    target = 0.5 * count_flops(model, x).flops
    episodes = [env.simulate(actions) for actions in (np.full(env.max_episode_steps, 0.5),
                                                      np.random.default_rng(3).uniform(size=env.max_episode_steps))]
    for counts in [*episodes, uniform_prune(env).best_info["channels"]]:
        pruned = prune_counts(model, env.graph, counts, env.scores).eval()
        assert 0.97 <= count_flops(pruned, x).flops / target <= 1.0, (env.round_to, counts)
    assert n_params(pruned) < n_params(model)
    with torch.no_grad():  # also the ONNX export (nn.MultiheadAttention's fused fast path has no ONNX op)
        expected = pruned(x)
        paths = export(pruned, tmp_path / "out", x[:1], metadata={"arch": name})
        rebuilt, _ = load_model(paths.model_pt)
        assert torch.equal(rebuilt(x), expected)
    # Random weights make outputs of hundreds in the deeper nets; float32 sums in another order differ by ~1e-5 of that.
    scale = max(1.0, float(expected.abs().max()))
    np.testing.assert_allclose(onnx_out(paths.onnx, x), expected.numpy(), atol=1e-4 * scale, rtol=1e-4)


def test_layernorm_and_attention_widths_are_pruned():
    # ViT-style residual stream (tied to every LayerNorm) and nn.MultiheadAttention's embed_dim are cut.
    vit = _model("byo-mha-vit")
    graph = analyze(vit, _x(1))
    stream = next(g for g in graph.groups if g.name == "conv_proj")
    assert stream.channel_groups == 2  # embed_dim stays divisible by the 2 heads
    pruned = prune_counts(vit, graph, counts_from_ratios(graph, 0.5), importance=None)
    attn = pruned.encoder[0].self_attention
    assert attn.embed_dim == 32 and attn.head_dim == 16 and pruned.ln.normalized_shape == (32,)

    # Heads split by reshape(b, n, heads, -1): q/k/v/out prune together, in multiples of the 2 heads.
    graph = analyze(_model("byo-split-qkv-vit"), _x(1))
    heads = [g for g in graph.groups if g.name in ("attn.0.q", "attn.1.q")]
    assert len(heads) == 2 and all(g.channel_groups == 2 for g in heads) and not graph.skipped

    # timm-style attention (qkv, proj, num_heads, head_dim read in forward): head dims prune, head_dim follows.
    vit = _model("byo-vit")
    graph = analyze(vit, _x(1))
    qkv = next(g for g in graph.groups if g.name == "block.attn.qkv")
    assert qkv.channels == 64 and qkv.channel_groups == 2 and not graph.skipped
    counts = counts_from_ratios(graph, {"block.attn.qkv": 0.5})
    pruned = prune_counts(vit, graph, counts, channel_importance(vit, graph, "l2"))
    attn = pruned.block.attn
    assert (attn.head_dim, attn.qkv.out_features, attn.proj.in_features) == (16, 96, 32)
    # The most important head dims stay: the kept q rows are the top-L2 ones of the original, in every head.
    w = vit.block.attn.qkv.weight.detach().reshape(3, 64, -1).transpose(0, 1).flatten(1)
    kept = attn.qkv.weight.detach()[:32]
    top = w.norm(dim=1).reshape(2, 32).mean(0).topk(16).indices.sort().values
    torch.testing.assert_close(kept, vit.block.attn.qkv.weight.detach()[torch.cat([top, top + 32])])


def test_ghost_modules_prune_every_group():
    # cat([y, dw(y)]) carries each of y's channels twice; Torch-Pruning's whole-group query makes them look
    # independent (the cut then breaks the forward pass), single-channel queries tie them back together.
    graph = analyze(_model("byo-ghost"), _x(1))
    assert not graph.skipped
    expand = next(g for g in graph.groups if g.name == "blocks.1.ghost1.primary.0")
    assert expand.channels == 24  # the 48 channels after the concat are 24 independent ones, twice


@pytest.mark.parametrize("name", list(MATRIX))
def test_half_the_flops_runs_faster_in_onnxruntime(name):
    # What a user gets by default: PruningEnv(model, data, 0.5), the uniform strategy, env.prune. The original and
    # the pruned model are timed interleaved in one process (ONNX Runtime, batch 1, one thread), so load from
    # other processes slows both alike and their ratio stands; every architecture measured 0.60-0.89 in two runs
    # of benchmarks/byo_matrix.py on a loaded 2-core host.
    # The smallest nets run in ~0.05 ms, where a host kept busy by other processes once timed byo-ghost's two
    # models at 1.03 (0.86 quiet): up to three rounds, and a pruned net that is not faster fails all three.
    model = _model(name)
    env = _env(model, 0.5)
    pruned = env.prune(uniform_prune(env).best_info["channels"]).eval()
    ratios = []
    for _ in range(3):
        base, small = time_interleaved([model, pruned], _x(1), runs=200, warmup=10)
        ratios.append(small.median_ms / base.median_ms)
        if ratios[-1] < 1.0:
            break
    assert ratios[-1] < 1.0, (env.round_to, ratios)


def test_the_default_multiple_is_the_hosts_lowered_where_a_budget_needs_it():
    # round_to="auto": the host's multiple (8 in tests), kept where episodes land within 3% of the budget ...
    env = _env(_model("byo-mobilenetv3-small"), 0.5)
    assert (env.round_to, env.rounding.source, env.rounding.meta["start"]) == (8, "auto", 8)
    assert all(c % 8 == 0 or c == n for c, n in zip(env.simulate(np.full(env.max_episode_steps, 0.5)),
                                                     env.channels, strict=True))
    # ... halved where it cannot reach the budget (the dense net's 8-channel stem and 6-channel growth layers
    # cannot shrink with multiples of 8; tests/prune/test_task_rounding.py has a net where 8 reaches but lands
    # too far under) ...
    env = _env(_model("byo-dense"), 0.5)
    assert (env.round_to, env.rounding.meta["start"]) == (4, 8) and 8 not in env.rounding.scores
    # ... and an integer is used as given.
    env = PruningEnv(_model("byo-mobilenetv3-small"), [(_x(4), torch.zeros(4, dtype=torch.long))] * 2, 0.5,
                     round_to=16, val_size=4, recal_batches=0)
    assert (env.round_to, env.rounding.source) == (16, "config")


def test_repvgg_prunes_and_still_reparameterizes():
    # Pruning keeps RepVGG's three branches consistent, so the pruned net still fuses into a plain conv net.
    model, x = _model("byo-repvgg"), _x()
    env = _env(model, 0.5)
    pruned = env.prune(uniform_prune(env).best_info["channels"]).eval()
    assert isinstance(pruned, RepVGG) and pruned.stage2[1].rbr_identity.num_features < 96
    with torch.no_grad():
        expected = pruned(x)
        fused = pruned.reparameterize()
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
        torch.testing.assert_close(fused(x), expected, atol=1e-4, rtol=1e-4)


def test_timm_attention_prunes_with_its_residual_stream():
    # timm's attention joins the heads with reshape(B, N, C), C its input width: the head dims are cut with the
    # residual stream (class token, position embedding and layer scales included), the same ones in every head.
    vit = _model("byo-vit-fused-qkv")
    graph = analyze(vit, _x(1))
    assert not graph.skipped
    stream = graph.groups[0]
    assert (stream.name, stream.channels, stream.channel_groups) == ("patch_embed.proj", 96, 3)
    assert {"blocks.0.attn.qkv", "blocks.1.attn.qkv"} <= set(stream.leading)
    pruned = prune_counts(vit, graph, counts_from_ratios(graph, {"patch_embed.proj": 0.5}), importance=None)
    attn = pruned.blocks[0].attn
    assert (attn.head_dim, attn.qkv.out_features, attn.proj.in_features) == (16, 144, 48)
    assert pruned.cls_token.shape == (1, 1, 48) and pruned.pos_embed.shape == (1, 17, 48)
    assert pruned.blocks[1].ls2.gamma.shape == (48,)
    assert pruned(_x()).shape == (3, CLASSES)


class _AttentionOnInput(torch.nn.Module):
    """timm's attention reading the network input: its width cannot shrink, so neither can its head dims."""

    def __init__(self):
        super().__init__()
        self.attn = FusedAttention(16, 2)
        self.head = torch.nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.attn(x).mean(1))


def test_head_dims_that_cannot_shrink_are_left_unpruned_with_a_reason():
    graph = analyze(_AttentionOnInput().eval(), torch.randn(1, 5, 16))
    assert [g.name for g in graph.groups] == ["attn.proj"]
    assert graph.skipped[0][0] == "attn.qkv" and "breaks the forward pass" in graph.skipped[0][1]
