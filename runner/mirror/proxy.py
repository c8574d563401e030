"""The production path: every request to the upstream, its response back byte for byte.

The handler reads the request, hands a copy to the shadow pool (which never waits), forwards the
request and streams the upstream's status, headers and body bytes to the caller as they come. While
forwarding it only stamps chunks (``ResponseTap.feed``); parsing, the capture line and the record all
happen after the caller has its last byte, queued to :class:`~runner.mirror.measure.Measurer`, which
makes one per turn of the loop so that a burst of endings never holds up the next request. The overhead it reports is the proxy's own time before
the first byte: request read → upstream request issued, plus first upstream chunk → that chunk
written to the caller.
"""

from __future__ import annotations

import itertools
import time
from array import array
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from runner.mirror.capture import HOP_BY_HOP, CaptureWriter, is_secret_header, safe_headers, safe_path
from runner.mirror.live import LiveFeed
from runner.mirror.measure import Measurer
from runner.mirror.shadow import ShadowJob, ShadowPool
from runner.mirror.store import Pairing, RecordStore
from runner.mirror.tap import ResponseTap
from runner.mirror.ws import DEFAULT_WS_FORMAT, WS_HANDSHAKE, FrameTap, SentFrames, relay
from runner.records import Outcome, RequestRecord
from runner.spec import GenericFormat
from runner.sse import DEFAULT_MAX_EVENT_BYTES

# Response headers that describe the hop, not the response (Content-Length is kept: same framing).
_RESPONSE_HOP = frozenset(HOP_BY_HOP - {"content-length"})
# Headers aiohttp's client would add on its own; the upstream sees only what the caller sent.
_NO_AUTO_HEADERS = ("User-Agent", "Accept-Encoding", "Accept", "Content-Type")
MAX_BODY_BYTES = 64 * 1024 * 1024


@dataclass(slots=True)
class Production:
    """What the production path measured; ``records`` spilled and counted (runner.mirror.store)."""

    records: RecordStore = field(default_factory=lambda: RecordStore(0))
    overhead_ms: array[float] = field(default_factory=lambda: array("d"))  # 8 bytes each, no objects
    errors: list[str] = field(default_factory=list)


