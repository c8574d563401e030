"""WebSocket sessions through the mirror, against the simulator's WebSocket mode: the caller's frames
are the upstream's, the shadow gets a copy with its own headers, both sides are measured, and the
shadow's trouble never reaches the caller."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from runner.simulator import SimulatorProcess
from tests.runner.test_mirror import mirror

pytestmark = pytest.mark.timeout(120)
ASK = {"prompt": "tell me about the weather", "max_tokens": 12, "model": "m"}


@pytest.fixture(scope="module")
def upstream() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(ttft_ms=20, itl_ms=2, output_tokens=12, body_seeded=True) as proc:
        yield proc


@pytest.fixture(scope="module")
def slow_shadow() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(ttft_ms=120, itl_ms=4, output_tokens=12, body_seeded=True) as proc:
        yield proc


@pytest.fixture(scope="module")
def failing_shadow() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(ttft_ms=5, itl_ms=1, output_tokens=4, error_rate=1.0) as proc:
        yield proc


async def session(
    url: str, ask: dict[str, Any] = ASK, headers: dict[str, str] | None = None, path: str = "/v1/ws"
) -> tuple[list[tuple[str, Any]], int | None]:
    """One WebSocket session as a caller sees it: every frame (type, data) and the close code."""
    frames: list[tuple[str, Any]] = []
    async with aiohttp.ClientSession() as s, s.ws_connect(url + path, headers=headers or {}) as ws:
        await ws.send_str(json.dumps(ask))
        async for msg in ws:
            frames.append((msg.type.name, msg.data))
        return frames, ws.close_code


async def test_the_callers_session_is_the_upstreams_frame_for_frame_and_both_sides_are_measured(
    upstream: SimulatorProcess, slow_shadow: SimulatorProcess
) -> None:
    direct = await session(upstream.url)
    assert direct[0][-1][0] == "TEXT" and json.loads(direct[0][-1][1])["type"] == "done"
    async with mirror(upstream=upstream.url, shadow=slow_shadow.url) as (url, done):
        via = [await session(url) for _ in range(3)]
    assert all(v == direct for v in via)  # same frames, same bytes, same order, same close code
    s = done.result()
    assert s["requests"] == 3 and s["websockets"] == 3 and s["passed_through"] == 0
    prod, shadow = s["production"], s["shadow"]
    assert prod["requests"]["succeeded"] == 3 and prod["tokens"]["output"] == 36  # the usage frames
    assert 15 < prod["ttft_ms"]["p50"] < 100  # the upstream's 20 ms, measured from the ask
    assert shadow["sent"] == 3 and shadow["succeeded"] == 3 and shadow["requests"]["succeeded"] == 3
    assert shadow["ttft_ms"]["p50"] > prod["ttft_ms"]["p50"] + 50  # 120 ms vs 20 ms by configuration
    assert s["overhead_ms"]["count"] == 3 and s["overhead_ms"]["p50"] is not None
    paired = s["paired"]
    assert paired["pairs"] == 3 and paired["success"]["both"] == 3
    assert paired["answers_identical"] == 3  # same seed, same ask


async def test_a_failing_shadow_never_reaches_the_callers_session_and_is_counted(
    upstream: SimulatorProcess, failing_shadow: SimulatorProcess
) -> None:
    direct = await session(upstream.url)
    async with mirror(upstream=upstream.url, shadow=failing_shadow.url) as (url, done):
        via = await asyncio.gather(*(session(url) for _ in range(4)))
    assert all(v == direct for v in via)
    c = done.result()["shadow"]
    assert c["sent"] == 4 and c["failed"] == 4 and c["succeeded"] == 0
    assert done.result()["production"]["requests"]["succeeded"] == 4


async def test_an_upgrade_the_upstream_refuses_is_refused_to_the_caller_with_its_status(
    upstream: SimulatorProcess,
) -> None:
    async with mirror(upstream=upstream.url) as (url, done), aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await s.ws_connect(url + "/v1/ws", headers={"x-sim-fault": "http_429"})
    assert err.value.status == 429
    assert done.result()["production"]["requests"]["failures"] == {"rate_limited": 1}


async def test_a_session_broken_by_the_upstream_is_measured_as_failed(upstream: SimulatorProcess) -> None:
    direct = await session(upstream.url, headers={"x-sim-fault": "stream_error"})
    async with mirror(upstream=upstream.url) as (url, done):
        via = await session(url, headers={"x-sim-fault": "stream_error"})
    assert via == direct and json.loads(via[0][-1][1])["type"] == "error"
    assert done.result()["production"]["requests"]["succeeded"] == 0


@contextlib.asynccontextmanager
async def hanging_ws_server() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A shadow that accepts the session, reads the ask, and never answers."""
    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        msg = await ws.receive()
        seen.append({**{k.lower(): v for k, v in request.headers.items()}, "(ask)": str(msg.data)})
        await asyncio.sleep(3600)
        return ws

    app = web.Application()
    app.router.add_get("/v1/ws", handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_a_hanging_shadow_gets_its_own_credentials_and_leaves_the_caller_alone(
    upstream: SimulatorProcess,
) -> None:
    caller = {"Authorization": "Bearer caller-key", "x-api-key": "caller-key2", "x-trace": "kept"}
    direct = await session(upstream.url, headers=caller)
    async with (
        hanging_ws_server() as (shadow, seen),
        mirror(
            upstream=upstream.url,
            shadow=shadow,
            shadow_headers={"Authorization": "Bearer shadow-key"},
            shadow_model="candidate-7b",
            shadow_timeout_s=0.5,
        ) as (url, done),
    ):
        via = await asyncio.wait_for(session(url, headers=caller), 5)
        for _ in range(100):
            if done.done() or seen:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.7)  # past the shadow's timeout
    assert via == direct
    assert seen, "the shadow never got its copy"
    got = seen[0]
    assert got["authorization"] == "Bearer shadow-key" and got["x-trace"] == "kept"
    assert "x-api-key" not in got and "caller-key" not in json.dumps(got)
    assert json.loads(got["(ask)"]) == {**ASK, "model": "candidate-7b"}
    c = done.result()["shadow"]
    assert c["sent"] == 1 and c["failures"] == {"timeout": 1}


