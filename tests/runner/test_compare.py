from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from runner.compare import (
    MANN_WHITNEY_CAP,
    PATHS,
    Rule,
    accuracy_delta,
    check_rules,
    compare_summaries,
    format_table,
    paired_stats,
    parse_rule,
    regressions,
)
from runner.metrics import METRICS
from runner.records import RequestRecord
from runner.summary import distribution, summarize

KEYS = ("ttft_ms", "tokens_per_s", "e2e_ms")


def _row(comparison: dict[str, Any], path: str, bucket: str | None = None) -> dict[str, Any]:
    rows = (
        comparison["rows"]
        if bucket is None
        else next(b for b in comparison["buckets"] if b["label"] == bucket)["rows"]
    )
    return next(r for r in rows if r["path"] == path)


def _summary(**blocks: Any) -> dict[str, Any]:
    return {"buckets": [], **blocks}


def _lognormal(seed: int, n: int, scale: float = 1.0) -> dict[str, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    return {key: rng.lognormal(5.0, 0.5, n) * scale for key in KEYS}


def _from_samples(samples: dict[str, Any]) -> dict[str, Any]:
    return _summary(**{key: distribution(list(values)) for key, values in samples.items()})


# ------------------------------------------------------------------------------------------- deltas


def test_lower_ttft_higher_tokens_per_s_and_higher_success_rate_are_better() -> None:
    base = _summary(
        ttft_ms={"p50": 200.0}, tokens_per_s={"p50": 40.0}, success_rate=0.99, e2e_ms={"p99": 900.0}
    )
    run = _summary(
        ttft_ms={"p50": 150.0}, tokens_per_s={"p50": 50.0}, success_rate=0.95, e2e_ms={"p99": 900.0}
    )
    slow = _summary(
        ttft_ms={"p50": 230.0}, tokens_per_s={"p50": 30.0}, success_rate=1.0, e2e_ms={"p99": 990.0}
    )
    c = compare_summaries([base, run, slow], labels=["bf16", "int4", "mtp"])

    ttft = _row(c, "ttft_ms.p50")
    assert ttft["values"] == [200.0, 150.0, 230.0] and ttft["better"] == "lower" and ttft["unit"] == "ms"
    assert ttft["deltas"][0] is None
    assert (ttft["deltas"][1]["abs"], ttft["deltas"][1]["pct"], ttft["deltas"][1]["verdict"]) == (
        -50.0,
        -25.0,
        "better",
    )
    assert (ttft["deltas"][2]["abs"], ttft["deltas"][2]["pct"], ttft["deltas"][2]["verdict"]) == (
        30.0,
        15.0,
        "worse",
    )
    tps = _row(c, "tokens_per_s.p50")
    assert (tps["deltas"][1]["abs"], tps["deltas"][1]["pct"], tps["deltas"][1]["verdict"]) == (
        10.0,
        25.0,
        "better",
    )
    assert (tps["deltas"][2]["pct"], tps["deltas"][2]["verdict"]) == (-25.0, "worse")
    ok = _row(c, "success_rate")
    assert ok["deltas"][1]["verdict"] == "worse" and ok["deltas"][2]["verdict"] == "better"
    assert ok["deltas"][1]["abs"] == pytest.approx(-0.04) and ok["deltas"][1]["pct"] == pytest.approx(
        -4.0404, abs=1e-4
    )
    assert _row(c, "e2e_ms.p99")["deltas"][1]["verdict"] == "same"
    assert _row(c, "e2e_ms.p99")["deltas"][2]["pct"] == pytest.approx(10.0)


def test_directions_reuse_the_metric_glossary() -> None:
    for key in ("ttft_ms", "tokens_per_s", "e2e_ms", "itl_ms", "tpot_ms"):
        assert PATHS[f"{key}.p99"].better == METRICS[key].better
        assert PATHS[f"{key}.p99"].unit == METRICS[key].unit
    expected = {
        "throughput.qpm": "higher",
        "success_rate": "higher",
        "accuracy": "higher",
        "cost.total": "lower",
        "goodput.requests_per_s": "higher",
    }
    assert {path: PATHS[path].better for path in expected} == expected


def test_zero_baseline_gives_absolute_delta_only_and_missing_values_give_no_delta() -> None:
    base = _summary(cost={"total": 0.0, "currency": "CNY"})
    run = _summary(cost={"total": 2.5, "currency": "CNY"}, accuracy=0.8)
    c = compare_summaries([base, run], labels=["a", "b"])
    cost = _row(c, "cost.total")
    assert cost["unit"] == "CNY"
    assert cost["deltas"][1] == {
        "abs": 2.5,
        "pct": None,
        "verdict": "worse",
        "noise": None,
        "test": None,
        "p_value": None,
        "ci": None,
    }
    assert _row(c, "accuracy")["values"] == [None, 0.8] and _row(c, "accuracy")["deltas"] == [None, None]
    assert all(r["path"] != "ttft_ms.p50" for r in c["rows"])  # absent everywhere: no row


def _rec(i: int, ttft: float, input_tokens: int) -> RequestRecord:
    r = RequestRecord(request_id=str(i), prompt_id=f"p{i}")
    r.ttft_ms, r.e2e_ms, r.tokens_per_s, r.tpot_ms = ttft, ttft + 1000, 30.0, 1000 / 30
    r.input_tokens, r.output_tokens = input_tokens, 31
    return r


def test_bucket_rows_are_aligned_by_label_when_a_run_lacks_a_bucket() -> None:
    edges = [0, 1024, 4096, 16384]
    a = summarize([_rec(1, 100, 500), _rec(2, 900, 20000)], duration_s=1, bucket_edges=edges)
    b = summarize([_rec(1, 80, 500), _rec(2, 300, 2000)], duration_s=1, bucket_edges=edges)
    c = compare_summaries([a, b], labels=["a", "b"])

    assert [(x["label"], x["lo"], x["hi"]) for x in c["buckets"]] == [
        ("0–1k", 0, 1024),
        ("1k–4k", 1024, 4096),
        ("16k+", 16384, None),
    ]
    small = _row(c, "ttft_ms.p50", "0–1k")
    assert small["values"] == [100.0, 80.0] and small["deltas"][1]["pct"] == pytest.approx(-20.0)
    assert _row(c, "ttft_ms.p50", "1k–4k")["values"] == [None, 300.0]
    only_a = _row(c, "ttft_ms.p50", "16k+")
    assert only_a["values"] == [900.0, None] and only_a["deltas"] == [None, None]
    assert "input tokens 16k+" in format_table(c)


# -------------------------------------------------------------------------------------------- noise


def test_two_runs_from_the_same_distribution_are_noise() -> None:
    a, b = _lognormal(1, 5000), _lognormal(2, 5000)
    c = compare_summaries([_from_samples(a), _from_samples(b)], labels=["a", "b"], samples=[a, b])
    for stat in ("p50", "p99", "mean"):
        d = _row(c, f"ttft_ms.{stat}")["deltas"][1]
        assert d["noise"] is True and d["test"] == "bootstrap-ci", (stat, d)
        assert d["ci"][0] <= 0 <= d["ci"][1]
    extreme = _row(c, "ttft_ms.max")["deltas"][1]
    assert extreme["noise"] is True and extreme["test"] == "mann-whitney" and extreme["ci"] is None


def test_same_distribution_is_called_real_about_alpha_of_the_time() -> None:
    calls = []
    for seed in range(0, 20, 2):
        a, b = _lognormal(seed, 3000), _lognormal(seed + 1, 3000)
        c = compare_summaries([_from_samples(a), _from_samples(b)], labels=["a", "b"], samples=[a, b])
        calls += [
            _row(c, f"{k}.{s}")["deltas"][1]["noise"] for k in KEYS for s in ("p50", "p90", "p99", "mean")
        ]
    assert len(calls) == 120 and all(isinstance(noise, bool) for noise in calls)
    assert calls.count(False) / len(calls) <= 0.10  # alpha = 0.05 false alarms, with room for chance


def test_a_clear_shift_is_not_noise_and_the_verdict_follows_each_direction() -> None:
    a, b = _lognormal(1, 5000), _lognormal(2, 5000, scale=1.2)
    c = compare_summaries([_from_samples(a), _from_samples(b)], labels=["a", "b"], samples=[a, b])
    for stat in ("p50", "p90", "p99", "mean"):
        ttft = _row(c, f"ttft_ms.{stat}")["deltas"][1]
        assert (ttft["noise"], ttft["verdict"]) == (False, "worse"), stat
        tps = _row(c, f"tokens_per_s.{stat}")["deltas"][1]
        assert (tps["noise"], tps["verdict"]) == (False, "better"), stat
    assert _row(c, "ttft_ms.p50")["deltas"][1]["p_value"] < 1e-10


def test_an_extreme_against_the_distributions_move_is_noise() -> None:
    a = _lognormal(1, 3000)
    b = {key: values * 1.2 for key, values in _lognormal(2, 3000).items()}
    b["ttft_ms"] = np.append(b["ttft_ms"], a["ttft_ms"].min() / 2)  # one lucky request in a slower run
    c = compare_summaries([_from_samples(a), _from_samples(b)], labels=["a", "b"], samples=[a, b])
    lowest = _row(c, "ttft_ms.min")["deltas"][1]
    assert lowest["verdict"] == "better" and lowest["noise"] is True
    highest = _row(c, "ttft_ms.max")["deltas"][1]
    assert highest["verdict"] == "worse" and highest["noise"] is False


def test_without_samples_noise_is_unknown() -> None:
    a, b = _lognormal(1, 500), _lognormal(2, 500, scale=1.5)
    c = compare_summaries([_from_samples(a), _from_samples(b)], labels=["a", "b"])
    assert c["noise"] is None
    deltas = [r["deltas"][1] for r in c["rows"]]
    assert deltas and all(d["noise"] is None and d["test"] is None and d["p_value"] is None for d in deltas)
    assert "noise: unknown" in format_table(c)


def test_metrics_without_samples_or_in_buckets_stay_unknown_when_others_have_samples() -> None:
    a, b = _lognormal(1, 500), _lognormal(2, 500)
    only_ttft = [{"ttft_ms": a["ttft_ms"]}, {"ttft_ms": b["ttft_ms"]}]
    base, run = _from_samples(a), _from_samples(b)
    base["buckets"] = [{"label": "0–1k", "lo": 0, "hi": 1024, "ttft_ms": base["ttft_ms"]}]
    run["buckets"] = [{"label": "0–1k", "lo": 0, "hi": 1024, "ttft_ms": run["ttft_ms"]}]
    c = compare_summaries([base, run], labels=["a", "b"], samples=only_ttft)
    assert _row(c, "ttft_ms.p50")["deltas"][1]["test"] == "bootstrap-ci"
    assert _row(c, "e2e_ms.p50")["deltas"][1]["noise"] is None
    assert _row(c, "ttft_ms.p50", "0–1k")["deltas"][1]["noise"] is None
    assert c["noise"]["metrics"] == ["ttft_ms"]


def test_mann_whitney_p_value_is_scipys_and_sane() -> None:
    a, b = _lognormal(1, 2000), _lognormal(2, 2000)
    c = compare_summaries([_from_samples(a), _from_samples(b)], labels=["a", "b"], samples=[a, b])
    expected = stats.mannwhitneyu(a["e2e_ms"], b["e2e_ms"], alternative="two-sided").pvalue
    assert _row(c, "e2e_ms.p50")["deltas"][1]["p_value"] == pytest.approx(expected)
    assert expected > 0.05

    same = compare_summaries([_from_samples(a), _from_samples(a)], labels=["a", "a"], samples=[a, a])
    d = _row(same, "e2e_ms.p99")["deltas"][1]
    assert d["p_value"] == pytest.approx(1.0) and d["verdict"] == "same" and d["noise"] is True


def test_bootstrap_ci_contains_the_true_difference() -> None:
    rng = np.random.default_rng(7)
    mu, sigma = 5.0, 0.5
    truth = {q: 0.2 * math.exp(mu + sigma * stats.norm.ppf(q / 100)) for q in (50, 90, 99)}
    a = {"ttft_ms": rng.lognormal(mu, sigma, 100_000)}
    b = {"ttft_ms": rng.lognormal(mu, sigma, 100_000) * 1.2}
    c = compare_summaries([_from_samples(a), _from_samples(b)], labels=["a", "b"], samples=[a, b])
    for q, true_diff in truth.items():
        lo, hi = _row(c, f"ttft_ms.p{q}")["deltas"][1]["ci"]
        assert 0 < lo <= true_diff <= hi, (q, lo, true_diff, hi)
        assert hi - lo < 0.5 * true_diff  # informative, not an interval that holds everything
    lo, hi = _row(c, "ttft_ms.mean")["deltas"][1]["ci"]
    assert lo <= 0.2 * math.exp(mu + sigma**2 / 2) <= hi


def test_bootstrap_ci_covers_the_true_difference_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(11)
    true_p90 = 0.1 * math.exp(5.0 + 0.5 * stats.norm.ppf(0.9))
    covered = 0
    for trial in range(120):
        a = {"ttft_ms": rng.lognormal(5.0, 0.5, 400)}
        b = {"ttft_ms": rng.lognormal(5.0, 0.5, 400) * 1.1}
        c = compare_summaries(
            [_from_samples(a), _from_samples(b)], labels=["a", "b"], samples=[a, b], seed=trial
        )
        lo, hi = _row(c, "ttft_ms.p90")["deltas"][1]["ci"]
        covered += lo <= true_p90 <= hi
    assert 0.88 <= covered / 120 <= 0.99


def test_large_runs_are_subsampled_for_mann_whitney_said_so_and_results_are_seeded() -> None:
    a, b = _lognormal(1, MANN_WHITNEY_CAP + 5000), _lognormal(2, MANN_WHITNEY_CAP + 5000)
    summaries = [_from_samples(a), _from_samples(b)]
    c = compare_summaries(summaries, labels=["a", "b"], samples=[a, b])
    assert c["noise"]["mann_whitney_subsampled"] is True
    assert c["noise"]["n"][1]["ttft_ms"] == MANN_WHITNEY_CAP + 5000
    assert compare_summaries(summaries, labels=["a", "b"], samples=[a, b]) == c
    json.dumps(c)  # plain JSON: Celery and the page both carry it


def test_mismatched_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="2 summaries but 1 labels"):
        compare_summaries([_summary(), _summary()], labels=["a"])
    with pytest.raises(ValueError, match="sample sets"):
        compare_summaries([_summary(), _summary()], labels=["a", "b"], samples=[{}])


