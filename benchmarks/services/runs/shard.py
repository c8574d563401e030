"""Running one shard: claim its row, run the engine, stream records and deltas out, end the row."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
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
from benchmarks.services.runs.outage import (
    DATABASE_DOWN,
    close_broken_connection,
    database_unreachable,
    transient,
)
from benchmarks.services.runs.spool import spool_append, spool_load, spool_pending
from runner import scrub_secrets

log = logging.getLogger(__name__)
HEARTBEAT_EVERY_S = 1.0
WRITER_PATIENCE_S = 10.0  # a writer at end of input waits this long for Redis or the database


class ShardSink:
    """Called by the engine from its sink thread: records to Postgres, deltas to the aggregator.

    While the database is unreachable, record batches go to the local spool instead (nothing
    measured is dropped) and are loaded from it first once a later batch finds the database back."""

    def __init__(self, *, run_id: int, shard_id: int, shard_index: int) -> None:
        self.run_id, self.shard_id, self.shard_index = run_id, shard_id, shard_index
        self.bus = get_bus()
        self.seen: set[str] = set()
        self.spooled = 0  # records put in the spool during this sink's life
        self.outage = False

    def on_records(self, batch: list[dict[str, Any]]) -> None:
        for record in batch:
            record.setdefault("shard", self.shard_index)
        try:
            self._reload_spool()
            self._insert(batch)
            if self.outage:
                log.warning("shard %s: database back, spooled records loaded", self.shard_id)
                self.outage = False
        except DATABASE_DOWN as exc:
            self._spool(batch, exc)
        finally:
            connection.close()  # this thread belongs to the engine; don't leave a connection behind

    def on_tick(self, delta: dict[str, Any]) -> None:
        self.bus.publish(self.run_id, {"shard": self.shard_index, "delta": delta})

    def finish(self, patience_s: float = 0.0) -> None:
        """At the end of the stream: deltas held back by a Redis outage, and the spool, given
        ``patience_s`` to go through; what is left stays spooled for finalize or the reaper."""
        deadline = time.monotonic() + patience_s
        while True:
            try:
                self._reload_spool()
                flushed = self.bus.flush()
            except DATABASE_DOWN:
                database_unreachable()
                flushed = False
            finally:
                connection.close()
            if (flushed and not spool_pending(run_id=self.run_id, shard_index=self.shard_index)) or (
                time.monotonic() >= deadline
            ):
                return
            time.sleep(0.5)

    def insert_missing(self, records: list[Any]) -> int:
        """Records the engine returned but that never reached the database (the last partial second,
        or a writer process that died): checked against the rows, so nothing measured is lost. With
        the database unreachable they all go to the spool (loading it skips rows already stored)."""
        try:
            self._reload_spool()
            stored = set(
                RequestRecord.objects.filter(run_id=self.run_id, shard_index=self.shard_index).values_list(
                    "request_id", flat=True
                )
            )
            missing = [r.to_dict() for r in records if r.request_id not in stored]
            if missing:
                for record in missing:
                    record.setdefault("shard", self.shard_index)
                self._insert(missing)
            return len(missing)
        except DATABASE_DOWN as exc:
            self._spool([r.to_dict() for r in records], exc)
            return len(records)
        finally:
            connection.close()

    def _spool(self, batch: list[dict[str, Any]], exc: Exception) -> None:
        if not transient(exc):
            raise exc  # the insert's own error, not an outage: spooling it would only defer it
        database_unreachable()
        if not self.outage:
            log.warning("shard %s: database unreachable (%s); spooling records", self.shard_id, exc)
            self.outage = True
        spool_append(run_id=self.run_id, shard_index=self.shard_index, records=batch)
        self.spooled += len(batch)

    def _reload_spool(self) -> None:
        if spool_pending(run_id=self.run_id, shard_index=self.shard_index):
            spool_load(run_id=self.run_id, shard_index=self.shard_index)

    def _insert(self, batch: list[dict[str, Any]]) -> None:
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
        self.outage = False

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
        except DATABASE_DOWN as exc:  # an outage: beat again next second, the reaper waits for it
            database_unreachable()
            if not self.outage:
                log.warning("shard %s heartbeat: database unreachable (%s)", self.shard_id, exc)
            self.outage = True
            close_broken_connection()
        except Exception:  # anything else must not kill the heartbeat thread either
            log.exception("shard %s heartbeat failed", self.shard_id)
            close_old_connections()
        else:
            self.outage = False

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
        close_broken_connection()  # an outage during the run may have broken this thread's one
        sink.insert_missing(result.records)  # spooled if the database is still away
        # whatever this machine spooled for the shard goes in as soon as the database answers (the
        # spool is local: on a load worker of another machine nobody else would load it)
        until_database(
            lambda: spool_load(run_id=run.pk, shard_index=shard.index), what=f"shard {shard_id} spool"
        )
        until_database(
            lambda: records_grades_store(run_id=run.pk, shard_index=shard.index, records=result.records),
            what=f"shard {shard_id} verdicts",
        )
        for problem in result.errors:
            log.warning("shard %s: %s", shard_id, scrub_secrets(problem, secrets))
    except Exception as exc:
        log.exception("shard %s failed", shard_id)
        failure = scrub_secrets(f"{type(exc).__name__}: {exc}", secrets)
        until_database(
            lambda: shard_end(shard_id=shard_id, status=Shard.Status.FAILED, ended_by="error", error=failure),
            what=f"shard {shard_id} end",
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
    until_database(
        lambda: shard_end(
            shard_id=shard_id,
            status=status,
            ended_by=result.ended_by,
            error=error,
            engine=result.engine,
            summary=result.summary,
        ),
        what=f"shard {shard_id} end",
    )


def until_database(step: Callable[[], object], *, what: str, patience_s: float | None = None) -> bool:
    """Run ``step``; while the database is unreachable, try again every second for up to
    ``patience_s`` (SHARD_DATABASE_PATIENCE_S). False if it never answered (the shard's row then
    goes stale and the reaper ends it; its records wait in the spool for finalize)."""
    deadline = time.monotonic() + (settings.SHARD_DATABASE_PATIENCE_S if patience_s is None else patience_s)
    while True:
        try:
            step()
            return True
        except DATABASE_DOWN as exc:
            database_unreachable()
            close_broken_connection()
            if time.monotonic() >= deadline:
                log.error("%s: database still unreachable (%s); giving up", what, exc)
                return False
            log.warning("%s: database unreachable (%s); retrying", what, exc)
            time.sleep(1.0)


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

    sink = ShardSink(run_id=run_id, shard_id=shard_id, shard_index=shard_index)
    handed = serve_sink(sink, stream)
    sink.finish(patience_s=WRITER_PATIENCE_S)  # the shard's task spools what is still missing
    return handed


def shard_end(*, shard_id: int, status: str, ended_by: str, error: str = "", **extra: Any) -> None:
    """Only a running shard ends this way; one the reaper already declared dead stays dead."""
    Shard.objects.filter(pk=shard_id, status=Shard.Status.RUNNING).update(
        status=status, ended_by=ended_by, error=error[:2000], ended_at=timezone.now(), **extra
    )
