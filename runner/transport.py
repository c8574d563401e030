"""Moving bytes: aiohttp for SSE and WebSocket (the hot path), the OpenAI SDK over httpx as a client mode.

Each exchange stamps ``perf_counter_ns()`` the moment a network chunk is handed over, then parses.
Failures never escape as exceptions: they are classified on the analyzer, so a broken stream
becomes a record with a failure class and every packet measured before the break.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from time import perf_counter_ns
from typing import Any

import aiohttp
import orjson
from aiohttp.client_proto import ResponseHandler

from runner.analysis import StreamAnalyzer
from runner.eager import started
from runner.policy import TargetDenied
from runner.protocols.base import ChunkParser, HttpRequest, ProtocolError
from runner.records import Outcome
from runner.spec import EndpointSpec, Timeouts
from runner.sse import DEFAULT_MAX_EVENT_BYTES, SseParser, SseStreamError


class Watchdog:
    """One timer per request enforcing the first-byte, idle and total deadlines.

    Idle counts from the last *content* packet (or from the first byte before any content), so
    heartbeats cannot keep a stalled stream alive. The timer is re-armed lazily: no per-chunk work.
    """

    __slots__ = ("_handle", "_loop", "_task", "analyzer", "expired", "timeouts")

    def __init__(self, analyzer: StreamAnalyzer, timeouts: Timeouts) -> None:
        self.analyzer, self.timeouts = analyzer, timeouts
        self.expired: str | None = None
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        # first check at the earliest any deadline could fall; each check re-arms for the next one
        self._handle = self._loop.call_later(
            min(timeouts.first_byte, timeouts.idle, timeouts.total), self._check
        )

    def _deadline(self) -> tuple[int, str]:
        a, t = self.analyzer, self.timeouts
        total = a.sent_ns + int(t.total * 1e9)
        if a.last_content_ns is None:
            # until the first token: servers send headers at once and then prefill for as long as
            # the prompt needs, so only the first-byte budget applies (not idle)
            other, kind = a.sent_ns + int(t.first_byte * 1e9), "first_byte"
        else:
            other, kind = a.last_content_ns + int(t.idle * 1e9), "idle"
        return (total, "total") if total <= other else (other, kind)

    def _check(self) -> None:
        deadline, kind = self._deadline()
        now = perf_counter_ns()
        if now >= deadline - 500_000:
            self.expired = kind
            if self._task is not None:
                self._task.cancel()
        else:
            # never sleep past one idle period: the first content packet may start the idle clock
            wait = min(deadline - now, int(self.timeouts.idle * 1e9)) / 1e9
            self._handle = self._loop.call_later(wait, self._check)

    def stop(self) -> None:
        self._handle.cancel()


@contextlib.contextmanager
def guarded(
    analyzer: StreamAnalyzer, timeouts: Timeouts, classify: Callable[[Exception], bool]
) -> Iterator[None]:
    """Deadlines and failure classification around one exchange. Nothing escapes but a cancel that
    did not come from the watchdog (the run itself is being cancelled): the record stays partial."""
    dog = Watchdog(analyzer, timeouts)
    try:
        yield
    except asyncio.CancelledError:
        if dog.expired is None:
            analyzer.fail(Outcome.CANCELLED, "run cancelled while the request was in flight")
            raise
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        analyzer.timed_out(dog.expired, perf_counter_ns())
    except (ProtocolError, SseStreamError) as exc:
        analyzer.fail(Outcome.PROTOCOL_ERROR, str(exc))
    except Exception as exc:  # a stream must never crash the run
        if not classify(exc):
            analyzer.fail(Outcome.PROTOCOL_ERROR, f"unexpected {type(exc).__name__}: {exc}")
    finally:
        dog.stop()


def _aiohttp_failure(analyzer: StreamAnalyzer) -> Callable[[Exception], bool]:
    def classify(exc: Exception) -> bool:
        if isinstance(exc.__cause__, TargetDenied):  # raised inside the connector's resolver
            analyzer.fail(Outcome.CONNECTION_ERROR, str(exc.__cause__))
        elif isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.SocketTimeoutError):
            analyzer.fail(Outcome.TIMEOUT, f"connect timeout: {exc}", timeout_kind="connect")
        elif isinstance(exc, aiohttp.ClientPayloadError):
            analyzer.fail(Outcome.CONNECTION_ERROR, f"connection broken mid-stream: {exc}")
        elif isinstance(exc, aiohttp.ClientResponseError):
            analyzer.fail(Outcome.PROTOCOL_ERROR, f"invalid HTTP response: {exc.message}")
        elif isinstance(exc, aiohttp.InvalidURL):
            analyzer.fail(Outcome.CONNECTION_ERROR, f"invalid URL: {exc}")
        elif isinstance(exc, aiohttp.ClientError | OSError):
            analyzer.fail(Outcome.CONNECTION_ERROR, f"{type(exc).__name__}: {exc}")
        else:
            return False
        return True

    return classify


# A pooled keep-alive connection the server already closed fails like this before any response
# byte: the request never reached the server, so it is sent once more on a fresh connection.
_STALE = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


async def exchange(
    session: aiohttp.ClientSession,
    req: HttpRequest,
    analyzer: StreamAnalyzer,
    parser: ChunkParser,
    timeouts: Timeouts,
    request_id: str,
    *,
    fresh: aiohttp.ClientSession | None = None,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> None:
    """Run one request to its end, classifying any failure on ``analyzer``.

    ``fresh`` is a session that always opens a new connection: a request whose pooled connection
    turns out dead before any response byte is retried there once (``reconnected``; its TTFT still
    counts from the schedule and its ``connect_ms`` is recorded). Once bytes have arrived a broken
    connection is the server's failure, never retried.
    """
    send = _ws if req.transport == "ws" else _sse
    with guarded(analyzer, timeouts, _aiohttp_failure(analyzer)):
        try:
            await send(session, req, analyzer, parser, request_id, max_event_bytes)
        except _STALE as exc:
            if not _retryable(exc, analyzer) or fresh is None:
                raise
            analyzer.reconnected, analyzer.reused = True, False
            await send(fresh, req, analyzer, parser, request_id, max_event_bytes)


def _retryable(exc: Exception, a: StreamAnalyzer) -> bool:
    return a.reused and a.first_byte_ns is None and not isinstance(exc, aiohttp.ClientConnectorError)


_StreamReader = aiohttp.StreamReader


class StampingHandler(ResponseHandler):
    """aiohttp's response protocol, stamping every socket read the moment the loop hands it over.

    A chunk reaches the request's task one queue later: after every other callback the loop already
    holds. Under load that wait is the client's, not the server's, so arrival stamps are taken here,
    at the read, and matched to the bytes by payload offset (``rx``: ``(payload bytes so far,
    perf_counter_ns)`` per read of the current response).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.rx: deque[tuple[int, int]] = deque()
        self.rx_payload: Any = None
        self.rx_total = -1  # payload bytes at the last stamped read

    def data_received(self, data: bytes, _base: Any = ResponseHandler.data_received) -> None:
        t = perf_counter_ns()
        before = self._payload
        _base(self, data)
        # a read that ends the body also clears the protocol's payload: it still counts
        payload = self._payload
        if payload is None:
            payload = before
        if data and type(payload) is _StreamReader:  # an HTTP body, not WebSocket frames
            total = payload.total_bytes
            if payload is not self.rx_payload:  # a new response on this connection
                self.rx_payload = payload
                self.rx.clear()
            elif total == self.rx_total:
                return  # framing only (a chunk-size line, say): no body byte to stamp
            self.rx_total = total
            self.rx.append((total, t))


