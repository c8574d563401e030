"""Mirror sessions: live traffic copied to a team endpoint, recorded like a run.

A session is a :class:`Run` of kind ``mirror``. ``mirror_start`` queues it; one Celery task on the
``load`` queue (``tasks.run_mirror`` → :func:`mirror_execute`) claims it and holds the listening
socket for the session's whole life, in the worker's own event loop; a watch thread beside it
heartbeats, publishes the live counters and stops the mirror once the run is no longer ``running``
(stopping is the run's cancel: :func:`mirror_stop`). At the stop the shadow drains, both sides'
records are stored as variants 0 (production) and 1 (the shadow) of one paired run, and the
summary carries the mirror's own verdict. A worker that dies mid-session is found by the reaper like
a dead shard (its shard row stops beating), and the run ends ``failed``.

The shadow's key is the endpoint's, read on the worker at the last moment; the caller's credentials
are never copied to the shadow, never captured and never stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from benchmarks import bridge
from benchmarks.live.bus import get_bus
from benchmarks.live.push import push_to_viewers
from benchmarks.live.server import ServerSeconds
from benchmarks.models import Endpoint, RequestRecord, Run, Shard, Team
from benchmarks.services.dispatch import TaskName, enqueue_on_commit
from benchmarks.services.runs.shard import ShardSink
from benchmarks.services.runs.supervise import deltas_merge, seconds_persist
from benchmarks.services.samples import run_sample_at_end

log = logging.getLogger(__name__)
WATCH_EVERY_S = 1.0


@transaction.atomic
def mirror_start(
    *,
    team: Team,
    shadow: Endpoint,
    upstream: str,
    listen: str,
    sample: float = 1.0,
    capture_prompts: str = "keep",
    capture_dataset: bool = False,
    ws_format: dict[str, Any] | None = None,
    by: AbstractBaseUser | None,
    enqueue: bool = True,
) -> Run:
    """A queued session; a worker picks it up after commit (``enqueue=False``: the caller runs it).
    ``ws_format``: how WebSocket sessions' frames are read (a generic-ws endpoint's stream-format
    fields, checked by the form or the command); none = the simulator's frames."""
    settings = {
        "ws_format": dict(ws_format or {}),
        "upstream": upstream.rstrip("/"),
        "listen": listen,
        "sample": sample,
        "capture_prompts": capture_prompts,
        "capture_dataset": capture_dataset,
        "listening": "",
    }
    run = Run.objects.create(
        team=team,
        kind=Run.Kind.MIRROR,
        endpoint=shadow,
        plan_name=f"mirror of {settings['upstream']}",
        endpoint_name=shadow.name,
        created_by=by if by is not None and by.is_authenticated else None,
        spec=bridge.mirror_spec(shadow=shadow, upstream=upstream, settings=settings),
        variant={"mirror": "production→" + shadow.name},
        variant_text=f"mirror=production→{shadow.name}".lower(),
        shard_count=1,
    )
    if enqueue:
        from django.conf import settings as django_settings

        enqueue_on_commit(TaskName.RUN_MIRROR, run.pk, queue=django_settings.CELERY_LOAD_QUEUE)
    return run


