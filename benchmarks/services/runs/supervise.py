"""The run's one aggregator: merges every shard's per-second deltas into the live view, persists the
series for late viewers, pushes updates to the run's websocket group, and ends the run."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.utils import timezone

from benchmarks.live.bus import REDIS_DOWN, get_bus
from benchmarks.live.push import push_to_viewers
from benchmarks.live.server import ServerSeconds
from benchmarks.models import Run, RunSecond, Shard
from benchmarks.selectors.runs import live_payload, run_live_get
from benchmarks.services.runs.finalize import run_finalize
from benchmarks.services.runs.outage import (
    DATABASE_DOWN,
    close_broken_connection,
    database_recently_unreachable,
    database_unreachable,
    transient,
)
from benchmarks.services.runs.reap import shards_reap_stale

log = logging.getLogger(__name__)
PERSIST_EVERY_S = 1.0
CHECKPOINT_EVERY_S = 10.0  # the full aggregate (histograms) is big: saved less often, for a successor
QPM_WINDOW_S = 10  # a second's QPM looks back this far, so a change ripples this far forward
RETRY_S = 0.5  # an outage: try again this often
T = TypeVar("T")


def run_supervise(*, run_id: int, token: str) -> None:
    """Survives outages: a database or Redis error is logged once, the step is tried again half a
    second later, and nothing merged so far is dropped. Shards are not reaped until the database
    has been back for SHARD_HEARTBEAT_TIMEOUT_S (their heartbeats were lost with it, not them)."""
    from runner import LiveAggregate

    run = _until_up(lambda: Run.objects.only("id", "live").get(pk=run_id), run_id)
    aggregate = LiveAggregate.from_dict(run.live) if run.live else LiveAggregate()
    server = ServerSeconds()  # shard 0's server gauges per second (live view only)
    bus = get_bus()
    changed: set[int] = set()
    last_persist = last_checkpoint = 0.0
    drawn: int | None = None  # the last second every shard had flushed past, at the last persist
    down: str | None = None  # what is unreachable right now, for one log line per outage
    while True:
        try:
            changed |= deltas_merge(aggregate, bus.drain(run_id, timeout=0.5), server)
            ready = aggregate.complete_through() if changed else drawn
            if not persist_due(time.monotonic() - last_persist, ready, drawn):
                continue
            drawn = ready
            if not _still_mine(run_id, token):
                return  # the reaper handed this run to a new aggregator
            checkpoint = time.monotonic() - last_checkpoint >= CHECKPOINT_EVERY_S
            if changed:
                changed = seconds_persist(  # the seconds still in progress wait for the next round
                    run_id, aggregate, changed, checkpoint=checkpoint, server=server
                )
                last_checkpoint = time.monotonic() if checkpoint else last_checkpoint
            last_persist = time.monotonic()
            if not database_recently_unreachable():
                shards_reap_stale(run_id=run_id)
            if not Shard.objects.filter(run_id=run_id, status__in=Shard.ACTIVE).exists():
                break
        except (*DATABASE_DOWN, *REDIS_DOWN) as exc:
            down = _outage(run_id, exc, down)
            continue
        if down is not None:
            log.warning("run %s aggregator: %s back", run_id, down)
            down = None
    # sent just before the last shard ended
    changed |= _until_up(lambda: deltas_merge(aggregate, bus.drain(run_id, timeout=0.2), server), run_id)
    _until_up(
        lambda: seconds_persist(run_id, aggregate, changed, checkpoint=True, server=server, final=True),
        run_id,
    )
    _until_up(lambda: bus.discard(run_id), run_id)
    _until_up(lambda: run_finalize(run_id=run_id), run_id)


def persist_due(since_s: float, ready: int | None, drawn: int | None) -> bool:
    """Persist and push now: a second has just become complete (every shard flushed past it), so
    viewers get it at once rather than at the next round; otherwise every ``PERSIST_EVERY_S``."""
    return since_s >= PERSIST_EVERY_S or (ready is not None and (drawn is None or ready > drawn))


def _outage(run_id: int, exc: Exception, down: str | None) -> str:
    what = "the database" if isinstance(exc, DATABASE_DOWN) else "Redis"
    if isinstance(exc, DATABASE_DOWN):
        if not transient(exc):
            raise exc  # the statement's own error: an outage would not explain it
        database_unreachable()
        close_broken_connection()
    if down != what:
        log.warning("run %s aggregator: %s unreachable (%s); retrying", run_id, what, exc)
    time.sleep(RETRY_S)
    return what


def _until_up(step: Callable[[], T], run_id: int) -> T:
    down: str | None = None
    while True:
        try:
            value = step()
        except (*DATABASE_DOWN, *REDIS_DOWN) as exc:
            down = _outage(run_id, exc, down)
            continue
        if down is not None:
            log.warning("run %s aggregator: %s back", run_id, down)
        return value


def deltas_merge(aggregate: Any, messages: list[dict[str, Any]], server: ServerSeconds) -> set[int]:
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


def seconds_persist(
    run_id: int,
    aggregate: Any,
    changed: set[int],
    *,
    checkpoint: bool,
    server: ServerSeconds,
    final: bool = False,
    snapshot: dict[str, Any] | None = None,
) -> set[int]:
    """Stores and pushes the complete seconds among ``changed``; returns the ones still in progress.
    ``snapshot`` adds to (and wins over) the aggregate's totals, e.g. a mirror session's counters."""
    points, pending = _changed_points(aggregate, changed, final=final)
    rows = [server.decorate(row) for row in points]
    RunSecond.objects.bulk_create(
        [RunSecond(run_id=run_id, t=row["t"], point=row) for row in rows],
        update_conflicts=True,
        unique_fields=["run", "t"],
        update_fields=["point"],
    )
    fields: dict[str, Any] = {"snapshot": {**aggregate.snapshot(), **(snapshot or {})}}
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
