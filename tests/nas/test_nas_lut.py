from __future__ import annotations

import json

import numpy as np
import pytest

from autostruct.errors import AutostructError
from autostruct.nas.lut import build_lut, check_lut, load_profile, save_profile, spearman
from autostruct.nas.space import mobilenetv2_space


@pytest.fixture(scope="module")
def profile():
    return build_lut(mobilenetv2_space(28), 28, 1, 10, warmup=3, runs=10, rounds=1, progress=False)


def test_lut_predicts_ranking_of_measured_latency(profile):
    space = mobilenetv2_space(28)
    assert profile.covers(space) == []
    check = check_lut(profile, space, n=10, warmup=3, runs=40, rounds=3, progress=False)
    # The target on a quiet host is Spearman >= 0.9 over 30 networks. Here 10 networks on a shared CI core: sampled
    # networks within a few percent of each other swap places with the host's load (measured: 0.69 and 0.79 in two
    # CI runs), so the strict check is on the pairs the table says differ by >= 1.5x: those must never swap.
    assert check.spearman >= 0.6, check.as_dict()
    pred, meas = check.predicted_ms, check.measured_ms
    swapped = [(i, j) for i in range(len(pred)) for j in range(len(pred))
               if pred[j] >= 1.5 * pred[i] and not meas[j] > meas[i]]
    assert not swapped, (swapped, check.as_dict())
    assert sum(pred[j] >= 1.5 * pred[i] for i in range(len(pred)) for j in range(len(pred))) >= 5  # the check bites
    assert pred[1] > pred[0]  # largest > smallest


def test_profile_roundtrip_and_missing_blocks(profile, tmp_path):
    path = save_profile(profile, tmp_path / "host.json")
    loaded = load_profile(path)
    arch = mobilenetv2_space(28).sample(np.random.default_rng(0))
    assert loaded.predict(arch) == pytest.approx(profile.predict(arch))

    data = json.loads(path.read_text())
    data["entries"] = {k: v for k, v in data["entries"].items() if not k.startswith("mbconv_i24")}
    path.write_text(json.dumps(data))
    with pytest.raises(AutostructError, match="has no latency for .* block"):
        load_profile(path).predict(mobilenetv2_space(28).largest())
    # a profile measured for another input size does not cover this task's blocks
    other = profile.with_meta(image_size=32)
    with pytest.raises(AutostructError, match="build-lut"):
        other.predict(mobilenetv2_space(32).smallest())


def test_bad_profile_files(tmp_path):
    with pytest.raises(AutostructError, match="does not exist"):
        load_profile(tmp_path / "nope.json")
    (tmp_path / "x.json").write_text("{\"blocks\": {}}")
    with pytest.raises(AutostructError, match="not an autostruct latency table"):
        load_profile(tmp_path / "x.json")
    from autostruct.measure import LatencyTable

    LatencyTable(device="other", entries={"conv": 1.0}).save(tmp_path / "t.json")
    with pytest.raises(AutostructError, match="not a NAS block profile"):
        load_profile(tmp_path / "t.json")


def test_spearman_matches_definition():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486833, rel=1e-6)
