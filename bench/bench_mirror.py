"""What does the mirror proxy cost the production path, and how much traffic does one core of it hold?

The mirror runs alone on CPU 0 (``python -m runner mirror``, one process per level); the upstream
(bench/fastserver.js, Node.js) and the load generator (llmperf's engine) share CPU 1.

- TTFT added: with 100 streams, every prompt goes at the same instant to the upstream directly and
  through the mirror (the engine's simultaneous A/B), so a busy machine slows both sides alike; the
  table gives the per-request difference (via − direct) at p50 and p99, as the caller sees it. A
  control row sends both sides direct: what the machine's own noise adds to such a difference; a
  floor row puts a bare ten-line aiohttp relay where the mirror goes: what any Python hop costs.
- in-proxy overhead: the mirror's own ``overhead_ms`` (request read → forwarded, plus first chunk in →
  written out), from its summary: the proxy's code alone, without the extra hop's scheduling.
- request rate: open loop through the mirror at rising rates; mirror CPU is CPU-seconds used per
  second (1.0 = its core is full), and requests per mirror CPU-second is what one core would hold.

    .venv/bin/python bench/bench_mirror.py            # full table (about 2 minutes)
    .venv/bin/python bench/bench_mirror.py --quick    # a smoke run
    MIRROR_UNPINNED=1 .venv/bin/python bench/bench_mirror.py   # let the mirror float (busy shared machine)
    MIRROR_RT=1 .venv/bin/python bench/bench_mirror.py         # the relay SCHED_FIFO: its core when it wakes
    MIRROR_RT=1 .venv/bin/python bench/bench_mirror.py --client node --streams-only
        # the pairs sent from inside the Node upstream (bench/fastpair.js): one process, one loop on
        # core 1, so the two sides of a pair never wait on the scheduler between two processes
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.engine import Engine
from runner.spec import EndpointSpec, ProfileSpec, Prompt, RunSpec, Timeouts
from runner.summary import percentile

ROOT = Path(__file__).resolve().parent.parent
PINNED = shutil.which("taskset") is not None and (os.cpu_count() or 1) > 1


def _pin(cmd: list[str], cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu), *cmd] if PINNED else cmd


def _relay_cmd(cmd: list[str]) -> list[str]:
    """The mirror's (or bare relay's) command line: pinned to core 0, and with MIRROR_RT=1 run
    SCHED_FIFO, so on a machine shared with other jobs it gets that core the moment it needs it."""
    cmd = cmd if os.environ.get("MIRROR_UNPINNED") else _pin(cmd, 0)
    return ["chrt", "-f", "50", *cmd] if os.environ.get("MIRROR_RT") and shutil.which("chrt") else cmd


def _first_line(proc: subprocess.Popen[bytes]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().decode().strip()


def start_upstream(ttft_ms: float, itl_ms: float, tokens: int) -> tuple[subprocess.Popen[bytes], str]:
    cmd = ["node", str(ROOT / "bench" / "fastserver.js"), "0", str(ttft_ms), str(itl_ms), str(tokens)]
    with socket.socket() as s:  # fastserver takes a fixed port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd[2] = str(port)
    proc = subprocess.Popen(_pin(cmd, 1), stdout=subprocess.PIPE)
    _first_line(proc)
    return proc, f"http://127.0.0.1:{port}"


def start_mirror(upstream: str, shadow: str, out: Path) -> tuple[subprocess.Popen[bytes], str]:
    cmd = [sys.executable, "-m", "runner", "mirror", "--listen", "127.0.0.1:0", "--upstream", upstream]
    if shadow:
        cmd += ["--shadow", shadow, "--shadow-concurrency", "256"]
    cmd += ["--json", str(out), "--drain", "5"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(_relay_cmd(cmd), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    line = _first_line(proc)
    return proc, line.split()[-1]


def serve_bare(upstream: str) -> None:
    """The floor for any Python relay: ten lines of aiohttp that forward and stream back, nothing else."""
    import asyncio

    import aiohttp
    import uvloop
    from aiohttp import web

    async def main() -> None:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)

        async def handle(req: web.Request) -> web.StreamResponse:
            body = await req.read()
            headers = {"content-type": req.headers.get("content-type", "application/json")}
            async with session.request(req.method, upstream + req.path_qs, data=body, headers=headers) as up:
                resp = web.StreamResponse(status=up.status, headers={"content-type": up.content_type})
                await resp.prepare(req)
                async for chunk in up.content.iter_any():
                    await resp.write(chunk)
                await resp.write_eof()
                return resp

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(f"bare relay on http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
        await stop.wait()

    uvloop.run(main())


def with_bare(upstream: str, run: Any) -> dict[str, Any]:
    import uvloop

    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve-bare", upstream]
    proc = subprocess.Popen(
        _relay_cmd(cmd), stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    url = _first_line(proc).split()[-1]
    try:
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        measured = uvloop.run(run(url))
        cpu = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    return {**measured, "mirror_cpu": cpu, "overhead": {}, "shadow": None, "lag_p99": None}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _endpoint(url: str) -> EndpointSpec:
    return EndpointSpec("openai-chat", url + "/v1", model="m", timeouts=Timeouts(idle=30, total=60))


async def paired(upstream: str, mirror: str, users: int, seconds: float) -> dict[str, Any]:
    """``users`` streams through the mirror and as many straight to the upstream, each prompt sent
    to both at the same instant (the engine's simultaneous A/B), so a busy machine slows both alike."""
    spec = RunSpec(
        endpoint=_endpoint(upstream),
        variants=[_endpoint(upstream), _endpoint(mirror)],
        ab_mode="simultaneous",
        prompts=[Prompt(id=str(i), text=f"prompt {i}", input_tokens=8) for i in range(100)],
        profile=ProfileSpec(kind="users", users=users, spawn_rate=100_000),
        duration_s=seconds,
        drain_s=10,
        warm_connections=2 * users,
    )
    result = await Engine(spec).run()
    # each user sends a prompt to both sides at once and waits for both: its k-th record of each side
    # is one pair (closed-loop times count from each request's own write, so the sides' scheduled_s
    # differ by the microseconds between their writes)
    by_key: dict[tuple[int, int], dict[int, Any]] = {}
    seen: dict[tuple[int, int], int] = {}
    for r in sorted(result.records, key=lambda r: r.started_epoch):
        k = seen[(r.user, r.variant)] = seen.get((r.user, r.variant), -1) + 1
        by_key.setdefault((r.user, k), {})[r.variant] = r
    added = sorted(
        pair[1].ttft_ms - pair[0].ttft_ms
        for pair in by_key.values()
        if len(pair) == 2
        and pair[0].ok
        and pair[1].ok
        and pair[0].ttft_ms is not None
        and pair[1].ttft_ms is not None
    )
    direct = sorted(r.ttft_ms for r in result.records if r.variant == 0 and r.ok and r.ttft_ms is not None)
    via = sorted(r.ttft_ms for r in result.records if r.variant == 1 and r.ok and r.ttft_ms is not None)
    return {
        "pairs": len(added),
        "failed": sum(1 for r in result.records if not r.ok),
        "added": added,
        "direct": direct,
        "via": via,
        "verdict": result.engine["verdict"],
    }


async def node_paired(upstream: str, via: str, users: int, seconds: float) -> dict[str, Any]:
    """The same pairs sent by ``bench/fastpair.js``, the client living in the upstream's own Node
    process: one event loop on core 1 serves and loads, so neither waits for the other's CPU slice."""
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=seconds + 120)
    async with aiohttp.ClientSession(timeout=timeout) as s:
        query = {"via": via, "users": str(users), "seconds": str(seconds)}
        async with s.get(upstream + "/pair", params=query) as r:
            rows = await r.json()
    good = [(d / 1e6, v / 1e6) for d, v in rows if d >= 0 and v >= 0]
    return {
        "pairs": len(good),
        "failed": sum((d < 0) + (v < 0) for d, v in rows),
        "added": sorted(v - d for d, v in good),
        "direct": sorted(d for d, _ in good),
        "via": sorted(v for _, v in good),
        "verdict": "node client",
    }


