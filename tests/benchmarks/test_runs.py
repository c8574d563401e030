"""Runs on real Celery worker processes against the simulator: sharding, merging, cancel, dead workers."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

from benchmarks.models import RequestRecord, Run, Shard
from benchmarks.selectors.runs import run_series
from benchmarks.services.runs.start import run_cancel, run_start
from tests.benchmarks.factories import make_cast
from tests.benchmarks.workers import wait_for, workers

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def cast_tx(transactional_db):
    yield make_cast()
    connections.close_all()


def _plan_on(cast, simulator, **fields):
    cast.endpoint.base_url = simulator.base_url
    cast.endpoint.save()
    plan = cast.plan
    for name, value in fields.items():
        setattr(plan, name, value)
    plan.save()
    return plan


def _ended(run: Run) -> Run | None:
    run.refresh_from_db()
    return run if not run.is_active else None


def test_run_end_to_end_on_a_celery_worker(cast_tx, simulator):
    plan = _plan_on(cast_tx, simulator, duration_s=4.0)
    with workers(("w1", "load,celery")) as (worker,):
        run = run_start(plan=plan, by=cast_tx.alice)
        wait_for(lambda: _ended(run), 60, "the run to end")
    assert run.status == Run.Status.FINISHED, (run.reason, worker.output())
    summary = run.summary
    total = summary["requests"]["total"]
    assert total == RequestRecord.objects.filter(run=run).count() > 10
    assert summary["requests"]["failed"] == 0
    assert summary["ttft_ms"]["p50"] == pytest.approx(50, abs=25)  # simulator: ttft_ms=50
    assert summary["itl_ms"]["p50"] == pytest.approx(5, abs=4)  # simulator: itl_ms=5
    shard = run.shards.get()
    assert shard.status == Shard.Status.FINISHED and shard.hostname == worker.hostname
    assert len(run_series(run=run)) >= 3
    record = RequestRecord.objects.filter(run=run).first()
    assert record.data["packets"] and record.ttft_ms is not None
    check_finished_pages(run, record, cast_tx.alice)
    live_totals_match(run, total)


def live_totals_match(run: Run, expected: int) -> None:
    """The live view (merged per-second deltas) should count every request the records hold."""
    series_total = sum(p["completed"] + p["failed"] for p in run_series(run=run))
    snapshot_total = run.snapshot["completed"] + run.snapshot["failed"]
    assert series_total == expected and snapshot_total == expected, (snapshot_total, series_total, expected)


def check_finished_pages(run: Run, record: RequestRecord, user) -> None:
    client = Client()
    client.force_login(user)
    page = client.get(reverse("run_detail", args=[run.pk])).content.decode()
    for part in (
        "summary-table",
        "bucket-table",
        "TTFT (ms)",
        "ITL (ms)",
        "No failed requests",
        "ttft_hist",
        "ttft_cdf",
        "itl_hist",
        "tps_hist",
        'id="headline"',
        "How other tools would report this run",
    ):
        assert part in page, part
    assert "ttft_points" not in page  # no per-request chart points: the page reads bounded data
    # the worst loop stall is shown beside the p99: a stall lands in every TTFT in flight
    shown = re.search(r"event-loop lag p99 ([\d.]+) ms, max ([\d.]+) ms", page)
    assert shown and float(shown[2]) == pytest.approx(run.summary["engine"]["lag_ms_max"], abs=0.051)
    rows = list(
        csv.DictReader(
            io.StringIO(
                b"".join(client.get(reverse("run_requests_csv", args=[run.pk])).streaming_content).decode()
            )
        )
    )
    assert len(rows) == run.summary["requests"]["total"]
    assert {r["outcome"] for r in rows} == {"success"}
    body = json.loads(client.get(reverse("run_summary_json", args=[run.pk])).content)
    assert body["summary"]["ttft_ms"] == run.summary["ttft_ms"] and body["variant"]["quantization"] == "fp8"
    timeline = client.get(reverse("run_request_detail", args=[run.pk, record.pk])).content.decode()
    assert "Packet timeline" in timeline and "<td>answer</td>" in timeline
    listing = client.get(reverse("run_list"), {"tag": "FP8", "status": "finished", "plan": run.plan_id})
    assert f"/runs/{run.pk}/" in listing.content.decode()
    assert f"/runs/{run.pk}/" not in client.get(reverse("run_list"), {"tag": "int4"}).content.decode()


def test_two_workers_share_a_run_and_totals_merge(cast_tx, simulator):
    plan = _plan_on(cast_tx, simulator, duration_s=4.0)
    plan.profile.spec["users"] = 4
    plan.profile.save()
    with workers(("w1", "load,celery"), ("w2", "load")) as pool:
        run = run_start(plan=plan, by=cast_tx.alice)
        wait_for(lambda: _ended(run), 60, "the run to end")
    assert run.status == Run.Status.FINISHED, run.reason
    shards = list(run.shards.all())
    assert len(shards) == 2
    assert {s.hostname for s in shards} == {w.hostname for w in pool}
    per_shard = [RequestRecord.objects.filter(run=run, shard_index=s.index).count() for s in shards]
    assert all(n > 0 for n in per_shard)
    assert run.summary["requests"]["total"] == sum(per_shard) == sum(s.records_count for s in shards)
    live_total = run.snapshot["completed"] + run.snapshot["failed"]
    assert live_total == sum(per_shard)  # the merged live view lost no second of either shard


def test_cancel_stops_every_shard_and_keeps_records(cast_tx, simulator):
    plan = _plan_on(cast_tx, simulator, duration_s=120.0)
    with workers(("w1", "load,celery")):
        run = run_start(plan=plan, by=cast_tx.alice)
        wait_for(lambda: RequestRecord.objects.filter(run=run).count() > 5, 30, "records to arrive")
        assert run_cancel(run=run, by=cast_tx.alice)
        wait_for(lambda: _ended(run), 15, "the run to stop after cancel")
    assert run.status == Run.Status.PARTIAL
    assert "Cancelled by alice" in run.reason
    assert run.shards.get().status == Shard.Status.CANCELLED
    kept = RequestRecord.objects.filter(run=run).count()
    requests = run.summary["requests"]
    assert kept > 5 and requests["total"] + requests["cancelled"] == kept  # in-flight ones count as cancelled
    assert (run.ended_at - run.started_at).total_seconds() < 60


def test_killed_worker_ends_the_run_partial(cast_tx, simulator):
    plan = _plan_on(cast_tx, simulator, duration_s=30.0)
    with workers(("w1", "load,celery"), ("w2", "load")) as (keeper, victim):
        run = run_start(plan=plan, by=cast_tx.alice)
        wait_for(lambda: RequestRecord.objects.filter(run=run, shard_index=1).exists(), 30, "shard 1 records")
        doomed = run.shards.get(hostname=victim.hostname)
        victim.kill()
        wait_for(lambda: _ended(run), 60, "the run to end")
    assert run.status == Run.Status.PARTIAL, run.reason
    doomed.refresh_from_db()
    assert doomed.status == Shard.Status.DEAD
    assert f"Shard {doomed.index} on {victim.hostname} dead" in run.reason
    assert run.shards.exclude(pk=doomed.pk).get().status == Shard.Status.FINISHED
    assert RequestRecord.objects.filter(run=run, shard_index=doomed.index).exists()  # what it measured stays
    assert keeper.hostname


def test_a_run_over_the_team_quota_waits_in_line_then_starts_when_the_first_ends(cast_tx, simulator):
    """Real workers: the second run is not reaped while the first holds the team's only run slot;
    it shows its place and reason, and the first run's end starts it."""
    from benchmarks.selectors.runs import queue_place

    plan = _plan_on(cast_tx, simulator, duration_s=3.0)
    cast_tx.team_a.max_concurrent_runs = 1
    cast_tx.team_a.save()
    with workers(("w1", "load,celery")) as (worker,):
        first = run_start(plan=plan, by=cast_tx.alice)
        second = run_start(plan=plan, by=cast_tx.alice)

        def waiting() -> Run | None:
            second.refresh_from_db()
            return second if second.reason.startswith("Waiting") else None

        wait_for(waiting, 60, "the second run to say why it waits")
        assert second.status == Run.Status.QUEUED and queue_place(second) == 1
        # whichever coordinator took the admission lock first: the quota, or the earlier run in line
        assert second.reason in (
            "Waiting for the team's quota: 1 runs at once, 1 running.",
            f"Waiting behind run {first.pk} of the same team.",
        ), second.reason
        wait_for(lambda: _ended(first), 60, "the first run to end")
        wait_for(lambda: _ended(second), 60, "the second run to end")
    assert first.status == second.status == Run.Status.FINISHED, (
        first.reason,
        second.reason,
        worker.output(),
    )
    assert second.started_at >= first.ended_at  # never both at once
    assert second.summary["requests"]["total"] == RequestRecord.objects.filter(run=second).count() > 5
