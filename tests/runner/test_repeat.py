"""Repeat runs: mean and a Student-t 95 % interval per headline metric."""

from __future__ import annotations

import pytest

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
