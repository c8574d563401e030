"""The simulator's aiohttp application: routes, per-request flow, the server-side log, and serving.

Flow of a generation request: read body → stamp ``received_ns`` → parse → pick fault → reject early
(400/429/500) → headers → opening frame → wait for a batch slot (heartbeats meanwhile) → chunks at
``start + ttft + k * itl`` → finish frames. ``start`` is ``received_ns``, or the moment a slot was
granted if the request had to queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import random
import socket
import struct
import time
import uuid
import zlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from runner.simulator.answers import AnswerKey, ScriptedWords, leak_words, reply_words, thinking_words
from runner.simulator.config import SimConfig
from runner.simulator.metrics import ServerCounters, render_metrics
from runner.simulator.pacing import Batch, Channel
from runner.simulator.plan import (
    FAULT_AFTER_CHUNKS,
    Ask,
    BadRequest,
    Plan,
    make_plan,
    parse_chat,
    parse_completions,
    parse_messages,
    parse_ws,
    pick_fault,
)
from runner.simulator.tokens import PrefixCache, WordSource, count_prompt, load_sim_tokenizer
from runner.simulator.wire import (
    AnthropicWire,
    ChatWire,
    CompletionsWire,
    Frames,
    Usage,
    Wire,
    WireContext,
    WsWire,
    openai_error,
)

FAULT_HEADER = "x-sim-fault"
LOG_CAPACITY = 200_000
MAX_BODY_BYTES = 256 * 1024 * 1024
HTTP_FAULTS = {
    "http_500": (500, "Internal server error (simulated)"),
    "http_429": (429, "Too many requests (simulated)"),
}
CLOSING_FAULTS = frozenset({"cut_json", "no_done", "reset", "garbage", "stall", "stream_error"})
STREAM_ERROR_MESSAGE = "Overloaded (simulated stream error)"


@dataclass(slots=True)
class Record:
    """Server-side truth for one request; times are ``perf_counter_ns`` (CLOCK_MONOTONIC on Linux)."""

    request_id: str
    path: str
    received_ns: int
    first_chunk_ns: int | None = None  # just before writing the first content chunk
    last_chunk_ns: int | None = None  # just before writing the last content chunk
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    queued_ms: float = 0.0
    fault: str | None = None
    finish_reason: str | None = None
    status: int = 200
    answer_id: str | None = None  # the answer key's item found in the prompt
    answered_wrong: bool = False  # that item is one the key answers wrongly
    leaked: bool = False  # the answer opens with reasoning text


class Simulator:
    """State shared by one app's requests. The config is replaced whole, so a request that already
    started keeps the config it began with."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.log: deque[Record] = deque(maxlen=LOG_CAPACITY)
        self.cache = PrefixCache()
        self.batch = Batch(lambda: self.config.max_batch)
        self.rng = random.Random(config.seed)
        self.requests = 0
        self.started = int(time.time())
        # per keep-alive connection: [requests served, when the last one ended (perf_counter_ns)]
        self.connections: dict[int, tuple[Any, list[int]]] = {}
        self.keepalive_drops = 0
        self.counters = ServerCounters()

        self.key = load_key(config)
        self.tokenizer = load_sim_tokenizer(config.tokenizer)

    def connection(self, protocol: Any) -> list[int]:
        entry = self.connections.get(id(protocol))
        if entry is None or entry[0] is not protocol:
            if len(self.connections) > 4096:  # forget closed connections
                self.connections = {k: v for k, v in self.connections.items() if v[0].transport}
            entry = self.connections[id(protocol)] = (protocol, [0, 0])
        return entry[1]

    def set_config(self, config: SimConfig) -> None:
        key_of = (config.answer_key, config.wrong_rate, config.seed)
        if key_of != (self.config.answer_key, self.config.wrong_rate, self.config.seed):
            self.key = load_key(config)  # a bad key raises before anything changes
        if config.tokenizer != self.config.tokenizer:
            self.tokenizer = load_sim_tokenizer(config.tokenizer)
        if config.seed != self.config.seed:
            self.rng, self.requests = random.Random(config.seed), 0
        self.config = config
        self.batch.wake()

    def admit(self, request: web.Request, received_ns: int) -> tuple[Record, int]:
        """A log record (visible in /sim/log at once, filled in as the request runs) and its number."""
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        record = Record(request_id=request_id, path=request.path, received_ns=received_ns)
        self.log.append(record)
        self.requests += 1
        return record, self.requests


SIM = web.AppKey("llmperf_simulator", Simulator)


