"""A big finished run, measured where the dashboard reads it: finalize, the run page, the exports and
the runs list, server-side, as the run's owner (Django's test client).

The run: ``--requests`` synthetic records (default 100,000; ``--million`` for 1,000,000) written with
COPY, each a 129-packet stream (128 inter-token gaps), mixed outcomes, four input buckets, two sweep
levels, usage and client token counts. Then:

- finalize: ``run_finalize`` from raw records, time and peak growth of the process's resident memory;
- the run page, the requests CSV, the per-request table (whole, and filtered), the JSONL export (when
  its URL exists), the runs list: time, size,
  peak resident-memory growth (a streamed response is read to its end, chunk by chunk, not kept).

Uses the database ``llmperf_bigbench`` and Redis db 12, created and cleared here (``BIGRUN_DB`` and
``BIGRUN_REDIS_DB`` name others, so two people's benches do not share them).

    .venv/bin/python bench/bench_bigrun.py                # 100k records
    .venv/bin/python bench/bench_bigrun.py --million      # 1M records (minutes, several GB of disk)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DB_NAME = os.environ.get("BIGRUN_DB", "llmperf_bigbench")
os.environ.update(
    DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
    REDIS_URL=f"redis://127.0.0.1:6379/{os.environ.get('BIGRUN_REDIS_DB', '12')}",
    DJANGO_SETTINGS_MODULE="llmperf_site.settings",
    SECRET_KEY=os.environ.get("SECRET_KEY", "bench-only-secret-key-not-for-production-use-1234567890"),
    HF_HUB_OFFLINE="1",
    DEBUG="true",
)

ITLS = 128  # per request: 129 content packets, 128 gaps between them
OUTCOMES = ["success"] * 96 + ["http_error", "timeout", "rate_limited", "empty_answer"]
INPUTS = [300, 2000, 6000, 20000]


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


def synthetic_records(n: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """n records shaped like the engine's: times in ms from the scheduled send, packets as rows."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        outcome = OUTCOMES[int(rng.integers(len(OUTCOMES)))]
        ok = outcome == "success"
        ttft = float(rng.lognormal(np.log(180), 0.35))
        gaps = rng.lognormal(np.log(12), 0.3, ITLS) if ok else np.empty(0)
        t = ttft + np.concatenate([[0.0], np.cumsum(gaps)]) if ok else np.empty(0)
        e2e = float(t[-1]) if ok else None
        usage_out = ITLS + 1 if ok else None
        client_out = (ITLS + 1 + (1 if i % 97 == 0 else 0)) if ok else None
        yield {
            "request_id": f"r{i}",
            "prompt_id": f"p{i % 5000}",
            "shard": 0,
            "user": -1,
            "level": i % 2,
            "variant": 0,
            "scheduled_s": i / 100.0,
            "started_epoch": 1.7e9 + i / 100.0,
            "schedule_lag_ms": float(rng.exponential(0.3)),
            "outcome": outcome,
            "error": "" if ok else "synthetic failure",
            "http_status": 200 if ok else 500,
            "finish_reason": "length" if ok else None,
            "length_stopped": ok,
            "first_byte_ms": ttft - 1 if ok else None,
            "first_chunk_ms": ttft if ok else None,
            "ttft_ms": ttft if ok else None,
            "ttft_answer_ms": ttft if ok else None,
            "e2e_ms": e2e,
            "itl_ms": [float(g) for g in gaps],
            "tpot_ms": float(gaps.mean()) if ok else None,
            "tokens_per_s": 1000.0 / float(gaps.mean()) if ok else None,
            "input_tokens": INPUTS[i % 4] if ok else None,
            "output_tokens": usage_out,
            "thinking_tokens": 0 if ok else None,
            "usage_input_tokens": INPUTS[i % 4] if ok else None,
            "usage_output_tokens": usage_out,
            "client_input_tokens": INPUTS[i % 4],
            "client_output_tokens": client_out,
            "content_chunks": ITLS + 1 if ok else 0,
            "max_gap_ms": float(gaps.max()) if ok else None,
            "answer_chars": 4 * (ITLS + 1) if ok else 0,
            "packets": [["answer", float(x), 1, 4] for x in t],
        }


