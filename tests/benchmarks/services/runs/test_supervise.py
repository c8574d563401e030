"""The aggregator draws only seconds every shard has flushed past; the rest wait, then are drawn."""

from __future__ import annotations

from benchmarks.services.runs.supervise import _changed_points
from runner import LiveAggregate, ShardStats


def _aggregate(gauge_seconds: list[int]) -> LiveAggregate:
    agg = LiveAggregate()
    for index, gauge_second in enumerate(gauge_seconds):
        stats = ShardStats(index)
        for second in range(gauge_second + 1):
            stats.started(second)
        stats.gauge(gauge_second, 4)
        agg.merge(stats.delta())
    return agg


def test_the_second_in_progress_is_not_drawn_until_every_shard_is_past_it():
    agg = _aggregate([6, 4])  # shard 1 is still inside second 4
    rows, pending = _changed_points(agg, {0, 1, 2, 3, 4, 5, 6})
    assert [r["t"] for r in rows] == [0, 1, 2, 3]
    assert pending == {4, 5, 6}


def test_the_last_persist_draws_everything():
    agg = _aggregate([6, 4])
    rows, pending = _changed_points(agg, {4, 5, 6}, final=True)
    assert [r["t"] for r in rows] == [4, 5, 6] and pending == set()