# --------------------------------------------------------------------------------------- paired A/B


def _records(values: list[tuple[str, float]], *, order: list[int] | None = None) -> list[dict[str, Any]]:
    recs = [{"prompt_id": pid, "scheduled_s": i * 0.1, "ttft_ms": v} for i, (pid, v) in enumerate(values)]
    return [recs[i] for i in order] if order else recs


def test_b_ten_percent_faster_on_every_prompt_is_b_better() -> None:
    rng = np.random.default_rng(3)
    base = [(f"p{i}", float(v)) for i, v in enumerate(rng.lognormal(5, 0.5, 60))]
    faster = [(pid, v * 0.9) for pid, v in base]
    s = paired_stats(_records(base), _records(faster))
    assert s["n_pairs"] == 60 and s["verdict"] == "b_better" and s["b_better_share"] == 1.0
    assert s["median_pct"] == pytest.approx(-10.0, abs=1.0) and s["p_value"] < 1e-6
    assert paired_stats(_records(faster), _records(base))["verdict"] == "b_worse"


def test_identical_variants_have_no_difference() -> None:
    base = [(f"p{i}", 100.0 + i) for i in range(30)]
    s = paired_stats(_records(base), _records(base))
    assert s["verdict"] == "no_difference" and s["p_value"] == 1.0 and s["median_diff"] == 0.0
    assert s["b_better_share"] == 0.0 and s["b_worse_share"] == 0.0