class MirrorProxy:
    def __init__(
        self,
        upstream: str,
        *,
        shadow: ShadowPool | None = None,
        capture: CaptureWriter | None = None,
        redact_headers: tuple[str, ...] = (),
        connect_timeout_s: float = 10.0,
        ws_format: GenericFormat | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self.max_event_bytes = max_event_bytes  # a WebSocket session's frames held for measurement
        self.upstream = upstream.rstrip("/")
        self.shadow = shadow
        self.capture = capture
        # the shadow's own header names are secrets too: never copied from the caller, never captured
        self.redact = tuple(redact_headers) + tuple(shadow.headers if shadow else ())
        self.connect_timeout_s = connect_timeout_s
        # the two sides' records, kept compact for a session of days (runner.mirror.store)
        self.pairing = Pairing()
        self.production = Production(records=RecordStore(0, self.pairing))
        self.requests = 0  # POSTs and WebSocket sessions: mirrored and measured (POSTs captured)
        self.websockets = 0  # of which WebSocket sessions
        self.ws_format = ws_format or DEFAULT_WS_FORMAT  # how the sessions' frames are read
        self.passed_through = 0  # other methods: forwarded only
        self.t0 = perf_counter_ns()
        self.epoch0 = time.time()
        self._seq = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None
        self.live: LiveFeed | None = None  # set by a host that shows the session while it runs
        # records and capture lines are made off the production path, one per turn of the loop
        self.measure = Measurer(self._measure_failed)
        if shadow is not None:
            shadow.measure = self.measure
            shadow.records = RecordStore(1, self.pairing)
            shadow.pairing = self.pairing

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._start)
        app.on_cleanup.append(self._stop)
        return app

    async def _start(self, _app: web.Application) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=75, enable_cleanup_closed=True),
            timeout=aiohttp.ClientTimeout(total=None, connect=self.connect_timeout_s),
            auto_decompress=False,  # the caller gets the upstream's bytes, compressed or not
            skip_auto_headers=_NO_AUTO_HEADERS,
            cookie_jar=aiohttp.DummyCookieJar(),  # one caller's cookies must never ride on another's request
        )
        self.measure.start()
        if self.shadow is not None:
            await self.shadow.start()

    async def _stop(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    # -- one request ----------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        t_read = perf_counter_ns()
        headers = _raw_headers(request.raw_headers, HOP_BY_HOP)
        tap = ResponseTap(request.path, t_read, t_read)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await relay(self, request, headers, t_read)
        if request.method != "POST":  # model lists, health checks: passed through, not traffic to test
            self.passed_through += 1
            return await self._forward(request, headers, body, tap, measure=False)
        rid = f"m{next(self._seq)}"
        self.requests += 1
        if self.live is not None:
            self.live.started(t_read)
        if self.shadow is not None:
            shadow_headers = {k: v for k, v in headers.items() if not is_secret_header(k, self.redact)}
            self.shadow.offer(ShadowJob(rid, request.method, request.path_qs, shadow_headers, body, t_read))
        resp = await self._forward(request, headers, body, tap)
        end = perf_counter_ns()
        self.measure.defer(lambda: self._finish(rid, request, body, tap, t_read, end))
        return resp

    def _measure_failed(self, exc: Exception) -> None:
        if len(self.production.errors) < 100:
            self.production.errors.append(f"measuring: {exc!r}")

    async def _forward(
        self,
        request: web.Request,
        headers: CIMultiDict[str],
        body: bytes,
        tap: ResponseTap,
        measure: bool = True,
    ) -> web.StreamResponse:
        assert self._session is not None
        t_issue = perf_counter_ns()
        try:
            async with self._session.request(
                request.method,
                self.upstream + request.path_qs,
                data=body,
                headers=headers,
                allow_redirects=False,
            ) as up:
                return await self._relay(request, up, tap, t_issue if measure else None)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            tap.fail(Outcome.CONNECTION_ERROR, f"upstream unreachable: {type(exc).__name__}: {exc}")
            error = {
                "message": f"llmperf mirror: upstream unreachable ({exc})",
                "type": "upstream_unavailable",
            }
            return web.json_response({"error": error}, status=502)

    async def _relay(
        self, request: web.Request, up: aiohttp.ClientResponse, tap: ResponseTap, t_issue: int | None
    ) -> web.StreamResponse:
        """Streams the upstream's response to the caller; ``t_issue`` None = overhead not counted."""
        t_head = perf_counter_ns()
        tap.head(up.status, up.headers.get("content-type", ""))
        out = _raw_headers(up.raw_headers, _RESPONSE_HOP)
        resp = web.StreamResponse(status=up.status, reason=up.reason, headers=out)
        if up.headers.get("Connection", "").lower() == "close":
            resp.force_close()  # the upstream ends its connection after this response: so does the caller's
        try:
            await resp.prepare(request)
        except (ConnectionError, aiohttp.ClientError):
            tap.fail(Outcome.CANCELLED, "the caller left before the response began")
            return resp
        first = True
        while True:
            try:
                chunk = await up.content.readany()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                # the upstream broke mid-stream: the caller's stream breaks the same way
                tap.fail(Outcome.CONNECTION_ERROR, f"upstream broke mid-stream: {exc!r}")
                if request.transport is not None:
                    request.transport.abort()
                return resp
            if not chunk:
                break
            t = perf_counter_ns()
            try:
                await resp.write(chunk)
            except (ConnectionError, aiohttp.ClientError):
                tap.fail(Outcome.CANCELLED, "the caller left before the response ended")
                return resp
            if first and t_issue is not None:
                self._overhead(tap.sched_ns, t_issue, t)
            first = False
            tap.feed(t, chunk)
        if first and t_issue is not None:  # no body at all: the headers were the first byte
            self._overhead(tap.sched_ns, t_issue, t_head)
        try:
            await resp.write_eof()
        except (ConnectionError, aiohttp.ClientError):
            tap.fail(Outcome.CANCELLED, "the caller left before the response ended")
        return resp

    def finish_ws(
        self, rid: str, tap: FrameTap, end: int, request: web.Request, t_read: int, sent: SentFrames | None
    ) -> None:
        """A WebSocket session's production record, and its capture line: the upgrade's path and
        headers (no secrets, no handshake), the caller's frames (``sent``) and production's outcome."""
        try:
            rec = tap.record(rid, end)
            self.production.records.add(rid, rec)
            if self.live is not None:
                self.live.finished(0, rid, rec, end)
            if self.capture is not None and sent is not None:
                headers = safe_headers(request.headers.items(), self.redact)
                self.capture.write_ws(
                    t_s=(t_read - self.t0) / 1e9,
                    epoch=self.epoch0 + (t_read - self.t0) / 1e9,
                    request_id=rid,
                    path=safe_path(request.path_qs),
                    headers={k: v for k, v in headers.items() if k not in WS_HANDSHAKE},
                    frames=[((t - tap.sched_ns) / 1e6, data) for t, data in sent.frames],
                    sent=sent.count,
                    truncated=sent.truncated,
                    production=production_row(rec),
                )
        except Exception as exc:  # measuring must never fail the caller's session
            if len(self.production.errors) < 100:
                self.production.errors.append(f"{rid}: {exc!r}")

    def _overhead(self, t_read: int, t_issue: int, t_received: int) -> None:
        """The proxy's own share of the time to first byte: before sending, and between receiving a
        chunk and having written it to the caller."""
        self.production.overhead_ms.append(((t_issue - t_read) + (perf_counter_ns() - t_received)) / 1e6)

    def _finish(
        self, rid: str, request: web.Request, body: bytes, tap: ResponseTap, t_read: int, end: int
    ) -> None:
        try:
            rec = tap.record(rid, end)
            self.production.records.add(rid, rec)
            if self.live is not None:
                self.live.finished(0, rid, rec, end)
            if self.capture is not None:
                self.capture.write(
                    t_s=(t_read - self.t0) / 1e9,
                    epoch=self.epoch0 + (t_read - self.t0) / 1e9,
                    request_id=rid,
                    method=request.method,
                    path=safe_path(request.path_qs),
                    headers=safe_headers(request.headers.items(), self.redact),
                    body=body,
                    production=production_row(rec),
                )
        except Exception as exc:  # measuring or capturing must never fail the caller's request
            if len(self.production.errors) < 100:  # a summary needs examples, not a day's worth
                self.production.errors.append(f"{rid}: {exc!r}")


def _raw_headers(raw: tuple[tuple[bytes, bytes], ...], skip: frozenset[str]) -> CIMultiDict[str]:
    """Headers as they came on the wire (names in their own case, repeats kept), less ``skip``."""
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in raw:
        key = name.decode("latin-1")
        if key.lower() not in skip:
            out.add(key, value.decode("latin-1"))
    return out


def production_row(rec: RequestRecord) -> dict[str, Any]:
    """The production timings, outcome and answer a capture line keeps."""
    return {
        "status": rec.http_status,
        "outcome": rec.outcome,
        "error": rec.error,
        "ttft_ms": rec.ttft_ms,
        "e2e_ms": rec.e2e_ms,
        "tokens_per_s": rec.tokens_per_s,
        "input_tokens": rec.input_tokens,
        "output_tokens": rec.output_tokens,
        "finish_reason": rec.finish_reason,
        "answer_text": rec.answer_text,
    }