def load_key(config: SimConfig) -> AnswerKey | None:
    """The configured answer key (ValueError if it cannot be read), or None."""
    if not config.answer_key:
        return None
    try:
        return AnswerKey.load(config.answer_key, wrong_rate=config.wrong_rate, seed=config.seed)
    except OSError as exc:
        raise ValueError(f"answer key {config.answer_key}: {exc.strerror or exc}") from None


@dataclass(slots=True)
class Exchange:
    """Everything one generation request needs once it has been accepted."""

    sim: Simulator
    config: SimConfig
    record: Record
    ask: Ask
    plan: Plan
    wire: Wire
    words: WordSource | ScriptedWords

    def usage(self) -> Usage:
        done = self.record.completion_tokens
        return Usage.reported(
            self.config.misreport_usage,
            prompt=self.plan.prompt_tokens,
            completion=done,
            reasoning=min(done, self.plan.thinking),
            cached=self.plan.cached_tokens,
        )


def _context(config: SimConfig, record: Record, ask: Ask | None) -> WireContext:
    include_usage = ask is not None and (ask.include_usage or config.force_include_usage)
    return WireContext(
        request_id=record.request_id,
        model=(ask.model if ask else "") or config.model,
        created=0 if config.body_seeded else int(time.time()),
        think_format=config.think_format,
        include_usage=include_usage,
    )


def _garbage(rng: random.Random) -> bytes:
    """Never valid UTF-8: 0xFF cannot appear anywhere in it."""
    return b"\xff\xfe" + bytes(rng.randrange(128, 256) for _ in range(62)) + b"\n\n"


