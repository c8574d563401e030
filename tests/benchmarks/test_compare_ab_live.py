"""A paired A/B run for real: one plan, two simulators (B slower to first token), a Celery worker; the
run ends with per-variant summaries and a paired verdict, and the comparison page shows both."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

from benchmarks.models import Run, RunSample
from benchmarks.services.ab_tests import plan_ab_set
from benchmarks.services.runs.start import run_start
from runner.simulator import SimulatorProcess
from tests.benchmarks.factories import make_cast, make_endpoint
from tests.benchmarks.workers import wait_for, workers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.mark.parametrize("mode", ["simultaneous", "interleaved"])
def test_paired_run_on_two_endpoints(mode):
    cast = make_cast()
    try:
        with (
            SimulatorProcess(ttft_ms=40, itl_ms=5, output_tokens=16) as fast,
            SimulatorProcess(ttft_ms=120, itl_ms=5, output_tokens=16) as slow,
            workers(("ab", "load,celery")),
        ):
            cast.endpoint.base_url = fast.base_url
            cast.endpoint.save()
            plan = cast.plan
            plan.duration_s = 4.0
            plan.save()
            plan_ab_set(
                plan=plan,
                endpoints=[make_endpoint(cast.team_a, name="slow", base_url=slow.base_url)],
                mode=mode,
            )
            run = run_start(plan=plan, by=cast.alice)
            wait_for(lambda: not Run.objects.get(pk=run.pk).is_active, 60, "the A/B run to end")
        run.refresh_from_db()
        assert run.status == Run.Status.FINISHED, run.reason
        assert run.spec["ab_mode"] == mode and len(run.spec["variants"]) == 2
        sample = RunSample.objects.get(run=run)
        a, b = sample.variants
        assert a["requests"]["total"] == b["requests"]["total"] > 5  # every prompt went to both
        assert b["ttft_ms"]["p50"] - a["ttft_ms"]["p50"] == pytest.approx(80, abs=30)
        (paired,) = sample.paired
        ttft = paired["metrics"]["ttft_ms"]
        assert ttft["verdict"] == "b_worse" and ttft["n_pairs"] >= 5 and ttft["unmatched"] == {"a": 0, "b": 0}

        client = Client()
        client.force_login(cast.bob)
        page = client.get(reverse("compare"), {"runs": run.pk}).content.decode()
        assert 'id="paired-table"' in page and "B worse" in page
        assert page.count('class="run-col"') == 2
    finally:
        connections.close_all()
