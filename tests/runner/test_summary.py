from __future__ import annotations

import pytest

from runner.records import RequestRecord
from runner.spec import Prompt, Slo
from runner.summary import distribution, percentile, refresh_accuracy, summarize


def _rec(i: int, ttft: float, inp: int, ok: bool = True, tps: float = 30.0) -> RequestRecord:
    r = RequestRecord(request_id=str(i), prompt_id="p", outcome="success" if ok else "empty_answer")
    r.ttft_ms, r.e2e_ms, r.tokens_per_s, r.tpot_ms = ttft, ttft + 1000, tps, 1000 / tps
    r.input_tokens, r.output_tokens, r.itl_ms = inp, 31, [33.0, 34.0]
    return r


def test_percentiles_are_exact_interpolated() -> None:
    xs = list(range(1, 101))
    assert percentile(xs, 50) == pytest.approx(50.5)
    assert percentile(xs, 99) == pytest.approx(99.01)
    d = distribution([3.0, 1.0, 2.0, None])
    assert d["count"] == 3 and d["p50"] == 2.0 and d["max"] == 3.0 and d["mean"] == 2.0


def test_summary_buckets_goodput_cost_and_failures() -> None:
    recs = [_rec(i, 100 + i, 500) for i in range(10)] + [_rec(100 + i, 3000, 20000, tps=10) for i in range(5)]
    recs.append(_rec(999, 50, 500, ok=False))
    s = summarize(
        recs,
        duration_s=10,
        bucket_edges=[0, 1024, 16384, 32768],
        slo=Slo(ttft_ms=2000, tokens_per_s=20),
        price_in_per_1k=0.01,
        price_out_per_1k=0.02,
        currency="CNY",
    )
    assert s["requests"] == {
        "total": 16,
        "succeeded": 15,
        "failed": 1,
        "failures": {"empty_answer": 1},
        "cancelled": 0,
        "length_stopped": 0,
    }
    assert s["throughput"]["qpm"] == pytest.approx(15 * 6)
    assert [b["label"] for b in s["buckets"]] == ["0–1k", "16k–32k"]
    assert s["buckets"][1]["ttft_ms"]["p50"] == 3000
    assert s["goodput"]["requests"] == 10
    assert s["cost"]["input"] == pytest.approx((10 * 500 + 5 * 20000 + 500) / 1000 * 0.01)
    assert s["cost"]["currency"] == "CNY"
    assert s["conventions"]["itl_pooled_ms"]["count"] == 30


def test_length_stopped_can_count_as_failure() -> None:
    r = _rec(1, 100, 10)
    r.length_stopped = True
    assert summarize([r], duration_s=1)["requests"]["failed"] == 0
    assert summarize([r], duration_s=1, length_is_failure=True)["requests"]["failures"] == {
        "length_stopped": 1
    }


def test_accuracy_counts_failed_requests_as_wrong_and_skips_ungraded() -> None:
    recs = [_rec(i, 100, 10) for i in range(4)] + [_rec(9, 100, 10, ok=False)]
    for r, c in zip(recs, [True, True, False, None, False], strict=True):
        r.correct = c
    s = summarize(recs, duration_s=1)
    assert {k: s["accuracy"][k] for k in ("graded", "correct", "rate", "failed")} == {
        "graded": 4,
        "correct": 2,
        "rate": 0.5,
        "failed": 1,
    }
    assert "accuracy" not in summarize(recs[3:4], duration_s=1)


def _math(i: int, subject: str, level: int, correct: bool, ok: bool = True, inp: int = 10) -> RequestRecord:
    r = _rec(i, 100, inp, ok=ok)
    r.prompt_id, r.correct = f"q{i}", correct and ok
    return r


