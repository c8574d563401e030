"""Finalize: the exact summary from the stored records (new rows with their series blob, old rows
without), idempotent, finished by the reaper after a crash, and never a silent undercount."""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from celery import current_app
from django.utils import timezone

from benchmarks import bridge
from benchmarks.models import RequestRecord, Run, RunSample, Shard
from benchmarks.services.runs import finalize, reap
from runner import Slo, summarize
from tests.runner.test_columns import record


@pytest.fixture
def running(cast, settings):
    """cast.run, running, with 240 mixed records (a third stored the old way, without a series blob)."""
    settings.FINALIZE_SETTLE_S = 0
    run = cast.run
    RequestRecord.objects.filter(run=run).delete()
    now = timezone.now()
    Run.objects.filter(pk=run.pk).update(
        status=Run.Status.RUNNING,
        summary={},
        snapshot={},
        supervisor_token="t",
        supervisor_heartbeat_at=now,
        spec={"duration_s": 3, "bucket_edges": [0, 1024, 4096], "slo": {"ttft_ms": 200.0}},
    )
    rng = random.Random(5)
    records = [record(i, rng) for i in range(240)]
    for r in records:
        r["shard"] = 0
    rows = [bridge.record_row(run.pk, r) for r in records]
    for row in rows[::3]:
        row.series = None  # stored before series existed
    RequestRecord.objects.bulk_create(rows)
    Shard.objects.filter(run=run).update(
        status=Shard.Status.FINISHED, started_at=now - timedelta(seconds=10), ended_at=now, records_count=240
    )
    run.refresh_from_db()
    return run, records


def expected_summary(run: Run, records: list[dict]) -> dict:
    shards = list(run.shards.all())
    summary = summarize(
        records,
        duration_s=bridge.measured_duration_s(shards),
        bucket_edges=[0, 1024, 4096],
        slo=Slo(ttft_ms=200.0),
        engine=bridge.merged_engine(shards),
    )
    return json.loads(json.dumps(summary))


def test_the_summary_is_exactly_summarize_of_every_stored_record(running):
    run, records = running
    finalize.run_finalize(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED and run.reason == ""
    expected = expected_summary(run, records)
    # the token audit is the run page's SQL one: the engine's keys, the same values, and more keys
    stored_audit, engine_audit = run.summary.pop("token_audit"), expected.pop("token_audit")
    # and the number of rows it read, for the per-request table's count
    assert run.summary.pop("records_stored") == len(records)
    assert run.summary == expected
    assert {k: stored_audit[k] for k in engine_audit} == engine_audit
    ok = [r for r in records if r["outcome"] == "success"]
    assert RunSample.objects.get(run=run).population == len(ok)


def test_a_second_finalize_changes_nothing_and_starts_nothing(running, monkeypatch):
    run, _ = running
    started = []
    monkeypatch.setattr(finalize, "run_repeat_next", lambda run: started.append(run.pk))
    finalize.run_finalize(run_id=run.pk)
    first = Run.objects.get(pk=run.pk)
    finalize.run_finalize(run_id=run.pk)
    again = Run.objects.get(pk=run.pk)
    assert (again.summary, again.ended_at, again.status) == (first.summary, first.ended_at, first.status)
    assert started == [run.pk]


def test_two_finalizes_racing_push_and_repeat_once(running, monkeypatch):
    """The reaper handed the run on while the first finalize was still computing: the one that loses
    the conditional update neither pushes nor starts the next repetition."""
    run, _ = running
    started = []
    monkeypatch.setattr(finalize, "run_repeat_next", lambda run: started.append(run.pk))
    real = bridge.run_summary

    def slow(*args, **kw):
        summary = real(*args, **kw)
        if not started:  # the successor finishes first, inside our computation
            monkeypatch.setattr(bridge, "run_summary", real)
            finalize.run_finalize(run_id=run.pk)
        return summary

    monkeypatch.setattr(bridge, "run_summary", slow)
    finalize.run_finalize(run_id=run.pk)
    assert started == [run.pk]


def test_a_worker_dying_mid_finalize_leaves_the_run_to_the_reaper(running, monkeypatch, settings):
    run, records = running
    settings.SHARD_HEARTBEAT_TIMEOUT_S = 5
    real = bridge.run_summary

    def crash(*args, **kw):
        raise SystemExit("worker killed")  # not an Exception: nothing in finalize catches it

    monkeypatch.setattr(bridge, "run_summary", crash)
    with pytest.raises(SystemExit):
        finalize.run_finalize(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.RUNNING and run.summary == {}
    monkeypatch.setattr(bridge, "run_summary", real)
    Run.objects.filter(pk=run.pk).update(supervisor_heartbeat_at=timezone.now() - timedelta(minutes=1))
    monkeypatch.setattr(reap, "enqueue", lambda name, *args, **kw: current_app.tasks[name].apply(args=args))
    assert reap.runs_reap_stale() == 1
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED
    assert run.summary["requests"] == expected_summary(run, records)["requests"]


def test_a_shard_whose_writes_never_arrived_makes_the_run_partial_and_says_so(running):
    run, _ = running
    # shard 0 was reaped while its writer still held 60 records: it counted them, the table has not
    Shard.objects.filter(run=run).update(status=Shard.Status.DEAD, error="No heartbeat", records_count=300)
    finalize.run_finalize(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.PARTIAL
    assert "Shard 0 counted 300 requests but 240 are stored (60 missing" in run.reason
    assert "The summary covers the 240 stored requests." in run.reason
    assert run.summary["requests"]["total"] + run.summary["requests"]["cancelled"] == 240


def test_a_live_total_above_the_stored_records_is_not_a_clean_finish(running):
    run, _ = running
    Run.objects.filter(pk=run.pk).update(snapshot={"completed": 250, "failed": 10})
    finalize.run_finalize(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.PARTIAL
    assert "live view counted 260 finished requests but 240 are stored" in run.reason


def test_late_writes_within_the_settle_time_are_waited_for(running, settings, monkeypatch):
    run, records = running
    settings.FINALIZE_SETTLE_S = 5
    Shard.objects.filter(run=run).update(records_count=241)
    late = dict(records[0], request_id="late")
    calls = []
    real = finalize.stored_counts

    def counts(*, run_id):
        calls.append(1)
        if len(calls) == 2:  # the writer's last batch lands while finalize waits
            RequestRecord.objects.bulk_create([bridge.record_row(run_id, late)])
        return real(run_id=run_id)

    monkeypatch.setattr(finalize, "stored_counts", counts)
    monkeypatch.setattr(finalize.time, "sleep", lambda s: None)
    finalize.run_finalize(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == Run.Status.FINISHED, run.reason
    assert run.summary["requests"]["total"] + run.summary["requests"]["cancelled"] == 241


def test_the_read_ahead_gives_every_chunk_in_order_passes_errors_on_and_stops_when_left():
    from benchmarks.selectors.runs import _ahead

    chunks = iter([[1, 2], [3], [4, 5], []])
    assert list(_ahead(lambda: next(chunks))) == [[1, 2], [3], [4, 5]]

    def broken() -> list[int]:
        raise RuntimeError("connection lost")

    with pytest.raises(RuntimeError, match="connection lost"):
        list(_ahead(broken))
    endless = _ahead(lambda: [0])
    assert next(endless) == [0]
    endless.close()  # the reader thread ends (join returns) though fetch never runs dry