def _abort(request: web.Request) -> None:
    """Drop the TCP connection with a RST (SO_LINGER 0), as a crashed server or proxy would."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


@contextlib.asynccontextmanager
async def _generation_slot(ex: Exchange, channel: Channel) -> AsyncIterator[int]:
    """Holds a batch slot; yields when this generation's clock starts (read time, or grant time if it
    had to queue)."""
    granted_ns = await ex.sim.batch.acquire(channel)
    received_ns = ex.record.received_ns
    ex.record.queued_ms = 0.0 if granted_ns is None else (granted_ns - received_ns) / 1e6
    try:
        yield received_ns if granted_ns is None else granted_ns
    finally:
        ex.sim.batch.release()


async def stream_tokens(ex: Exchange, channel: Channel) -> str:
    """Sends one stream; returns how the connection should end: ``done``, ``close`` or ``abort``."""
    await channel.send(ex.wire.opening(ex.usage()))
    if ex.plan.fault == "stall":
        await channel.idle_forever()
    async with _generation_slot(ex, channel) as start_ns:
        return await _emit(ex, channel, start_ns + ex.plan.ttft_ns)


async def _emit(ex: Exchange, channel: Channel, first_token_ns: int) -> str:
    plan, wire, record = ex.plan, ex.wire, ex.record
    if plan.fault == "cut_json":
        await channel.sleep_until(first_token_ns)
        await channel.send(wire.cut())
        return "close"
    sent = 0
    for is_thinking, lo, hi in plan.chunks():
        if plan.fault in ("reset", "stream_error") and sent == FAULT_AFTER_CHUNKS:
            break
        await channel.sleep_until(first_token_ns + plan.due_steps(sent, hi) * plan.itl_ns)
        text = ex.words.take(hi - lo)
        if is_thinking:
            frames = wire.thinking(text, first=lo == 0, last=plan.thinking_closed and hi == plan.thinking)
        else:
            frames = wire.answer(text, first=lo == plan.thinking)
        record.last_chunk_ns = time.perf_counter_ns()
        if record.first_chunk_ns is None:
            record.first_chunk_ns = record.last_chunk_ns
        await channel.send(frames)
        ex.sim.counters.generated(plan, hi - lo)
        record.completion_tokens, sent = hi, sent + 1
    if sent == 0:
        await channel.sleep_until(first_token_ns)
    return await _end(ex, channel)


async def _end(ex: Exchange, channel: Channel) -> str:
    if ex.plan.fault == "reset":
        return "abort"
    if ex.plan.fault == "stream_error":
        await channel.send(ex.wire.stream_error(STREAM_ERROR_MESSAGE))
        return "close"
    if ex.plan.fault == "no_done":
        return "close"
    ex.record.finish_reason = ex.plan.finish
    ex.sim.counters.on_finish(ex.plan.finish)
    await channel.send(ex.wire.finish(ex.plan.finish, ex.usage()))
    return "done"


def _error(wire: Wire, record: Record, status: int, message: str) -> web.Response:
    record.status = status
    headers = {"x-request-id": record.request_id}
    if status == 429:
        headers["retry-after"] = "1"
    return web.json_response(wire.error_body(status, message), status=status, headers=headers)


def _overflows(config: SimConfig, plan_fault: str | None, prompt_tokens: int) -> int | None:
    """The context limit to report if this request overflows it, else None."""
    if config.max_context and prompt_tokens > config.max_context:
        return config.max_context
    if plan_fault == "context_overflow":
        return config.max_context or max(prompt_tokens - 1, 0)
    return None


async def _accept(
    request: web.Request, parse: Callable[[Any], Ask], make_wire: Callable[[WireContext], Wire]
) -> Exchange | web.Response:
    """Read and judge the request: an ``Exchange`` to run, or the error response to send now."""
    sim = request.app[SIM]
    raw = await request.read()
    received_ns = time.perf_counter_ns()
    # Requests arriving in one burst are parsed one after another; yielding once lets each stamp its
    # arrival before any does its setup, so the 100th of a burst does not start its TTFT clock late.
    await asyncio.sleep(0)
    config = sim.config
    record, number = sim.admit(request, received_ns)
    if config.body_seeded:  # a replayed or mirrored body gets the very bytes a direct call got
        number = zlib.crc32(raw)
        record.request_id = request.headers.get("x-request-id") or f"{number:08x}"
    try:
        ask = parse(json.loads(raw))
        if config.body_seeded:  # the words follow the prompt alone: a replay gets the recorded answer
            number = zlib.crc32(" ".join(ask.words).encode())
        fault = pick_fault(config, sim.rng, request.headers.get(FAULT_HEADER))
    except ValueError as exc:  # BadRequest, JSON and UTF-8 errors
        return _error(make_wire(_context(config, record, None)), record, 400, str(exc))
    wire = make_wire(_context(config, record, ask))
    tok = sim.tokenizer
    # a long prompt takes milliseconds to count: off the loop, so other streams keep their pace
    counted = await asyncio.to_thread(count_prompt, tok, ask) if tok is not None else None
    judged = _judge(sim, config, (record, number), ask, fault, wire, counted)
    if isinstance(judged, Exchange):
        return judged
    return _error(wire, record, *judged)


def _judge(
    sim: Simulator,
    config: SimConfig,
    admitted: tuple[Record, int],
    ask: Ask,
    fault: str | None,
    wire: Wire,
    counted: int | None = None,
) -> Exchange | tuple[int, str]:
    """Early rejections as ``(status, message)``; otherwise the plan for an accepted request.
    ``counted``: the prompt's tokens in the configured tokenizer (None: one per word)."""
    record, number = admitted
    prompt_tokens = len(ask.words) if counted is None else counted
    record.fault, record.prompt_tokens = fault, prompt_tokens
    limit = _overflows(config, fault, prompt_tokens)
    if limit is not None:
        return 400, wire.context_message(prompt_tokens, limit)
    if fault in HTTP_FAULTS:
        return HTTP_FAULTS[fault]
    cached = sim.cache.lookup_and_insert(ask.words) if config.prefix_cache else 0
    record.cached_tokens = cached
    item = sim.key.find(" ".join(ask.words)) if sim.key is not None else None
    leaked = fault is None and config.leak_rate > 0 and sim.rng.random() < config.leak_rate
    words = WordSource(config.seed, number)
    if item is None and not leaked:
        plan = make_plan(config, ask, fault, cached, number, prompt_tokens=prompt_tokens)
        sim.counters.admitted(plan)
        return Exchange(sim, config, record, ask, plan, wire, words)
    # a scripted reply: reasoning preamble in the thinking, the key's answer boxed (after a leak)
    tok = sim.tokenizer
    answer = [*(leak_words(tok) if leaked else []), *(reply_words(item, tok) if item else [])]
    preamble = thinking_words(tok) if item else []
    scripted = config
    if item is not None:
        thinking = max(config.thinking_tokens, len(preamble))
        scripted = dataclasses.replace(config, thinking_tokens=thinking, output_tokens=len(answer))
    plan = make_plan(scripted, ask, fault, cached, number, prompt_tokens=prompt_tokens)
    sim.counters.admitted(plan)
    record.answer_id, record.leaked = (item.id if item else None), leaked
    record.answered_wrong = item is not None and item.wrong
    return Exchange(
        sim, config, record, ask, plan, wire, ScriptedWords(words, plan.thinking, preamble, answer)
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _http_api(parse: Callable[[Any], Ask], make_wire: Callable[[WireContext], Wire]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        accepted = await _accept(request, parse, make_wire)
        if isinstance(accepted, web.Response):
            return accepted
        if accepted.plan.fault == "slow_first_byte":
            await asyncio.sleep(accepted.config.slow_first_byte_s)
        serve = _serve_sse if accepted.ask.stream else _serve_whole
        return await serve(request, accepted)

    return handler


async def _serve_sse(request: web.Request, ex: Exchange) -> web.StreamResponse:
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "x-request-id": ex.record.request_id,
        }
    )
    if ex.plan.fault in CLOSING_FAULTS:
        resp.force_close()
    await resp.prepare(request)

    async def send(frames: Frames) -> None:
        await resp.write(b"".join(frames))  # one write per packet, so it leaves at once

    channel = Channel(send, ex.wire.heartbeat, round(ex.config.heartbeat_ms * 1_000_000))
    try:
        if ex.plan.fault == "garbage":
            await channel.send([_garbage(ex.sim.rng)])
            return resp
        if await stream_tokens(ex, channel) == "abort":
            _abort(request)
    except ConnectionError:
        pass  # the client left; the record keeps what was sent
    return resp