def test_repeated_prompts_are_matched_by_occurrence_in_schedule_order() -> None:
    a_values = [("x", 100.0), ("y", 500.0), ("x", 1000.0), ("x", 2000.0)] * 5
    b_values = [(pid, v * 0.9) for pid, v in a_values]
    completion_order = list(reversed(range(len(b_values))))  # records come back in another order
    s = paired_stats(_records(a_values), _records(b_values, order=completion_order))
    assert s["n_pairs"] == 20 and s["b_better_share"] == 1.0 and s["verdict"] == "b_better"


def test_paired_direction_comes_from_the_metric_and_unmatched_are_counted() -> None:
    a = [{"prompt_id": f"p{i}", "tokens_per_s": 30.0 + i} for i in range(20)]
    b = [{"prompt_id": f"p{i}", "tokens_per_s": (30.0 + i) * 1.1} for i in range(20)]
    b.append({"prompt_id": "extra", "tokens_per_s": 1.0})
    b[0]["tokens_per_s"] = None  # a failed request
    s = paired_stats(a, b, key="tokens_per_s")
    assert s["better"] == "higher" and s["verdict"] == "b_better"
    assert (s["n_pairs"], s["missing_values"], s["unmatched"]) == (19, 1, {"a": 0, "b": 1})
    with pytest.raises(ValueError, match="unknown metric 'ttft'"):
        paired_stats(a, b, key="ttft")