def test_the_websocket_format_comes_from_the_command_line_and_junk_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from runner.cli import build_parser
    from runner.mirror.cli import config_from_args

    argv = ["mirror", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1"]
    fmt = '{"kind_path": "event", "kind_map": {"delta": "answer"}, "answer_path": "content"}'
    config = config_from_args(build_parser().parse_args([*argv, "--ws-format", fmt]))
    assert config.ws_format is not None and config.ws_format.kind_path == "event"
    assert config.ws_format.kind_map == {"delta": "answer"} and config.ws_format.answer_path == "content"
    assert config_from_args(build_parser().parse_args(argv)).ws_format is None  # the simulator's frames
    for junk, message in (("{oops", "not JSON"), ("[1]", "JSON object"), ('{"colour": 1}', "unknown fields")):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*argv, "--ws-format", junk])
        assert message in capsys.readouterr().err


# -- long sessions: measured as they pass, bounded ---------------------------------------------------
def _frame(i: int) -> str:
    return json.dumps({"type": "text", "text": f"word{i} "})


@contextlib.asynccontextmanager
async def chatty_ws_server() -> AsyncIterator[str]:
    """An upstream whose answer is as many frames as the ask's ``frames``, then ``done``."""

    async def handle(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        ask = json.loads((await ws.receive()).data)
        for i in range(ask["frames"]):
            await ws.send_str(_frame(i))
        await ws.send_str(json.dumps({"type": "done", "finish_reason": "stop"}))
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/v1/ws", handle)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def test_a_long_sessions_measurement_holds_no_more_memory_than_its_cap() -> None:
    """Frames are read as they pass and not kept: past the cap the tap holds what it held at the cap,
    so ten times the frames cost the same memory (a tap keeping every frame holds ten times as much)."""
    import tracemalloc

    from runner.mirror.ws import DEFAULT_WS_FORMAT, FrameTap

    def held(n: int) -> tuple[int, Any]:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            tap = FrameTap(DEFAULT_WS_FORMAT, max_event_bytes=64 * 1024)
            tap.status = 101
            tap.ask(1)
            for i in range(n):
                tap.feed(2 + i, _frame(i))
            return tracemalloc.get_traced_memory()[0] - before, tap
        finally:
            tracemalloc.stop()

    small, tap_small = held(5_000)
    large, tap_large = held(50_000)
    assert large / small < 1.3, (small, large)
    assert tap_small.frames == 5_000 and tap_large.frames == 50_000  # every frame counted
    assert tap_large.held == tap_small.held  # ... but read only up to the cap
    rec = tap_large.record("m1", 60_000)
    assert rec.outcome == "protocol_error" and "max_event_bytes" in rec.error
    assert rec.ttft_ms is not None and rec.answer_text.startswith("word0 word1 ")


def test_a_session_within_the_cap_is_read_frame_by_frame_to_the_same_record() -> None:
    from runner.mirror.ws import DEFAULT_WS_FORMAT, FrameTap

    tap = FrameTap(DEFAULT_WS_FORMAT)
    tap.status = 101
    tap.feed(1_000_000, _frame(99))  # before the ask: a greeting, not part of the answer
    tap.ask(2_000_000)
    for i in range(3):
        tap.feed((3 + 10 * i) * 1_000_000, _frame(i))
    tap.feed(40_000_000, json.dumps({"type": "done", "finish_reason": "stop"}))
    tap.feed(41_000_000, _frame(7))  # after done: counted, not read
    rec = tap.record("m1", 42_000_000)
    assert rec.outcome == "success" and rec.answer_text == "word0 word1 word2 "
    assert rec.ttft_ms == 1.0 and rec.itl_ms == [10.0, 10.0] and rec.finish_reason == "stop"
    assert tap.frames == 5


def test_the_caps_count_a_text_frames_bytes_not_its_characters() -> None:
    """A frame of 300 emoji is about 330 characters but over 1,200 bytes (4 per emoji): a
    1,000-byte cap refuses it, on the measured side and in a capture's kept frames."""
    from runner.mirror.ws import DEFAULT_WS_FORMAT, FrameTap, SentFrames, frame_bytes

    wide = json.dumps({"type": "text", "text": "😀" * 300}, ensure_ascii=False)
    assert len(wide) < 1000 < frame_bytes(wide) == len(wide.encode())
    assert frame_bytes("é" * 10) == 20 and frame_bytes(b"\xff" * 10) == 10 and frame_bytes("ab") == 2

    tap = FrameTap(DEFAULT_WS_FORMAT, max_event_bytes=1000)
    tap.status = 101
    tap.ask(1)
    tap.feed(2, _frame(0))
    tap.feed(3, wide)
    assert tap.held == len(_frame(0)) + len(wide.encode())
    rec = tap.record("m1", 4)
    assert rec.outcome == "protocol_error" and "exceeded 1,000 bytes" in rec.error

    sent = SentFrames(cap=1000)
    sent.add(1, _frame(0))
    sent.add(2, wide)
    assert sent.truncated and sent.count == 2 and [d for _, d in sent.frames] == [_frame(0)]


async def test_a_session_past_the_cap_reaches_the_caller_whole_and_is_measured_as_a_protocol_error(
    upstream: SimulatorProcess,
) -> None:
    ask = {"frames": 6_000, "prompt": "long"}
    async with chatty_ws_server() as origin:
        direct = await session(origin, ask)
        async with mirror(upstream=origin, shadow=origin, max_event_bytes=32 * 1024) as (url, done):
            via = await session(url, ask)
            within = await session(url, {"frames": 50, "prompt": "short"})
    assert len(via[0]) == 6_001 and via == direct  # every frame, unchanged, past the cap
    assert within[1] == 1000
    s = done.result()
    assert s["production"]["requests"]["succeeded"] == 1  # the short session
    assert s["production"]["requests"]["failures"] == {"protocol_error": 1}
    assert s["shadow"]["failures"] == {"protocol_error": 1} and s["shadow"]["succeeded"] == 1


# -- captures of WebSocket sessions ---------------------------------------------------------------
WS_SECRETS = ("sk-caller-WS-1", "cookie-WS-2", "apikey-WS-3", "internal-WS-4", "query-WS-5", "frame-WS-6")


async def test_a_captured_session_keeps_its_path_headers_frames_and_outcome_and_no_secret(
    upstream: SimulatorProcess, tmp_path: Path
) -> None:
    path = tmp_path / "capture.jsonl"
    ask = {**ASK, "api_key": WS_SECRETS[5], "auth": {"token": WS_SECRETS[5]}}
    headers = {
        "Authorization": f"Bearer {WS_SECRETS[0]}",
        "Cookie": f"session={WS_SECRETS[1]}",
        "api-key": WS_SECRETS[2],
        "X-Internal": WS_SECRETS[3],
        "x-user-tag": "kept",
    }
    async with mirror(upstream=upstream.url, capture=str(path), redact_headers=("X-Internal",)) as (url, _):
        frames, code = await session(url + f"/v1/ws?key={WS_SECRETS[4]}&mode=fast", ask, headers, path="")
    assert code == 1000 and json.loads(frames[-1][1])["type"] == "done"
    text = path.read_text()
    for secret in WS_SECRETS:
        assert secret not in text
    line = json.loads(text)
    assert line["transport"] == "websocket" and line["path"] == "/v1/ws?mode=fast"
    assert line["headers"]["x-user-tag"] == "kept"
    assert not any(h.startswith("sec-websocket") or h == "upgrade" for h in line["headers"])
    assert line["frames_sent"] == 1 and line["frames"][0]["t_ms"] == 0.0
    assert line["frames"][0]["json"] == ASK == line["body"]  # the ask, the credentials out of it
    prod = line["production"]
    assert prod["outcome"] == "success" and prod["status"] == 101 and prod["ttft_ms"] > 0
    assert prod["answer_text"] and prod["output_tokens"] == 12


@pytest.mark.parametrize("mode", ["hash", "drop"])
async def test_a_captured_sessions_frames_can_have_their_text_hashed_or_dropped(
    upstream: SimulatorProcess, tmp_path: Path, mode: str
) -> None:
    path = tmp_path / "capture.jsonl"
    ask = {"model": "m", "max_tokens": 12, "prompt": "my private words", "context": {"note": "private too"}}
    async with mirror(upstream=upstream.url, capture=str(path), capture_prompts=mode) as (url, _):
        await session(url, ask)
    text = path.read_text()
    assert "private" not in text
    line = json.loads(text)
    body = line["body"]
    assert line["redacted"] == mode and body["model"] == "m" and body["max_tokens"] == 12
    assert body["prompt"].startswith("sha256:") if mode == "hash" else body["prompt"] is None


async def test_captured_sessions_replay_over_websocket_and_the_unreplayable_are_counted(
    upstream: SimulatorProcess, tmp_path: Path
) -> None:
    from runner.engine import run
    from runner.replay import load_replay
    from runner.spec import EndpointSpec, GenericFormat, ProfileSpec, RunSpec

    path = tmp_path / "capture.jsonl"
    async with (
        mirror(upstream=upstream.url, capture=str(path)) as (url, _),
        aiohttp.ClientSession() as s,
    ):
        await session(url, {**ASK, "prompt": "first question"})
        await session(url, {**ASK, "prompt": "second question"})
        async with s.ws_connect(url + "/v1/ws") as ws:  # an ask, then one more frame: not one request
            await ws.send_str(json.dumps(ASK))
            await ws.send_str(json.dumps({"type": "cancel"}))
            async for _ in ws:
                pass
        async with s.ws_connect(url + "/v1/ws") as ws:  # never asks
            await ws.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) == 4 and all(x["transport"] == "websocket" for x in lines)
    replay = load_replay(path)
    assert replay.format == "capture" and replay.websocket == 2 and len(replay.prompts) == 2
    assert [p.text for p in replay.prompts] == ["first question", "second question"]
    assert "2 WebSocket sessions skipped: 1 never asked, 1 sent more than an ask" in replay.notes
    fmt = GenericFormat(
        body_template='{"prompt": {{prompt}}, "max_tokens": {{max_tokens}}, "model": {{model}}}',
        path="/v1/ws",
        kind_path="type",
        kind_map={"text": "answer", "ping": "heartbeat"},
    )
    spec = RunSpec(
        endpoint=EndpointSpec("generic-ws", upstream.url, model="m", generic=fmt),
        prompts=replay.prompts,
        profile=ProfileSpec(kind="replay", replay=replay.entries, speed=10.0),
        duration_s=None,
    )
    result = await run(spec)
    assert len(result.records) == 2 and all(r.ok and r.http_status == 101 for r in result.records)
    assert all(r.output_tokens == 12 for r in result.records)
    recorded = {k: v["answer_text"] for k, v in replay.recorded.items()}
    assert sorted(r.answer_text for r in result.records) == sorted(recorded.values())  # same seeded answers
