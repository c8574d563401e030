"""The run's one aggregator: merges every shard's per-second deltas into the live view, persists the
series for late viewers, pushes updates to the run's websocket group, and ends the run."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.utils import timezone

from benchmarks.livebus import get_bus
from benchmarks.models import Run, Shard
from benchmarks.selectors.runs import live_payload
from benchmarks.services.finishing import run_finalize
from benchmarks.services.push import push_to_viewers
from benchmarks.services.reaping import shards_reap_stale

log = logging.getLogger(__name__)
PERSIST_EVERY_S = 1.0
RECENT_ROWS = 10  # rows re-sent each tick: late deltas may still change the last few seconds


def run_supervise(*, run_id: int, token: str) -> None:
    from runner.stats import LiveAggregate

    run = Run.objects.get(pk=run_id)
    aggregate = LiveAggregate.from_dict(run.live) if run.live else LiveAggregate()
    bus = get_bus()
    dirty, last_persist = False, 0.0
    while True:
        for message in bus.drain(run_id, timeout=0.5):
            aggregate.merge(message["delta"])
            dirty = True
        if time.monotonic() - last_persist >= PERSIST_EVERY_S:
            if not _still_mine(run_id, token):
                return  # the reaper handed this run to a new aggregator
            if dirty:
                _persist(run_id, aggregate)
                dirty = False
            last_persist = time.monotonic()
            shards_reap_stale(run_id=run_id)
            if not Shard.objects.filter(run_id=run_id, status__in=Shard.ACTIVE).exists():
                break
    for message in bus.drain(run_id, timeout=0.2):  # stragglers sent just before the last shard ended
        aggregate.merge(message["delta"])
    _persist(run_id, aggregate)
    bus.discard(run_id)
    run_finalize(run_id=run_id)


def _still_mine(run_id: int, token: str) -> bool:
    return bool(
        Run.objects.filter(pk=run_id, supervisor_token=token).update(supervisor_heartbeat_at=timezone.now())
    )


def _persist(run_id: int, aggregate: Any) -> None:
    series, snapshot = aggregate.series(), aggregate.snapshot()
    Run.objects.filter(pk=run_id).update(live=aggregate.to_dict(), series=series, snapshot=snapshot)
    if settings.EMBEDDED_WORKER:
        return  # embedded viewers poll the row (the in-memory layer is not thread-safe across loops)
    run = Run.objects.get(pk=run_id)
    push_to_viewers(run, {"type": "run.update", **live_payload(run, rows=series[-RECENT_ROWS:])})
