"""The shadow path: a sampled copy of each request, sent later by a bounded pool of workers.

Nothing here can reach the caller. The production handler only calls :meth:`ShadowPool.offer`, which
never waits: past the queue bound the copy is dropped and counted. Workers send with the shadow's own
headers (never the caller's credentials) under a total timeout; every refusal, error or timeout
becomes a failed record, never an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any

import aiohttp
import orjson

from runner.mirror.live import LiveFeed
from runner.mirror.measure import Measurer
from runner.mirror.store import Pairing, RecordStore
from runner.mirror.tap import ResponseTap
from runner.mirror.ws import DEFAULT_WS_FORMAT, FrameTap, WsCopy, send_copy, ws_url
from runner.records import Outcome
from runner.spec import GenericFormat
from runner.sse import DEFAULT_MAX_EVENT_BYTES


@dataclass(slots=True)
class ShadowJob:
    request_id: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    queued_ns: int
    ws: WsCopy | None = None  # a WebSocket session's copy: the caller's frames, as they come


@dataclass(slots=True)
class ShadowCounts:
    sampled: int = 0
    sent: int = 0
    succeeded: int = 0
    failed: int = 0
    dropped: int = 0  # sampled but never sent: queue full, or still queued at shutdown
    failures: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sampled": self.sampled,
            "sent": self.sent,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "dropped": self.dropped,
            "failures": dict(sorted(self.failures.items())),
        }


class ShadowPool:
    def __init__(
        self,
        origin: str,
        *,
        headers: Mapping[str, str],
        sample: float = 1.0,
        queue_size: int = 1000,
        concurrency: int = 64,
        timeout_s: float = 120.0,
        seed: int = 0,
        model: str = "",
        ws_format: GenericFormat | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self.max_event_bytes = max_event_bytes  # a WebSocket copy's frames held for measurement, at most
        self.origin = origin.rstrip("/")
        self.model = model  # the shadow serves its model under another name: the copies say so
        self.headers = dict(headers)
        self.ws_format = ws_format or DEFAULT_WS_FORMAT
        self.sample = sample
        self.timeout_s = timeout_s
        self.counts = ShadowCounts()
        self.records = RecordStore(1)  # the proxy's, paired with its own (runner.mirror.store)
        self.pairing: Pairing | None = None
        self.errors: list[str] = []
        self._rng = random.Random(seed)
        self._queue: asyncio.Queue[ShadowJob] = asyncio.Queue(maxsize=max(1, queue_size))
        self._concurrency = max(1, concurrency)
        self._workers: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self.live: LiveFeed | None = None  # set by a host that shows the session while it runs
        self.measure: Measurer | None = None  # the proxy's: records made off its production path

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._concurrency, enable_cleanup_closed=True),
            timeout=aiohttp.ClientTimeout(total=None, connect=min(10.0, self.timeout_s)),
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self._workers = [asyncio.create_task(self._work()) for _ in range(self._concurrency)]

    def offer(self, job: ShadowJob) -> None:
        """Called on the production path: never waits, never raises."""
        if self.sample < 1.0 and self._rng.random() >= self.sample:
            return
        self.counts.sampled += 1
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self.counts.dropped += 1
            return
        if self.pairing is not None:  # production's record waits for this copy's
            self.pairing.expect(job.request_id)

    async def close(self, drain_s: float) -> None:
        """Give queued and in-flight copies ``drain_s`` to finish, then cancel the rest."""
        if drain_s > 0 and self._workers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), drain_s)
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self.counts.dropped += self._queue.qsize()
        if self._session is not None:
            await self._session.close()

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._send(job)
            except Exception as exc:  # a worker outlives any one request
                self.counts.failed += 1
                self.counts.failures["internal_error"] = self.counts.failures.get("internal_error", 0) + 1
                if len(self.errors) < 100:  # a summary needs examples, not a day's worth
                    self.errors.append(f"shadow {job.request_id}: {exc!r}")
            finally:
                self._queue.task_done()

    async def _send(self, job: ShadowJob) -> None:
        assert self._session is not None
        sent = perf_counter_ns()
        self.counts.sent += 1
        if self.live is not None:
            self.live.started(sent)
        headers = {**job.headers, **self.headers}
        if job.ws is not None:
            await self._send_ws(job, job.ws, headers)
            return
        tap = ResponseTap(job.path, sent, sent)  # shadow latency counts from its own send
        body = with_model(job.body, self.model) if self.model else job.body
        try:
            async with asyncio.timeout(self.timeout_s):
                async with self._session.request(
                    job.method, self.origin + job.path, data=body, headers=headers, allow_redirects=False
                ) as resp:
                    tap.head(resp.status, resp.headers.get("content-type", ""))
                    async for chunk in resp.content.iter_any():
                        tap.feed(perf_counter_ns(), chunk)
        except asyncio.CancelledError:
            tap.fail(Outcome.CANCELLED, "mirror stopped while the shadow request was in flight")
            self._finish(job, tap)
            raise
        except TimeoutError:
            tap.fail(Outcome.TIMEOUT, f"shadow did not finish within {self.timeout_s:g} s")
        except (aiohttp.ClientError, OSError) as exc:
            tap.fail(Outcome.CONNECTION_ERROR, f"{type(exc).__name__}: {exc}")
        self._finish(job, tap)

    async def _send_ws(self, job: ShadowJob, copy: WsCopy, headers: dict[str, str]) -> None:
        """A WebSocket session's copy: the same containment, timeout and counting as a request's."""
        assert self._session is not None
        tap = FrameTap(self.ws_format, self.max_event_bytes)
        try:
            async with asyncio.timeout(self.timeout_s):
                await send_copy(self._session, ws_url(self.origin, job.path), headers, copy, tap, self.model)
        except asyncio.CancelledError:
            tap.fail(Outcome.CANCELLED, "mirror stopped while the shadow session was open")
            self._finish(job, tap)
            raise
        except TimeoutError:
            tap.fail(Outcome.TIMEOUT, f"shadow did not finish within {self.timeout_s:g} s")
        except aiohttp.WSServerHandshakeError as exc:  # refused the upgrade: measured as that status
            tap.status = exc.status
        except (aiohttp.ClientError, OSError) as exc:
            tap.fail(Outcome.CONNECTION_ERROR, f"{type(exc).__name__}: {exc}")
        self._finish(job, tap)

    def _finish(self, job: ShadowJob, tap: ResponseTap | FrameTap) -> None:
        end = perf_counter_ns()
        if self.measure is not None:
            self.measure.defer(lambda: self._record(job, tap, end))
        else:
            self._record(job, tap, end)

    def _record(self, job: ShadowJob, tap: ResponseTap | FrameTap, end: int) -> None:
        rec = tap.record(job.request_id, end)
        rec.schedule_lag_ms = (tap.sent_ns - job.queued_ns) / 1e6  # time spent waiting in the queue
        self.records.add(job.request_id, rec)
        if self.live is not None:
            self.live.finished(1, job.request_id, rec, end)
        if rec.ok:
            self.counts.succeeded += 1
        else:
            self.counts.failed += 1
            self.counts.failures[rec.outcome] = self.counts.failures.get(rec.outcome, 0) + 1


def with_model(body: bytes, model: str) -> bytes:
    """The body with its ``model`` replaced; a body that is not a JSON object goes as it came."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    return orjson.dumps({**obj, "model": model}) if isinstance(obj, dict) else body
