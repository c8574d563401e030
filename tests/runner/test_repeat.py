"""Repeat runs: mean and a Student-t 95 % interval per headline metric."""

from __future__ import annotations

from typing import Any

import pytest

from runner import repeat
from runner.repeat import combine, interval


def test_interval_uses_student_t_over_the_runs() -> None:
    out = interval([10.0, 12.0, 14.0])
    assert out["mean"] == 12.0
    half = 4.303 * 2.0 / 3**0.5  # t(2) * stdev / sqrt(n)
    assert out["ci95"] == pytest.approx([12.0 - half, 12.0 + half])


def test_one_run_has_a_mean_but_no_interval() -> None:
    assert interval([5.0]) == {"n": 1, "mean": 5.0, "ci95": None, "values": [5.0]}


def test_combine_reads_each_headline_and_skips_missing_values() -> None:
    runs = [
        {"ttft_ms": {"p50": 100.0, "p99": 200.0}, "throughput": {"qpm": 600.0}, "success_rate": 1.0},
        {"ttft_ms": {"p50": 110.0, "p99": None}, "throughput": {"qpm": 620.0}, "success_rate": 0.99},
    ]
    block = combine(runs)
    assert block["runs"] == 2
    assert block["metrics"]["ttft_ms_p50"]["mean"] == 105.0
    assert block["metrics"]["ttft_ms_p99"]["n"] == 1
    assert block["metrics"]["qpm"]["ci95"][0] < 610.0 < block["metrics"]["qpm"]["ci95"][1]
    assert block["metrics"]["tokens_per_s_p50"]["mean"] is None


def _s(ttft: float, qpm: float, p90: float | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"ttft_ms": {"p50": ttft, "p99": ttft * 2}, "throughput": {"qpm": qpm}, "note": "x"}
    if p90 is not None:
        out["ttft_ms"]["p90"] = p90
    return out


def test_a_sets_mean_summary_averages_every_shared_number_and_carries_the_intervals() -> None:
    mean = repeat.mean_summary([_s(100, 60, 150), _s(110, 66, 170), _s(120, 72)])
    assert mean["ttft_ms"] == {"p50": 110.0, "p99": 220.0}  # p90 is not in every repetition
    assert mean["throughput"]["qpm"] == 66.0 and mean["note"] == "x"
    assert mean["repeat"]["runs"] == 3 and mean["repeat"]["metrics"]["ttft_ms_p50"]["ci95"] is not None


def test_a_regression_across_repetitions_needs_its_interval_to_exclude_the_baseline() -> None:
    baseline = [_s(100, 60)]
    steady = [_s(130, 60), _s(131, 60), _s(129, 60)]  # 30 % slower, tight interval: a regression
    found = repeat.regressions(steady, baseline, threshold_pct=10)
    assert [r["path"] for r in found] == ["ttft_ms.p50", "ttft_ms.p99"]
    assert found[0]["noise"] is False and found[0]["runs"] == 3 and round(found[0]["pct"]) == 30
    noisy = [_s(60, 60), _s(200, 60), _s(130, 60)]  # the same mean, an interval holding 100: noise
    assert repeat.regressions(noisy, baseline, threshold_pct=10) == []
    assert [r["noise"] for r in repeat.regressions(noisy, baseline, threshold_pct=10, noise_aware=False)] == [
        None,
        None,
    ]
    # a repeated baseline: overlapping intervals are noise, apart ones are not
    wide = [_s(110, 60), _s(150, 60)]
    assert repeat.regressions(steady, wide, threshold_pct=5) == []
    assert repeat.regressions(steady, [_s(100, 60), _s(101, 60)], threshold_pct=5)
    # better, or worse by less than the threshold, is never a regression
    assert repeat.regressions([_s(90, 70), _s(91, 70)], baseline) == []
    assert repeat.regressions([_s(105, 60), _s(105.5, 60)], baseline, threshold_pct=10) == []
    fewer = repeat.regressions([_s(100, 40), _s(100, 41)], baseline, threshold_pct=10)
    assert [r["path"] for r in fewer] == ["throughput.qpm"]  # higher is better there