# -------------------------------------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("ttft_ms.p99>+10%", Rule("ttft_ms.p99", ">", 10.0, relative=True)),
        ("success_rate<0.99", Rule("success_rate", "<", 0.99, relative=False)),
        ("tokens_per_s.p50<-5%", Rule("tokens_per_s.p50", "<", -5.0, relative=True)),
        ("e2e_ms.p95>3000", Rule("e2e_ms.p95", ">", 3000.0, relative=False)),
        ("  throughput.qpm <= -2.5% ", Rule("throughput.qpm", "<=", -2.5, relative=True)),
    ],
)
def test_rules_parse(text: str, rule: Rule) -> None:
    assert parse_rule(text) == rule
    assert parse_rule(str(rule)) == rule


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ttft.p99>+10%", "unknown metric path 'ttft.p99'; did you mean 'ttft_ms.p99'?; known: "),
        ("ttft_ms.p99", "has no comparison; write e.g. 'ttft_ms.p99>+10%'"),
        ("", "has no comparison"),
        ("ttft_ms.p99=>10", "unsupported operator '=>'; use <, >, <= or >="),
        ("ttft_ms.p99>fast", "threshold 'fast' is not a number"),
        ("ttft_ms.p99>+10%%", "threshold '+10%%' is not a number"),
        ("success_rate<nan", "threshold 'nan' is not a number"),
        ("ttft_ms.p99>10%", "a relative threshold needs a sign, '+10%' (above the baseline) or '-10%'"),
    ],
)
def test_junk_rules_are_rejected_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_rule(text)
    assert message in str(err.value)