def upstream_problem(url: str, timeout_s: float = 3.0) -> str:
    """Why production cannot be reached from here ("" when it answers a TCP connect): said at once,
    instead of a session whose every caller gets a 502."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.username or parts.password:
        return "Put no credentials in the production URL: callers' own headers reach production unchanged."
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout_s):
            return ""
    except OSError as exc:
        return f"Production at {url} does not answer: {exc.strerror or exc}."


def mirror_stop(*, run: Run, by: AbstractBaseUser) -> bool:
    """Like a run's cancel (a claim on the status): the worker's watch sees it within a second,
    stops listening, drains the shadow and records the session — finished, not partial, since a
    mirror ends by being stopped."""
    who = getattr(by, "username", "someone")
    if Run.objects.filter(pk=run.pk, status=Run.Status.QUEUED).update(
        status=Run.Status.PARTIAL, reason=f"Stopped by {who} before it started.", ended_at=timezone.now()
    ):
        return True
    return bool(
        Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
            status=Run.Status.CANCELLING, reason=f"Stopped by {who}."
        )
    )


class MirrorSink:
    """The session's live stream, the way a shard's goes: records to Postgres as they finish (with
    the session's prompt privacy applied) and per-second deltas onto the run's bus, from a helper
    thread so the mirror's loop never waits on the database."""

    def __init__(self, run: Run, shard: Shard) -> None:
        self.run = run
        self.shard = ShardSink(run_id=run.pk, shard_id=shard.pk, shard_index=0)

    async def on_records(self, batch: list[dict[str, Any]]) -> None:
        await asyncio.to_thread(self.shard.on_records, _private(self.run, batch))

    async def on_tick(self, delta: dict[str, Any]) -> None:
        await asyncio.to_thread(self.shard.on_tick, delta)


class MirrorWatch(threading.Thread):
    """Beside the event loop: heartbeats, live counters, the stop flag (no query in the loop), and
    the run's aggregator: each second it merges the session's deltas from the bus and stores and
    pushes the seconds they completed, as a run's aggregator does, so the live view draws while the
    session runs."""

    def __init__(self, *, run_id: int, shard_id: int) -> None:
        super().__init__(name=f"mirror-watch-{run_id}", daemon=True)
        self.run_id, self.shard_id = run_id, shard_id
        self.done = threading.Event()
        self.proxy: Any = None
        self.listening = ""
        self._stop_mirror: Any = None
        from runner import LiveAggregate

        self.aggregate = LiveAggregate()
        self.server = ServerSeconds()
        self.changed: set[int] = set()

    def attach(self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
        self._stop_mirror = lambda: loop.call_soon_threadsafe(stop.set)

    def run(self) -> None:
        try:
            while not self.done.wait(WATCH_EVERY_S):
                self.beat()
        finally:
            connection.close()

    def beat(self) -> None:
        try:
            now = timezone.now()
            Shard.objects.filter(pk=self.shard_id).update(heartbeat_at=now)
            Run.objects.filter(pk=self.run_id).update(supervisor_heartbeat_at=now)
            self.aggregate_step()
            status = Run.objects.filter(pk=self.run_id).values_list("status", flat=True).first()
            if status != Run.Status.RUNNING and self._stop_mirror is not None:
                self._stop_mirror()
        except Exception:  # a database blip must not end the session
            log.exception("mirror %s watch failed", self.run_id)
            close_old_connections()

    def aggregate_step(self, *, final: bool = False) -> None:
        """Merge what the session published since the last beat; store and push the seconds it
        completed (all of them at the end), the snapshot being the aggregate's totals with the
        mirror's own counters over them (the run page's numbers stay production's)."""
        messages = get_bus().drain(self.run_id, timeout=0.1)
        self.changed |= deltas_merge(self.aggregate, messages, self.server)
        self.changed = seconds_persist(
            self.run_id,
            self.aggregate,
            self.changed,
            checkpoint=final,
            server=self.server,
            final=final,
            snapshot=self.counters(),
        )
        if final:
            get_bus().discard(self.run_id)

    def finish(self) -> None:
        """After the session: the last deltas (sent after the shadow drained) drawn."""
        try:
            self.aggregate_step(final=True)
        except Exception:  # the records are stored at the end whatever the live view does
            log.exception("mirror %s: last live seconds not stored", self.run_id)

    def counters(self) -> dict[str, Any]:
        """Read from another thread: plain ints the loop only ever increments."""
        proxy = self.proxy
        if proxy is None:
            return {"listening": self.listening}
        pool = proxy.shadow
        records = proxy.production.records  # plain ints the loop increments
        done, ok = records.count, records.succeeded
        return {
            "listening": self.listening,
            "started": proxy.requests,
            "completed": ok,  # production's, as the run page's live numbers show them
            "failed": done - ok,
            "shadow": pool.counts.to_dict() if pool is not None else None,
        }

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=5)


def mirror_claim(*, run_id: int, hostname: str) -> Shard | None:
    now = timezone.now()
    claimed = Run.objects.filter(pk=run_id, kind=Run.Kind.MIRROR, status=Run.Status.QUEUED).update(
        status=Run.Status.RUNNING,
        started_at=now,
        supervisor_token=uuid.uuid4().hex,
        supervisor_heartbeat_at=now,
    )
    if not claimed:
        return None
    return Shard.objects.create(
        run_id=run_id,
        index=0,
        status=Shard.Status.RUNNING,
        hostname=hostname,
        started_at=now,
        heartbeat_at=now,
    )


def mirror_execute(*, run_id: int, hostname: str) -> None:
    """Hold the session on this worker until it is stopped; at most once (the claim decides)."""
    shard = mirror_claim(run_id=run_id, hostname=hostname)
    if shard is None:
        return
    run = Run.objects.select_related("endpoint").get(pk=run_id)
    api_key = run.endpoint.reveal_api_key() if run.endpoint else ""
    capture = _capture_path(run)
    watch = MirrorWatch(run_id=run_id, shard_id=shard.pk)
    watch.start()
    try:
        config = bridge.mirror_config(run, api_key=api_key, capture=capture)
        summary, records = asyncio.run(_serve(config, watch, MirrorSink(run, shard)))
    except Exception as exc:  # bad settings, the port taken: said plainly on the page
        log.warning("mirror %s could not run: %s", run_id, exc)
        get_bus().discard(run_id)  # whatever its last flush published: no view will read it
        _end(run, shard, records=[], status=Shard.Status.FAILED, error=_scrub(_why(exc), api_key))
        return
    finally:
        watch.stop()
        connection.close()  # the watch's writes left this thread's connection idle for a long time
    watch.finish()
    try:
        if capture:
            _capture_to_dataset(run, capture)
    finally:
        if capture:
            Path(capture).unlink(missing_ok=True)
    _end(run, shard, records=_private(run, records), status=Shard.Status.FINISHED, mirror=summary)


async def _serve(
    config: Any, watch: MirrorWatch, sink: MirrorSink
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    from runner import mirror_records, serve_mirror

    stop = asyncio.Event()
    watch.attach(asyncio.get_running_loop(), stop)
    proxies: list[Any] = []

    def on_proxy(proxy: Any) -> None:
        proxies.append(proxy)
        watch.proxy = proxy

    def on_listening(url: str) -> None:
        watch.listening = url

    summary = await serve_mirror(config, stop, on_listening, on_proxy, sink=sink)
    return summary, mirror_records(proxies[0])


def _why(exc: Exception) -> str:
    if isinstance(exc, OSError):
        return f"The mirror could not listen: {exc.strerror or exc}"
    return f"The mirror could not start: {exc}"


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "••••") if secret else text


def _capture_path(run: Run) -> str:
    if not run.spec["mirror"].get("capture_dataset"):
        return ""
    handle, name = tempfile.mkstemp(prefix=f"llmperf-mirror-{run.pk}-", suffix=".jsonl")
    with contextlib.suppress(OSError):
        os.close(handle)
    return name


def _capture_to_dataset(run: Run, path: str) -> None:
    """The session's capture becomes a timed dataset of the team (already redacted by the writer)."""
    from benchmarks.services.captures import CaptureError, capture_dataset_create

    data = Path(path).read_bytes()
    if not data.strip():
        return
    try:
        dataset = capture_dataset_create(
            team=run.team,
            name=f"capture of mirror session {run.pk}",
            data=data,
            filename=Path(path).name,
            fmt="capture",
            privacy="keep",
            by=run.created_by,
        )
    except CaptureError as exc:
        log.warning("capture of mirror %s not kept: %s", run.pk, exc)
        return
    Run.objects.filter(pk=run.pk).update(spec={**run.spec, "capture_dataset_id": dataset.pk})
    run.spec["capture_dataset_id"] = dataset.pk


def _private(run: Run, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """With prompt privacy on, answers are not stored either (ROUGE-L was computed in memory)."""
    if run.spec["mirror"].get("capture_prompts", "keep") == "keep":
        return records
    for r in records:
        r["answer_text"] = ""
        r["packets"] = [list(p)[:4] for p in r.get("packets") or []]
    return records


def _end(
    run: Run,
    shard: Shard,
    *,
    records: list[dict[str, Any]],
    status: str,
    error: str = "",
    mirror: dict[str, Any] | None = None,
) -> None:
    rows = [bridge.record_row(run.pk, r) for r in records]
    RequestRecord.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
    Shard.objects.filter(pk=shard.pk, status=Shard.Status.RUNNING).update(
        status=status,
        ended_by="stop" if not error else "error",
        error=error[:2000],
        ended_at=timezone.now(),
        records_count=len(rows),
    )
    run.refresh_from_db()
    shards = list(run.shards.all())
    summary: dict[str, Any] = {}
    if mirror is not None:
        summary = bridge.mirror_run_summary(run, shards, records, mirror)
        run_sample_at_end(run=run, records=records, summary=summary, shards=shards)
    stopped = run.reason or "Stopped."
    reason = error or f"{stopped} {len(records)} records ({_sides(records)})."
    final = Run.Status.FAILED if error else Run.Status.FINISHED
    Run.objects.filter(pk=run.pk, status__in=Run.ACTIVE).update(
        status=final, reason=reason, summary=summary, ended_at=timezone.now()
    )
    run.refresh_from_db()
    push_to_viewers(run, {"type": "run.final", "status": run.status, "reason": run.reason})


def _sides(records: list[dict[str, Any]]) -> str:
    prod = sum(1 for r in records if not r.get("variant"))
    return f"{prod} production, {len(records) - prod} shadow"
