"""A capacity plan and server metrics through the real Celery path, against a simulator whose batch
holds 8 requests (~11 req/s with 100 ms TTFT and 64 tokens at 10 ms)."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

from benchmarks.models import LoadProfile, RequestRecord, Run, Shard
from benchmarks.selectors.runs import run_series
from benchmarks.services.runs.start import run_start
from tests.benchmarks.factories import make_cast
from tests.benchmarks.workers import free_port, wait_for, workers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(scope="module")
def batch8():
    from runner import SimulatorProcess

    with SimulatorProcess(max_batch=8, ttft_ms=100, itl_ms=10, output_tokens=64) as sim:
        yield sim


@pytest.fixture
def cast_tx(transactional_db):
    yield make_cast()
    connections.close_all()


def _ended(run: Run) -> Run | None:
    run.refresh_from_db()
    return run if not run.is_active else None


def _capacity_plan(cast, sim):
    cast.endpoint.base_url = sim.base_url
    cast.endpoint.save()
    profile = LoadProfile.objects.create(
        team=cast.team_a,
        name="capacity",
        kind="capacity",
        spec={
            "kind": "capacity",
            "arrival": "poisson",
            "mode": "rate",
            "load_min": 4.0,
            "load_max": 32.0,
            "attainment": 0.9,
            "level_min_requests": 10,
            "min_level_s": 2.0,
            "warmup_s": 1.0,
            "tolerance": 0.1,
        },
    )
    plan = cast.plan
    plan.profile, plan.max_tokens, plan.drain_s = profile, 64, 5.0
    plan.slo_ttft_ms, plan.slo_tokens_per_s = 1000.0, 20.0
    plan.shard_count = 2  # a capacity run has one shard whatever the plan says
    plan.save()
    return plan


def test_capacity_plan_finds_the_simulators_capacity_through_celery(cast_tx, batch8):
    plan = _capacity_plan(cast_tx, batch8)
    with workers(("w1", "load,celery")) as (worker,):
        run = run_start(plan=plan, by=cast_tx.alice)
        wait_for(lambda: _ended(run), 120, "the capacity run to end")
    assert run.status == Run.Status.FINISHED, (run.reason, worker.output())
    assert run.shard_count == 1 and run.shards.get().status == Shard.Status.FINISHED
    block = run.summary["capacity"]
    assert block["mode"] == "rate", block
    assert 4 * 60 <= block["max_qpm"] <= 13 * 60, block  # the batch of 8 serves ~11 req/s
    assert block["limiting_slo"] in ("ttft", "queue", "errors"), block
    assert len(block["levels"]) >= 3
    # every level's records are stored (ids carry the level) and the live view spans the search
    levels = set(RequestRecord.objects.filter(run=run).values_list("data__capacity_level", flat=True))
    assert len(levels) == len(block["levels"])
    assert run.summary["requests"]["total"] == RequestRecord.objects.filter(run=run).count()
    series = run_series(run=run)
    assert series and series[-1]["t"] >= block["levels"][-1]["t_s"][0] - 1
    page = _page(run, cast_tx.alice)
    assert "capacity-sentence" in page and "capacity_curve_0" in page
    assert f"Holds {block['max_qpm']:.0f} QPM" in page and "one shard that drives the search" in page
    # on a busy shared machine the client itself may saturate at a deciding level: then the page says so
    assert ('id="capacity-untrusted"' in page) is (not block["trusted"])


def test_run_scrapes_server_metrics_once_and_a_dead_url_never_fails_it(cast_tx, batch8):
    cast_tx.endpoint.base_url = batch8.base_url
    dead = f"http://127.0.0.1:{free_port()}/metrics"
    cast_tx.endpoint.metrics_urls = [batch8.url + "/metrics", dead]
    cast_tx.endpoint.save()
    profile = cast_tx.plan.profile
    profile.spec = {"users": 16, "spawn_rate": 100.0}
    profile.save()
    plan = cast_tx.plan
    plan.duration_s, plan.max_tokens, plan.shard_count = 4.0, 64, 2
    plan.save()
    with workers(("w1", "load,celery"), ("w2", "load")) as pool:
        run = run_start(plan=plan, by=cast_tx.alice)
        wait_for(lambda: _ended(run), 60, "the run to end")
    assert run.status == Run.Status.FINISHED, (run.reason, [w.output() for w in pool])
    report = run.summary["server_metrics"]
    running = report["series"]["requests_running"]
    assert max(v for _, v in running) == 8  # the simulator's batch, whatever the two shards send
    assert report["summary"]["requests_running"]["max"] == 8
    assert any(v > 0 for _, v in report["series"]["requests_waiting"])
    # on the run's clock: the scraper starts a moment before the engine (negative t), ends after it
    assert -3 < running[0][0] < 2 and 3 < running[-1][0] < 4 + 30 + 3
    assert [e["url"] for e in report["endpoints"]] == [batch8.url + "/metrics", dead]
    assert report["errors"] and dead in report["errors"][0]
    # the live view carried the server's peaks per second, beside the client's own numbers
    live = [p for p in run_series(run=run) if "server_running" in p]
    assert live and max(p["server_running"] for p in live) == 8 and "ttft_p99" in live[0]
    shard_reports = [s.summary.get("server_metrics") for s in run.shards.all()]
    assert sum(1 for r in shard_reports if r) == 1  # one scraper per run: shard 0's
    page = _page(run, cast_tx.alice)
    assert "server-metrics-table" in page and "chart-server_ttft" in page and "Scrape failed" in page


def _page(run: Run, user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(reverse("run_detail", args=[run.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_kv_reuse_plan_runs_cold_then_warm_on_one_shard_and_the_page_shows_the_ttft_saved(cast_tx):
    """Against the simulator's prefix cache (250 µs of prefill per uncached token): the cold pass pays
    for two sizes of prompt, the warm pass for its short new tail only, per input-token bucket."""
    from runner import SimulatorProcess
    from tests.benchmarks.factories import make_dataset

    words = "alpha beta gamma delta epsilon zeta eta theta".split()
    texts = [" ".join(words[(i + k) % 8] for k in range(n)) for i, n in enumerate([300] * 4 + [1200] * 4)]
    profile = LoadProfile.objects.create(
        team=cast_tx.team_a,
        name="kv",
        kind="kv_reuse",
        spec={"kind": "kv_reuse", "users": 2, "spawn_rate": 100.0},
    )
    plan = cast_tx.plan
    plan.profile, plan.dataset = profile, make_dataset(cast_tx.team_a, name="long", prompts=texts)
    plan.max_tokens, plan.shard_count, plan.bucket_edges = 4, 2, [0, 1024, 4096]
    plan.save()
    with (
        SimulatorProcess(
            prefix_cache=True, prefill_us_per_token=250, ttft_ms=20, itl_ms=2, output_tokens=4
        ) as sim,
        workers(("w1", "load,celery")) as (worker,),
    ):
        cast_tx.endpoint.base_url = sim.base_url
        cast_tx.endpoint.save()
        run = run_start(plan=plan, by=cast_tx.alice)
        wait_for(lambda: _ended(run), 120, "the KV-cache reuse run to end")
    assert run.status == Run.Status.FINISHED, (run.reason, worker.output())
    assert run.shard_count == 1 and run.shards.get().status == Shard.Status.FINISHED
    passes = list(RequestRecord.objects.filter(run=run).values_list("data__kv_pass", flat=True))
    assert sorted(passes) == ["cold"] * 8 + ["warm"] * 8  # both passes stored, each prompt once
    block = run.summary["kv_cache_reuse"]
    rows = {row["label"]: row for row in block["buckets"]}
    assert set(rows) == {"0–1k", "1k–4k"}, rows
    for label, prefill_ms in (("0–1k", 75), ("1k–4k", 300)):  # ~300 and ~1200 words at 250 µs
        row = rows[label]
        assert row["requests"] == [4, 4]
        assert row["warm_ttft_p50_ms"] < row["cold_ttft_p50_ms"], row
        assert row["ttft_saved_ms"] > prefill_ms * 0.6, row
    assert rows["1k–4k"]["ttft_saved_ms"] > rows["0–1k"]["ttft_saved_ms"]  # longer prefixes save more
    page = _page(run, cast_tx.alice)
    assert 'id="kv-reuse-table"' in page and "TTFT p50 warm" in page
    assert f"{rows['1k–4k']['cold_ttft_p50_ms']:.1f} ms" in page