def test_accuracy_per_subject_level_and_bucket_with_a_wilson_interval() -> None:
    rows = [("Algebra", 1, True), ("Algebra", 2, False), ("Geometry", 2, True), ("Geometry", 5, True)]
    recs = [_math(i, s, lvl, c, inp=10 if i < 2 else 2000) for i, (s, lvl, c) in enumerate(rows)]
    prompts = [
        Prompt(id=f"q{i}", expected="1", meta={"subject": s, "level": lvl})
        for i, (s, lvl, _) in enumerate(rows)
    ]
    failed = _math(4, "Algebra", 1, False, ok=False)
    failed.correct = None  # never graded: its prompt's expected answer makes it count, as wrong
    prompts.append(Prompt(id="q4", expected="1", meta={"subject": "Algebra", "level": 1}))
    acc = summarize([*recs, failed], duration_s=1, prompts=prompts)["accuracy"]
    assert (acc["graded"], acc["correct"], acc["failed"], acc["rate"]) == (5, 3, 1, 0.6)
    lo, hi = acc["ci95"]
    assert lo == pytest.approx(0.2307, abs=1e-4) and hi == pytest.approx(0.8824, abs=1e-4)
    assert {k: (v["graded"], v["correct"]) for k, v in acc["by_subject"].items()} == {
        "Algebra": (3, 1),
        "Geometry": (2, 2),
    }
    assert {k: v["correct"] for k, v in acc["by_level"].items()} == {"1": 1, "2": 1, "5": 1}
    assert {k: v["graded"] for k, v in acc["by_bucket"].items()} == {"0–1k": 3, "1k–4k": 2}


def test_a_sweep_level_reports_its_accuracy_and_quality_beside_latency() -> None:
    recs = [_math(i, "Algebra", 1, i % 2 == 0) for i in range(4)]
    for r in recs:
        r.level = 0 if r.request_id in ("0", "1") else 1
    recs[3].outcome, recs[3].finish_reason = "truncated_thinking", "length"
    points = summarize(recs, duration_s=1)["sweep"]
    assert [p["accuracy"]["correct"] for p in points] == [1, 1]
    assert [p["quality"]["truncated_thinking"]["count"] for p in points] == [0, 1]
    assert "ttft_ms" in points[0]


def test_cost_bills_failed_requests_the_server_processed_but_not_refusals() -> None:
    ok = _rec(1, 100, 1000)
    truncated = _rec(2, 100, 1000, ok=False)
    truncated.outcome, truncated.output_tokens, truncated.usage_input_tokens = (
        "truncated_thinking",
        4096,
        1000,
    )
    refused = RequestRecord(request_id="3", prompt_id="p", outcome="http_error", http_status=429)
    refused.input_tokens = 1000  # the client's count: nothing was processed
    s = summarize([ok, truncated, refused], duration_s=1, price_in_per_1k=1.0, price_out_per_1k=1.0)
    assert s["tokens"]["billed_input"] == 2000 and s["tokens"]["billed_output"] == 31 + 4096
    assert s["cost"]["total"] == pytest.approx(2.0 + 4.127)
    assert s["tokens"]["output"] == 31  # throughput counts what succeeded


def test_refresh_accuracy_after_grading_again_updates_overall_levels_and_variants() -> None:
    recs = [_math(i, "Algebra", 1, False) for i in range(4)]
    for i, r in enumerate(recs):
        r.level, r.variant = i % 2, i // 2
    summary = summarize(recs, duration_s=1)
    summary["variants"] = [{"variant": 0}, {"variant": 1}]
    assert summary["accuracy"]["correct"] == 0
    recs[0].correct = recs[3].correct = True  # the symbolic pass found two more
    prompts = [Prompt(id=f"q{i}", expected="1", meta={"subject": "Algebra", "level": 3}) for i in range(4)]
    refresh_accuracy(summary, recs, prompts=prompts)
    assert summary["accuracy"]["correct"] == 2 and summary["accuracy"]["by_subject"]["Algebra"]["graded"] == 4
    assert [p["accuracy"]["correct"] for p in summary["sweep"]] == [1, 1]
    assert [v["accuracy"]["correct"] for v in summary["variants"]] == [1, 1]
