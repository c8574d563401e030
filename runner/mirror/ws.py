"""WebSocket sessions through the mirror: the caller's session relayed to the upstream frame by frame,
a sampled copy replayed to the shadow, both measured like the engine's own ``generic-ws`` requests.

The caller's upgrade is answered only once the upstream has accepted its own (same subprotocol); a
refusal reaches the caller with the upstream's status. Then every data frame goes through unchanged —
text as the same text, binary as the same bytes, in both directions — and a close on either side
closes the other with the same code. Pings are answered hop by hop (each side's own keep-alive).

Measurement: a session's latency counts from the caller's first data frame (the ask); each of the
upstream's frames is stamped as it arrives and, once relayed, read by :class:`GenericParser` with the
mirror's WebSocket format (by default the simulator's ``{"type": …}`` frames) into the same
:class:`~runner.analysis.StreamAnalyzer` as everything else; no frame is kept, and what the record
holds is bounded by ``max_event_bytes`` (:class:`FrameTap`), so a session of any length costs the
mirror a bounded amount of memory.

The shadow's copy opens when the ask arrives (sampled, queued, dropped past the bound, like an HTTP
copy), sends the ask with the shadow's own headers, then the caller's later frames as they come, and
reads until the shadow closes, finishes its answer or times out. Nothing it does reaches the caller.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict

from runner.analysis import StreamAnalyzer
from runner.metrics import estimate_tokens, fill_tokens
from runner.protocols import ProtocolError
from runner.protocols.generic import GenericParser
from runner.records import Outcome, RequestRecord
from runner.spec import GenericFormat
from runner.sse import DEFAULT_MAX_EVENT_BYTES

if TYPE_CHECKING:
    from runner.mirror.proxy import MirrorProxy

# The simulator's WebSocket frames (runner.simulator): {"type": "text" | "thinking" | "usage" | …}.
DEFAULT_WS_FORMAT = GenericFormat(kind_path="type", kind_map={"text": "answer", "ping": "heartbeat"})
# Handshake headers that belong to one hop: each side negotiates its own.
WS_HANDSHAKE = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-accept",
        "sec-websocket-protocol",
    }
)
_DATA = (WSMsgType.TEXT, WSMsgType.BINARY)


def ws_url(origin: str, path_qs: str) -> str:
    url = origin + path_qs
    return url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)


def frame_bytes(data: str | bytes) -> int:
    """A frame's size on the wire: a text frame's UTF-8 bytes (up to 4 per character), not its
    characters; ASCII text is its length without encoding it."""
    if isinstance(data, bytes) or data.isascii():
        return len(data)
    return len(data.encode("utf-8", "surrogatepass"))


def protocols_offered(headers: Any) -> tuple[str, ...]:
    offered = headers.get("Sec-WebSocket-Protocol", "")
    return tuple(p.strip() for p in offered.split(",") if p.strip())


@dataclass(slots=True)
class WsCopy:
    """The caller's data frames for the shadow's copy: the ask at once, the rest as they come."""

    frames: asyncio.Queue[str | bytes | None] = field(default_factory=asyncio.Queue)


class SentFrames:
    """The caller's frames of a session, for its capture line: kept up to ``cap`` bytes, the rest
    counted (``truncated``), so a capture costs a long session no more memory than its measurement."""

    __slots__ = ("cap", "count", "frames", "held", "truncated")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.frames: list[tuple[int, str | bytes]] = []
        self.count = self.held = 0
        self.truncated = False

    def add(self, t_ns: int, data: str | bytes) -> None:
        self.count += 1
        size = frame_bytes(data)
        if self.truncated or self.held + size > self.cap:
            self.truncated = True
            return
        self.held += size
        self.frames.append((t_ns, data))


class FrameTap:
    """Measures one side of a session frame by frame, as the frames pass: each is read by the
    parser into the analyzer when it has been relayed, and is not kept. What the record needs (the
    analyzer's packets: times and text) is held up to ``max_event_bytes`` of frames; a session past
    that (or one frame past it, as the engine's own ``generic-ws`` limit) ends its measurement as a
    protocol error, and later frames are only counted. The relay never depends on any of this."""

    __slots__ = (
        "analyzer",
        "close_code",
        "failure",
        "fmt",
        "frames",
        "held",
        "last_ns",
        "max_event_bytes",
        "parser",
        "sched_ns",
        "sent_ns",
        "status",
        "stopped",
    )

    def __init__(self, fmt: GenericFormat, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self.fmt = fmt
        self.max_event_bytes = max_event_bytes
        self.sched_ns = self.sent_ns = self.last_ns = 0
        self.status: int | None = None
        self.analyzer: StreamAnalyzer | None = None
        self.parser: GenericParser | None = None
        self.frames = 0  # data frames from the server after the ask (read or, past a stop, counted)
        self.held = 0  # bytes of the frames read into the analyzer
        self.stopped = False  # done, failed or over the cap: later frames are not read
        self.close_code: int | None = None
        self.failure: tuple[Outcome, str] | None = None

    def ask(self, t_ns: int) -> None:
        """The first data frame toward the server: latency counts from here."""
        if not self.sched_ns:
            self.sched_ns = self.sent_ns = self.last_ns = t_ns
            self.analyzer = StreamAnalyzer(t_ns, t_ns)
            self.parser = GenericParser(self.analyzer, self.fmt)

    def feed(self, t_ns: int, data: str | bytes) -> None:
        """One server frame, read now (a frame before the caller's ask is no answer: not read)."""
        a, parser = self.analyzer, self.parser
        if a is None or parser is None:
            return
        self.frames += 1
        if self.stopped:
            return
        if a.first_byte_ns is None:
            a.first_byte_ns = t_ns
        self.last_ns = t_ns
        size = frame_bytes(data)
        self.held += size
        if size > self.max_event_bytes:
            return self._stop(
                f"a WebSocket message exceeded {self.max_event_bytes:,} bytes (max_event_bytes)"
            )
        if self.held > self.max_event_bytes:
            return self._stop(
                f"the session's frames exceeded {self.max_event_bytes:,} bytes held for measurement "
                "(max_event_bytes); later frames were relayed, not measured"
            )
        try:
            parser.event("", data if isinstance(data, str) else data.decode("utf-8"), t_ns)
        except UnicodeDecodeError:
            return self._stop("binary WebSocket frame is not UTF-8 text")
        except ProtocolError as exc:
            return self._stop(str(exc))
        except Exception as exc:  # measuring must never break the relay that called it
            return self._stop(f"frame could not be read: {exc!r}")
        if a.done or a.failure:
            self.stopped = True

    def _stop(self, error: str) -> None:
        assert self.analyzer is not None
        self.analyzer.fail(Outcome.PROTOCOL_ERROR, error)
        self.stopped = True

    def fail(self, outcome: Outcome, error: str) -> None:
        if self.failure is None:
            self.failure = (outcome, error)

    def record(self, request_id: str, end_ns: int) -> RequestRecord:
        a = self.analyzer or StreamAnalyzer(end_ns, end_ns)
        a.http_status = self.status
        if self.failure is None and self.status is not None and self.status != 101:
            a.fail_http(self.status, "the WebSocket upgrade was refused")
        elif self.failure is None and not self.sched_ns:
            a.fail(Outcome.EMPTY_ANSWER, "the session closed before the caller asked anything")
        elif self.failure is None and self.parser is not None and a.failure is None:
            self.parser.end(self.last_ns)  # a held-back partial tag is text after all
            if not a.done and self.close_code not in (1000, 1001, None):
                a.fail(Outcome.CONNECTION_ERROR, f"WebSocket closed abnormally (code {self.close_code})")
        if self.failure is not None:
            a.fail(*self.failure)
        rec = a.record(request_id, request_id, end_ns)
        fill_tokens(rec, client_input=None, client_output=estimate_tokens(rec.answer_text), estimated=True)
        rec.packets = []  # as the HTTP tap: the metrics, not every frame's timeline row
        return rec


def _handshake_headers(headers: CIMultiDict[str]) -> CIMultiDict[str]:
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in WS_HANDSHAKE)


async def relay(
    proxy: MirrorProxy, request: web.Request, headers: CIMultiDict[str], t_read: int
) -> web.StreamResponse:
    """One caller's WebSocket session, to the upstream and (sampled) to the shadow; ``t_read``: the
    upgrade request's arrival (the session's time in a capture)."""
    from runner.mirror.capture import is_secret_header
    from runner.mirror.shadow import ShadowJob

    assert proxy._session is not None
    rid = f"m{next(proxy._seq)}"
    proxy.requests += 1
    proxy.websockets += 1
    tap = FrameTap(proxy.ws_format, proxy.max_event_bytes)
    sent = SentFrames(proxy.max_event_bytes) if proxy.capture is not None else None
    up_headers = _handshake_headers(headers)
    try:
        up = await proxy._session.ws_connect(
            ws_url(proxy.upstream, request.path_qs),
            headers=up_headers,
            protocols=protocols_offered(request.headers),
            autoping=True,
            max_msg_size=0,
        )
    except aiohttp.WSServerHandshakeError as exc:  # refused: the caller is refused the same way
        tap.status = exc.status
        proxy.finish_ws(rid, tap, perf_counter_ns(), request, t_read, sent)
        error = {"message": f"llmperf mirror: upstream refused the WebSocket upgrade ({exc.status})"}
        return web.json_response({"error": error}, status=exc.status or 502)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        tap.fail(Outcome.CONNECTION_ERROR, f"upstream unreachable: {type(exc).__name__}: {exc}")
        proxy.finish_ws(rid, tap, perf_counter_ns(), request, t_read, sent)
        error = {"message": f"llmperf mirror: upstream unreachable ({exc})", "type": "upstream_unavailable"}
        return web.json_response({"error": error}, status=502)
    tap.status = 101
    caller = web.WebSocketResponse(protocols=(up.protocol,) if up.protocol else (), max_msg_size=0)
    copy: WsCopy | None = None
    ask_ns = 0  # the proxy's own time passing the ask on, added to its first answer frame's
    try:
        await caller.prepare(request)
        first = True

        async def to_upstream() -> None:
            nonlocal copy, ask_ns
            async for msg in caller:
                if msg.type not in _DATA:
                    break
                t = perf_counter_ns()
                await (up.send_str(msg.data) if msg.type is WSMsgType.TEXT else up.send_bytes(msg.data))
                if not tap.sched_ns:
                    tap.ask(t)
                    if proxy.live is not None:
                        proxy.live.started(t)
                    ask_ns = perf_counter_ns() - t
                    if proxy.shadow is not None:
                        copy = WsCopy()
                        shadow_headers = {
                            k: v for k, v in up_headers.items() if not is_secret_header(k, proxy.redact)
                        }
                        proxy.shadow.offer(
                            ShadowJob(rid, "WS", request.path_qs, shadow_headers, b"", t, ws=copy)
                        )
                if copy is not None:
                    copy.frames.put_nowait(msg.data)
                if sent is not None:
                    sent.add(t, msg.data)
            if not up.closed:
                await up.close(code=caller.close_code or aiohttp.WSCloseCode.OK)

        async def to_caller() -> None:
            nonlocal first
            async for msg in up:
                if msg.type not in _DATA:
                    break
                t = perf_counter_ns()
                await (
                    caller.send_str(msg.data) if msg.type is WSMsgType.TEXT else caller.send_bytes(msg.data)
                )
                if first and tap.sched_ns:
                    proxy.production.overhead_ms.append((ask_ns + perf_counter_ns() - t) / 1e6)
                    first = False
                tap.feed(t, msg.data)
            tap.close_code = up.close_code
            if up.exception() is not None:
                tap.fail(Outcome.CONNECTION_ERROR, f"upstream broke mid-session: {up.exception()!r}")
            if not caller.closed:
                await caller.close(code=up.close_code or aiohttp.WSCloseCode.OK)

        tasks = [asyncio.create_task(to_upstream()), asyncio.create_task(to_caller())]
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        # one side ended: the other gets a moment to pass its close on, then stops
        if pending:
            _, pending = await asyncio.wait(pending, timeout=5.0)
        for task in pending:
            task.cancel()
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, (ConnectionError, aiohttp.ClientError)):
                tap.fail(Outcome.CANCELLED, "the caller left before the session ended")
    finally:
        if copy is not None:
            copy.frames.put_nowait(None)  # the caller is done: the shadow's copy sends no more
        if not up.closed:
            await up.close()
        proxy.finish_ws(rid, tap, perf_counter_ns(), request, t_read, sent)
    return caller


async def send_copy(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], copy: WsCopy, tap: FrameTap, model: str
) -> None:
    """The shadow's side of a session: the ask (its ``model`` replaced when one is set), then the
    caller's later frames, reading the shadow's frames until it closes."""
    from runner.mirror.shadow import with_model

    first = await copy.frames.get()  # put there with the offer: never waits
    if first is None:
        return
    if model and isinstance(first, str):
        first = with_model(first.encode(), model).decode()
    async with session.ws_connect(url, headers=headers, autoping=True, max_msg_size=0) as ws:
        tap.status = 101
        tap.ask(perf_counter_ns())
        await (ws.send_str(first) if isinstance(first, str) else ws.send_bytes(first))

        async def forward() -> None:
            while (frame := await copy.frames.get()) is not None:
                await (ws.send_str(frame) if isinstance(frame, str) else ws.send_bytes(frame))

        sender = asyncio.create_task(forward())
        try:
            async for msg in ws:
                if msg.type not in _DATA:
                    break
                tap.feed(perf_counter_ns(), msg.data)
            tap.close_code = ws.close_code
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