def test_unknown_path_message_lists_the_known_paths() -> None:
    with pytest.raises(ValueError, match=r"ttft_ms\.\{p50,p90,p95,p99,mean,max,min\}.*success_rate"):
        parse_rule("latency<3")


def _gate_summary(p99: float, tps: float, ok: float) -> dict[str, Any]:
    return _summary(ttft_ms={"p99": p99}, tokens_per_s={"p50": tps}, success_rate=ok, e2e_ms={"p95": 2500.0})


def test_relative_and_absolute_rules_break_or_hold() -> None:
    rules = [
        parse_rule(r)
        for r in ("ttft_ms.p99>+10%", "tokens_per_s.p50<-5%", "success_rate<0.99", "e2e_ms.p95>3000")
    ]
    baseline = _gate_summary(1000.0, 40.0, 1.0)
    held = check_rules(_gate_summary(1099.0, 38.5, 0.995), rules, baseline=baseline)
    assert [r.broken for r in held] == [False, False, False, False]
    assert (
        held[0].threshold == pytest.approx(1100.0) and held[0].baseline == 1000.0 and held[0].actual == 1099.0
    )
    assert held[1].threshold == pytest.approx(38.0)
    assert held[3].threshold == 3000.0 and held[3].baseline == 2500.0

    broken = check_rules(_gate_summary(1101.0, 37.9, 0.98), rules, baseline=baseline)
    assert [r.broken for r in broken] == [True, True, True, False]
    assert broken[0].message == "ttft_ms.p99>+10%: 1101 vs 1100 (baseline 1000 +10%): BROKEN"
    assert broken[0].to_dict()["rule"] == "ttft_ms.p99>+10%"