def build_run(n: int) -> Any:
    """A finished-but-not-finalized run of n records, as a shard leaves it; returns (run, owner)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from benchmarks.models import Run, RunSecond, Shard
    from benchmarks.services.teams import team_create
    from runner import pack_series

    user = get_user_model().objects.create_user(f"owner{time.time_ns()}", password="x")
    team = team_create(name="bench", owner=user)
    now = timezone.now()
    run = Run.objects.create(
        team=team,
        plan_name="bigrun",
        endpoint_name="synthetic",
        created_by=user,
        status=Run.Status.RUNNING,
        spec={"duration_s": n / 100.0, "bucket_edges": [0, 1024, 4096, 16384], "slo": {"ttft_ms": 300}},
        shard_count=1,
        started_at=now - timedelta(seconds=n / 100.0),
    )
    Shard.objects.create(
        run=run,
        index=0,
        status=Shard.Status.FINISHED,
        started_at=run.started_at,
        ended_at=now,
        records_count=n,
    )
    RunSecond.objects.bulk_create(
        [
            RunSecond(run=run, t=t, point={"t": t, "completed": 100, "failed": 4, "ttft_p50": 180.0})
            for t in range(int(n / 100))
        ],
        batch_size=5000,
    )
    columns = "run_id, shard_index, request_id, prompt_id, outcome, started_epoch, ttft_ms, e2e_ms, "
    columns += "tokens_per_s, input_tokens, output_tokens, variant, usage_input_tokens, client_input_tokens, "
    columns += "usage_output_tokens, client_output_tokens, data, series"
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own, for COPY
        with raw.copy(f"COPY benchmarks_requestrecord ({columns}) FROM STDIN") as copy:
            for r in synthetic_records(n):
                copy.write_row(
                    (
                        run.pk,
                        0,
                        r["request_id"],
                        r["prompt_id"],
                        r["outcome"],
                        r["started_epoch"],
                        r["ttft_ms"],
                        r["e2e_ms"],
                        r["tokens_per_s"],
                        r["input_tokens"],
                        r["output_tokens"],
                        r["variant"],
                        r["usage_input_tokens"],
                        r["client_input_tokens"],
                        r["usage_output_tokens"],
                        r["client_output_tokens"],
                        json.dumps(r),
                        pack_series(r),  # what the shard's writer stores beside each record
                    )
                )
        cursor.execute("ANALYZE benchmarks_requestrecord")
    return run, user


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def measure(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(seconds, peak resident-memory growth MB, result): RSS sampled every 20 ms on a thread (no
    tracemalloc: it would slow the measured code several times over)."""
    import threading

    start = rss_mb()
    peak = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    try:
        out = fn()
    finally:
        seconds = time.perf_counter() - t0
        done.set()
        sampler.join()
    return seconds, max(peak[0], rss_mb()) - start, out


def fetch(client: Any, url: str) -> tuple[int, int]:
    """(status, bytes) of a page or download, a streamed one read to its end without keeping it."""
    response = client.get(url)
    if getattr(response, "streaming", False):
        size = 0
        for chunk in response.streaming_content:
            size += len(chunk)
        return response.status_code, size
    return response.status_code, len(response.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--million", action="store_true", help="1,000,000 records")
    parser.add_argument("--keep", action="store_true", help="keep the run (default: delete it at the end)")
    parser.add_argument("--reuse", action="store_true", help="reuse a kept run of as many records")
    args = parser.parse_args()
    n = 1_000_000 if args.million else args.requests
    prepare_database()
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.urls import NoReverseMatch, reverse

    from benchmarks.models import Run, RunSample
    from benchmarks.services.runs.finalize import run_finalize

    setup_test_environment()
    t0 = time.perf_counter()
    kept = Run.objects.filter(plan_name="bigrun", shards__records_count=n).order_by("-pk").first()
    if args.reuse and kept is not None:  # back to "every shard ended, not finalized yet"
        Run.objects.filter(pk=kept.pk).update(status=Run.Status.RUNNING, summary={}, reason="", ended_at=None)
        RunSample.objects.filter(run=kept).delete()
        run, owner = Run.objects.get(pk=kept.pk), kept.created_by
    else:
        run, owner = build_run(n)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size('benchmarks_requestrecord')")
        table_mb = cursor.fetchone()[0] / 1e6
    print(f"built run {run.pk}: {n:,} records in {time.perf_counter() - t0:.1f} s, table {table_mb:,.0f} MB")

    rows: list[tuple[str, str, str, str]] = []
    seconds, peak, _ = measure(lambda: run_finalize(run_id=run.pk))
    run.refresh_from_db()
    total = (run.summary.get("requests") or {}).get("total")
    rows.append(("finalize", f"{seconds:.2f} s", f"{peak:,.0f} MB", f"{run.status}, {total:,} requests"))

    client = Client()
    client.force_login(owner)
    client.get(reverse("run_list"))  # the session's team, warm
    pages: list[tuple[str, str]] = [
        ("run page", reverse("run_detail", args=[run.pk])),
        ("requests CSV", reverse("run_requests_csv", args=[run.pk])),
        ("requests table, page 1", reverse("run_requests", args=[run.pk])),
        (
            "requests table, failures, page 2",
            reverse("run_requests", args=[run.pk]) + "?outcome=failed&page=2",
        ),
    ]
    try:
        pages.append(("requests JSONL", reverse("run_export_jsonl", args=[run.pk])))
    except NoReverseMatch:
        rows.append(("requests JSONL", "-", "-", "no run_export_jsonl URL in this tree yet"))
    pages.append(("runs list", reverse("run_list")))
    for name, url in pages:
        seconds, peak, (status, size) = measure(lambda url=url: fetch(client, url))
        when = f"{seconds:.2f} s"
        if "CSV" not in name and "JSONL" not in name:
            # the first fetch in this process pays one-off imports (plotly, templates): the warm
            # median of three more is what a user's second look costs
            again = sorted(measure(lambda url=url: fetch(client, url))[0] for _ in range(3))
            when = f"{seconds:.2f} s first, {again[1]:.3f} s warm (median of 3)"
        rows.append((name, when, f"{peak:,.0f} MB", f"HTTP {status}, {size / 1e6:,.2f} MB"))

    print(f"\n{n:,} records, 129 packets and 128 ITLs each\n")
    print("| what | time | peak RSS growth | result |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if not args.keep:
        Run.objects.filter(pk=run.pk).delete()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
