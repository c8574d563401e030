"""The aggregator draws only seconds every shard has flushed past; the rest wait, then are drawn."""

from __future__ import annotations

from benchmarks.services.runs.supervise import PERSIST_EVERY_S, _changed_points, persist_due
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


def test_a_second_that_just_became_complete_is_persisted_at_once_not_at_the_next_round():
    assert persist_due(0.05, ready=7, drawn=6)
    assert persist_due(0.05, ready=0, drawn=None)
    # nothing new to draw: the usual round
    assert not persist_due(0.05, ready=6, drawn=6) and not persist_due(0.05, ready=None, drawn=None)
    assert persist_due(PERSIST_EVERY_S, ready=6, drawn=6)