def test_relative_rule_without_baseline_is_an_error_and_missing_values_fail_closed() -> None:
    with pytest.raises(ValueError, match=r"relative rules need a baseline run: ttft_ms\.p99>\+10%"):
        check_rules(_gate_summary(1.0, 1.0, 1.0), [parse_rule("ttft_ms.p99>+10%")])
    (absolute,) = check_rules(_summary(), [parse_rule("success_rate<0.99")])
    assert absolute.broken and "no value in this run" in absolute.message
    (relative,) = check_rules(
        _gate_summary(1.0, 1.0, 1.0), [parse_rule("ttft_ms.p99>+10%")], baseline=_summary()
    )
    assert relative.broken and "no value in the baseline" in relative.message


# -------------------------------------------------------------------------------------- regressions


def test_regressions_beyond_threshold_without_samples() -> None:
    base = _summary(
        ttft_ms={"p50": 100.0, "p99": 400.0, "max": 900.0}, tokens_per_s={"p50": 40.0}, success_rate=1.0
    )
    run = _summary(
        ttft_ms={"p50": 105.0, "p99": 480.0, "max": 2000.0}, tokens_per_s={"p50": 30.0}, success_rate=1.0
    )
    found = regressions(run, base, threshold_pct=10)
    assert [(r["path"], r["pct"]) for r in found] == [("ttft_ms.p99", 20.0), ("tokens_per_s.p50", -25.0)]
    assert found[0]["baseline"] == 400.0 and found[0]["value"] == 480.0 and found[0]["noise"] is None
    assert regressions(base, run) == []  # the other way round every change is an improvement


def test_regressions_ignore_differences_inside_noise() -> None:
    a, b = _lognormal(21, 40), _lognormal(22, 40)
    base, run = _from_samples(a), _from_samples(b)
    by_threshold = {r["path"] for r in regressions(run, base, threshold_pct=5)}
    assert by_threshold  # small runs: the summaries alone show "regressions"
    assert regressions(run, base, threshold_pct=5, samples=[a, b]) == []

    slower = {key: values * 1.5 for key, values in _lognormal(22, 2000).items()}
    found = regressions(_from_samples(slower), _from_samples(a), threshold_pct=10, samples=[a, slower])
    paths = {r["path"] for r in found}
    assert {"ttft_ms.p50", "ttft_ms.p99", "e2e_ms.p50"} <= paths
    assert not any(p.startswith("tokens_per_s.") for p in paths)  # 1.5x tokens/s is better, not a regression
    assert all(r["noise"] is False for r in found if r["path"].startswith("ttft_ms."))