async def _serve_whole(request: web.Request, ex: Exchange) -> web.StreamResponse:
    """Non-streaming: the whole body once the last token would have been generated."""
    plan = ex.plan
    if plan.fault == "stall":
        await asyncio.sleep(24 * 3600)
    channel = Channel(_discard, [], 0)
    async with _generation_slot(ex, channel) as start_ns:
        tokens = plan.thinking + plan.answer
        await channel.sleep_until(start_ns + plan.ttft_ns + max(tokens - 1, 0) * plan.itl_ns)
        return _whole_response(request, ex, tokens)


async def _discard(frames: Frames) -> None:
    return None


def _whole_response(request: web.Request, ex: Exchange, tokens: int) -> web.StreamResponse:
    fault, record = ex.plan.fault, ex.record
    if fault == "reset":
        _abort(request)
        return web.Response()
    if fault in ("garbage", "cut_json"):
        broken = _garbage(ex.sim.rng) if fault == "garbage" else b'{"choices":[{"message":{"cont'
        resp = web.Response(body=broken, content_type="application/json")
        resp.force_close()
        return resp
    if fault == "stream_error":
        return _error(ex.wire, record, 500, STREAM_ERROR_MESSAGE)
    record.first_chunk_ns = record.last_chunk_ns = time.perf_counter_ns()
    record.completion_tokens, record.finish_reason = tokens, ex.plan.finish
    ex.sim.counters.generation_tokens += tokens
    ex.sim.counters.on_finish(ex.plan.finish)
    thinking, answer = ex.words.take(ex.plan.thinking), ex.words.take(ex.plan.answer)
    body = ex.wire.body(thinking, answer, ex.plan.finish, ex.usage())
    return web.json_response(body, headers={"x-request-id": record.request_id})


async def _ws_handler(request: web.Request) -> web.StreamResponse:
    """HTTP faults refuse the upgrade; everything else happens on the socket after the ask arrives."""
    sim = request.app[SIM]
    config = sim.config
    try:
        fault = pick_fault(config, sim.rng, request.headers.get(FAULT_HEADER))
    except BadRequest as exc:
        return web.json_response(openai_error(400, str(exc)), status=400)
    if fault in HTTP_FAULTS:
        status, message = HTTP_FAULTS[fault]
        return web.json_response(openai_error(status, message), status=status)
    if fault == "slow_first_byte":
        await asyncio.sleep(config.slow_first_byte_s)
    ws = web.WebSocketResponse(max_msg_size=MAX_BODY_BYTES)
    await ws.prepare(request)
    try:
        await _ws_session(request, ws, sim, config, fault)
    except ConnectionError:
        return ws
    if not ws.closed:
        await ws.close()
    return ws


