"""Comparison speed on big history: 5 runs × 100,000 request records in PostgreSQL.

Each run is ended through the real ``run_finalize`` (exact summary and the bounded per-request sample
computed from every record, as after a live run); then the comparison page of all five is requested
through Django's test client, server-side only, with every SQL statement captured to show that no raw
record is read. Runs in a throwaway database (``test_<name>`` of DATABASE_URL), dropped at the end.

    .venv/bin/python bench/bench_compare.py [--runs 5] [--requests 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

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
from benchmarks.presenters.compare import comparison_build  # noqa: E402
from benchmarks.services.runs.finalize import run_finalize  # noqa: E402
from benchmarks.services.teams import team_create  # noqa: E402

VARIANTS = ["bf16", "fp8", "int4-awq", "int4-gptq", "fp8-mtp"]
DURATION_S = 600


def records(n: int, seed: int, slowdown: float) -> list[dict]:
    """n successful-or-not requests with lognormal TTFT and decode speed, 16 inter-token gaps each."""
    rng = np.random.default_rng(seed)
    ttft = rng.lognormal(np.log(180 * slowdown), 0.35, n)
    tps = rng.lognormal(np.log(45 / slowdown), 0.2, n)
    out_tokens = rng.integers(64, 512, n)
    in_tokens = rng.choice([300, 2000, 6000, 20000], n)
    failed = rng.random(n) < 0.004
    rows = []
    for i in range(n):
        e2e = ttft[i] + (out_tokens[i] - 1) / tps[i] * 1000
        ok = not failed[i]
        rows.append(
            {
                "request_id": f"{i}",
                "prompt_id": f"p{i % 500}",
                "shard": 0,
                "scheduled_s": i * DURATION_S / n,
                "started_epoch": 1.7e9 + i * DURATION_S / n,
                "outcome": "success" if ok else "http_error",
                "ttft_ms": float(ttft[i]) if ok else None,
                "e2e_ms": float(e2e) if ok else None,
                "tpot_ms": float(1000 / tps[i]) if ok else None,
                "tokens_per_s": float(tps[i]) if ok else None,
                "itl_ms": [round(float(1000 / tps[i]), 3)] * 16 if ok else [],
                "input_tokens": int(in_tokens[i]),
                "output_tokens": int(out_tokens[i]) if ok else 0,
            }
        )
    return rows


SPEC = {
    "duration_s": DURATION_S,
    "bucket_edges": [0, 1024, 4096, 16384],
    "slo": {"ttft_ms": 2000.0, "tokens_per_s": 20.0, "e2e_ms": None},
    "endpoint": {"price_in_per_1k": 0.0005, "price_out_per_1k": 0.0015, "currency": "USD"},
}


def make_run(team, index: int, n: int) -> tuple[Run, float, float]:
    now = timezone.now()
    run = Run.objects.create(
        team=team,
        plan_name="bench",
        endpoint_name="bench",
        status=Run.Status.RUNNING,
        spec=SPEC,
        variant={"quantization": VARIANTS[index % len(VARIANTS)], "tp": "4"},
        shard_count=1,
        started_at=now - timedelta(seconds=DURATION_S),
    )
    Shard.objects.create(
        run=run, index=0, status=Shard.Status.FINISHED, started_at=run.started_at, ended_at=now
    )
    t0 = time.perf_counter()
    rows = records(n, seed=index, slowdown=1 + 0.04 * index)
    RequestRecord.objects.bulk_create([bridge.record_row(run.pk, r) for r in rows], batch_size=5000)
    RunSecond.objects.bulk_create(
        [
            RunSecond(run=run, t=t, point={"t": t, "ttft_p50": 180.0, "qpm": n / DURATION_S * 60})
            for t in range(DURATION_S)
        ]
    )
    inserted = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_finalize(run_id=run.pk)  # exact summary + bounded sample, as at the end of a live run
    return run, inserted, time.perf_counter() - t0


def setup_team():
    user = get_user_model().objects.create_user("bench", "bench@example.com", "bench")
    return user, team_create(name="bench", owner=user)


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    setup_test_environment()
    connection.settings_dict["TEST"]["NAME"] = "llmperf_bench_compare"  # never someone's test database
    db_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        user, team = setup_team()
        runs = []
        for i in range(args.runs):
            run, inserted, finalized = make_run(team, i, args.requests)
            runs.append(run)
            print(
                f"run {run.pk}: {args.requests:,} records inserted in {inserted:.1f} s, finalized in {finalized:.1f} s",
                file=sys.stderr,
            )
        client = Client()
        client.force_login(user)
        url = f"{reverse('compare')}?runs={','.join(str(r.pk) for r in runs)}"

        reset_queries()  # the log is a bounded deque: a full one would capture nothing
        with CaptureQueriesContext(connection) as queries:
            t0 = time.perf_counter()
            first = client.get(url)
            cold_ms = (time.perf_counter() - t0) * 1000
        assert first.status_code == 200, first.status_code
        raw = [q["sql"] for q in queries.captured_queries if "benchmarks_requestrecord" in q["sql"]]

        page = timed(lambda: client.get(url), args.repeat)
        build = timed(
            lambda: comparison_build(runs=list(Run.objects.filter(pk__in=[r.pk for r in runs]))), args.repeat
        )
        csv_ms = timed(
            lambda: client.get(reverse("compare_export", args=["csv"]), {"runs": url.split("=")[1]}),
            args.repeat,
        )
        html_ms = timed(
            lambda: client.get(reverse("compare_export", args=["html"]), {"runs": url.split("=")[1]}),
            args.repeat,
        )
        total = RequestRecord.objects.count()

        print(
            f"\n{args.runs} runs × {args.requests:,} requests ({total:,} records in PostgreSQL), "
            f"server-side, median of {args.repeat}:\n"
        )
        print("| what | time |")
        print("|---|---|")
        print(
            f"| comparison page, first request (samples and summaries from the database) | {cold_ms:.0f} ms |"
        )
        charts = len(comparison_build(runs=runs)["figures"])
        print(
            f"| comparison page (table, {charts} overlaid charts, render) | {statistics.median(page):.0f} ms |"
        )
        print(f"| of which comparison + charts (`comparison_build`) | {statistics.median(build):.0f} ms |")
        print(f"| CSV export | {statistics.median(csv_ms):.0f} ms |")
        print(
            f"| self-contained HTML report (plotly.js inlined, {len(client.get(reverse('compare_export', args=['html']), {'runs': url.split('=')[1]}).content) / 1e6:.1f} MB) | {statistics.median(html_ms):.0f} ms |"
        )
        print(
            f"| SQL statements per page / reading request records | {len(queries.captured_queries)} / {len(raw)} |"
        )
        print(f"| page size | {len(first.content) / 1e3:.0f} kB |")
    finally:
        connection.creation.destroy_test_db(db_name, verbosity=0)


if __name__ == "__main__":
    main()
