"""Running one shard: claim its row, run the engine, stream records and deltas out, end the row."""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.db import close_old_connections, connection
from django.db.models import F
from django.utils import timezone

from benchmarks import bridge
from benchmarks.live.bus import get_bus
from benchmarks.models import RequestRecord, Run, Shard

log = logging.getLogger(__name__)
HEARTBEAT_EVERY_S = 1.0


class ShardSink:
    """Called by the engine from its sink thread: records to Postgres, deltas to the aggregator."""

    def __init__(self, *, run_id: int, shard_id: int, shard_index: int) -> None:
        self.run_id, self.shard_id, self.shard_index = run_id, shard_id, shard_index
        self.bus = get_bus()
        self.seen: set[str] = set()

    def on_records(self, batch: list[dict[str, Any]]) -> None:
        try:
            self._insert(batch)
        finally:
            connection.close()  # this thread belongs to the engine; don't leave a connection behind

    def on_tick(self, delta: dict[str, Any]) -> None:
        self.bus.publish(self.run_id, {"shard": self.shard_index, "delta": delta})

    def insert_missing(self, records: list[Any]) -> None:
        """Records the engine returned but never streamed (e.g. the last partial second)."""
        missing = [r.to_dict() for r in records if r.request_id not in self.seen]
        if missing:
            self._insert(missing)

    def _insert(self, batch: list[dict[str, Any]]) -> None:
        for record in batch:
            record.setdefault("shard", self.shard_index)
        rows = [bridge.record_row(self.run_id, r) for r in batch]
        RequestRecord.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
        self.seen.update(str(r["request_id"]) for r in batch)
        Shard.objects.filter(pk=self.shard_id).update(records_count=F("records_count") + len(rows))


class ShardWatch(threading.Thread):
    """Heartbeats the shard row and watches the run for cancellation, off the engine's event loop
    (``should_cancel`` is polled from inside the loop, where a database query must not run)."""

    def __init__(self, *, shard_id: int, run_id: int) -> None:
        super().__init__(name=f"shard-watch-{shard_id}", daemon=True)
        self.shard_id, self.run_id = shard_id, run_id
        self.cancel = threading.Event()
        self.stopped = threading.Event()

    def should_cancel(self) -> bool:
        return self.cancel.is_set()

    def run(self) -> None:
        try:
            while not self.stopped.wait(HEARTBEAT_EVERY_S):
                self.beat()
        finally:
            connection.close()

    def beat(self) -> None:
        try:
            Shard.objects.filter(pk=self.shard_id).update(heartbeat_at=timezone.now())
            status = Run.objects.filter(pk=self.run_id).values_list("status", flat=True).first()
            if status != Run.Status.RUNNING:
                self.cancel.set()
        except Exception:  # a database blip must not kill the heartbeat thread
            log.exception("shard %s heartbeat failed", self.shard_id)
            close_old_connections()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


def shard_claim(*, shard_id: int, hostname: str) -> bool:
    now = timezone.now()
    return bool(
        Shard.objects.filter(pk=shard_id, status=Shard.Status.QUEUED).update(
            status=Shard.Status.RUNNING, hostname=hostname, started_at=now, heartbeat_at=now
        )
    )


def shard_execute(*, shard_id: int, hostname: str) -> None:
    """Run a shard at most once: only the worker that flips it queued→running runs the load."""
    from benchmarks.services.runs.study import shard_run_engine

    if not shard_claim(shard_id=shard_id, hostname=hostname):
        return
    shard = Shard.objects.select_related("run", "run__endpoint").get(pk=shard_id)
    run = shard.run
    api_key = run.endpoint.reveal_api_key() if run.endpoint else ""
    watch = ShardWatch(shard_id=shard.pk, run_id=run.pk)
    sink = ShardSink(run_id=run.pk, shard_id=shard.pk, shard_index=shard.index)
    watch.start()
    try:
        spec = bridge.shard_spec(run, index=shard.index, count=run.shard_count, api_key=api_key)
        result = shard_run_engine(
            run=run, shard_index=shard.index, spec=spec, sink=sink, should_cancel=watch.should_cancel
        )
        sink.insert_missing(result.records)
    except Exception as exc:
        log.exception("shard %s failed", shard_id)
        shard_end(
            shard_id=shard_id,
            status=Shard.Status.FAILED,
            ended_by="error",
            error=_scrub(f"{type(exc).__name__}: {exc}", api_key),
        )
        return
    finally:
        watch.stop()
    status = {"cancel": Shard.Status.CANCELLED, "error": Shard.Status.FAILED}.get(
        result.ended_by, Shard.Status.FINISHED
    )
    error = _scrub(str(result.summary.get("error", "") or result.engine.get("error", "") or ""), api_key)
    shard_end(
        shard_id=shard_id,
        status=status,
        ended_by=result.ended_by,
        error=error,
        engine=result.engine,
        summary=result.summary,
    )


def shard_end(*, shard_id: int, status: str, ended_by: str, error: str = "", **extra: Any) -> None:
    """Only a running shard ends this way; one the reaper already declared dead stays dead."""
    Shard.objects.filter(pk=shard_id, status=Shard.Status.RUNNING).update(
        status=status, ended_by=ended_by, error=error[:2000], ended_at=timezone.now(), **extra
    )


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "••••") if secret and text else text