async def _ws_session(
    request: web.Request, ws: web.WebSocketResponse, sim: Simulator, config: SimConfig, fault: str | None
) -> None:
    message = await ws.receive()
    received_ns = time.perf_counter_ns()
    if message.type is not WSMsgType.TEXT:
        return
    record, number = sim.admit(request, received_ns)

    async def send(frames: Frames) -> None:
        for frame in frames:
            await ws.send_frame(frame, WSMsgType.TEXT)

    try:
        ask = parse_ws(json.loads(message.data))
    except ValueError as exc:
        record.status = 400
        await send(WsWire(_context(config, record, None)).stream_error(str(exc)))
        return
    if config.body_seeded:  # as over HTTP: the words follow the prompt alone (mirrors, replays)
        number = zlib.crc32(" ".join(ask.words).encode())
        record.request_id = request.headers.get("x-request-id") or f"{number:08x}"
    wire = WsWire(_context(config, record, ask))
    judged = _judge(sim, config, (record, number), ask, fault, wire)
    if not isinstance(judged, Exchange):
        record.status = judged[0]
        await send(wire.stream_error(judged[1]))
        return
    if fault == "garbage":
        await ws.send_bytes(_garbage(sim.rng))
        return
    channel = Channel(send, wire.heartbeat, round(config.heartbeat_ms * 1_000_000))
    if await stream_tokens(judged, channel) == "abort":
        _abort(request)


async def _models(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    model = {"id": sim.config.model, "object": "model", "created": sim.started, "owned_by": "llmperf"}
    return web.json_response({"object": "list", "data": [model]})


async def _health(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    return web.json_response(
        {"status": "ok", "requests": sim.requests, "keepalive_drops": sim.keepalive_drops}
    )


async def _metrics(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    text = render_metrics(sim.counters, sim.config, running=sim.batch.running, waiting=sim.batch.waiting)
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


async def _log(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    records = [dataclasses.asdict(r) for r in sim.log]
    if request.query.get("clear") in ("1", "true"):
        sim.log.clear()
    return web.json_response(records)


async def _get_config(request: web.Request) -> web.Response:
    return web.json_response(request.app[SIM].config.to_dict())


async def _patch_config(request: web.Request) -> web.Response:
    sim = request.app[SIM]
    try:
        patch = await request.json()
        if not isinstance(patch, dict):
            raise ValueError("config patch must be a JSON object")
        sim.set_config(sim.config.patched(patch))
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(sim.config.to_dict())


@web.middleware
async def _keepalive_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Servers drop keep-alive connections after some requests or some idle time; a client whose
    request crosses the close sees the connection die before any response byte."""
    sim = request.app[SIM]
    cfg = sim.config
    if not (cfg.keepalive_max_requests or cfg.keepalive_idle_s):
        return await handler(request)
    served = sim.connection(request.protocol)
    now = time.perf_counter_ns()
    over = bool(cfg.keepalive_max_requests) and served[0] >= cfg.keepalive_max_requests
    idle = bool(cfg.keepalive_idle_s and served[1]) and now - served[1] > cfg.keepalive_idle_s * 1e9
    if over or idle:
        sim.keepalive_drops += 1
        _abort(request)
        return web.Response(status=503)  # never reaches the client: the connection is gone
    try:
        return await handler(request)
    finally:
        served[0] += 1
        served[1] = time.perf_counter_ns()


def create_app(config: SimConfig | None = None) -> web.Application:
    """The simulator as an aiohttp app. Serve it with ``handler_cancellation=True`` so a client that
    disconnects frees its batch slot at once (``serve`` and ``run_simulator`` do)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_keepalive_limits])
    app[SIM] = Simulator(config or SimConfig())
    app.router.add_post("/v1/chat/completions", _http_api(parse_chat, ChatWire))
    app.router.add_post("/v1/completions", _http_api(parse_completions, CompletionsWire))
    app.router.add_post("/v1/messages", _http_api(parse_messages, AnthropicWire))
    app.router.add_get("/v1/ws", _ws_handler)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/health", _health)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/sim/log", _log)
    app.router.add_get("/sim/config", _get_config)
    app.router.add_post("/sim/config", _patch_config)
    return app


async def _start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return runner, f"http://{shown}:{bound_port}"


async def serve(config: SimConfig, *, stop: asyncio.Event | None = None) -> None:
    """Serve until ``stop`` is set (forever if None); prints the one ``listening`` line to stdout."""
    runner, url = await _start(create_app(config), config.host, config.port)
    print(f"llmperf-simulator listening on {url}", flush=True)
    try:
        await (stop or asyncio.Event()).wait()
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def run_simulator(config: SimConfig | None = None, *, port: int = 0) -> AsyncIterator[str]:
    """In-process simulator on the caller's loop, for quick tests: yields the base URL ending in ``/v1``.
    Binds ``config.host`` and ``port`` (not ``config.port``: tests want a free port)."""
    config = config or SimConfig()
    runner, url = await _start(create_app(config), config.host, port)
    try:
        yield url + "/v1"
    finally:
        await runner.cleanup()
