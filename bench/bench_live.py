"""Live latency through the real path: how long after a second ends its point reaches a websocket viewer.

A Celery load worker runs the shard against bench/fastserver.js (its writer process stores records,
its deltas go through Redis), a housekeeping worker runs the aggregator, daphne serves the run's
websocket through Channels' Redis layer, and a viewer logged in as the run's owner records when each
second's point first arrives. A second's end on the wall clock is the shard's start (from its records:
started_epoch − scheduled_s − schedule lag, the median over every request) plus t + 1 s; every process
is on this machine, one wall clock. Target (issue 10): ≤ 2.5 s — one flush, one aggregation tick, one
push.

    .venv/bin/python bench/bench_live.py                   # 100 and 200 req/s, 20 s each
    .venv/bin/python bench/bench_live.py --rates 300 --seconds 30

Needs PostgreSQL, Redis and node; uses the database ``llmperf_bigbench`` and Redis db 12 (``BIGRUN_DB``
and ``BIGRUN_REDIS_DB`` name others: its Celery workers take tasks from that Redis db, so two
people's benches must not share it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_shard  # noqa: E402  (sets its own database in os.environ: replaced just below)
from bench_engine import start_server  # noqa: E402

DB_NAME = os.environ.get("BIGRUN_DB", "llmperf_bigbench")
os.environ.update(
    DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
    REDIS_URL=f"redis://127.0.0.1:6379/{os.environ.get('BIGRUN_REDIS_DB', '12')}",
    DJANGO_SETTINGS_MODULE="llmperf_site.settings",
    DEBUG="true",
    # longer than channels_redis' 5 s blocking read: with redis-py 8's default (5 s) the viewer's
    # websocket closes with 1011 while it waits (see llmperf_site/settings.py)
    CHANNEL_SOCKET_TIMEOUT_S="30",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def daphne(port: int) -> subprocess.Popen[bytes]:
    exe = str(Path(sys.executable).with_name("daphne"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [exe, "-b", "127.0.0.1", "-p", str(port), "llmperf_site.asgi:application"]
    log = open(os.environ.get("BENCH_LIVE_DAPHNE_LOG", os.devnull), "wb")  # noqa: SIM115
    return subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True, stdout=log, stderr=log)


async def view(port: int, run_id: int, cookie: str, until: float) -> dict[int, float]:
    """t → wall-clock time its point first arrived, until the run's final message (or ``until``)."""
    import websockets

    seen: dict[int, float] = {}
    url = f"ws://127.0.0.1:{port}/ws/runs/{run_id}/"
    headers = {"Cookie": f"sessionid={cookie}", "Origin": f"http://127.0.0.1:{port}"}
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        while time.time() < until:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=max(0.1, until - time.time()))
            except TimeoutError:
                break
            now = time.time()
            message = json.loads(raw)
            for row in message.get("rows") or []:
                seen.setdefault(int(row["t"]), now)
            if message.get("type") == "final":
                break
    return seen


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError("daphne did not start")


def one_run(url: str, port: int, rate: float, seconds: float) -> dict[str, Any]:
    from django.test import Client

    from benchmarks.models import RequestRecord
    from benchmarks.services.runs.start import run_start

    plan, user = bench_shard.make_plan(url, rate, seconds)
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"].value
    run = run_start(plan=plan, by=user)
    seen = asyncio.run(view(port, run.pk, cookie, until=time.time() + seconds + 90))
    run.refresh_from_db()
    starts = [
        e - s - (lag or 0.0) / 1000
        for e, s, lag in RequestRecord.objects.filter(run=run).values_list(
            "started_epoch", "data__scheduled_s", "data__schedule_lag_ms"
        )
    ]
    t0 = statistics.median(starts) if starts else float("nan")
    # the seconds of steady load (the last one or two are the drain)
    each = {t: at - (t0 + t + 1) for t, at in sorted(seen.items()) if t + 1 <= seconds}
    if os.environ.get("LIVE_EVERY_SECOND"):  # every second's latency, in order: a backlog or a stall?
        print(f"{rate:g} req/s:", " ".join(f"{t}:{v:.2f}" for t, v in each.items()), flush=True)
    latencies = sorted(each.values())
    return {
        "status": run.status,
        "records": len(starts),
        "seconds": len(latencies),
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p95": latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan"),
        "max": max(latencies, default=float("nan")),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="100,200")
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone():
            conn.execute(f"CREATE DATABASE {DB_NAME}")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    server, url = start_server(20, 2, 64)
    port = free_port()
    procs = [bench_shard.worker("house", "celery", 1), bench_shard.worker("load1", "load", 0), daphne(port)]
    rows = []
    try:
        bench_shard.wait_ready(["house", "load1"])
        wait_port(port)
        for rate in [float(r) for r in args.rates.split(",") if r]:
            rows.append((rate, one_run(url, port, rate, args.seconds)))
    finally:
        for proc in procs:
            bench_shard.stop(proc)
        server.terminate()
        server.wait()
    print(
        f"\nlive latency: second's end → its point at a websocket viewer (Celery load worker + writer, "
        f"housekeeping worker's aggregator, Redis, daphne/Channels); {args.seconds:.0f} s per run\n"
    )
    print("| load | status | records | seconds seen | latency p50 / p95 / max s |")
    print("|---|---|---|---|---|")
    for rate, r in rows:
        print(
            f"| {rate:g} req/s | {r['status']} | {r['records']} | {r['seconds']} | "
            f"{r['p50']:.2f} / {r['p95']:.2f} / {r['max']:.2f} |"
        )


if __name__ == "__main__":
    main()
