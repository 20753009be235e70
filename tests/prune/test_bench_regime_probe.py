"""benchmarks/regime_probe.py's reading of its rows (the probe itself runs in benchmarks/, minutes per task)."""

from __future__ import annotations

import pytest

from bench_scripts import load_benchmark


def _rows(short_sign: float) -> list[dict]:
    # Five random strategies: the untrained reward ranks them backwards, the short fine-tune ``short_sign``-wards.
    after = [40.0, 45.0, 50.0, 55.0, 70.0]
    rows = [{"kind": "random", "val_score": 20.0 - i, "short_ft_score": 30.0 + short_sign * i, "test_no_ft": 15.0,
             "test_ft50": a} for i, a in enumerate(after)]
    return [{"kind": "uniform", "val_score": 10.0, "short_ft_score": 50.0, "test_no_ft": 12.0, "test_ft50": 72.0},
            *rows]


def test_summary_says_which_reward_ranks_the_fine_tuned_accuracy(tmp_path):
    probe = load_benchmark("regime_probe")
    good = probe.summarize(_rows(+1.0), [50])["ft50"]
    assert good["mean"] == pytest.approx(52.0) and good["best_minus_median"] == pytest.approx(20.0)
    assert good["tau_val_score"] == pytest.approx(-1.0) and good["tau_short_ft_score"] == pytest.approx(1.0)
    assert good["top1_by_val_score_minus_mean"] == pytest.approx(-12.0)
    assert good["top1_by_short_ft_score_minus_mean"] == pytest.approx(18.0)
    assert good["uniform_minus_mean"] == pytest.approx(20.0)  # the uniform row is reported, never ranked
    bad = probe.summarize(_rows(-1.0), [50])["ft50"]  # a reward that ranks like the untrained one fails alike
    assert bad["tau_short_ft_score"] == pytest.approx(-1.0) and bad["top1_by_short_ft_score_minus_mean"] < 0

    result = {"settings": {"strategies": 5, "short_steps": 20}, "complete": False,
              "tasks": [{"task": "digits-r0.2", "summary": {"ft50": good}}]}
    doc = tmp_path / "doc.md"
    doc.write_text("a\n<!-- regime-probe:begin -->\nold\n<!-- regime-probe:end -->\nb\n")
    probe.write_section(doc, probe.render(result, "r.json"))
    text = doc.read_text()
    assert "old" not in text and text.startswith("a\n") and text.endswith("b\n")
    assert "| digits-r0.2 | 50 | 52.00 |" in text and "incomplete run" in text
