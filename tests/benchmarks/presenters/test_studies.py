"""The run page's capacity, server-metrics and repetition blocks, and the comparison's study rows,
from stored summaries (no load runs here; the Celery path is in services/runs/test_study.py)."""

from __future__ import annotations

import copy

import pytest
from django.urls import reverse

from benchmarks.models import Run
from benchmarks.services.runs.start import run_repeat_next, run_start
from tests.benchmarks.factories import make_finished_run


def level(load, *, ok, att, ttft, verdict="trustworthy", **extra):
    return {
        "load": load, "sent_rps": load, "succeeded_qpm": load * 60 * (att or 0), "attainment": att,
        "slo_pass": ok, "ttft_p99": ttft, "tokens_per_s_p50": 40.0, "success": 1.0,
        "engine_verdict": verdict, "reasons": [] if ok else ["attainment 80.0% < 99.0%"],
        "misses": {"ttft": 0.0 if ok else 0.2}, "queue_steady": True, "t_s": [load, load + 5],
        "server": {"requests_running": 8.0, "requests_waiting": 0.0 if ok else 12.0}, **extra,
    }  # fmt: skip


def capacity_block(*, trusted=True):
    return {
        "mode": "rate", "max_load": 8.0, "max_rate_rps": 8.0, "max_qpm": 480.0, "limiting_slo": "ttft",
        "confirmed": True, "trusted": trusted, "client_bound_at": [] if trusted else [16.0],
        "slo": {"ttft_ms": 2000.0, "tokens_per_s": 20.0, "e2e_ms": None}, "attainment_target": 0.99,
        "inputs": "16k–32k input tokens", "arrival": "poisson", "warmup_trimmed_s": 3.0,
        "level_min_requests": 200,
        "levels": [
            level(4.0, ok=True, att=1.0, ttft=300.0),
            level(8.0, ok=True, att=0.995, ttft=1200.0),
            level(8.0, ok=True, att=0.993, ttft=1300.0, confirmation=True),
            level(16.0, ok=False, att=0.8, ttft=5200.0, verdict="trustworthy" if trusted else "client-bound"),
        ],
    }  # fmt: skip


