"""The run page, the per-request table and the raw exports on a big run: N request records in PostgreSQL,
each the engine's shape (128 inter-token gaps, 129 packets, usage beside the client's count).

The summary is computed from the same records by ``bridge.run_summary`` (finalize's own code; packets
left out of its input, they do not enter the summary) and the token audit by the SQL aggregation
finalize stores; finalize's own time is not measured here. The merged live histograms a real run
stores (``Run.live``) are built from the records as the shards would. Pages are fetched server-side
through Django's test client by the run's owner, every SQL statement captured. Runs in a throwaway
database (``llmperf_bench_run_page``), dropped at the end.

    .venv/bin/python bench/bench_run_page.py [--requests 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "llmperf_site.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/llmperf")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, reset_queries  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from benchmarks import bridge  # noqa: E402
from benchmarks.models import RequestRecord, Run, RunSecond, Shard  # noqa: E402
from benchmarks.selectors.token_audit import token_audit_summary  # noqa: E402
from benchmarks.services.teams import team_create  # noqa: E402
from runner import LiveAggregate, ShardStats  # noqa: E402
from runner import RequestRecord as EngineRecord  # noqa: E402

DURATION_S = 600
CHUNK = 5_000
SPEC = {
    "duration_s": DURATION_S,
    "bucket_edges": [0, 1024, 4096, 16384],
    "slo": {"ttft_ms": 2000.0, "tokens_per_s": 20.0, "e2e_ms": None},
    "endpoint": {"price_in_per_1k": 0.0005, "price_out_per_1k": 0.0015, "currency": "USD"},
}


def records(start: int, n: int, total: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Requests start…start+n of ``total``: lognormal TTFT and decode speed, 128 tokens streamed one a
    packet (128 gaps, 129 packets with the final usage one), 0.4% failures, every 9th over-billed."""
    ttft = rng.lognormal(np.log(180), 0.35, n)
    tps = rng.lognormal(np.log(45), 0.2, n)
    in_tokens = rng.choice([300, 2000, 6000, 20000], n)
    failed = rng.random(n) < 0.004
    rows = []
    for k in range(n):
        i, ok = start + k, not failed[k]
        gap = round(float(1000 / tps[k]), 3)
        e2e = float(ttft[k]) + 127 * gap
        rows.append(
            {
                "request_id": f"{i}",
                "prompt_id": f"p{i % 500}",
                "shard": 0,
                "scheduled_s": i * DURATION_S / total,
                "started_epoch": 1.7e9 + i * DURATION_S / total,
                "outcome": "success" if ok else "http_error",
                "http_status": None if ok else 503,
                "error": "" if ok else "upstream busy",
                "ttft_ms": float(ttft[k]) if ok else None,
                "e2e_ms": e2e if ok else None,
                "tpot_ms": gap if ok else None,
                "tokens_per_s": float(tps[k]) if ok else None,
                "itl_ms": [gap] * 128 if ok else [],
                "packets": [["answer", float(ttft[k]) + j * gap, 1, 4] for j in range(128)]
                + [["usage", e2e, 0, 0]]
                if ok
                else [],
                "input_tokens": int(in_tokens[k]),
                "output_tokens": 128 if ok else 0,
                "usage_input_tokens": int(in_tokens[k]) + 12,
                "client_input_tokens": int(in_tokens[k]),
                "usage_output_tokens": (141 if i % 9 == 0 else 128) if ok else None,
                "client_output_tokens": 128 if ok else None,
                "answer_text": "x" * 512 if ok else "",
            }
        )
    return rows