class EagerBodyRequest(aiohttp.ClientRequest):
    """aiohttp's request, writing its body (and the buffered headers with it) in the turn that sends
    it, as aiohttp itself does from Python 3.12 on (an eagerly started task): on 3.11 the write
    would wait for the next loop turn, behind every callback already ready."""

    def write_bytes(self, *args: Any, **kwargs: Any) -> Any:
        return started(super().write_bytes(*args, **kwargs))


# the request class the engine's sessions use: aiohttp's own where it already starts the write eagerly
REQUEST_CLASS: type[aiohttp.ClientRequest] = (
    EagerBodyRequest if sys.version_info < (3, 12) else aiohttp.ClientRequest
)


def stamping(connector: aiohttp.BaseConnector) -> aiohttp.BaseConnector:
    """Makes the connector's connections :class:`StampingHandler` ones."""
    connector._factory = functools.partial(StampingHandler, loop=asyncio.get_running_loop())  # type: ignore[assignment]
    return connector


def _reads(resp: aiohttp.ClientResponse) -> deque[tuple[int, int]] | None:
    conn = resp.connection
    proto = conn.protocol if conn is not None else None
    if isinstance(proto, StampingHandler) and proto.rx_payload is resp.content:
        return proto.rx
    return None


async def _sse(
    session: aiohttp.ClientSession,
    req: HttpRequest,
    a: StreamAnalyzer,
    parser: ChunkParser,
    request_id: str,
    max_event_bytes: int,
) -> None:
    body = req.body if isinstance(req.body, str) else orjson.dumps(req.body)
    headers = {**req.headers, "x-request-id": request_id}
    async with session.post(
        req.url, data=body, headers=headers, trace_request_ctx=a, allow_redirects=False
    ) as resp:
        rx = _reads(resp)
        a.first_byte_ns = rx[0][1] if rx else perf_counter_ns()  # the read that held the headers
        a.http_status = resp.status
        if 300 <= resp.status < 400:  # never followed: a redirect could lead load anywhere
            where = resp.headers.get("location", "?")
            a.fail(
                Outcome.HTTP_ERROR,
                f"HTTP {resp.status} redirect to {where} not followed",
                http_status=resp.status,
            )
            return
        if resp.status >= 400:
            text = (await resp.content.read(8192)).decode("utf-8", "replace")
            a.fail_http(resp.status, text, resp.headers.get("retry-after"))
            return
        sse = SseParser(max_event_bytes)
        feed, on_event = sse.feed, parser.event
        # The usual chunk is one or more whole `data: {json}` events: their JSON goes to the parser
        # as bytes, without the text decoding and event objects of the general path (which the
        # parser's state, a heartbeat, [DONE], a CR or a multi-line event send it back to).
        one_json = getattr(parser, "json_event", None)

        def take(chunk: bytes, t: int) -> None:
            if (
                one_json is not None
                and chunk.startswith(b"data: {")
                and chunk.endswith(b"}\n\n")
                and b"\r" not in chunk
                and len(chunk) <= max_event_bytes
                and sse.idle
            ):
                body = chunk[6:-2]
                if b"\n" not in body:  # the usual: exactly one `data: {json}` event
                    one_json(body, t)
                    return
                parts = body.split(b"\n\ndata: ")
                if chunk.count(b"\n") == 2 * len(parts) and all(p[:1] == b"{" for p in parts):
                    for part in parts:
                        one_json(part, t)
                    return
            for ev in feed(chunk):
                on_event(ev.event, ev.data, t)

        pos = 0  # payload bytes handed to the parser so far
        async for chunk in resp.content.iter_any():
            t_task = perf_counter_ns()
            start, pos = pos, pos + len(chunk)
            if not rx:
                take(chunk, t_task)
                continue
            if len(rx) == 1 and rx[0][0] == pos:  # the usual: one read, exactly this chunk
                t = rx.pop()[1]
                if t_task - t > a.queued_ns:
                    a.queued_ns = t_task - t
                take(chunk, t)
                continue
            # each read's bytes with that read's stamp
            while rx and rx[0][0] <= start:
                rx.popleft()
            cut = start
            while rx and rx[0][0] <= pos:
                end, t = rx.popleft()
                a.queued_ns = max(a.queued_ns, t_task - t)
                take(chunk if end - cut == len(chunk) else chunk[cut - start : end - start], t)
                cut = end
            if cut < pos:  # bytes no stamped read accounts for: the task's own stamp
                take(chunk[cut - start :], t_task)
        t = perf_counter_ns()
        for ev in sse.close():
            on_event(ev.event, ev.data, t)
        parser.end(t)


