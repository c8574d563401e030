"""The mirror proxy against real simulators on loopback: the caller's response is untouched, the
shadow's trouble stays contained and counted, captures keep no secrets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from runner.mirror import MirrorConfig, serve_mirror
from runner.simulator import SimulatorProcess

ROOT = Path(__file__).resolve().parents[2]
NESTED = ("nested-SECRET-6", "nested-SECRET-7")
SECRETS = ("sk-caller-SECRET-1", "cookie-SECRET-2", "apikey-SECRET-3", "shadow-SECRET-4", "query-SECRET-5")


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


@contextlib.asynccontextmanager
async def mirror(**kwargs: Any) -> AsyncIterator[tuple[str, asyncio.Future[dict[str, Any]]]]:
    """A mirror in this event loop; the future holds its summary once the block has left."""
    stop, bound = asyncio.Event(), asyncio.get_running_loop().create_future()
    on_proxy, sink = kwargs.pop("on_proxy", None), kwargs.pop("sink", None)
    config = MirrorConfig(listen="127.0.0.1:0", **{"drain_s": 5.0, **kwargs})
    task = asyncio.create_task(serve_mirror(config, stop, bound.set_result, on_proxy, sink=sink))
    done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    waiter = asyncio.ensure_future(bound)
    await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # a start-up failure surfaces here
    try:
        yield bound.result(), done
    finally:
        stop.set()
        done.set_result(await task)


def chat(content: str, stream: bool = True, max_tokens: int = 8) -> dict[str, Any]:
    return {
        "model": "m",
        "messages": [{"role": "user", "content": content}],
        "stream": stream,
        "max_tokens": max_tokens,
    }


async def post(
    url: str, body: bytes | dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession(auto_decompress=False) as s,
        s.post(url, data=data, headers={"content-type": "application/json", **(headers or {})}) as r,
    ):
        return r.status, {k.lower(): v for k, v in r.headers.items()}, await r.read()


def same_headers(a: dict[str, str], b: dict[str, str]) -> bool:
    ignore = {"date", "server"}
    return {k: v for k, v in a.items() if k not in ignore} == {k: v for k, v in b.items() if k not in ignore}


# -- the production path -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path,body,fault",
    [
        ("/v1/chat/completions", chat("stream me a few words"), None),
        ("/v1/chat/completions", chat("and now in one piece", stream=False), None),
        ("/v1/completions", {"model": "m", "prompt": "complete this", "max_tokens": 6, "stream": True}, None),
        ("/v1/chat/completions", b"this body is not JSON", None),
        ("/v1/chat/completions", chat("refused"), "http_429"),
        ("/v1/chat/completions", chat("broken in the middle"), "stream_error"),
    ],
)
async def test_caller_gets_the_same_status_headers_and_bytes_as_a_direct_call(
    upstream: SimulatorProcess, failing_shadow: SimulatorProcess, path: str, body: Any, fault: str | None
) -> None:
    headers = {"x-request-id": "same-id", **({"x-sim-fault": fault} if fault else {})}
    direct = await post(upstream.url + path, body, headers)
    async with mirror(upstream=upstream.url, shadow=failing_shadow.url) as (url, _):
        via = await post(url + path, body, headers)
    assert via[0] == direct[0]
    assert via[2] == direct[2]
    assert same_headers(via[1], direct[1]), json.dumps([via[1], direct[1]])


async def test_an_upstream_that_breaks_mid_stream_breaks_the_callers_stream_too(
    upstream: SimulatorProcess,
) -> None:
    headers = {"x-sim-fault": "reset"}
    with pytest.raises(aiohttp.ClientPayloadError):
        await post(upstream.url + "/v1/chat/completions", chat("cut me"), headers)
    async with mirror(upstream=upstream.url) as (url, done):
        with pytest.raises(aiohttp.ClientPayloadError):
            await post(url + "/v1/chat/completions", chat("cut me"), headers)
        status, _, _ = await post(url + "/v1/chat/completions", chat("and the next one is fine"))
        assert status == 200
    assert done.result()["production"]["requests"]["failures"] == {"connection_error": 1}


async def test_other_methods_pass_through_but_are_not_mirrored_or_captured(
    upstream: SimulatorProcess, failing_shadow: SimulatorProcess, tmp_path: Path
) -> None:
    path = tmp_path / "capture.jsonl"
    async with aiohttp.ClientSession() as s, s.get(upstream.url + "/v1/models") as r:
        direct = await r.read()
    async with (
        mirror(upstream=upstream.url, shadow=failing_shadow.url, capture=str(path)) as (url, done),
        aiohttp.ClientSession() as s,
        s.get(url + "/v1/models") as r,
    ):
        assert r.status == 200 and await r.read() == direct
    summary = done.result()
    assert summary["requests"] == 0 and summary["passed_through"] == 1
    assert summary["shadow"]["sampled"] == 0 and path.read_text() == ""


async def test_shadow_failures_never_reach_the_caller_and_are_counted(
    upstream: SimulatorProcess, failing_shadow: SimulatorProcess
) -> None:
    async with mirror(upstream=upstream.url, shadow=failing_shadow.url) as (url, done):
        results = await asyncio.gather(
            *(post(url + "/v1/chat/completions", chat(f"q{i}")) for i in range(10))
        )
    assert [status for status, _, _ in results] == [200] * 10
    assert all(b"data: [DONE]" in body for _, _, body in results)
    summary = done.result()
    assert summary["requests"] == 10
    assert summary["shadow"]["sent"] == 10 and summary["shadow"]["failed"] == 10
    assert summary["shadow"]["succeeded"] == 0 and sum(summary["shadow"]["failures"].values()) == 10
    assert summary["production"]["requests"]["succeeded"] == 10


async def test_summary_pairs_production_with_a_slower_shadow(
    upstream: SimulatorProcess, slow_shadow: SimulatorProcess
) -> None:
    async with mirror(upstream=upstream.url, shadow=slow_shadow.url) as (url, done):
        for i in range(6):
            await post(url + "/v1/chat/completions", chat(f"question {i}"))
    s = done.result()
    counts = {k: s["shadow"][k] for k in ("sampled", "sent", "succeeded", "failed", "dropped", "failures")}
    assert counts == {"sampled": 6, "sent": 6, "succeeded": 6, "failed": 0, "dropped": 0, "failures": {}}
    assert s["shadow"]["requests"]["succeeded"] == 6  # and the shadow's own metric block beside them
    assert s["overhead_ms"]["count"] == 6 and s["overhead_ms"]["p50"] is not None
    paired = s["paired"]
    assert paired["pairs"] == 6 and paired["success"]["both"] == 6
    assert paired["ttft_ms_diff"]["p50"] > 50  # the shadow's TTFT is 100 ms longer by configuration
    assert paired["answer_rouge_l"]["min"] == 1.0 and paired["answers_identical"] == 6  # same seed, same body
    assert s["shadow"]["ttft_ms"]["p50"] > s["production"]["ttft_ms"]["p50"]


async def test_one_callers_cookies_never_reach_another_caller() -> None:
    from aiohttp import web

    seen: list[str | None] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        resp = web.json_response({"ok": True})
        resp.set_cookie("sid", "caller-one-session")
        return resp

    runner = web.AppRunner(web.Application())
    runner.app.router.add_post("/{tail:.*}", handle)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        # a host name, not an IP: a cookie jar would keep this cookie
        async with mirror(upstream=f"http://localhost:{port}") as (url, _):
            _, headers, _ = await post(url + "/v1/x", chat("one"))
            await post(url + "/v1/x", chat("two"))
    finally:
        await runner.cleanup()
    assert "caller-one-session" in headers["set-cookie"]  # the caller still gets its cookie
    assert seen == [None, None]  # but the mirror never keeps it for the next caller


@contextlib.asynccontextmanager
async def hanging_server() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """Accepts, reads the request, records its headers, and never answers."""
    seen: list[dict[str, str]] = []
    stop = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")[1:]
        got = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)}
        got["(body)"] = (await reader.readexactly(int(got.get("content-length", 0)))).decode()
        seen.append(got)
        with contextlib.suppress(Exception):
            await stop.wait()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        stop.set()
        server.close()


async def test_a_hanging_shadow_fills_the_queue_then_copies_are_dropped(upstream: SimulatorProcess) -> None:
    async with (
        hanging_server() as (shadow, _),
        mirror(
            upstream=upstream.url,
            shadow=shadow,
            shadow_queue=2,
            shadow_concurrency=1,
            shadow_timeout_s=60,
            drain_s=0.2,
        ) as (url, done),
    ):
        for i in range(8):
            status, _, body = await post(url + "/v1/chat/completions", chat(f"q{i}"))
            assert status == 200 and body.endswith(b"data: [DONE]\n\n")
    c = done.result()["shadow"]
    assert c["sampled"] == 8
    assert c["dropped"] >= 5  # one in flight, two queued at most; the rest dropped, queued ones at stop
    assert c["sent"] == 1 and c["failures"] == {"cancelled": 1}


async def test_the_shadow_gets_its_own_credentials_never_the_callers(upstream: SimulatorProcess) -> None:
    async with (
        hanging_server() as (shadow, seen),
        mirror(
            upstream=upstream.url,
            shadow=shadow,
            shadow_headers={"Authorization": "Bearer shadow-key"},
            shadow_model="candidate-7b",
            drain_s=0.1,
        ) as (url, _),
    ):
        await post(
            url + "/v1/chat/completions",
            chat("hi"),
            {"Authorization": "Bearer caller-key", "x-api-key": "caller-key2", "x-trace": "kept"},
        )
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.02)
    assert seen, "the shadow never got its copy"
    got = seen[0]
    assert got["authorization"] == "Bearer shadow-key"
    assert "x-api-key" not in got and got["x-trace"] == "kept"
    assert "caller-key" not in json.dumps(got)
    body = json.loads(got["(body)"])
    assert body["model"] == "candidate-7b" and body["messages"] == chat("hi")["messages"]


# -- capture -------------------------------------------------------------------------------------
async def test_a_capture_never_holds_a_secret(upstream: SimulatorProcess, tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    async with mirror(
        upstream=upstream.url,
        shadow=upstream.url,
        shadow_headers={"X-Shadow-Token": SECRETS[3]},
        capture=str(path),
        redact_headers=("X-Internal",),
    ) as (url, _):
        await post(
            url + f"/v1/chat/completions?key={SECRETS[4]}&mode=fast",
            {
                **chat("a harmless prompt"),
                "api_key": SECRETS[0],
                # nested: stripped at any depth, as a WebSocket frame's are
                "metadata": {"user": "u1", "api_key": NESTED[0]},
                "extra_body": [{"auth": {"x": 1}, "options": {"secret": NESTED[1], "seed": 7}}],
            },
            {
                "Authorization": f"Bearer {SECRETS[0]}",
                "Cookie": f"session={SECRETS[1]}",
                "api-key": SECRETS[2],
                "X-Shadow-Token": SECRETS[3],
                "X-Internal": SECRETS[3],
                "x-user-tag": "kept",
            },
        )
    text = path.read_text()
    for secret in (*SECRETS, *NESTED):
        assert secret not in text
    line = json.loads(text)
    assert line["body"]["metadata"] == {"user": "u1"}
    assert line["body"]["extra_body"] == [{"options": {"seed": 7}}]
    assert line["headers"]["x-user-tag"] == "kept"
    assert line["path"] == "/v1/chat/completions?mode=fast"
    assert line["body"]["messages"][0]["content"] == "a harmless prompt"
    assert line["body"]["max_tokens"] == 8 and "api_key" not in line["body"]
    prod = line["production"]
    assert (
        prod["outcome"] == "success" and prod["status"] == 200 and prod["ttft_ms"] > 0 and prod["answer_text"]
    )


@pytest.mark.parametrize("mode", ["hash", "drop"])
async def test_capture_can_hash_or_drop_prompt_text(
    upstream: SimulatorProcess, tmp_path: Path, mode: str
) -> None:
    path = tmp_path / "capture.jsonl"
    async with mirror(upstream=upstream.url, capture=str(path), capture_prompts=mode) as (url, _):
        await post(url + "/v1/chat/completions", {**chat("my private words"), "temperature": 0.5})
    text = path.read_text()
    assert "private" not in text
    line = json.loads(text)
    assert line["redacted"] == mode and line["body"]["temperature"] == 0.5 and line["body"]["max_tokens"] == 8
    content = line["body"]["messages"][0]["content"]
    assert content.startswith("sha256:") if mode == "hash" else content is None


# -- bad input: clear errors, never a crash ------------------------------------------------------
async def test_upstream_down_answers_502_and_the_mirror_keeps_serving(upstream: SimulatorProcess) -> None:
    async with hanging_server() as (free, _):
        pass  # a port that was just closed: nothing listens there now
    async with mirror(upstream=free, shadow=free, drain_s=1.0) as (url, done):
        status, _, body = await post(url + "/v1/chat/completions", chat("hello"))
        again, _, _ = await post(url + "/v1/chat/completions", chat("hello again"))
    assert status == again == 502
    assert b"upstream unreachable" in body
    s = done.result()
    assert s["production"]["requests"]["failures"] == {"connection_error": 2}
    assert s["shadow"]["failures"] == {"connection_error": 2}


async def test_shadow_down_is_counted_and_the_caller_is_served(upstream: SimulatorProcess) -> None:
    async with hanging_server() as (free, _):
        pass
    async with mirror(upstream=upstream.url, shadow=free, drain_s=2.0) as (url, done):
        status, _, _ = await post(url + "/v1/chat/completions", chat("hello"))
    assert status == 200
    assert done.result()["shadow"]["failures"] == {"connection_error": 1}


@pytest.mark.parametrize(
    "change,message",
    [
        ({"upstream": "localhost:8000"}, "--upstream must be an http(s) origin"),
        ({"sample": 1.5}, "--sample must be between 0 and 1"),
        ({"listen": "nowhere"}, "--listen must be HOST:PORT"),
        (
            {"capture": "/no/such/folder/capture.jsonl"},
            "--capture /no/such/folder/capture.jsonl: cannot write",
        ),
    ],
)
def test_bad_configuration_is_refused_plainly(change: dict[str, Any], message: str) -> None:
    config = MirrorConfig(**{"listen": "127.0.0.1:0", "upstream": "http://127.0.0.1:1", **change})
    with pytest.raises(ValueError, match=re.escape(message)):
        config.check()


def test_a_shadow_header_can_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from runner.cli import build_parser
    from runner.mirror.cli import config_from_args

    monkeypatch.setenv("SHADOW_AUTH", "Bearer from-env")
    argv = ["mirror", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1"]
    args = build_parser().parse_args([*argv, "--shadow-header", "Authorization: env:SHADOW_AUTH"])
    assert config_from_args(args).shadow_headers == {"Authorization": "Bearer from-env"}
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--shadow-header", "Authorization: env:NOT_SET_ANYWHERE"])


def test_sampling_sends_about_the_share_asked(upstream: SimulatorProcess) -> None:
    from runner.mirror.shadow import ShadowJob, ShadowPool

    async def offer_all() -> int:
        pool = ShadowPool(upstream.url, headers={}, sample=0.25, queue_size=10_000, seed=7)
        for i in range(1000):
            pool.offer(ShadowJob(str(i), "POST", "/", {}, b"", 0))
        return pool.counts.sampled

    assert 180 < asyncio.run(offer_all()) < 320


# -- the command ---------------------------------------------------------------------------------
def test_the_command_writes_its_summary_on_sigterm(
    upstream: SimulatorProcess, failing_shadow: SimulatorProcess, tmp_path: Path
) -> None:
    out = tmp_path / "summary.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "runner", "mirror", "--listen", "127.0.0.1:0", "--upstream", upstream.url]
    argv += ["--shadow", failing_shadow.url, "--json", str(out), "--shadow-header", "Authorization: Bearer x"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("llmperf-mirror listening on http://127.0.0.1:")
        url = line.split()[-1]
        statuses = asyncio.run(_three_posts(url))
        assert statuses == [200, 200, 200]
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0
    summary = json.loads(out.read_text())
    assert summary["requests"] == 3
    assert set(summary["shadow"]) >= {"sent", "succeeded", "failed", "dropped"}
    assert summary["shadow"]["failed"] == 3
    assert set(summary["overhead_ms"]) >= {"p50", "p99"}
    assert "shadow: sent 3 ok 0 failed 3" in stdout


async def _three_posts(url: str) -> list[int]:
    return [(await post(url + "/v1/chat/completions", chat(f"x{i}")))[0] for i in range(3)]


def test_the_command_refuses_a_bad_origin_without_a_traceback() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "runner", "mirror", "--listen", "127.0.0.1:0", "--upstream", "nope"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert "--upstream must be an http(s) origin" in done.stderr and "Traceback" not in done.stderr


def test_the_command_says_when_its_port_is_taken() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        argv = [sys.executable, "-m", "runner", "mirror", "--listen", f"127.0.0.1:{port}"]
        done = subprocess.run(
            [*argv, "--upstream", "http://127.0.0.1:9"], capture_output=True, text=True, env=env, timeout=60
        )
    assert done.returncode == 2
    assert f"cannot start on 127.0.0.1:{port}" in done.stderr and "Traceback" not in done.stderr


async def test_a_host_gets_both_sides_records_as_paired_variants(
    upstream: SimulatorProcess, slow_shadow: SimulatorProcess
) -> None:
    from runner.mirror import mirror_records

    proxies: list[Any] = []
    async with mirror(upstream=upstream.url, shadow=slow_shadow.url, on_proxy=proxies.append) as (url, done):
        for i in range(3):
            await post(url + "/v1/chat/completions", chat(f"question {i}"))
    done.result()
    rows = mirror_records(proxies[0])
    assert sorted(r["variant"] for r in rows) == [0, 0, 0, 1, 1, 1]
    assert len({r["request_id"] for r in rows}) == 6 and len({r["prompt_id"] for r in rows}) == 3


class _Sink:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.deltas: list[dict[str, Any]] = []

    async def on_records(self, batch: list[dict[str, Any]]) -> None:
        self.rows.extend(batch)

    async def on_tick(self, delta: dict[str, Any]) -> None:
        self.deltas.append(delta)


async def test_a_sink_gets_both_sides_records_and_per_second_deltas_while_the_session_runs(
    upstream: SimulatorProcess, slow_shadow: SimulatorProcess
) -> None:
    from runner.mirror import mirror_records

    sink, proxies = _Sink(), []
    async with mirror(upstream=upstream.url, shadow=slow_shadow.url, sink=sink, on_proxy=proxies.append) as (
        url,
        done,
    ):
        for i in range(4):
            await post(url + "/v1/chat/completions", chat(f"live {i}"))
        for _ in range(60):  # the flusher hands them over within about a second, before any stop
            if len(sink.rows) == 8:
                break
            await asyncio.sleep(0.1)
        live_rows = len(sink.rows)
        live = [d for d in sink.deltas if not d["final"]]
    assert live_rows == 8, "the records were not streamed while the session ran"
    windows = [w for d in live for w in d["windows"].values()]
    assert sum(w["completed"] for w in windows) == 8 and sum(w["started"] for w in windows) == 8
    assert sink.deltas[-1]["final"] and all("engine" in d for d in sink.deltas)
    assert sorted(r["request_id"] for r in sink.rows) == sorted(
        r["request_id"] for r in mirror_records(proxies[0])
    )
    assert sorted(r["variant"] for r in sink.rows) == [0] * 4 + [1] * 4
    assert done.result()["errors"] == []


# -- what a session keeps ------------------------------------------------------------------------
async def test_the_summary_kept_compact_is_the_summary_of_the_full_records(
    upstream: SimulatorProcess, slow_shadow: SimulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mirror keeps spill files and pair rows, not records: its summary must still be exactly
    ``summarize`` and ``compare_pairs`` over the records it made (caught here on their way in)."""
    from runner.mirror.store import RecordStore
    from runner.pairing import compare_pairs
    from runner.records import RequestRecord
    from runner.summary import summarize

    made: dict[int, dict[str, RequestRecord]] = {0: {}, 1: {}}
    add = RecordStore.add

    def keeping(self: RecordStore, rid: str, rec: RequestRecord) -> None:
        made[self.variant][rid] = rec
        add(self, rid, rec)

    monkeypatch.setattr(RecordStore, "add", keeping)
    bodies: list[bytes | dict[str, Any]] = [
        chat(f"question {i}", stream=i % 3 != 0, max_tokens=4 + i) for i in range(14)
    ]
    bodies += [b"this body is not JSON", b"nor this one"]
    async with mirror(upstream=upstream.url, shadow=slow_shadow.url, sample=0.7, seed=3) as (url, done):
        await asyncio.gather(*(post(url + "/v1/chat/completions", b) for b in bodies))
    s = done.result()
    prod, shadow = made[0], made[1]
    assert len(prod) == 16 and 4 <= len(shadow) < 16  # sampled: some production records stay unpaired
    assert {r.outcome for r in prod.values()} != {"success"}  # failures on both sides are in the pairs

    assert s["production"] == summarize(list(prod.values()), duration_s=s["duration_s"])
    counts = ("sampled", "sent", "succeeded", "failed", "dropped", "failures")
    own = {k: v for k, v in s["shadow"].items() if k not in counts}
    assert own == summarize(list(shadow.values()), duration_s=s["duration_s"])

    def row(r: RequestRecord) -> dict[str, Any]:
        return {k: getattr(r, k) for k in ("outcome", "ttft_ms", "e2e_ms", "tokens_per_s", "answer_text")}

    expected = compare_pairs([(row(prod[rid]), row(rec)) for rid, rec in shadow.items() if rid in prod])
    assert s["paired"] == expected and expected["success"]["neither"] == 2
