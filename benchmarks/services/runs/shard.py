"""Running one shard: claim its row, run the engine, stream records and deltas out, end the row."""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import F
from django.utils import timezone

from benchmarks import bridge
from benchmarks.crypto import SecretUnreadable
from benchmarks.live.bus import get_bus
from benchmarks.models import RequestRecord, Run, Shard
from benchmarks.services.runs.grades import records_grades_store
from runner import scrub_secrets

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

    def insert_missing(self, records: list[Any]) -> int:
        """Records the engine returned but that never reached the database (the last partial second,
        or a writer process that died): checked against the rows, so nothing measured is lost."""
        stored = set(
            RequestRecord.objects.filter(run_id=self.run_id, shard_index=self.shard_index).values_list(
                "request_id", flat=True
            )
        )
        missing = [r.to_dict() for r in records if r.request_id not in stored]
        if missing:
            self._insert(missing)
        return len(missing)

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
    try:
        api_key = run.endpoint.reveal_api_key() if run.endpoint else ""
        secret_headers = run.endpoint.reveal_secret_headers() if run.endpoint else {}
    except SecretUnreadable as exc:  # never send the run without its key: fail it and say why
        shard_end(shard_id=shard_id, status=Shard.Status.FAILED, ended_by="error", error=str(exc))
        return
    secrets = [api_key, *secret_headers.values()]
    watch = ShardWatch(shard_id=shard.pk, run_id=run.pk)
    sink = ShardSink(run_id=run.pk, shard_id=shard.pk, shard_index=shard.index)
    watch.start()
    try:
        spec = bridge.shard_spec(
            run, index=shard.index, count=run.shard_count, api_key=api_key, secret_headers=secret_headers
        )
        writer = (
            shard_sink_command(run_id=run.pk, shard_id=shard.pk, shard_index=shard.index)
            if settings.SHARD_SINK_PROCESS
            else None
        )
        result = shard_run_engine(
            run=run,
            shard_index=shard.index,
            spec=spec,
            sink=sink,
            should_cancel=watch.should_cancel,
            sink_command=writer,
            sink_env=_writer_env() if writer else None,
            limits=bridge.limits(),  # the engine checks them again, as they are now
        )
        sink.insert_missing(result.records)
        records_grades_store(run_id=run.pk, shard_index=shard.index, records=result.records)
        for problem in result.errors:
            log.warning("shard %s: %s", shard_id, scrub_secrets(problem, secrets))
    except Exception as exc:
        log.exception("shard %s failed", shard_id)
        shard_end(
            shard_id=shard_id,
            status=Shard.Status.FAILED,
            ended_by="error",
            error=scrub_secrets(f"{type(exc).__name__}: {exc}", secrets),
        )
        return
    finally:
        watch.stop()
    status = {"cancel": Shard.Status.CANCELLED, "error": Shard.Status.FAILED}.get(
        result.ended_by, Shard.Status.FINISHED
    )
    error = scrub_secrets(
        str(result.summary.get("error", "") or result.engine.get("error", "") or ""), secrets
    )
    shard_end(
        shard_id=shard_id,
        status=status,
        ended_by=result.ended_by,
        error=error,
        engine=result.engine,
        summary=result.summary,
    )


def shard_sink_command(*, run_id: int, shard_id: int, shard_index: int) -> list[str]:
    """The writer process a shard streams its records and deltas to (``manage.py shard_sink``)."""
    manage = str(Path(settings.BASE_DIR) / "manage.py")
    return [sys.executable, manage, "shard_sink", str(run_id), str(shard_id), str(shard_index)]


def _writer_env() -> dict[str, str]:
    """The writer inherits this process's environment, pointed at the database actually in use."""
    env = dict(os.environ)
    db = connection.settings_dict
    if "postgresql" in db["ENGINE"]:
        auth = quote(str(db.get("USER") or ""))
        if db.get("PASSWORD"):
            auth += ":" + quote(str(db["PASSWORD"]))
        host = f"{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"
        env["DATABASE_URL"] = f"postgres://{auth}@{host}/{quote(str(db['NAME']))}"
    return env


def shard_sink_serve(*, run_id: int, shard_id: int, shard_index: int, stream: IO[bytes]) -> int:
    """The writer process's side: records to Postgres, deltas to the aggregator, until EOF."""
    from runner import serve_sink

    return serve_sink(ShardSink(run_id=run_id, shard_id=shard_id, shard_index=shard_index), stream)


def shard_end(*, shard_id: int, status: str, ended_by: str, error: str = "", **extra: Any) -> None:
    """Only a running shard ends this way; one the reaper already declared dead stays dead."""
    Shard.objects.filter(pk=shard_id, status=Shard.Status.RUNNING).update(
        status=status, ended_by=ended_by, error=error[:2000], ended_at=timezone.now(), **extra
    )
