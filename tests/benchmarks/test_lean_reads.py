"""Lists and live ticks never load a run's large columns (spec, summary, live): checked on the SQL
they send."""

from __future__ import annotations

import re

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from benchmarks.live.server import ServerSeconds
from benchmarks.models import Run
from benchmarks.selectors.runs import live_payload, run_live_get
from benchmarks.services.api_tokens import api_token_create
from benchmarks.services.runs import supervise
from runner import LiveAggregate, ShardStats

# the column itself, not a key extracted from it in SQL ("spec" ->> 'duration_s', "summary" #>> ...)
LARGE = re.compile(r'"benchmarks_run"\."(spec|summary|live)"(?!\s*(->|#>))')


def loaded_large_columns(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if LARGE.search(q["sql"])]


def big_run(cast) -> Run:
    """cast.run with a spec and summary as large as a run of many prompts makes them."""
    Run.objects.filter(pk=cast.run.pk).update(
        spec={"duration_s": 60, "prompts": [{"id": str(i), "text": "x" * 1000} for i in range(200)]},
        summary={"requests": {"total": 7}, "ttft_ms": {"p50": 12.5}, "buckets": ["…"] * 1000},
    )
    return Run.objects.get(pk=cast.run.pk)


def test_the_runs_list_loads_no_large_column(cast, client_for):
    big_run(cast)
    client = client_for(cast.alice)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("run_list"))
    assert page.status_code == 200
    html = page.content.decode()
    assert f"#{cast.run.pk}" in html and "<td>7</td>" in html and "<td>12.5</td>" in html
    assert loaded_large_columns(queries) == []


def test_the_api_runs_list_loads_no_large_column(cast):
    big_run(cast)
    token = api_token_create(team=cast.team_a, by=cast.bob, name="ci")[1]
    with CaptureQueriesContext(connection) as queries:
        body = Client(HTTP_AUTHORIZATION=f"Bearer {token}").get(reverse("api_run_list")).json()
    assert body["runs"][0]["requests"] == 7
    assert loaded_large_columns(queries) == []


def test_a_live_tick_loads_no_large_column(cast):
    run = big_run(cast)
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING, started_at=timezone.now(), summary={})
    with CaptureQueriesContext(connection) as queries:
        payload = live_payload(run_live_get(run_id=run.pk), rows=[])
    assert payload["status"] == "running" and 0 <= payload["progress"] < 0.1  # duration 60 s, from the spec
    assert loaded_large_columns(queries) == []

    agg = LiveAggregate()
    stats = ShardStats(0)
    stats.started(0)
    stats.gauge(0, 1)
    agg.merge(stats.delta())
    with CaptureQueriesContext(connection) as queries:  # the aggregator's tick: store the second, push it
        supervise.seconds_persist(run.pk, agg, {0}, checkpoint=False, server=ServerSeconds(), final=True)
    assert run.seconds.filter(t=0).exists()
    assert loaded_large_columns(queries) == []
