"""``manage.py run_plan`` as a deploy gate: real Celery workers, a simulator of our own made slower with
``POST /sim/config``, and the command's real exit code from a real process."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pytest
from django.core.management import CommandError, call_command
from django.db import connections

from runner.simulator import SimulatorProcess
from tests.benchmarks.factories import make_cast
from tests.benchmarks.workers import ROOT, service_env, workers

GATE = ["--fail-on", "ttft_ms.p50>+50%", "--fail-on", "success_rate<0.99"]


def manage(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "run_plan", *map(str, args)],
        cwd=ROOT,
        env=service_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )


def run_id(result: subprocess.CompletedProcess[str]) -> int:
    return int(re.search(r"Run (\d+) of plan", result.stdout).group(1))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_gate_passes_unchanged_and_fails_slower_simulator():
    cast = make_cast()
    plan = cast.plan
    plan.duration_s = 3.0
    plan.save()
    try:
        with (
            SimulatorProcess(ttft_ms=50, itl_ms=5, output_tokens=16) as sim,
            workers(("gate", "load,celery")),
        ):
            cast.endpoint.base_url = sim.base_url
            cast.endpoint.save()
            first = manage(plan.pk, "--wait")
            assert first.returncode == 0, first.stdout + first.stderr
            baseline = run_id(first)

            same = manage(plan.pk, "--wait", "--baseline", baseline, *GATE)
            assert same.returncode == 0, same.stdout + same.stderr
            assert "gate passed" in same.stdout
            assert re.search(r"^ttft_ms\.p50\s+ms\s", same.stdout, re.M)  # the comparison table
            assert "ttft_ms.p50>+50%:" in same.stdout and ": ok" in same.stdout

            httpx.post(f"{sim.url}/sim/config", json={"ttft_ms": 250}, timeout=5).raise_for_status()
            slow = manage(plan.pk, "--wait", "--baseline", baseline, *GATE, "--regression-pct", "50")
            assert slow.returncode == 1, slow.stdout + slow.stderr
            assert "ttft_ms.p50>+50%" in slow.stderr and "gate failed" in slow.stderr
            assert re.search(r"ttft_ms\.p50>\+50%: .*BROKEN", slow.stdout)
            assert re.search(r"^regression: ttft_ms\.p50 \+\d+", slow.stdout, re.M)
            assert "worse" in slow.stdout
    finally:
        connections.close_all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-on", "ttft_ms.p99>10%"], "needs a sign"),
        (["--wait", "--fail-on", "ttft_ms.p99>+10%"], "need --baseline"),
        (["--fail-on", "success_rate<0.99"], "need --wait"),
        (["--wait", "--baseline", "999999"], "no run 999999"),
    ],
)
def test_bad_arguments_exit_2_before_starting_anything(cast, args, message):
    with pytest.raises(CommandError, match=message) as raised:
        call_command("run_plan", str(cast.plan.pk), *args)
    assert raised.value.returncode == 2
    assert cast.plan.runs.count() == 1  # only the cast's own run: nothing was started


def test_unknown_plan_exits_2(db):
    with pytest.raises(CommandError, match="no plan") as raised:
        call_command("run_plan", "no such plan")
    assert raised.value.returncode == 2


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_repeated_plan_is_waited_for_to_its_last_repetition_and_gated_on_the_set():
    from benchmarks.models import Run

    cast = make_cast()
    plan = cast.plan
    plan.duration_s, plan.repeat = 2.0, 2
    plan.save()
    try:
        with (
            SimulatorProcess(ttft_ms=50, itl_ms=5, output_tokens=16) as sim,
            workers(("gate", "load,celery")),
        ):
            cast.endpoint.base_url = sim.base_url
            cast.endpoint.save()
            first = manage(plan.pk, "--wait")
            assert first.returncode == 0, first.stdout + first.stderr
            baseline = run_id(first)
            runs = list(Run.objects.filter(plan=plan, pk__gte=baseline).order_by("pk"))
            assert [r.status for r in runs] == ["finished", "finished"]  # both ended before it returned
            assert "Repetition 2 of 2: run" in first.stdout and "across 2 repetitions" in first.stdout

            httpx.post(f"{sim.url}/sim/config", json={"ttft_ms": 250}, timeout=5).raise_for_status()
            slow = manage(
                plan.pk,
                "--wait",
                "--baseline",
                baseline,
                "--fail-on",
                "ttft_ms.p50>+50%",
                "--regression-pct",
                "50",
            )
            assert slow.returncode == 1, slow.stdout + slow.stderr
            assert re.search(r"ttft_ms\.p50>\+50%: .*BROKEN \(mean of 2 repetitions\)", slow.stdout)
            assert re.search(r"^regression: ttft_ms\.p50 \+\d+.*mean of 2 repetitions", slow.stdout, re.M)
            assert (
                "gate failed" in slow.stderr
                and "baseline: run" in slow.stdout
                and "and its set (2 runs)" in slow.stdout
            )
            assert Run.objects.filter(plan=plan, pk__gte=baseline, status="finished").count() == 4
    finally:
        connections.close_all()