async def _ws(
    session: aiohttp.ClientSession,
    req: HttpRequest,
    a: StreamAnalyzer,
    parser: ChunkParser,
    request_id: str,
    max_event_bytes: int,
) -> None:
    headers = {k: v for k, v in req.headers.items() if k not in ("content-type", "accept")}
    headers["x-request-id"] = request_id
    async with session.ws_connect(
        req.url, headers=headers, autoping=True, max_msg_size=max_event_bytes
    ) as ws:
        a.first_byte_ns = perf_counter_ns()
        a.http_status = 101
        await ws.send_str(req.body if isinstance(req.body, str) else orjson.dumps(req.body).decode())
        while True:
            msg = await ws.receive()
            t = perf_counter_ns()
            if msg.type is aiohttp.WSMsgType.TEXT:
                parser.event("", msg.data, t)
            elif msg.type is aiohttp.WSMsgType.BINARY:
                try:
                    parser.event("", msg.data.decode("utf-8"), t)
                except UnicodeDecodeError:
                    raise ProtocolError("binary WebSocket frame is not UTF-8 text") from None
            elif msg.type is aiohttp.WSMsgType.ERROR:
                exc = msg.data if isinstance(msg.data, BaseException) else ws.exception()
                if ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG:
                    raise ProtocolError(
                        f"a WebSocket message exceeded {max_event_bytes:,} bytes "
                        "(the endpoint's max_event_bytes limit)"
                    )
                raise aiohttp.ClientError(f"WebSocket error: {exc}")
            else:  # CLOSE / CLOSING / CLOSED
                code = ws.close_code
                if not (a.done or a.failure) and code not in (1000, 1001):
                    raise aiohttp.ClientConnectionError(f"WebSocket closed abnormally (code {code})")
                break
            if a.done or a.failure:
                break
        parser.end(perf_counter_ns())