def start_pair_upstream(ttft_ms: float, itl_ms: float, tokens: int) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = ["node", str(ROOT / "bench" / "fastpair.js"), str(port), str(ttft_ms), str(itl_ms), str(tokens)]
    proc = subprocess.Popen(_pin(cmd, 1), stdout=subprocess.PIPE)
    _first_line(proc)
    return proc, f"http://127.0.0.1:{port}"


async def open_loop(mirror: str, rate: float, seconds: float) -> dict[str, Any]:
    spec = RunSpec(
        endpoint=_endpoint(mirror),
        prompts=[Prompt(id=str(i), text=f"prompt {i}", input_tokens=8) for i in range(100)],
        profile=ProfileSpec(kind="rate", rate=rate, arrival="constant"),
        duration_s=seconds,
        drain_s=10,
        warm_connections=128,
    )
    result = await Engine(spec).run()
    ok = [r for r in result.records if r.ok]
    return {
        "sent": len(result.records),
        "ok": len(ok),
        "ttft": sorted(r.ttft_ms for r in ok if r.ttft_ms is not None),
        "verdict": result.engine["verdict"],
        "reasons": "; ".join(result.engine["reasons"]),
    }


def with_mirror(upstream: str, shadow: bool, run: Any) -> dict[str, Any]:
    """``run(mirror_url)`` against a fresh mirror process; adds the mirror's CPU use and summary."""
    import uvloop

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "summary.json"
        proc, url = start_mirror(upstream, upstream if shadow else "", out)
        try:
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            measured = uvloop.run(run(url))
            cpu = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        summary = json.loads(out.read_text())
    return {
        **measured,
        "mirror_cpu": cpu,
        "overhead": summary["overhead_ms"],
        "shadow": summary["shadow"],
        "lag_p99": summary["mirror"]["lag_ms_p99"],
    }


