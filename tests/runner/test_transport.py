"""Moving bytes like a real client: stale keep-alive connections are re-sent once, never counted as
the server's failure; a broken stream after bytes arrived stays a failure; events are size-capped."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from runner.engine import run
from runner.simulator import SimulatorProcess
from runner.spec import EndpointSpec, ProfileSpec, Prompt, RunSpec, Timeouts
from tests.runner.crowd import crowded_loop
from tests.runner.rawserver import DONE, chat_chunk, raw_server, serve_app

pytestmark = pytest.mark.timeout(120)


def spec(url: str, profile: ProfileSpec, **kw: Any) -> RunSpec:
    return RunSpec(
        endpoint=EndpointSpec(protocol="openai-chat", base_url=url, model="sim", timeouts=Timeouts(total=30)),
        prompts=[Prompt(id="p", text="tell me a story")],
        profile=profile,
        duration_s=None,
        **kw,
    )


def drops(sim: SimulatorProcess) -> int:
    return int(httpx.get(sim.url + "/health").json()["keepalive_drops"])


async def test_connections_closed_after_n_requests_are_resent_not_failed() -> None:
    # like llama.cpp's cpp-httplib: a connection that served one request dies when the next arrives
    with SimulatorProcess(ttft_ms=30, itl_ms=2, output_tokens=8, keepalive_max_requests=1) as sim:
        result = await run(
            spec(sim.base_url, ProfileSpec(kind="users", users=4, spawn_rate=100), max_requests=24)
        )
        dropped = drops(sim)
    records = result.records
    assert len(records) == 24 and all(r.ok for r in records), [r.error for r in records if not r.ok]
    resent = [r for r in records if r.reconnected]
    # the warm-up already used each pre-opened connection once, so the first reuse is dropped
    assert dropped >= 4 and len(resent) == dropped
    for r in resent:
        assert r.connect_ms is not None and r.connect_ms > 0  # the fresh connection's setup, recorded
        assert r.ttft_ms is not None and r.ttft_ms >= 30  # still counted from the scheduled send
    assert result.summary["requests"]["failed"] == 0


async def test_connections_closed_after_idle_time_are_resent_not_failed() -> None:
    with SimulatorProcess(ttft_ms=20, itl_ms=2, output_tokens=4, keepalive_idle_s=0.2) as sim:
        result = await run(
            spec(
                sim.base_url,
                ProfileSpec(kind="rate", rate=3, arrival="constant"),
                max_requests=6,
                warm_connections=1,
            )
        )
        dropped = drops(sim)
    assert len(result.records) == 6 and all(r.ok for r in result.records)
    resent = sum(r.reconnected for r in result.records)
    assert resent >= 1 and resent == dropped


async def test_a_connection_broken_after_response_bytes_is_still_a_failure() -> None:
    script = [chat_chunk("Hello"), 0.05, chat_chunk(" wor"), "reset"]
    async with raw_server(script) as url:
        result = await run(spec(url, ProfileSpec(kind="users", users=1), max_requests=1))
    rec = result.records[0]
    assert rec.outcome == "connection_error" and not rec.reconnected
    assert rec.answer_text == "Hello wor"  # what arrived before the break is kept


async def test_an_event_over_the_size_limit_ends_the_request_at_once() -> None:
    huge = b"data: " + b"x" * (3 << 20)  # 3 MiB and never a blank line
    async with raw_server([chat_chunk("Hi"), huge, 5.0, DONE]) as url:
        result = await run(spec(url, ProfileSpec(kind="users", users=1), max_requests=1))
    rec = result.records[0]
    assert rec.outcome == "protocol_error"
    assert "1,048,576 bytes" in rec.error and "max_event_bytes" in rec.error
    assert rec.e2e_ms is not None and rec.e2e_ms < 4000  # not after the server's 5 s pause
    assert rec.answer_text == "Hi"


async def test_the_size_limit_holds_in_openai_sdk_mode_too() -> None:
    huge = b"data: " + b"x" * (3 << 20)  # the SDK parses the stream itself: the cap sits below it
    async with raw_server([chat_chunk("Hi"), huge, 5.0, DONE]) as url:
        sdk = spec(url, ProfileSpec(kind="users", users=1), max_requests=1)
        sdk.endpoint.protocol = "openai-sdk"
        rec = (await run(sdk)).records[0]
    assert rec.outcome == "protocol_error", rec.error
    assert "1,048,576 bytes" in rec.error and "max_event_bytes" in rec.error
    assert rec.e2e_ms is not None and rec.e2e_ms < 4000
    assert rec.answer_text == "Hi"
    async with raw_server([chat_chunk("y" * 5000), chat_chunk(finish="stop"), DONE]) as url:
        small = spec(url, ProfileSpec(kind="users", users=1), max_requests=1)
        small.endpoint.protocol = "openai-sdk"
        small.endpoint.max_event_bytes = 4096
        capped = (await run(small)).records[0]
        small.endpoint.max_event_bytes = 1 << 20
        roomy = (await run(small)).records[0]
    assert capped.outcome == "protocol_error" and "4,096 bytes" in capped.error
    assert roomy.outcome == "success", roomy.error


async def test_the_sdk_client_keeps_the_sdks_pool_of_1000_connections() -> None:
    from runner.transport import sdk_client

    ep = EndpointSpec(protocol="openai-sdk", base_url="http://127.0.0.1:9/v1", model="m")
    client = sdk_client(ep)
    pool = client._client._transport.inner._pool  # the transport that carries the size cap
    assert (pool._max_connections, pool._max_keepalive_connections) == (1000, 100)
    await client.close()


def test_the_sdk_event_cap_counts_events_across_chunks_and_line_endings() -> None:
    from runner.transport import EventCap, EventTooBig

    cap = EventCap(100)
    for chunk in (b"data: " + b"a" * 60, b"b" * 30 + b"\n", b"\ndata: x\n\n"):  # 97 bytes, then ends
        cap.check(chunk)
    cap.check(b"data: " + b"c" * 80 + b"\r\n\r\n" + b"data: " + b"d" * 50)  # one whole, one open
    assert cap.open > 50
    with pytest.raises(EventTooBig, match="100 bytes"):
        cap.check(b"e" * 60)  # the open event passes 100 bytes
    whole = EventCap(100)
    with pytest.raises(EventTooBig):
        whole.check(b"data: " + b"f" * 200 + b"\n\ndata: g\n\n")  # ended, but too big itself


async def test_the_size_limit_is_set_per_endpoint() -> None:
    event = chat_chunk("y" * 5000)
    async with raw_server([event, chat_chunk(finish="stop"), DONE]) as url:
        small = spec(url, ProfileSpec(kind="users", users=1), max_requests=1)
        small.endpoint.max_event_bytes = 4096
        capped = (await run(small)).records[0]
        roomy = (await run(spec(url, ProfileSpec(kind="users", users=1), max_requests=1))).records[0]
    assert capped.outcome == "protocol_error" and "4,096 bytes" in capped.error
    assert roomy.outcome == "success"


async def test_a_websocket_message_over_the_limit_is_a_protocol_error() -> None:
    from runner.spec import GenericFormat

    big = b'{"text": "' + b"z" * 10_000 + b'"}'
    async with raw_server([big, "close"], ws=True) as url:
        ws_spec = spec(url, ProfileSpec(kind="users", users=1), max_requests=1)
        ws_spec.endpoint.protocol = "generic-ws"
        ws_spec.endpoint.generic = GenericFormat(body_template='{"prompt": {{prompt}}}', path="ws")
        ws_spec.endpoint.max_event_bytes = 4096
        rec = (await run(ws_spec)).records[0]
    assert rec.outcome == "protocol_error" and "4,096 bytes" in rec.error, rec.error


async def test_redirects_are_never_followed() -> None:
    from aiohttp import web

    hits: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        hits.append(request.path)
        raise web.HTTPTemporaryRedirect("http://169.254.169.254/latest/meta-data/")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", redirect)
    async with serve_app(app) as url:
        result = await run(spec(url, ProfileSpec(kind="users", users=1), max_requests=1))
    rec = result.records[0]
    assert rec.outcome == "http_error" and rec.http_status == 307
    assert "not followed" in rec.error and hits == ["/v1/chat/completions"]


async def test_arrival_is_stamped_at_the_socket_read_not_when_the_task_gets_its_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A loop crowded with other work (40 tasks of 2 ms each per turn) makes a chunk wait a whole
    turn for its request's task. The stamp is the socket read's: never before the server wrote,
    earlier than the task's turn, and that wait is reported, not hidden in TTFT."""
    import subprocess
    import sys
    from pathlib import Path

    from runner.transport import StampingHandler

    reads: list[int] = []  # every read's stamp, as the protocol took it
    original = StampingHandler.data_received

    def spy(self: StampingHandler, data: bytes) -> None:
        original(self, data)
        if self.rx:
            reads.append(self.rx[-1][1])

    monkeypatch.setattr(StampingHandler, "data_received", spy)
    server = Path(__file__).with_name("stampserver.py")
    proc = subprocess.Popen([sys.executable, str(server), "300"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        port = int(proc.stdout.readline().split()[1])
        one = spec(f"http://127.0.0.1:{port}/v1", ProfileSpec(kind="users", users=1), max_requests=1)
        # the send goes out on time; the crowd comes before the token
        async with crowded_loop(after_s=0.15):
            result = await run(one)
        wrote = int(proc.stdout.readline().split()[1])
    finally:
        proc.kill()
        proc.wait()
    rec = result.records[0]
    assert rec.outcome == "success", rec.error
    assert rec.ttft_ms is not None
    first_content = result.t0_ns + round(rec.scheduled_s * 1e9) + round(rec.ttft_ms * 1e6)
    assert first_content >= wrote  # the same monotonic clock: never before the server wrote
    # the stamp is the read that carried the token (to rounding of the record's ms), not the task's
    assert min(abs(first_content - r) for r in reads) < 2_000, (first_content, reads)
    assert result.engine["read_queue_ms_max"] >= 30  # the task's turn came a crowded turn later


@pytest.mark.parametrize("eager", [True, False], ids=["eager-write", "aiohttp-write-task"])
async def test_a_closed_loop_request_counts_from_the_write_not_from_the_clients_queue(
    monkeypatch: pytest.MonkeyPatch, eager: bool
) -> None:
    """aiohttp writes a request body from a task of its own, which on Python 3.11 waits a whole turn
    of a crowded loop. The engine's request class starts that write in the sending turn (as aiohttp
    does itself from 3.12); with aiohttp's own class the write waits. Either way a closed-loop
    request counts from the write: the record's origin is the write's stamp, and the server's TTFT
    is what remains."""
    import sys

    import aiohttp

    from runner import analysis, engine

    if not eager:
        if sys.version_info >= (3, 12):
            pytest.skip("aiohttp starts its body writer eagerly from Python 3.12")
        monkeypatch.setattr(engine, "REQUEST_CLASS", aiohttp.ClientRequest)
    calls: list[int] = []  # when each request was made (the analyzer is built at the call)
    made = analysis.StreamAnalyzer.__init__

    def spy(self: analysis.StreamAnalyzer, sched_ns: int, sent_ns: int) -> None:
        made(self, sched_ns, sent_ns)
        calls.append(sent_ns)

    monkeypatch.setattr(analysis.StreamAnalyzer, "__init__", spy)
    with SimulatorProcess(ttft_ms=100, itl_ms=5, output_tokens=4) as sim:
        async with crowded_loop():
            result = await run(spec(sim.base_url, ProfileSpec(kind="users", users=1), max_requests=1))
    rec = result.records[0]
    assert rec.outcome == "success", rec.error
    origin = result.t0_ns + round(rec.scheduled_s * 1e9)
    waited_ms = (origin - calls[0]) / 1e6
    assert waited_ms >= 0
    if eager:
        assert waited_ms < 30, waited_ms  # written in the turn that sent it (a crowded turn is 80 ms)
    else:
        assert waited_ms >= 30, waited_ms  # the body's writer task waited a crowded turn
    assert rec.ttft_ms is not None and rec.ttft_ms >= 100  # the server's own delay stays in