# ------------------------------------------------------------------------------------------- table


def test_format_table_shows_baseline_and_signed_deltas() -> None:
    base = _summary(ttft_ms={"p50": 200.0}, tokens_per_s={"p50": 40.0}, success_rate=0.99)
    run = _summary(ttft_ms={"p50": 224.6}, tokens_per_s={"p50": 44.0}, success_rate=0.99)
    text = format_table(compare_summaries([base, run], labels=["bf16", "int4"]))
    lines = text.splitlines()
    assert lines[0].split() == ["metric", "unit", "bf16", "(baseline)", "int4"]
    assert any(line.split()[:5] == ["ttft_ms.p50", "ms", "200.0", "224.6", "(+12.3%"] for line in lines)
    assert "44.00 (+10.0% better)" in text and "0.9900 (same)" in text


# ----------------------------------------------------------------------------------------- accuracy


def _graded_records(verdicts: list[bool], ids: list[str] | None = None) -> list[RequestRecord]:
    recs = []
    for i, ok in enumerate(verdicts):
        r = RequestRecord(request_id=str(i), prompt_id=ids[i] if ids else f"item{i}", scheduled_s=float(i))
        r.correct = ok
        recs.append(r)
    return recs


def _acc(k: int, n: int, **extra: Any) -> dict[str, Any]:
    return {"graded": n, "correct": k, "rate": k / n, **extra}


def test_accuracy_reads_as_its_rate_in_rows_and_rules_and_old_floats_still_work() -> None:
    base, run = _summary(accuracy=_acc(90, 100)), _summary(accuracy=_acc(85, 100))
    assert _row(compare_summaries([base, run], labels=["a", "b"]), "accuracy")["values"] == [0.9, 0.85]
    assert check_rules(run, [parse_rule("accuracy<0.9")])[0].broken
    assert _row(compare_summaries([_summary(accuracy=0.9), run], labels=["a", "b"]), "accuracy")[
        "values"
    ] == [
        0.9,
        0.85,
    ]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("accuracy<-2pt", Rule("accuracy", "<", -2.0, relative=True, points=True)),
        ("success_rate < -0.5pt", Rule("success_rate", "<", -0.5, relative=True, points=True)),
    ],
)
def test_points_rules_parse(text: str, rule: Rule) -> None:
    assert parse_rule(text) == rule
    assert parse_rule(str(rule)) == rule


def test_points_need_a_sign_and_a_rate() -> None:
    with pytest.raises(ValueError, match="needs a sign"):
        parse_rule("accuracy<2pt")
    with pytest.raises(ValueError, match="applies to rates"):
        parse_rule("ttft_ms.p99>+2pt")


def test_a_points_rule_breaks_on_a_drop_of_more_than_its_points() -> None:
    base = _summary(accuracy=_acc(90, 100))
    rule = parse_rule("accuracy<-2pt")
    assert not check_rules(_summary(accuracy=_acc(89, 100)), [rule], base)[0].broken
    (result,) = check_rules(_summary(accuracy=_acc(87, 100)), [rule], base)
    assert result.broken and result.threshold == pytest.approx(0.88)
    assert "baseline 0.9 -2pt" in result.message


def test_mcnemar_when_both_runs_graded_the_same_items() -> None:
    base = [True] * 80 + [False] * 20
    run = [True] * 68 + [False] * 12 + [False] * 20  # 12 lost, none gained
    d = accuracy_delta(
        _acc(80, 100), _acc(68, 100), base_records=_graded_records(base), run_records=_graded_records(run)
    )
    assert d is not None and d["test"] == "mcnemar" and (d["lost"], d["gained"]) == (12, 0)
    assert d["p_value"] == pytest.approx(stats.binomtest(12, 12, 0.5).pvalue)
    assert d["regression"] and not d["noise"] and d["delta_pt"] == pytest.approx(-12)
    lo, hi = d["ci95"]
    assert lo < -0.12 < hi < 0


