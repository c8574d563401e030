"""Faults survived, as a table: runs the fault tests (tests/benchmarks/test_faults.py — a real Celery
load worker and its writer process, Postgres or Redis reached through a TCP proxy the test cuts and
restores, a worker SIGKILLed, a target answering 500s, resets and garbage at 500 streams) and prints
each scenario's final state, records kept / sent and time to detect.

    .venv/bin/python bench/bench_faults.py                 # the CI sizes (about three minutes)
    .venv/bin/python bench/bench_faults.py --issue-sizes   # issue 13's: 50 req/s for 40 s, Redis cut
                                                           # 15 s, Postgres cut 15 s and 30 s

"Sent" is the target's own count (the simulator's log of requests it answered, or the failing
target's distinct request ids); "kept" is the rows in Postgres after the run. Time to detect: kill →
shard marked dead; Redis cut → first Redis error logged by the worker; Postgres cut → first batch
spooled; failing target → first failed request stored (from its first request, so it includes the
writer process's start-up).

Needs PostgreSQL and Redis (scripts/setup-services). Uses DATABASE_URL/REDIS_URL from the
environment when set (pytest makes its own ``test_…`` database from it), else ``llmperf_faultbench``
and Redis db 9. Never stops the machine's services: only the proxy's links are cut.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = "tests/benchmarks/test_faults.py"


def run_tests(report: Path, env: dict[str, str], select: str | None = None) -> int:
    argv = [sys.executable, "-m", "pytest", TESTS, "-q", "-p", "no:cacheprovider", "-s"]
    if select:
        argv += ["-k", select]
    return subprocess.call(argv, cwd=ROOT, env={**env, "FAULTS_REPORT": str(report)})


def table(rows: list[dict]) -> str:
    head = ("scenario", "final state", "kept / sent", "time to detect", "detected by")
    body = [
        (
            r["scenario"],
            r["status"],
            f"{r['kept']:,} / {r['sent']:,}",
            "-" if r["detect_s"] is None else f"{r['detect_s']:.1f} s",
            r["detected_by"],
        )
        for r in rows
    ]
    lines = ["| " + " | ".join(str(x) for x in row) + " |" for row in [head, *body]]
    lines.insert(1, "|" + "---|" * len(head))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issue-sizes", action="store_true", help="issue 13's sizes (about five minutes)")
    args = parser.parse_args()
    env = {
        **os.environ,
        "DATABASE_URL": os.environ.get("DATABASE_URL")
        or "postgres://postgres@127.0.0.1:5432/llmperf_faultbench",
        "REDIS_URL": os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/9",
        "DEBUG": "true",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "faults.jsonl"
        if args.issue_sizes:
            sizes = {"FAULTS_REDIS_CUT_S": "15", "FAULTS_REDIS_RUN_S": "40", "FAULTS_POSTGRES_RUN_S": "40"}
            code = run_tests(report, {**env, **sizes, "FAULTS_POSTGRES_CUT_S": "15"}, select="postgres")
            code |= run_tests(report, {**env, **sizes, "FAULTS_POSTGRES_CUT_S": "30"})
        else:
            code = run_tests(report, env)
        rows = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    print()
    print(table(rows))
    if code:
        print(f"\nsome fault tests failed (pytest exit code {code}): see their output above")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
