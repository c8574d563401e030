"""Live stats merge across shards without losing or double-counting anything."""

from __future__ import annotations

import json
import random

from runner.records import RequestRecord
from runner.stats import LiveAggregate, ShardStats


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
