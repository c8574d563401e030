"""Live stats merge across shards without losing or double-counting anything."""

from __future__ import annotations

import json
import random

from runner.records import RequestRecord
from runner.stats import LiveAggregate, ShardStats, tokens_by_second


def _rec(ok: bool, ttft: float, out: int = 10) -> RequestRecord:
    r = RequestRecord(request_id="x", prompt_id="p", outcome="success" if ok else "timeout")
    r.ttft_ms, r.e2e_ms, r.tokens_per_s, r.output_tokens = ttft, ttft * 2, 50.0, out
    return r


def test_deltas_merge_to_the_same_totals_after_a_json_round_trip() -> None:
    rng = random.Random(1)
    shards = [ShardStats(i) for i in range(3)]
    agg = LiveAggregate()
    expected_ok = expected_fail = 0
    ttfts: list[float] = []
    for second in range(5):
        for s in shards:
            for _ in range(rng.randint(5, 20)):
                ok = rng.random() > 0.2
                t = rng.uniform(100, 300)
                s.started(second)
                s.finished(second, _rec(ok, t))
                expected_ok += ok
                expected_fail += not ok
                if ok:
                    ttfts.append(t)
            s.gauge(second, 4)
            agg.merge(json.loads(json.dumps(s.delta())))
    snap = agg.snapshot()
    assert snap["completed"] == expected_ok and snap["failed"] == expected_fail
    assert snap["failures"] == {"timeout": expected_fail}
    ttfts.sort()
    true_p50 = ttfts[len(ttfts) // 2]
    assert abs(snap["ttft_p50"] - true_p50) / true_p50 < 0.01  # HdrHistogram: 3 significant digits
    series = agg.series()
    assert len(series) == 5 and all(p["active_users"] == 12 for p in series)


def test_duplicate_delta_is_ignored_and_state_survives_serialisation() -> None:
    s = ShardStats(0)
    s.started(0)
    s.finished(0, _rec(True, 200))
    d = s.delta()
    agg = LiveAggregate()
    agg.merge(d)
    agg.merge(d)
    assert agg.snapshot()["completed"] == 1
    again = LiveAggregate.from_dict(json.loads(json.dumps(agg.to_dict())))
    assert again.snapshot()["completed"] == 1 and again.series()[0]["ttft_p50"] == agg.series()[0]["ttft_p50"]


def test_a_later_delta_for_the_same_second_keeps_the_active_users_gauge() -> None:
    s = ShardStats(0)
    s.started(3)
    s.gauge(3, 7)
    agg = LiveAggregate()
    agg.merge(s.delta())
    s.finished(3, _rec(True, 100))  # a request that started in second 3 reported one flush later
    agg.merge(s.delta())
    assert agg.series()[-1]["active_users"] == 7


def test_a_second_without_a_flush_carries_the_previous_active_users() -> None:
    s = ShardStats(0)
    agg = LiveAggregate()
    s.gauge(4, 8)
    agg.merge(s.delta())
    s.gauge(6, 8)  # no flush landed in second 5
    agg.merge(s.delta())
    assert [p["active_users"] for p in agg.series()] == [8, 8, 8]


def _timeline(scheduled_s: float, times_ms: list[float], out: int, tokens: int = 0) -> RequestRecord:
    r = _rec(True, times_ms[0], out)
    r.scheduled_s = scheduled_s
    r.packets = [("role", 1.0, 0, 0)] + [("answer", t, tokens, 3) for t in times_ms] + [("done", 9e3, 0, 0)]
    return r


def test_output_tokens_count_in_the_second_they_arrived() -> None:
    # scheduled at 0.5 s; five content packets at 0.6, 0.9, 1.2, 1.5 and 2.6 s of the run
    rec = _timeline(0.5, [100, 400, 700, 1000, 2100], out=10)
    assert dict(tokens_by_second(rec, 0)) == {0: 4, 1: 4, 2: 2}  # 2 tokens per packet
    stats = ShardStats(0)
    stats.finished(2, rec)
    windows = stats.delta()["windows"]
    assert {s: w["output_tokens"] for s, w in windows.items()} == {"0": 4, "1": 4, "2": 2}
    assert windows["2"]["completed"] == 1 and windows["0"]["completed"] == 0  # QPM keeps completion


def test_an_uneven_count_is_split_without_losing_a_token() -> None:
    rec = _timeline(0.0, [100, 1100, 2100], out=10)
    spread = dict(tokens_by_second(rec, 7))
    assert spread == {7: 3, 8: 3, 9: 4} and sum(spread.values()) == 10


def test_the_servers_per_chunk_counts_win_when_every_chunk_has_one() -> None:
    # an MTP-style stream: chunks of 1, 3 and 2 tokens as the server says
    rec = _timeline(0.0, [100, 1100, 2100], out=6)
    rec.packets = [("answer", 100.0, 1, 3), ("answer", 1100.0, 3, 9), ("answer", 2100.0, 2, 6)]
    assert dict(tokens_by_second(rec, 0)) == {0: 1, 1: 3, 2: 2}


def test_a_record_without_a_timeline_counts_its_tokens_when_it_finished() -> None:
    stats = ShardStats(0)
    stats.finished(5, _rec(True, 100, out=12))
    assert stats.delta()["windows"]["5"]["output_tokens"] == 12


def test_only_seconds_every_shard_has_flushed_past_are_complete() -> None:
    agg = LiveAggregate()
    a, b = ShardStats(0), ShardStats(1)
    for s in (a, b):
        s.started(3)
    a.gauge(5, 1)
    b.gauge(4, 1)
    agg.merge(a.delta())
    agg.merge(b.delta())
    assert agg.complete_through() == 3  # shard 1 is still inside second 4
    b.gauge(6, 0)
    agg.merge(b.delta(final=True))
    assert agg.complete_through() == 4  # shard 0 is now the slowest


def test_answer_quality_and_running_accuracy_per_second() -> None:
    stats, agg = ShardStats(0), LiveAggregate()
    good = _rec(True, 100)
    good.answer_text, good.answer_chars, good.correct = "42", 2, True
    leak = _rec(True, 100)
    leak.answer_text, leak.answer_chars, leak.correct = "<think>hmm</think> 41", 21, False
    empty = _rec(False, 100)
    empty.outcome = "empty_answer"
    cut = _rec(False, 100)
    cut.outcome, cut.finish_reason = "truncated_thinking", "length"
    for r in (good, leak, empty, cut):
        stats.finished(3, r)
    agg.merge(json.loads(json.dumps(stats.delta())))
    p = agg.point(3)
    assert p["reasoning_leak_rate"] == 0.25 and p["empty_answer_rate"] == 0.25
    assert p["truncated_thinking_rate"] == 0.25 and p["cut_by_length_rate"] == 0.0
    assert p["accuracy"] == 0.5
    assert agg.snapshot()["quality"] == {"reasoning_leak": 1, "empty_answer": 1, "truncated_thinking": 1}
