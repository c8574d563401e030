"""The run's one aggregator: merges every shard's per-second deltas into the live view, persists the
series for late viewers, pushes updates to the run's websocket group, and ends the run."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.utils import timezone

from benchmarks.live.bus import get_bus
from benchmarks.live.push import push_to_viewers
from benchmarks.live.server import ServerSeconds
from benchmarks.models import Run, RunSecond, Shard
from benchmarks.selectors.runs import live_payload, run_live_get
from benchmarks.services.runs.finalize import run_finalize
from benchmarks.services.runs.reap import shards_reap_stale

log = logging.getLogger(__name__)
PERSIST_EVERY_S = 1.0
CHECKPOINT_EVERY_S = 10.0  # the full aggregate (histograms) is big: saved less often, for a successor
QPM_WINDOW_S = 10  # a second's QPM looks back this far, so a change ripples this far forward


def run_supervise(*, run_id: int, token: str) -> None:
    from runner import LiveAggregate

    run = Run.objects.only("id", "live").get(pk=run_id)
    aggregate = LiveAggregate.from_dict(run.live) if run.live else LiveAggregate()
    server = ServerSeconds()  # shard 0's server gauges per second (live view only)
    bus = get_bus()
    changed: set[int] = set()
    last_persist = last_checkpoint = 0.0
    while True:
        changed |= _merge(aggregate, bus.drain(run_id, timeout=0.5), server)
        if time.monotonic() - last_persist < PERSIST_EVERY_S:
            continue
        if not _still_mine(run_id, token):
            return  # the reaper handed this run to a new aggregator
        checkpoint = time.monotonic() - last_checkpoint >= CHECKPOINT_EVERY_S
        if changed:
            changed = _persist(  # the seconds still in progress wait for the next round
                run_id, aggregate, changed, checkpoint=checkpoint, server=server
            )
            last_checkpoint = time.monotonic() if checkpoint else last_checkpoint
        last_persist = time.monotonic()
        shards_reap_stale(run_id=run_id)
        if not Shard.objects.filter(run_id=run_id, status__in=Shard.ACTIVE).exists():
            break
    # sent just before the last shard ended
    changed |= _merge(aggregate, bus.drain(run_id, timeout=0.2), server)
    _persist(run_id, aggregate, changed, checkpoint=True, server=server, final=True)
    bus.discard(run_id)
    run_finalize(run_id=run_id)


def _merge(aggregate: Any, messages: list[dict[str, Any]], server: ServerSeconds) -> set[int]:
    """Merge deltas; returns the seconds they touched."""
    touched: set[int] = set()
    for message in messages:
        aggregate.merge(message["delta"])
        touched.update(int(second) for second in message["delta"].get("windows", {}))
        touched.update(server.merge(message["delta"]))
    return touched


def _still_mine(run_id: int, token: str) -> bool:
    return bool(
        Run.objects.filter(pk=run_id, supervisor_token=token).update(supervisor_heartbeat_at=timezone.now())
    )


def _persist(
    run_id: int,
    aggregate: Any,
    changed: set[int],
    *,
    checkpoint: bool,
    server: ServerSeconds,
    final: bool = False,
) -> set[int]:
    """Stores and pushes the complete seconds among ``changed``; returns the ones still in progress."""
    points, pending = _changed_points(aggregate, changed, final=final)
    rows = [server.decorate(row) for row in points]
    RunSecond.objects.bulk_create(
        [RunSecond(run_id=run_id, t=row["t"], point=row) for row in rows],
        update_conflicts=True,
        unique_fields=["run", "t"],
        update_fields=["point"],
    )
    fields: dict[str, Any] = {"snapshot": aggregate.snapshot()}
    if checkpoint:
        fields["live"] = aggregate.to_dict()
    Run.objects.filter(pk=run_id).update(**fields)
    if settings.EMBEDDED_WORKER:
        return pending  # embedded viewers poll the rows (the in-memory layer is not thread-safe)
    run = run_live_get(run_id=run_id)
    push_to_viewers(run, {"type": "run.update", **live_payload(run, rows=rows)})
    return pending


def _changed_points(
    aggregate: Any, changed: set[int], *, final: bool = False
) -> tuple[list[dict[str, Any]], set[int]]:
    """The points to draw now — only seconds every shard has flushed past (the second in progress
    would show tokens/s falling to 0) — and the touched seconds that must wait."""
    if not changed or not aggregate.windows:
        return [], set()
    last = max(aggregate.windows)
    done = last if final else aggregate.complete_through()
    seconds = {s + k for s in changed for k in range(QPM_WINDOW_S) if s + k <= last}
    ready = sorted(x for x in seconds if done is not None and x <= done)
    return [aggregate.point(x) for x in ready], {x for x in seconds if done is None or x > done}
