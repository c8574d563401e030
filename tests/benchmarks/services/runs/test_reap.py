"""The reaper: silent shards die, unclaimed ones too, and a run whose aggregator died gets a new one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import current_app
from django.utils import timezone

from benchmarks.models import Run, Shard
from benchmarks.selectors.runs import REPEAT_NEXT_GRACE_S
from benchmarks.services.runs import reap
from benchmarks.services.runs.shard import shard_claim
from benchmarks.services.runs.start import run_repeat_next


@pytest.fixture
def running_run(cast):
    run = cast.run
    Run.objects.filter(pk=run.pk).update(
        status=Run.Status.RUNNING, summary={}, supervisor_token="old", supervisor_heartbeat_at=timezone.now()
    )
    run.refresh_from_db()
    return run


def test_silent_and_unclaimed_shards_are_dead(running_run, settings):
    settings.SHARD_HEARTBEAT_TIMEOUT_S = 5
    settings.SHARD_START_TIMEOUT_S = 30
    long_ago = timezone.now() - timedelta(minutes=5)
    silent = running_run.shards.get()
    Shard.objects.filter(pk=silent.pk).update(status=Shard.Status.RUNNING, heartbeat_at=long_ago)
    unclaimed = Shard.objects.create(run=running_run, index=1)
    Shard.objects.filter(pk=unclaimed.pk).update(created_at=long_ago)
    fresh = Shard.objects.create(run=running_run, index=2)
    assert reap.shards_reap_stale(run_id=running_run.pk) == 2
    statuses = dict(running_run.shards.values_list("index", "status"))
    assert statuses == {0: "dead", 1: "dead", 2: "queued"}
    assert "No heartbeat for 5 s" in Shard.objects.get(pk=silent.pk).error
    assert not shard_claim(shard_id=unclaimed.pk, hostname="late@worker")  # a dead shard never starts
    assert shard_claim(shard_id=fresh.pk, hostname="w@x") and not shard_claim(
        shard_id=fresh.pk, hostname="w2@x"
    )


def test_run_with_a_dead_aggregator_is_handed_on_and_finalised(running_run, settings, monkeypatch):
    settings.SHARD_HEARTBEAT_TIMEOUT_S = 5
    Run.objects.filter(pk=running_run.pk).update(
        supervisor_heartbeat_at=timezone.now() - timedelta(minutes=1)
    )
    handed = []
    monkeypatch.setattr(
        reap,
        "enqueue",
        lambda name, *args, **kw: handed.append(args) or current_app.tasks[name].apply(args=args),
    )
    assert reap.runs_reap_stale() == 1
    running_run.refresh_from_db()
    assert (
        handed == [(running_run.pk, running_run.supervisor_token)] and running_run.supervisor_token != "old"
    )
    assert (
        running_run.status == Run.Status.FINISHED
    )  # its only shard had finished: the new aggregator ends it
    assert running_run.summary["requests"]["total"] == 1


def test_stale_queued_mirror_session_fails(cast, settings):
    """A load run waiting in line is never reaped (test_admit.py); a mirror session nobody claimed is."""
    settings.SHARD_START_TIMEOUT_S = 30
    run = cast.run
    Run.objects.filter(pk=run.pk).update(
        kind=Run.Kind.MIRROR, status=Run.Status.QUEUED, created_at=timezone.now() - timedelta(hours=1)
    )
    reap.runs_reap_stale()
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED and "No worker" in run.reason


def test_a_repeated_set_stalled_by_a_database_blip_is_resumed_once_by_the_reaper(cast, monkeypatch):
    """Finalize finished repetition 0 but the database went away before it started repetition 1:
    the reaper starts it (once, however often it looks), and leaves a fresh or complete set alone."""
    monkeypatch.setattr("benchmarks.services.runs.start.enqueue_on_commit", lambda *a, **kw: None)
    cast.plan.repeat = 2
    cast.plan.save()
    long_ago = timezone.now() - timedelta(seconds=reap.REPEAT_RESUME_S + 30)
    first = Run.objects.create(
        team=cast.team_a, plan=cast.plan, spec={"repeat": 2}, status=Run.Status.FINISHED, ended_at=long_ago
    )
    fresh = Run.objects.create(
        team=cast.team_a,
        plan=cast.plan,
        spec={"repeat": 2},
        status=Run.Status.FINISHED,
        ended_at=timezone.now(),
    )
    over = Run.objects.create(  # stalled past the grace: the pages already call this set over
        team=cast.team_a,
        plan=cast.plan,
        spec={"repeat": 2},
        status=Run.Status.FINISHED,
        ended_at=timezone.now() - timedelta(seconds=REPEAT_NEXT_GRACE_S + 30),
    )
    started = reap.runs_repeat_resume()
    assert len(started) == 1  # the stalled set only: the fresh one is finalize's own to continue
    nxt = Run.objects.get(pk=started[0])
    assert nxt.repeat_of_id == first.pk and nxt.repeat_index == 1
    assert reap.runs_repeat_resume() == []  # looked at again: already started
    assert run_repeat_next(run=first) is None  # a late finalize of the same run starts nothing more
    Run.objects.filter(pk=nxt.pk).update(status=Run.Status.FINISHED, ended_at=long_ago)
    assert reap.runs_repeat_resume() == []  # the set is complete (2 of 2)
    assert not Run.objects.filter(repeat_of=fresh).exists()
    assert not Run.objects.filter(repeat_of=over).exists()
