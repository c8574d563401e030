"""How much load can llmperf's engine generate honestly on one core?

The engine runs pinned to CPU 0 against bench/fastserver.js (Node.js, pinned to CPU 1), a server far
cheaper per stream than any Python client. For each level it prints requests/s achieved vs target,
chunks/s, engine CPU-seconds per 1000 requests and the TTFT error: the client's stamp of the first
content chunk minus the server's own record of writing it (both CLOCK_MONOTONIC).

    .venv/bin/python bench/bench_engine.py            # full table (about 3 minutes)
    .venv/bin/python bench/bench_engine.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.engine import Engine
from runner.spec import EndpointSpec, ProfileSpec, Prompt, RunSpec, Timeouts
from runner.summary import percentile

TOKENS = 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(ttft_ms: float, itl_ms: float) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [
        "node",
        str(Path(__file__).with_name("fastserver.js")),
        str(port),
        str(ttft_ms),
        str(itl_ms),
        str(TOKENS),
    ]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        cmd = ["taskset", "-c", "1", *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()
    return proc, f"http://127.0.0.1:{port}"


def server_log(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url + "/sim/log") as resp:
        return {rid: int(ns) for rid, ns in json.loads(resp.read())}


async def level(url: str, profile: ProfileSpec, seconds: float) -> dict[str, float]:
    server_log(url)  # clear
    spec = RunSpec(
        endpoint=EndpointSpec(
            protocol="openai-chat", base_url=url + "/v1", model="m", timeouts=Timeouts(idle=30, total=60)
        ),
        prompts=[Prompt(id=str(i), text=f"prompt {i}", input_tokens=8) for i in range(100)],
        profile=profile,
        duration_s=seconds,
        drain_s=10,
        warm_connections=min(max(profile.users, 64), 1024),
    )
    engine = Engine(spec)
    cpu0 = time.process_time()
    result = await engine.run()
    cpu = time.process_time() - cpu0
    served = server_log(url)
    errors = []
    for r in result.records:
        if r.ok and r.ttft_ms is not None and r.request_id in served:
            client_ns = engine.t0 + r.scheduled_s * 1e9 + r.ttft_ms * 1e6
            errors.append((client_ns - served[r.request_id]) / 1e6)
    errors.sort()
    ok = [r for r in result.records if r.ok]
    sends = sorted(engine.t0 / 1e9 + r.scheduled_s + r.schedule_lag_ms / 1e3 for r in result.records)
    window = (sends[-1] - sends[0]) if len(sends) > 1 else seconds
    chunks = sum(len(r.packets) for r in result.records)
    return {
        "sent_per_s": (len(sends) - 1) / window if window else 0.0,
        "ok": len(ok),
        "failed": len(result.records) - len(ok),
        "chunks_per_s": chunks / result.duration_s,
        "cpu_s_per_1k": cpu / max(1, len(result.records)) * 1000,
        "ttft_err_p50": percentile(errors, 50) if errors else float("nan"),
        "ttft_err_p99": percentile(errors, 99) if errors else float("nan"),
        "verdict": result.engine["verdict"],
        "reasons": "; ".join(result.engine["reasons"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--ttft-ms", type=float, default=20.0)
    ap.add_argument("--itl-ms", type=float, default=1.0)
    ap.add_argument("--rates", help="comma-separated open-loop rates to run instead of the default set")
    ap.add_argument("--users", help="comma-separated concurrency levels to run instead of the default set")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {0})
    rates = [25, 100, 400] if args.quick else [25, 100, 200, 400, 800, 1600]
    users = [64] if args.quick else [64, 256, 1024]
    if args.rates is not None or args.users is not None:
        rates = [float(x) for x in (args.rates or "").split(",") if x]
        users = [int(x) for x in (args.users or "").split(",") if x]
    seconds = 3.0 if args.quick else args.seconds
    proc, url = start_server(args.ttft_ms, args.itl_ms)
    rows = []
    try:
        import uvloop

        for rate in rates:
            p = ProfileSpec(kind="rate", rate=rate, arrival="constant")
            rows.append((f"open loop {rate} req/s", rate, uvloop.run(level(url, p, seconds))))
        for n in users:
            p = ProfileSpec(kind="users", users=n, spawn_rate=100_000)
            rows.append((f"{n} streams", None, uvloop.run(level(url, p, seconds))))
    finally:
        proc.terminate()
        proc.wait()
    print(
        f"\nengine on 1 core vs Node fastserver: {TOKENS}-token streams, server TTFT {args.ttft_ms} ms, "
        f"ITL {args.itl_ms} ms, {seconds:.0f} s per level\n"
    )
    print(
        "| load | target req/s | sent req/s | ok | failed | chunks/s | CPU-s / 1000 req | TTFT err p50 ms | TTFT err p99 ms | verdict |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, target, r in rows:
        print(
            f"| {name} | {target or '-'} | {r['sent_per_s']:.1f} | {r['ok']} | {r['failed']} | {r['chunks_per_s']:.0f} | "
            f"{r['cpu_s_per_1k']:.2f} | {r['ttft_err_p50']:.2f} | {r['ttft_err_p99']:.2f} | {r['verdict']} {r['reasons']} |"
        )


if __name__ == "__main__":
    main()