def connection_timing() -> aiohttp.TraceConfig:
    """Stamps new-connection setup on the request's analyzer: reported apart, never hidden in TTFT."""

    async def start(_s: Any, ctx: Any, _p: Any) -> None:
        ctx.conn_start = perf_counter_ns()

    async def end(_s: Any, ctx: Any, _p: Any) -> None:
        analyzer = ctx.trace_request_ctx
        if isinstance(analyzer, StreamAnalyzer):
            analyzer.connect_ns = perf_counter_ns() - ctx.conn_start

    async def reused(_s: Any, ctx: Any, _p: Any) -> None:
        analyzer = ctx.trace_request_ctx
        if isinstance(analyzer, StreamAnalyzer):
            analyzer.reused = True

    async def wrote(_s: Any, ctx: Any, _p: Any) -> None:
        # called just before the body goes to the socket (headers with it): a closed-loop request's
        # latency counts from here, not from before the client's own queue to write it
        analyzer = ctx.trace_request_ctx
        if isinstance(analyzer, StreamAnalyzer) and analyzer.from_write:
            analyzer.origin_ns, analyzer.from_write = perf_counter_ns(), False

    trace = aiohttp.TraceConfig()
    trace.on_request_chunk_sent.append(wrote)
    trace.on_connection_create_start.append(start)
    trace.on_connection_create_end.append(end)
    trace.on_connection_reuseconn.append(reused)
    return trace


# -- the OpenAI SDK as a client mode ---------------------------------------------------------------
class EventTooBig(Exception):
    """An SSE event (or an unframed body) in SDK mode grew past the endpoint's limit."""


class EventCap:
    """The per-event size cap of the aiohttp path, for bytes the SDK reads itself: the bytes since
    the last blank line (an SSE event's end) may not pass ``limit``. Cheap when a chunk cannot
    reach the limit; each event measured when it could."""

    __slots__ = ("limit", "open", "tail")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0  # bytes of the event still open
        self.tail = b""  # the last bytes of the previous chunk: a separator may straddle chunks

    def check(self, chunk: bytes) -> None:
        scan = self.tail + chunk
        if self.open + len(chunk) <= self.limit:
            end = max(scan.rfind(b"\n\n"), scan.rfind(b"\r\n\r\n"), scan.rfind(b"\r\r"))
            self.open = len(scan) - end - 2 if end >= 0 else self.open + len(chunk)
        else:
            parts = scan.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n\n")
            sizes = [self.open - len(self.tail) + len(parts[0]), *map(len, parts[1:])]
            self.open = self.limit + 1 if max(sizes) > self.limit else sizes[-1]
        if self.open > self.limit:
            raise EventTooBig(
                f"an SSE event grew past {self.limit:,} bytes without ending "
                "(the endpoint's max_event_bytes limit)"
            )
        self.tail = scan[-3:]