def server_report(*, accept=None, errors=()):
    series = {
        "requests_running": [[0.0, 2.0], [0.25, 8.0], [0.5, 8.0]],
        "requests_waiting": [[0.0, 0.0], [0.25, 3.0], [0.5, 5.0]],
        "kv_cache_usage": [[0.0, 0.1], [0.25, 0.4], [0.5, 0.5]],
    }
    if accept is not None:
        series["spec_decode_acceptance_rate"] = [[0.25, accept], [0.5, accept]]
    summary = {n: {"p50": pts[len(pts) // 2][1], "max": max(v for _, v in pts)} for n, pts in series.items()}
    return {
        "series": series, "summary": summary, "interval_s": 0.25, "errors": list(errors),
        "endpoints": [{"url": "http://sim:8000/metrics", "scrapes": 3, "failures": len(errors), "last_error": None}],
    }  # fmt: skip


def with_summary(run: Run, **blocks) -> Run:
    run.summary = {**copy.deepcopy(run.summary), **blocks}
    run.spec = {**run.spec, **({"capacity": {"mode": "rate"}} if "capacity" in blocks else {})}
    run.save()
    return run


def page(client, run: Run) -> str:
    response = client.get(reverse("run_detail", args=[run.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_run_page_states_the_capacity_in_one_sentence_with_its_curve(cast, client_for):
    run = with_summary(cast.run, capacity=capacity_block())
    html = page(client_for(cast.alice), run)
    assert (
        "Holds 480 QPM at 16k–32k input tokens with 99% of requests within TTFT ≤ 2 s and ≥ 20 tokens/s "
        "(limited by TTFT)" in html
    )
    assert 'data-figure="capacity_curve_0"' in html and 'id="capacity_curve_0"' in html
    assert "(confirm)" in html and "fail: attainment 80.0% &lt; 99.0%" in html
    assert "capacity-untrusted" not in html and "one shard that drives the search" in html


def test_run_page_says_a_result_from_a_saturated_client_is_not_trusted(cast, client_for):
    run = with_summary(cast.run, capacity=capacity_block(trusted=False))
    html = page(client_for(cast.alice), run)
    assert 'id="capacity-untrusted"' in html and "This result is not trusted" in html
    assert "NOT TRUSTED: the client itself was saturated (at 16)" in html


def test_per_bucket_capacity_gives_one_sentence_and_curve_per_bucket(cast, client_for):
    buckets = [
        {"label": label, "lo": lo, "hi": hi, **capacity_block()}
        for label, lo, hi in (("0–1k", 0, 1024), ("16k–32k", 16384, 32768))
    ]
    run = with_summary(cast.run, capacity={"mode": "rate", "buckets": buckets})
    html = page(client_for(cast.alice), run)
    assert "Holds 480 QPM at 0–1k input tokens" in html and "Holds 480 QPM at 16k–32k input tokens" in html
    assert 'id="capacity_curve_1"' in html and "Capacity at 16k" in html


def test_server_metrics_show_beside_the_client_ttft_and_a_failed_scrape_is_said(cast, client_for):
    report = server_report(accept=0.7, errors=["http://sim:8000/metrics: 2 failed scrape(s), last HTTP 500"])
    html = page(client_for(cast.alice), with_summary(cast.run, server_metrics=report))
    assert 'id="server-metrics-table"' in html and 'data-figure="server_ttft"' in html
    assert 'data-figure="server_fractions"' in html and "spec_decode_acceptance_rate" in html
    assert "Scrape failed" in html and "last HTTP 500" in html and "the run went on" in html


def test_a_run_without_studies_shows_none_of_their_blocks(cast, client_for):
    html = page(client_for(cast.alice), cast.run)
    for part in ('id="capacity"', 'id="server-metrics"', 'id="repetitions"'):
        assert part not in html


# ------------------------------------------------------------------------------------------ repeats


def finish(run: Run, qpm: float, ttft: float) -> Run:
    run.status = Run.Status.FINISHED
    run.summary = {
        "requests": {"total": 10, "succeeded": 10, "failed": 0},
        "throughput": {"qpm": qpm, "output_tokens_per_s": qpm},
        "ttft_ms": {"p50": ttft, "p99": ttft * 2, "count": 10},
        "success_rate": 1.0,
    }
    run.save()
    return run


def repeated_set(cast, *, n: int, qpms: list[float], ttft: float) -> list[Run]:
    plan = cast.plan
    plan.repeat = n
    plan.save()
    runs = [run_start(plan=plan, by=cast.alice)]
    for qpm in qpms[:-1]:
        finish(runs[-1], qpm, ttft)
        runs.append(run_repeat_next(run=runs[-1]))
    finish(runs[-1], qpms[-1], ttft)
    assert run_repeat_next(run=runs[-1]) is None  # the set is complete
    return runs


def test_each_finished_repetition_starts_the_next_until_n(cast):
    runs = repeated_set(cast, n=3, qpms=[100.0, 110.0, 120.0], ttft=50.0)
    assert [r.repeat_index for r in runs] == [0, 1, 2]
    assert {r.repeat_of_id for r in runs[1:]} == {runs[0].pk} and runs[0].repeat_of_id is None


def test_a_failed_repetition_stops_the_set(cast):
    cast.plan.repeat = 3
    cast.plan.save()
    run = run_start(plan=cast.plan, by=cast.alice)
    run.status = Run.Status.FAILED
    run.save()
    assert run_repeat_next(run=run) is None


def test_run_page_gives_means_and_intervals_across_repetitions(cast, client_for):
    runs = repeated_set(cast, n=3, qpms=[100.0, 110.0, 120.0], ttft=50.0)
    html = page(client_for(cast.alice), runs[1])
    assert "Repetition 2 of 3" in html and 'id="repeat-table"' in html
    assert "across 3 finished runs" in html and "110.000" in html  # QPM mean
    # t(2) = 4.303, sd 10, n 3: 110 ± 24.84
    assert "85.157 – 134.843" in html


@pytest.mark.parametrize(
    ("other_qpm", "verdict"), [([105.0, 115.0, 125.0], "within noise"), ([300.0, 310.0, 320.0], "differs")]
)
def test_comparison_uses_repetition_intervals(cast, client_for, other_qpm, verdict):
    from benchmarks.presenters.compare import comparison_build

    a = repeated_set(cast, n=3, qpms=[100.0, 110.0, 120.0], ttft=50.0)
    b = repeated_set(cast, n=3, qpms=other_qpm, ttft=50.0)
    sections = {s["key"]: s for s in comparison_build(runs=[a[-1], b[-1]], charts=False)["study_sections"]}
    qpm = next(r for r in sections["repeat"]["rows"] if r["label"] == "QPM")
    assert qpm["cells"][1]["verdict"] == verdict and "over 3 runs" in qpm["cells"][0]["note"]


# --------------------------------------------------------------------------------------- comparisons


def test_comparison_shows_max_qpm_per_variant_and_server_metrics(cast, client_for):
    base = with_summary(cast.run, capacity=capacity_block(), server_metrics=server_report(accept=0.6))
    other = make_finished_run(cast.plan)
    better = capacity_block(trusted=False)
    better["max_qpm"], better["limiting_slo"] = 600.0, "tokens_per_s"
    with_summary(other, capacity=better, server_metrics=server_report(accept=0.8))
    client = client_for(cast.alice)
    html = client.get(reverse("compare"), {"runs": f"{base.pk},{other.pk}"}).content.decode()
    assert 'id="compare-studies"' in html
    assert "max QPM" in html and "480" in html and "600" in html
    assert "limited by TTFT" in html and "limited by tokens/s" in html and "NOT TRUSTED" in html
    assert "server spec_decode_acceptance_rate p50" in html and "client tokens/s p50" in html
    assert "0.6" in html and "0.8" in html
    exported = client.get(reverse("compare_export", args=["csv"]), {"runs": f"{base.pk},{other.pk}"})
    text = exported.content.decode()
    assert "Capacity at SLO,capacity,max QPM" in text and ",480," in text and ",600," in text
    assert "Server metrics,server," in text


def test_a_set_whose_dataset_has_no_prompts_left_stops_and_says_why(cast):
    cast.plan.repeat = 2
    cast.plan.save()
    first = finish(run_start(plan=cast.plan, by=cast.alice), 100.0, 50.0)
    cast.plan.buckets = ["48k+"]  # no prompt of the dataset is that long
    cast.plan.save()
    assert run_repeat_next(run=first) is None
    first.refresh_from_db()
    assert first.reason.startswith("Repetitions stopped:")


def sweep_point(level_index, *, ttft, accuracy=None):
    point = {
        "level": level_index,
        "throughput": {"requests_per_s": 2.0 * (level_index + 1), "qpm": 120.0 * (level_index + 1)},
        "ttft_ms": {"p50": ttft, "p99": ttft * 2}, "e2e_ms": {"p50": ttft * 3},
        "tokens_per_s": {"p50": 40.0 - level_index}, "success_rate": 1.0,
        "quality": {"requests": 10, "empty_answer": {"count": 1, "rate": 0.1},
                    "truncated_thinking": {"count": 0, "rate": 0.0}},
    }  # fmt: skip
    if accuracy is not None:
        point["accuracy"] = {"graded": 10, "correct": int(accuracy * 10), "rate": accuracy}
    return point


def test_a_sweep_run_shows_latency_and_accuracy_per_level(cast, client_for):
    run = with_summary(
        cast.run, sweep=[sweep_point(0, ttft=100.0, accuracy=0.9), sweep_point(1, ttft=250.0, accuracy=0.7)]
    )
    run.spec = {**run.spec, "profile": {"kind": "sweep", "sweep_levels": [4, 16], "sweep_mode": "users"}}
    run.save()
    html = page(client_for(cast.alice), run)
    assert 'id="sweep-table"' in html and 'data-figure="sweep_curve"' in html and 'id="sweep_curve"' in html
    assert "level (users)" in html and "90% (n=10)" in html and "70% (n=10)" in html
    assert "accuracy %" in html  # the curve carries the accuracy trace beside latency


def test_a_sweep_without_graded_answers_has_no_accuracy_column(cast, client_for):
    run = with_summary(cast.run, sweep=[sweep_point(0, ttft=100.0), sweep_point(1, ttft=200.0)])
    html = page(client_for(cast.alice), run)
    assert 'id="sweep-table"' in html and "(n=" not in html


def test_a_budget_sweep_is_drawn_against_the_budget(cast, client_for):
    run = with_summary(
        cast.run, sweep=[sweep_point(0, ttft=100.0, accuracy=0.5), sweep_point(1, ttft=400.0, accuracy=0.9)]
    )
    run.spec = {**run.spec, "profile": {"kind": "sweep", "sweep_mode": "budget", "budget_param": "max_tokens",
                                        "budget_levels": ["512", "8192"], "sweep_levels": [4, 4]}}  # fmt: skip
    run.save()
    html = page(client_for(cast.alice), run)
    assert "level (max_tokens)" in html and "<td>8192</td>" in html and "90% (n=10)" in html
