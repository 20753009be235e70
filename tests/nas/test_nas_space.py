from __future__ import annotations

import json

import numpy as np
import pytest

from autostruct.errors import AutostructError
from autostruct.nas.space import Architecture, SearchSpace, get_space, list_spaces, mobilenetv2_space

TINY = {
    "name": "tiny",
    "stem_channels": 8,
    "head_channels": 32,
    "stages": [
        {"channels": 8, "stride": 2, "depths": [1, 2], "kernels": [3, 5], "expands": [2, 3]},
        {"channels": 16, "stride": 2, "depths": [1, 2], "kernels": [3, 5], "expands": [2, 3]},
    ],
}


def test_default_space_is_large_and_ordered():
    space = mobilenetv2_space(28)
    assert space.num_architectures() >= 10**6
    names = [d.name for d in space.decisions]
    assert names[:3] == ["stage1.depth", "stage1.block1.kernel", "stage1.block1.expand"]
    assert space.choice_counts == tuple(3 for _ in names)
    assert "mobilenetv2" in list_spaces()


def test_masks_skip_blocks_beyond_depth():
    space = mobilenetv2_space(28)
    # depth 2 (index 0): blocks 3 and 4 of stage 1 are skipped -> only option 0 allowed.
    prefix = [0, 1, 1, 2, 2]
    assert space.action_mask(prefix).tolist() == [True, False, False]
    assert space.action_mask([0]).tolist() == [True, True, True]
    arch = space.arch([0] + [1] * (space.num_decisions - 1))
    assert arch.indices[5:9] == (0, 0, 0, 0)  # canonicalized
    assert arch.depths()[0] == 2


def test_sample_respects_masks_and_json_roundtrip():
    space = mobilenetv2_space(32)
    rng = np.random.default_rng(0)
    for _ in range(20):
        arch = space.sample(rng)
        for t in range(space.num_decisions):
            assert space.action_mask(arch.indices[:t])[arch.indices[t]]
        blob = json.loads(json.dumps(arch.to_json()))
        assert Architecture.from_json(space, blob) == arch
        assert Architecture.from_json(space, {"stages": blob["stages"]}) == arch
        assert Architecture.from_json(space, blob["indices"]) == arch


def test_custom_space_from_dict_roundtrip():
    space = get_space(TINY)
    assert SearchSpace.from_dict(space.to_dict()) == space
    assert space.num_architectures() == (4 + 16) ** 2
    assert space.smallest().depths() == [1, 1]


@pytest.mark.parametrize(
    "data, match",
    [
        ({"name": "e", "stages": []}, "no stages"),
        ({"stages": [{"channels": 8, "kernels": []}]}, "kernels is empty"),
        ({"stages": [{"channels": 8, "kernels": [4]}]}, "odd"),
        ({"stages": [{"channels": 8, "strides": 2}]}, "Unknown key"),
        ({"stages": [{"channels": 8, "stride": 3}]}, "stride must be 1 or 2"),
    ],
)
def test_bad_spaces_are_user_errors(data, match):
    with pytest.raises(AutostructError, match=match):
        get_space(data)


def test_bad_architectures_are_user_errors():
    space = mobilenetv2_space(28)
    with pytest.raises(AutostructError, match="36 choice indices"):
        space.arch([0, 1])
    with pytest.raises(AutostructError, match="stage1.depth"):
        space.arch([5] + [0] * 35)
    bad = space.largest().to_json()["stages"]
    bad[1]["blocks"][0]["kernel"] = 9
    with pytest.raises(AutostructError, match=r"stages\[1\].blocks\[0\].kernel: 9 is not one of \[3, 5, 7\]"):
        Architecture.from_json(space, {"stages": bad})
    with pytest.raises(AutostructError, match="Unknown search space 'mobilenet2'"):
        get_space("mobilenet2")
