"""Per-layer latency tables on a real model: channel forms match surgery, the table agrees with direct timing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from autostruct.errors import AutostructError
from autostruct.measure import LatencyTable
from autostruct.measure.latency import time_interleaved
from autostruct.models import create_model
from autostruct.prune.graph import analyze
from autostruct.prune.latency_table import (
    TABLE_KIND,
    host_table,
    latency_model,
    layer_specs,
    load_table,
)
from autostruct.prune.surgery import group_allowed, prune_counts

SIZE = 16


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    x = torch.randn(1, 1, SIZE, SIZE)
    model = create_model("resnet20", num_classes=10, in_channels=1, image_size=SIZE, width=0.5).eval()
    return model, analyze(model, x), x


@pytest.fixture(scope="module")
def table(resnet):
    model, graph, x = resnet
    return host_table(model, graph, x, 8, use_cache=False)[0]


def random_counts(graph, round_to, n, seed):
    rng = np.random.default_rng(seed)
    allowed = [group_allowed(g, round_to) for g in graph.groups]
    return [np.asarray([rng.choice(a) for a in allowed]) for _ in range(n)]


@pytest.mark.parametrize("name", ["resnet20", "mobilenetv2", "vgg11"])
def test_channel_forms_are_what_surgery_produces(name):
    torch.manual_seed(0)
    x = torch.randn(1, 3, SIZE, SIZE)
    model = create_model(name, num_classes=10, in_channels=3, image_size=SIZE, width=0.5).eval()
    graph = analyze(model, x)
    specs = layer_specs(model, graph, x, 8)
    assert {s.op for s in specs} >= {"conv", "linear"}
    for counts in random_counts(graph, 8, 3, seed=1):
        pruned = dict(prune_counts(model, graph, counts, None).named_modules())
        for s in specs:
            m = pruned[s.name]
            c_in = s.in_const + np.dot(s.in_coef, counts)
            c_out = s.out_const + np.dot(s.out_coef, counts)
            want_in, want_out = (m.in_features, m.out_features) if isinstance(m, nn.Linear) else (m.in_channels, m.out_channels)
            assert c_out == want_out, s.name
            if s.op != "dwconv":
                assert c_in == want_in, s.name
            # Every count a layer can see lies inside its table's grid (no extrapolation).
            assert s.out_grid[0] <= c_out <= s.out_grid[-1]


def test_the_table_agrees_with_direct_measurement(resnet, table):
    """Predicted vs measured (ONNX Runtime, each strategy interleaved with the base, medians) for random strategies.

    Measured on the 2-core shared dev machine at 16x16, ResNet-20 x0.5, round_to 8, with other jobs on the other
    core: relative to the base measured in the same pair, |(pruned / base) / predicted ratio - 1| was 1-13% per
    strategy (median 3-6%), and up to 20% (median 14%, all of one sign) with three jobs on the two cores; in
    absolute milliseconds |measured / predicted - 1| was 1-34% (median 10-25%), because the host's speed drifts
    between the table's calibration and the check (47% median once in CI under load). Only the relative reading is
    asserted, because only it compares two things timed side by side: median <= 20%, max <= 30%.
    """
    model, graph, x = resnet
    lat = latency_model(layer_specs(model, graph, x, 8), table)
    configs = random_counts(graph, 8, 6, seed=5)
    # Each strategy against the base alone, as the calibration and a run's results time models.
    pairs = [time_interleaved([model, prune_counts(model, graph, c, None)], x, runs=60) for c in configs]
    base = lat.latency_ms(graph.channels)
    rel = np.asarray([(m.median_ms / b.median_ms) / (lat.latency_ms(c) / base) - 1
                      for c, (b, m) in zip(configs, pairs, strict=True)])
    assert np.median(np.abs(rel)) <= 0.20 and np.max(np.abs(rel)) <= 0.30, rel
    cal = table.meta["calibration"]
    assert cal["scale"] > 0 and cal["overhead"] >= 0 and len(cal["measured_ms"]) == len(cal["configs"])


def test_table_round_trips_and_refuses_other_models(resnet, table, tmp_path):
    model, graph, x = resnet
    path = table.save(tmp_path / "t.json")
    loaded = load_table(path)
    specs = layer_specs(model, graph, x, 8)
    full = graph.channels
    assert latency_model(specs, loaded).latency_ms(full) == pytest.approx(latency_model(specs, table).latency_ms(full))
    # A finer rounding needs cells the table does not have.
    with pytest.raises(AutostructError, match="no entry for"):
        latency_model(layer_specs(model, graph, x, 2), loaded)
    other = LatencyTable(backend="onnxruntime", entries={"a": 1.0}, meta={"kind": "nas-block-latency"})
    with pytest.raises(AutostructError, match=TABLE_KIND):
        load_table(other.save(tmp_path / "nas.json"))