def _capped_transport(hx: Any, limit: int) -> Any:
    """A transport of the SDK's own HTTP package (``hx``: httpx, or httpx2 in newer SDKs) whose
    response bodies pass through an :class:`EventCap`."""

    class Capped(hx.AsyncByteStream):  # type: ignore[misc]
        def __init__(self, inner: Any) -> None:
            self.inner, self.cap = inner, EventCap(limit)

        async def __aiter__(self) -> AsyncIterator[bytes]:
            async for chunk in self.inner:
                self.cap.check(chunk)
                yield chunk

        async def aclose(self) -> None:
            await self.inner.aclose()

    class Transport(hx.AsyncBaseTransport):  # type: ignore[misc]
        def __init__(self) -> None:
            # the pool is the transport's (a client's own limits do not reach a custom transport)
            self.inner = hx.AsyncHTTPTransport(
                limits=hx.Limits(max_connections=1000, max_keepalive_connections=100)
            )

        async def handle_async_request(self, request: Any) -> Any:
            resp = await self.inner.handle_async_request(request)
            return hx.Response(
                resp.status_code, headers=resp.headers, stream=Capped(resp.stream), extensions=resp.extensions
            )

        async def aclose(self) -> None:
            await self.inner.aclose()

    return Transport()


def sdk_client(ep: EndpointSpec) -> Any:
    """The SDK with its own HTTP client and no retries: a retried request would hide a failure and
    double-count load. The pool allows 1000 connections (the SDK's own default), and the transport
    caps an event's size like the aiohttp path does (``max_event_bytes``)."""
    import importlib

    from openai import AsyncOpenAI, DefaultAsyncHttpxClient

    # the HTTP package the SDK is built on: its default client subclasses that package's AsyncClient
    hx = importlib.import_module(DefaultAsyncHttpxClient.__mro__[1].__module__.split(".")[0])
    http = DefaultAsyncHttpxClient(
        transport=_capped_transport(hx, ep.max_event_bytes), timeout=ep.timeouts.total, follow_redirects=False
    )
    return AsyncOpenAI(
        base_url=ep.base_url,
        api_key=ep.api_key or "not-needed",
        default_headers=ep.headers or None,
        max_retries=0,
        timeout=ep.timeouts.total,
        http_client=http,
    )


async def sdk_exchange(
    client: Any,
    req: HttpRequest,
    analyzer: StreamAnalyzer,
    parser: Any,
    timeouts: Timeouts,
    request_id: str,
) -> None:
    """What an application built on ``AsyncOpenAI`` sees: chunks after the SDK has parsed them."""
    import openai

    body = dict(req.body) if isinstance(req.body, dict) else {}
    known = {"model", "messages", "stream", "stream_options", "max_tokens", "temperature", "top_p", "seed"}
    extra = {k: body.pop(k) for k in list(body) if k not in known}

    def classify(exc: Exception) -> bool:
        too_big = next((e for e in _chain(exc) if isinstance(e, EventTooBig)), None)
        if too_big is not None:
            analyzer.fail(Outcome.PROTOCOL_ERROR, str(too_big))
        elif isinstance(exc, openai.APIStatusError):
            analyzer.fail_http(exc.status_code, str(exc.message), exc.response.headers.get("retry-after"))
        elif isinstance(exc, openai.APITimeoutError):
            analyzer.fail(Outcome.TIMEOUT, f"SDK timeout: {exc}", timeout_kind="total")
        elif isinstance(exc, openai.APIConnectionError):
            analyzer.fail(Outcome.CONNECTION_ERROR, f"SDK connection error: {exc.__cause__ or exc}")
        elif isinstance(exc, openai.APIError):
            analyzer.fail(Outcome.PROTOCOL_ERROR, f"SDK: {exc}")
        else:
            return False
        return True

    with guarded(analyzer, timeouts, classify):
        stream = await client.chat.completions.create(
            **body, extra_body=extra or None, extra_headers={"x-request-id": request_id}
        )
        analyzer.first_byte_ns = perf_counter_ns()
        analyzer.http_status = 200
        async for chunk in stream:
            t = perf_counter_ns()
            parser.chunk(chunk.to_dict(), t)
        # The SDK swallows [DONE] and a cut final line alike; a finish_reason is the only end
        # marker left to tell a complete stream from a broken one.
        parser.end(perf_counter_ns())
        analyzer.done = analyzer.finish_reason is not None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes/contexts (the SDK wraps what the transport raised)."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__
