"""The dashboard's real path, measured: a Celery load worker runs a shard that writes its records to
Postgres (through its writer process) and publishes live stats through Redis, against
bench/fastserver.js. TTFT error as the glossary defines it, per request, matched by request id:
client TTFT (from the scheduled send, as stored in Postgres) minus the server's own TTFT (arrival to
first content chunk written).

Core layout on a 2-core machine: the load worker's engine pinned to core 0, its writer process to
core 1 (``SHARD_WRITER_CPUS=1``; ``--writer-on-engine-core`` keeps it on core 0 for comparison);
fastserver.js and the housekeeping worker (coordinator, aggregator) pinned to core 1; PostgreSQL and
Redis, the machine's services, unpinned (``--pin-services`` moves them to core 1 for the bench and puts
their CPU masks back after).

    .venv/bin/python bench/bench_shard.py                  # 100, 200, 300, 400 req/s, then 2 shards
    .venv/bin/python bench/bench_shard.py --rates 200 --seconds 10

Needs PostgreSQL and Redis (scripts/setup-services); uses the database ``llmperf_bench`` and Redis
db 7, created and cleared here.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

DB_NAME = "llmperf_bench"
os.environ.update(
    DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
    REDIS_URL="redis://127.0.0.1:6379/7",
    DJANGO_SETTINGS_MODULE="llmperf_site.settings",
    SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only-secret-key-not-for-production-use-1234567890"),
    HF_HUB_OFFLINE="1",
    DEBUG="true",
)

from bench_engine import percentile, server_log, start_server  # noqa: E402


def prepare_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone():
            conn.execute(f"CREATE DATABASE {DB_NAME}")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()


def worker(name: str, queues: str, core: int, writer_cpus: str = "") -> subprocess.Popen[bytes]:
    celery = str(Path(sys.executable).with_name("celery"))
    argv = [celery, "-A", "llmperf_site", "worker", "-Q", queues, "-c", "1", "-n", f"{name}@bench"]
    argv += ["--without-gossip", "--without-mingle", "-l", "warning"]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        argv = ["taskset", "-c", str(core), *argv]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SHARD_WRITER_CPUS": writer_cpus}
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def wait_ready(names: list[str], timeout: float = 40.0) -> None:
    from llmperf_site.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(destination=[f"{n}@bench" for n in names], timeout=0.5)
        if len(replies) == len(names):
            return
    raise TimeoutError(f"workers {names} did not answer")


def make_plan(url: str, rate: float, seconds: float) -> Any:
    from django.contrib.auth import get_user_model

    from benchmarks.models import Endpoint, LoadProfile, Plan
    from benchmarks.services.datasets import NewItems, dataset_create
    from benchmarks.services.teams import team_create
    from runner.datasets import DatasetItem

    user = get_user_model().objects.create_user(f"bench{time.time_ns()}", password="bench bench bench")
    team = team_create(name=f"bench {user.pk}", owner=user)
    endpoint = Endpoint.objects.create(
        team=team, name="fastserver", protocol="openai-chat", base_url=url + "/v1", model="m"
    )
    items = [DatasetItem(prompt=f"prompt {i}", metadata={"id": f"p{i}"}) for i in range(100)]
    dataset = dataset_create(
        team=team, name="bench", description="", tokenizer="estimate", new=NewItems(items, "paste"), by=None
    )
    profile = LoadProfile.objects.create(
        team=team, name=f"{rate} req/s", kind="rate", spec={"rate": rate, "arrival": "constant"}
    )
    plan = Plan.objects.create(
        team=team,
        name=f"bench {rate}",
        endpoint=endpoint,
        dataset=dataset,
        profile=profile,
        duration_s=seconds,
        max_tokens=64,
        drain_s=10,
    )
    return plan, user


def one_run(url: str, rate: float, seconds: float) -> dict[str, Any]:
    from benchmarks.models import RequestRecord
    from benchmarks.selectors.runs import run_series
    from benchmarks.services.runs.start import run_start

    plan, user = make_plan(url, rate, seconds)
    server_log(url)  # clear
    run = run_start(plan=plan, by=user)
    deadline = time.monotonic() + seconds + 120
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if not run.is_active:
            break
        time.sleep(0.5)
    served = server_log(url)
    errors, ok = [], 0
    for rid, ttft in RequestRecord.objects.filter(run=run).values_list("request_id", "ttft_ms"):
        if ttft is not None and rid in served:
            arrival, write = served[rid]
            errors.append(ttft - (write - arrival) / 1e6)
            ok += 1
    records = RequestRecord.objects.filter(run=run).count()
    live = sum(p["completed"] + p["failed"] for p in run_series(run=run))
    engines = [s.engine or {} for s in run.shards.all()]
    return {
        "status": run.status,
        "shards": len(engines),
        "records": records,
        "live_total": live,
        "sent_per_s": records / seconds,
        "err_p50": percentile(errors, 50),
        "err_p99": percentile(errors, 99),
        "err_max": max(errors, default=float("nan")),
        "lag_max": max((e.get("lag_ms_max") or 0.0) for e in engines) if engines else float("nan"),
        "sched_p99": max((e.get("schedule_lag_ms_p99") or 0.0) for e in engines) if engines else float("nan"),
        "verdicts": ", ".join(sorted({str(e.get("verdict")) for e in engines})),
    }


@contextlib.contextmanager
def services_on(core: int | None) -> Any:
    """Moves the machine's PostgreSQL and Redis processes (every thread; backends forked later
    inherit the postmaster's mask) to ``core`` for the bench, and puts their masks back after."""
    if core is None or (os.cpu_count() or 1) < 2 or not shutil.which("pgrep"):
        yield "unpinned"
        return
    pids = []
    for name in ("postgres", "redis-server"):
        out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout
        pids += [int(p) for p in out.split()]
    before: dict[int, set[int]] = {}
    for pid in pids:
        for tid in (
            (int(t) for t in os.listdir(f"/proc/{pid}/task")) if os.path.isdir(f"/proc/{pid}/task") else ()
        ):
            with contextlib.suppress(OSError):
                before[tid] = os.sched_getaffinity(tid)
                os.sched_setaffinity(tid, {core})
    try:
        yield f"on core {core}" if before else "unpinned (could not move them)"
    finally:
        for tid, mask in before.items():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, mask)
        # backends forked while pinned keep core ``core``: give them the machine's cores back
        for name in ("postgres",):
            out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout
            for pid in (int(p) for p in out.split()):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(pid, set(range(os.cpu_count() or 1)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", default="100,200,300,400")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--two-shard-rate", type=float, default=200.0)
    ap.add_argument("--writer-on-engine-core", action="store_true", help="leave the writer on core 0")
    ap.add_argument(
        "--pin-services",
        action="store_true",
        help="move PostgreSQL and Redis to core 1 for the bench (their masks are restored after)",
    )
    args = ap.parse_args()
    with services_on(1 if args.pin_services else None) as services:
        bench(args, services)


def bench(args: argparse.Namespace, services: str) -> None:
    writer_cpus = "" if args.writer_on_engine_core or (os.cpu_count() or 1) < 2 else "1"
    prepare_database()
    server, url = start_server(20, 2, 64)
    housekeeping = worker("house", "celery", 1)
    rows = []
    try:
        load = worker("load1", "load", 0, writer_cpus)
        wait_ready(["house", "load1"])
        for rate in [float(r) for r in args.rates.split(",") if r]:
            rows.append((f"{rate:g} req/s, 1 shard", one_run(url, rate, args.seconds)))
        second = worker("load2", "load", 0, writer_cpus)
        wait_ready(["load1", "load2"])
        rows.append(
            (f"{args.two_shard_rate:g} req/s, 2 shards", one_run(url, args.two_shard_rate, args.seconds))
        )
        stop(second)
        stop(load)
    finally:
        stop(housekeeping)
        server.terminate()
        server.wait()
    print(
        f"\ndashboard path: Celery load worker(s) on core 0, their writer processes on core "
        f"{writer_cpus or 0}, fastserver.js and the housekeeping worker on core 1, Postgres and Redis {services}; {args.seconds:.0f} s per run, "
        "64-token streams, server TTFT 20 ms, ITL 2 ms\n"
    )
    print(
        "| load | shards | status | records / s |  records | live total | TTFT err p50 / p99 / max ms "
        "| loop lag max ms | sched lag p99 ms | verdict |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(
            f"| {name} | {r['shards']} | {r['status']} | {r['sent_per_s'] or 0:.1f} | {r['records']} "
            f"| {r['live_total']} | {r['err_p50']:.2f} / {r['err_p99']:.2f} / {r['err_max']:.2f} "
            f"| {r['lag_max']:.1f} | {r['sched_p99']:.2f} | {r['verdicts']} |"
        )


if __name__ == "__main__":
    main()
