"""The elastic-width space (mobilenetv2-elastic) and the sandwich step with in-place distillation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from autostruct.errors import AutostructError
from autostruct.measure import count_flops
from autostruct.nas.config import SupernetConfig
from autostruct.nas.costs import all_block_shapes, arch_cost, block_costs
from autostruct.nas.space import (
    Architecture,
    SearchSpace,
    StageSpec,
    feature_sizes,
    get_space,
    mobilenetv2_space,
)
from autostruct.nas.supernet import Supernet, extract
from autostruct.nas.train_supernet import inplace_distillation_loss, sandwich_paths, sandwich_step


@pytest.fixture(scope="module")
def space28() -> SearchSpace:
    return get_space("mobilenetv2-elastic", 28)


def test_flops_span_more_than_ten_times(space28):
    lo = arch_cost(space28.smallest(), 1, 28, 10).flops
    hi = arch_cost(space28.largest(), 1, 28, 10).flops
    assert hi / lo >= 10
    rng = np.random.default_rng(0)
    assert all(lo <= arch_cost(space28.sample(rng), 1, 28, 10).flops <= hi for _ in range(50))


@pytest.mark.parametrize("image_size", [8, 28, 32, 96])
def test_kernels_are_no_larger_than_the_stage_feature_map(image_size):
    space = get_space("mobilenetv2-elastic", image_size)
    sizes = feature_sizes(space, image_size)
    for st, size in zip(space.stages, sizes[1:], strict=True):
        assert 3 in st.kernels
        assert all(k <= max(size, 3) for k in st.kernels), (st.kernels, size)
    if image_size == 28:
        assert sizes[1:] == [14, 7, 4, 4]
        assert [st.kernels for st in space.stages] == [(3, 5, 7), (3, 5, 7), (3,), (3,)]


def test_width_choices_are_the_channels_the_network_builds(space28):
    assert [st.channel_choices for st in space28.stages] == [(8, 12, 16), (16, 24, 32), (24, 36, 48), (32, 48, 64)]
    width_steps = [i for i, d in enumerate(space28.decisions) if d.kind == "width"]
    assert len(width_steps) == 4
    rng = np.random.default_rng(1)
    torch.manual_seed(0)
    net = Supernet(space28, 10, 1).eval()
    x = torch.randn(2, 1, 28, 28)
    for arch in [space28.smallest(), space28.largest(), *(space28.sample(rng) for _ in range(4))]:
        chosen = [space28.decisions[i].choices[arch.indices[i]] for i in width_steps]
        assert arch.widths() == chosen
        child = extract(net, arch, image_size=28).eval()
        for stage, width in zip(child.stages, chosen, strict=True):
            assert all(block.project[0].out_channels == width for block in stage)
        assert child.head[0].in_channels == chosen[-1]
        with torch.no_grad():
            assert torch.allclose(net(x, arch), child(x), atol=1e-5)
        assert count_flops(child, x[:1]).flops == arch_cost(arch, 1, 28, 10).flops
        keys = {b.key for b in all_block_shapes(space28, 1, 28, 10)}
        assert {b.key for b in block_costs(arch, 1, 28, 10)} <= keys  # the latency table covers every block


def test_readable_json_round_trips_with_widths(space28):
    arch = space28.sample(np.random.default_rng(3))
    data = arch.to_json()
    assert [st["width"] for st in data["stages"]] == arch.widths()
    assert Architecture.from_json(space28, {"stages": data["stages"]}) == arch
    assert SearchSpace.from_dict(space28.to_dict()) == space28
    assert "c" + str(arch.widths()[0]) in str(arch)


def test_fixed_width_spaces_are_unchanged():
    space = mobilenetv2_space(28)
    assert space.num_decisions == 36 and all(d.kind != "width" for d in space.decisions)
    assert all("widths" not in st for st in space.to_dict()["stages"])


@pytest.mark.parametrize("widths", [(0.5, 0.5), (0.0, 1.0), (1.5,), ()])
def test_invalid_widths_are_refused(widths):
    with pytest.raises(AutostructError, match="widths"):
        SearchSpace("bad", (StageSpec(8, 1, widths=widths),))


# ---------------------------------------------------------------------------------------------- sandwich


def test_sandwich_paths_put_largest_first_then_smallest(space28):
    cfg = SupernetConfig(sampling="sandwich", sandwich_random=3)
    paths = sandwich_paths(space28, cfg, np.random.default_rng(0))
    assert len(paths) == 5 and paths[0] == space28.largest() and paths[1] == space28.smallest()
    assert len(sandwich_paths(space28, SupernetConfig(), np.random.default_rng(0))) == 1


def _distillation_reference(student: torch.Tensor, teacher: torch.Tensor) -> float:
    """-1/N sum_n sum_c p_T(n, c) log p_S(n, c), one number at a time."""
    total = 0.0
    for s_row, t_row in zip(student.tolist(), teacher.tolist(), strict=True):
        zt = sum(math.exp(v) for v in t_row)
        zs = sum(math.exp(v) for v in s_row)
        total -= sum(math.exp(t) / zt * (s - math.log(zs)) for s, t in zip(s_row, t_row, strict=True))
    return total / len(student)


def test_distillation_loss_matches_a_slow_reference():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(6, 10, generator=g) * 3, torch.randn(6, 10, generator=g) * 3
    loss = inplace_distillation_loss(student, teacher)
    assert loss.item() == pytest.approx(_distillation_reference(student, teacher), rel=1e-5)
    s = student.clone().requires_grad_(True)
    t = teacher.clone().requires_grad_(True)
    inplace_distillation_loss(s, t).backward()
    assert t.grad is None  # the teacher is detached
    assert torch.allclose(s.grad, (torch.softmax(s, 1) - torch.softmax(teacher, 1)) / len(s), atol=1e-6)


def test_sandwich_step_trains_the_largest_and_the_smallest_path():
    space = get_space("mobilenetv2-elastic", 8)
    torch.manual_seed(0)
    net = Supernet(space, 10, 1).train()
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    block = net.stages[0][2]  # the third block of stage 1: only paths of depth 3 run it
    for paths, trained in (([space.largest()], True), ([space.smallest()], False)):
        net.zero_grad(set_to_none=True)
        sandwich_step(net, x, y, paths, distill=True)
        grad = block.project[0].weight.grad
        assert (grad is not None and grad.abs().sum() > 0) == trained
        assert net.stem[0].weight.grad.abs().sum() > 0
    # Channels beyond the smallest width get gradient from the largest path only.
    net.zero_grad(set_to_none=True)
    sandwich_step(net, x, y, [space.smallest()], distill=False)
    small = space.stages[0].channel_choices[0]
    first_project = net.stages[0][0].project[0].weight.grad
    assert first_project[:small].abs().sum() > 0 and first_project[small:].abs().sum() == 0


def test_sandwich_step_students_learn_the_teacher_not_the_labels():
    space = get_space("mobilenetv2-elastic", 8)
    torch.manual_seed(0)
    net = Supernet(space, 10, 1).eval()  # eval: BN uses running stats, so two passes see the same function
    x = torch.randn(4, 1, 8, 8)
    y1, y2 = torch.zeros(4, dtype=torch.long), torch.full((4,), 7)
    paths = [space.largest(), space.smallest()]
    with torch.no_grad():
        teacher = net(x, paths[0])
        student = net(x, paths[1])
    expected = (torch.nn.functional.cross_entropy(teacher, y1) + inplace_distillation_loss(student, teacher)) / 2
    assert sandwich_step(net, x, y1, paths, distill=True) == pytest.approx(expected.item(), rel=1e-5)
    # Changing the labels changes only the teacher's term.
    diff = torch.nn.functional.cross_entropy(teacher, y2) - torch.nn.functional.cross_entropy(teacher, y1)
    assert sandwich_step(net, x, y2, paths, distill=True) == pytest.approx(expected.item() + diff.item() / 2, rel=1e-5)


def test_elastic_quickstart_config_parses_and_its_budgets_are_feasible(space28):
    from pathlib import Path

    import yaml

    from autostruct.nas.config import NASConfig, parse_config
    from autostruct.nas.evaluate import TaskCosts

    path = Path(__file__).resolve().parents[2] / "configs" / "quickstart-nas-elastic.yaml"
    cfg = parse_config(NASConfig, yaml.safe_load(path.read_text()))
    assert cfg.supernet.sampling == "sandwich" and cfg.supernet.distill
    assert get_space(cfg.space, 28) == space28
    for task in cfg.tasks:
        TaskCosts(1, 28, 10).check_budgets(space28, task.budgets, where=task.key)


def test_elastic_child_rebuilds_from_its_spec_and_exports(space28, tmp_path):
    from autostruct.export import export, load_model

    net = Supernet(space28, 10, 1).eval()
    arch = space28.sample(np.random.default_rng(4))
    child = extract(net, arch, image_size=28).eval()
    paths = export(child, tmp_path, torch.randn(1, 1, 28, 28))
    assert paths.onnx.is_file()
    rebuilt, _ = load_model(paths.model_pt)
    rebuilt.eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), child(x), atol=1e-6)