def test_paired_test_sees_a_drop_the_unpaired_one_calls_noise() -> None:
    base = [True] * 50 + [False] * 50
    run = [True] * 44 + [False] * 56  # 6 lost on the same items: tiny for two proportions, clear paired
    paired = accuracy_delta(
        _acc(50, 100), _acc(44, 100), base_records=_graded_records(base), run_records=_graded_records(run)
    )
    unpaired = accuracy_delta(_acc(50, 100), _acc(44, 100))
    assert paired is not None and paired["regression"]
    assert unpaired is not None and unpaired["test"] == "two-proportion" and unpaired["noise"]


def test_repeated_items_pair_in_order_and_different_items_fall_back_to_two_proportions() -> None:
    ids = ["a", "a", "b"]
    d = accuracy_delta(
        _acc(2, 3),
        _acc(2, 3),
        base_records=_graded_records([True, False, True], ids),
        run_records=_graded_records([False, True, True], ids),
    )
    assert d is not None and d["test"] == "mcnemar" and (d["lost"], d["gained"]) == (1, 1)
    other = accuracy_delta(
        _acc(2, 3),
        _acc(2, 3),
        base_records=_graded_records([True, False, True], ids),
        run_records=_graded_records([True, False, True], ["a", "b", "c"]),
    )
    assert other is not None and other["test"] == "two-proportion"


def test_two_proportion_p_value_and_newcombe_interval() -> None:
    d = accuracy_delta(_acc(450, 500), _acc(400, 500))
    assert d is not None and d["regression"]
    z = (0.8 - 0.9) / math.sqrt(0.85 * 0.15 * 2 / 500)
    assert d["p_value"] == pytest.approx(2 * stats.norm.sf(abs(z)))
    lo, hi = d["ci95"]
    assert lo < -0.1 < hi < 0


def test_per_subject_deltas() -> None:
    base = _acc(30, 40, by_subject={"Algebra": _acc(18, 20), "Geometry": _acc(12, 20)})
    run = _acc(28, 40, by_subject={"Algebra": _acc(18, 20), "Geometry": _acc(10, 20)})
    d = accuracy_delta(base, run)
    assert d is not None
    assert d["by_subject"]["Algebra"]["delta_pt"] == 0
    assert d["by_subject"]["Geometry"]["delta_pt"] == pytest.approx(-10)
    assert accuracy_delta(_summary(), run) is None and accuracy_delta(0.9, run) is None  # type: ignore[arg-type]


def test_accuracy_regressions_follow_the_test_not_the_threshold() -> None:
    base, run = _summary(accuracy=_acc(900, 1000)), _summary(accuracy=_acc(860, 1000))
    (found,) = regressions(run, base, threshold_pct=10.0)  # a 4.4% drop, yet outside noise
    assert found["path"] == "accuracy" and found["regression"] and found["test"] == "two-proportion"
    assert regressions(_summary(accuracy=_acc(895, 1000)), base) == []
    table = format_table(compare_summaries([base, run], labels=["a", "b"]))
    assert "accuracy b: -4.0pt" in table and "REGRESSION" in table


def test_paired_ab_variants_report_accuracy_each() -> None:
    recs = _graded_records([True] * 10) + _graded_records([True] * 7 + [False] * 3)
    for r in recs[10:]:
        r.variant = 1
    s = summarize(recs, duration_s=1)
    assert s["accuracy"]["by_variant"]["0"]["rate"] == 1.0 and s["accuracy"]["by_variant"]["1"]["rate"] == 0.7
    d = accuracy_delta(
        s["accuracy"]["by_variant"]["0"],
        s["accuracy"]["by_variant"]["1"],
        base_records=recs[:10],
        run_records=recs[10:],
    )
    assert d is not None and d["test"] == "mcnemar" and d["lost"] == 3