def make_run(team: Any, n: int) -> Run:
    now = timezone.now()
    run = Run.objects.create(
        team=team,
        plan_name="bench",
        endpoint_name="bench",
        status=Run.Status.RUNNING,
        spec=SPEC,
        shard_count=1,
        started_at=now - timedelta(seconds=DURATION_S),
    )
    shard = Shard.objects.create(
        run=run, index=0, status=Shard.Status.FINISHED, started_at=run.started_at, ended_at=now
    )
    rng = np.random.default_rng(0)
    stats, light = ShardStats(0), []
    for start in range(0, n, CHUNK):
        rows = records(start, min(CHUNK, n - start), n, rng)
        RequestRecord.objects.bulk_create([bridge.record_row(run.pk, r) for r in rows], batch_size=CHUNK)
        for r in rows:
            stats.finished(int(r["scheduled_s"]), EngineRecord.from_dict(r))
            light.append({k: v for k, v in r.items() if k not in ("packets", "answer_text")})
    aggregate = LiveAggregate()
    aggregate.merge(stats.delta(final=True))
    RunSecond.objects.bulk_create(
        [RunSecond(run=run, t=t, point=aggregate.point(t)) for t in range(DURATION_S)], batch_size=1000
    )
    summary = bridge.run_summary(run, [shard], light)
    summary["token_audit"] = token_audit_summary(run)  # what finalize stores
    Run.objects.filter(pk=run.pk).update(
        status=Run.Status.FINISHED, summary=summary, live=aggregate.to_dict(), ended_at=now
    )
    run.refresh_from_db()
    return run


def timed(fn: Any, repeat: int) -> float:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(out)


def drain(response: Any) -> int:
    return sum(len(chunk) for chunk in response.streaming_content)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    setup_test_environment()
    connection.settings_dict["TEST"]["NAME"] = "llmperf_bench_run_page"  # never someone's test database
    db_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        user = get_user_model().objects.create_user("bench", "bench@example.com", "bench")
        team = team_create(name="bench", owner=user)
        t0 = time.perf_counter()
        run = make_run(team, args.requests)
        print(
            f"{args.requests:,} records inserted and summarised in {time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
        )
        client = Client()
        client.force_login(user)
        page_url = reverse("run_detail", args=[run.pk])
        table_url = reverse("run_requests", args=[run.pk])
        client.get(page_url)  # sessions and templates warm
        reset_queries()
        with CaptureQueriesContext(connection) as queries:
            page = client.get(page_url)
        assert page.status_code == 200, page.status_code
        reading = [q["sql"] for q in queries.captured_queries if "benchmarks_requestrecord" in q["sql"]]
        record = RequestRecord.objects.filter(run=run).order_by("id").values_list("id", flat=True)[1000]
        rows = [
            (
                "run page",
                timed(lambda: client.get(page_url), args.repeat),
                f"{len(page.content) / 1e3:.0f} kB",
            ),
            ("requests table, worst first, page 1", timed(lambda: client.get(table_url), args.repeat), ""),
            (
                "requests table, sorted by e2e, page 100",
                timed(lambda: client.get(table_url, {"sort": "e2e", "page": 100}), args.repeat),
                "",
            ),
            (
                "requests table, bucket 4k–16k + audit disagrees",
                timed(lambda: client.get(table_url, {"bucket": "4k–16k", "audit": "disagrees"}), args.repeat),
                "",
            ),
            (
                "one request's page (129 packets)",
                timed(lambda: client.get(reverse("run_request_detail", args=[run.pk, record])), args.repeat),
                "",
            ),
            (
                "token audit aggregation (finalize stores it)",
                timed(lambda: token_audit_summary(run), args.repeat),
                "",
            ),
        ]
        exports = []
        for name, url in (
            ("raw JSONL export", reverse("run_export_jsonl", args=[run.pk])),
            ("requests CSV export", reverse("run_requests_csv", args=[run.pk])),
        ):
            t0 = time.perf_counter()
            size = drain(client.get(url))
            seconds = time.perf_counter() - t0
            tracemalloc.start()
            drain(client.get(url))
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            exports.append((name, seconds, size, peak))

        print(
            f"\nOne finished run of {args.requests:,} requests in PostgreSQL, server-side, median of {args.repeat}:\n"
        )
        print("| what | time | size |")
        print("|---|---|---|")
        for name, ms, size in rows:
            print(f"| {name} | {ms:.0f} ms | {size} |")
        for name, seconds, size, peak in exports:
            print(
                f"| {name} (streamed; peak Python memory {peak / 1e6:.1f} MB) | {seconds:.1f} s | {size / 1e6:.0f} MB |"
            )
        print(
            f"| SQL statements for the run page / reading request records (each with LIMIT) "
            f"| {len(queries.captured_queries)} / {len(reading)} | |"
        )
        assert all("LIMIT" in sql for sql in reading), reading
    finally:
        connection.creation.destroy_test_db(db_name, verbosity=0)


if __name__ == "__main__":
    main()