def _pooled(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One row of several rounds: every pair pooled; the mirror's own figures (from each round's
    summary) as the median of the rounds' p50 and the largest of their p99."""
    if len(rounds) == 1:
        return rounds[0]
    overheads = [r["overhead"] for r in rounds if r["overhead"]]
    lags = [r["lag_p99"] for r in rounds if r.get("lag_p99") is not None]
    shadows = [r["shadow"] for r in rounds if r["shadow"]]
    return {
        "pairs": sum(r["pairs"] for r in rounds),
        "failed": sum(r["failed"] for r in rounds),
        "added": sorted(x for r in rounds for x in r["added"]),
        "direct": sorted(x for r in rounds for x in r["direct"]),
        "via": sorted(x for r in rounds for x in r["via"]),
        "mirror_cpu": sum(r["mirror_cpu"] for r in rounds) / len(rounds),
        "overhead": {
            "p50": percentile(sorted(o["p50"] for o in overheads), 50),
            "p99": max(o["p99"] for o in overheads),
        }
        if overheads
        else {},
        "lag_p99": max(lags) if lags else None,
        "shadow": {
            "succeeded": sum(x["succeeded"] for x in shadows),
            "sampled": sum(x["sampled"] for x in shadows),
        }
        if shadows
        else None,
    }


def _p(xs: list[float], q: float) -> float:
    return percentile(xs, q) if xs else float("nan")


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--serve-bare", metavar="UPSTREAM", help=argparse.SUPPRESS)
    ap.add_argument(
        "--client",
        choices=("engine", "node"),
        default="engine",
        help="who sends the 100-stream pairs: llmperf's engine beside fastserver.js on core 1, or "
        "bench/fastpair.js, the client inside the upstream's own Node process (one loop on core 1)",
    )
    ap.add_argument("--streams-only", action="store_true", help="skip the request-rate table")
    ap.add_argument(
        "--rounds", type=int, default=1, help="run the stream rows in turn this many times, pooled"
    )
    args = ap.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return
    if hasattr(os, "sched_setaffinity") and PINNED:
        os.sched_setaffinity(0, {1})  # the load generator shares CPU 1 with the upstream
    seconds = 3.0 if args.quick else args.seconds
    # 100 concurrent streams at an LLM's pace: TTFT 100 ms, 50 tokens/s, 32 tokens
    node = args.client == "node"
    proc, upstream = start_pair_upstream(100, 20, 32) if node else start_upstream(100, 20, 32)
    pairs = node_paired if node else paired
    rows: dict[str, list[dict[str, Any]]] = {}
    names = [
        "control: both sides direct",
        "floor: a bare 10-line aiohttp relay",
        "100 streams",
        "100 streams + shadow (same upstream)",
    ]
    try:
        import uvloop

        # the rows in turn, --rounds times: load from other jobs that comes and goes lands on every
        # row alike instead of on whichever row ran at that moment
        for _ in range(args.rounds):
            control = uvloop.run(pairs(upstream, upstream, 100, seconds))  # the machine's own noise
            rows.setdefault(names[0], []).append(
                {**control, "mirror_cpu": 0.0, "overhead": {}, "shadow": None}
            )
            bare = with_bare(upstream, lambda url: pairs(upstream, url, 100, seconds))
            rows.setdefault(names[1], []).append(bare)
            for shadow in (False, True):
                r = with_mirror(upstream, shadow, lambda url: pairs(upstream, url, 100, seconds))
                rows.setdefault(names[2 + shadow], []).append(r)
    finally:
        proc.terminate()
        proc.wait()
    streams = [(name, _pooled(rows[name])) for name in names]
    rates = []
    # request rate: short fast streams (TTFT 20 ms, 16 tokens 5 ms apart), open loop through the mirror
    proc, upstream = start_upstream(20, 5, 16)
    try:
        for rate in [] if args.streams_only else [100, 300] if args.quick else [100, 200, 400, 600]:
            r = with_mirror(upstream, False, lambda url, rate=rate: open_loop(url, rate, seconds))
            rates.append((rate, r))
    finally:
        proc.terminate()
        proc.wait()
    load1 = os.getloadavg()[0]
    rt = " (SCHED_FIFO)" if os.environ.get("MIRROR_RT") else ""
    client = (
        "the client inside the Node upstream (fastpair.js)" if node else "Node upstream and the engine share"
    )
    print(
        f"\nmirror alone on CPU 0{rt}; {client} CPU 1; {seconds:.0f} s per level, {args.rounds} round(s); "
        f"load average {load1:.2f} on {os.cpu_count()} CPUs\n"
    )
    print(
        "| load | pairs | failed | TTFT added p50 ms | TTFT added p99 ms | TTFT p50 direct / via ms | "
        "in-proxy p50 ms | in-proxy p99 ms | mirror loop lag p99 ms | mirror CPU | shadow ok/sampled |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in streams:
        o, sh = r["overhead"], r["shadow"]
        shadow_ok = f"{sh['succeeded']}/{sh['sampled']}" if sh else "-"
        print(
            f"| {name} | {r['pairs']} | {r['failed']} | {_p(r['added'], 50):+.2f} | {_p(r['added'], 99):+.2f} | "
            f"{_p(r['direct'], 50):.1f} / {_p(r['via'], 50):.1f} | {_ms(o.get('p50'))} | {_ms(o.get('p99'))} | "
            f"{_ms(r.get('lag_p99'))} | {r['mirror_cpu']:.2f} | {shadow_ok} |"
        )
    print(
        "\n| offered req/s | sent | ok | TTFT p50 ms | TTFT p99 ms | in-proxy p99 ms | mirror loop lag p99 ms | "
        "mirror CPU | req per mirror CPU-s | client |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for rate, r in rates:
        per_cpu = r["sent"] / seconds / r["mirror_cpu"] if r["mirror_cpu"] else float("nan")
        print(
            f"| {rate} | {r['sent']} | {r['ok']} | {_p(r['ttft'], 50):.1f} | {_p(r['ttft'], 99):.1f} | "
            f"{_ms(r['overhead']['p99'])} | {_ms(r['lag_p99'])} | {r['mirror_cpu']:.2f} | {per_cpu:.0f} | "
            f"{r['verdict']} {r['reasons']} |"
        )


if __name__ == "__main__":
    main()
