"""Admission: team quotas (runs and load slots at once) and free worker slots keep a run queued with
its reason and place in line, never reaped for waiting; it starts when a slot frees (housekeeping or
a run ending). tests/benchmarks/test_runs.py runs the same on real Celery workers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from benchmarks.models import Run, Shard
from benchmarks.selectors.runs import ordinal, queue_place
from benchmarks.services.runs import admit, coordinate, reap
from benchmarks.services.runs.coordinate import run_coordinate
from benchmarks.services.runs.start import run_start
from tests.benchmarks.factories import make_plan


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """Coordination runs here by hand; what it would send is recorded, nothing reaches a broker."""
    sent: list[tuple] = []
    monkeypatch.setattr("benchmarks.services.runs.start.enqueue_on_commit", lambda *a, **kw: None)
    monkeypatch.setattr(coordinate, "enqueue", lambda name, *args, **kw: sent.append((name, args, kw)))
    monkeypatch.setattr(reap, "enqueue", lambda *a, **kw: None)
    monkeypatch.setattr(admit, "load_worker_slots", lambda: None)  # workers unknown unless a test says
    return sent


def running(run: Run, *, shards: int = 1, worker: str = "") -> Run:
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING, started_at=timezone.now())
    for i in range(shards):
        Shard.objects.create(run=run, index=i, status=Shard.Status.RUNNING, target_worker=worker)
    run.refresh_from_db()
    return run


def test_a_run_over_the_team_quota_stays_queued_with_its_place_and_starts_when_a_run_ends(
    cast, client_for, settings
):
    settings.TEAM_MAX_RUNS = 1
    first = running(run_start(plan=cast.plan, by=cast.alice))
    second = run_start(plan=cast.plan, by=cast.alice)
    third = run_start(plan=cast.plan, by=cast.alice)
    assert run_coordinate(run_id=second.pk, slots=None) is False
    assert run_coordinate(run_id=third.pk, slots=None) is False
    second.refresh_from_db()
    third.refresh_from_db()
    assert second.status == third.status == Run.Status.QUEUED
    assert second.reason == "Waiting for the team's quota: 1 runs at once, 1 running."
    assert third.reason == f"Waiting behind run {second.pk} of the same team."
    assert (queue_place(second), queue_place(third)) == (1, 2)
    page = client_for(cast.alice).get(reverse("run_detail", args=[third.pk])).content.decode()
    assert "queued, 2nd in line" in page and f"Waiting behind run {second.pk}" in page
    # waiting is never reaped, however long it takes
    Run.objects.filter(pk__in=[second.pk, third.pk]).update(created_at=timezone.now() - timedelta(hours=2))
    reap.runs_reap_stale()
    assert Run.objects.get(pk=second.pk).status == Run.Status.QUEUED
    # the first ends: the next housekeeping tick starts the second, the third moves up
    Run.objects.filter(pk=first.pk).update(status=Run.Status.FINISHED, ended_at=timezone.now())
    assert admit.runs_admit_queued() == 1
    second.refresh_from_db()
    assert second.status == Run.Status.RUNNING and second.reason == "" and second.shards.count() == 1
    assert queue_place(Run.objects.get(pk=third.pk)) == 1


def test_the_teams_own_quota_overrides_the_setting_and_other_teams_are_not_held_up(cast, settings):
    settings.TEAM_MAX_RUNS = 5
    cast.team_a.max_concurrent_runs = 1
    cast.team_a.save()
    running(run_start(plan=cast.plan, by=cast.alice))
    waiting = run_start(plan=cast.plan, by=cast.alice)
    other = run_start(plan=make_plan(cast.team_b), by=cast.carol)
    assert admit.runs_admit_queued() == 1  # team B's run starts; team A's keeps its place
    assert Run.objects.get(pk=other.pk).status == Run.Status.RUNNING
    assert Run.objects.get(pk=waiting.pk).status == Run.Status.QUEUED


def test_load_slots_per_team_hold_a_run_and_more_shards_than_the_quota_is_refused(cast, settings):
    settings.TEAM_MAX_LOAD_SLOTS = 3
    cast.plan.shard_count = 2
    cast.plan.save()
    running(run_start(plan=cast.plan, by=cast.alice), shards=2)
    held = run_start(plan=cast.plan, by=cast.alice)
    assert run_coordinate(run_id=held.pk, slots=None) is False
    held.refresh_from_db()
    assert held.status == Run.Status.QUEUED
    assert held.reason == "Waiting for the team's quota: 3 load slots at once, 2 in use, this run needs 2."
    cast.plan.shard_count = 4
    cast.plan.save()
    too_big = run_start(plan=cast.plan, by=cast.alice)
    Run.objects.filter(pk=held.pk).delete()
    run_coordinate(run_id=too_big.pk, slots=None)
    too_big.refresh_from_db()
    assert too_big.status == Run.Status.FAILED
    assert too_big.reason.startswith("The run needs 4 shards; the team's quota is 3 load slots")


def test_a_run_waits_for_a_free_worker_slot_and_goes_to_the_free_worker(cast, settings, no_broker):
    settings.TEAM_MAX_LOAD_SLOTS = 10
    other_team = running(run_start(plan=make_plan(cast.team_b), by=cast.carol), shards=2, worker="w1@x")
    slots = {"w1@x": 2, "w2@x": 1}
    cast.plan.shard_count = 2
    cast.plan.save()
    needs_two = run_start(plan=cast.plan, by=cast.alice)
    assert run_coordinate(run_id=needs_two.pk, slots=slots) is False
    needs_two.refresh_from_db()
    assert needs_two.reason == "Waiting for a free load worker: 1 of 3 slots free, this run needs 2."
    assert queue_place(needs_two) == 1
    cast.plan.shard_count = 1
    cast.plan.save()
    Run.objects.filter(pk=needs_two.pk).update(status=Run.Status.PARTIAL)  # cancelled while waiting
    needs_one = run_start(plan=cast.plan, by=cast.alice)
    assert run_coordinate(run_id=needs_one.pk, slots=slots) is True
    assert list(needs_one.shards.values_list("target_worker", flat=True)) == ["w2@x"]
    assert any(kw.get("queue") for _, _, kw in no_broker)  # sent to that worker's own queue
    # more shards than every live worker has slots: it waits (workers may be restarting), with the
    # figures, and is refused with them once it has waited as long as a shard may take to start
    cast.plan.shard_count = 4
    cast.plan.save()
    Run.objects.filter(pk=other_team.pk).update(status=Run.Status.FINISHED)
    huge = run_start(plan=cast.plan, by=cast.alice)
    Run.objects.filter(pk=needs_one.pk).update(status=Run.Status.FINISHED)
    run_coordinate(run_id=huge.pk, slots=slots)
    huge.refresh_from_db()
    short = "The run needs 4 shards; the live load workers have 3 slots (2 workers)."
    assert huge.status == Run.Status.QUEUED and huge.reason == f"Waiting for load workers: {short}"
    Run.objects.filter(pk=huge.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.SHARD_START_TIMEOUT_S + 1)
    )
    run_coordinate(run_id=huge.pk, slots=slots)
    huge.refresh_from_db()
    assert huge.status == Run.Status.FAILED and huge.reason.startswith(short)


def test_slots_are_spread_one_per_worker_first():
    assert admit._spread(["a", "a", "b", "b", "c"], 3) == ["a", "b", "c"]
    assert admit._spread(["a", "a", "b"], 3) == ["a", "b", "a"]


def test_a_stale_queued_mirror_session_still_fails_but_a_waiting_load_run_does_not(cast, settings):
    settings.SHARD_START_TIMEOUT_S = 30
    settings.TEAM_MAX_RUNS = 0  # nothing may start: the load run waits
    long_ago = timezone.now() - timedelta(hours=1)
    load = run_start(plan=cast.plan, by=cast.alice)
    mirror = Run.objects.create(
        team=cast.team_a, kind=Run.Kind.MIRROR, plan_name="m", endpoint_name="e", status=Run.Status.QUEUED
    )
    Run.objects.filter(pk__in=[load.pk, mirror.pk]).update(created_at=long_ago)
    reap.runs_reap_stale()
    assert Run.objects.get(pk=mirror.pk).status == Run.Status.FAILED
    load.refresh_from_db()
    assert load.status == Run.Status.QUEUED and "quota" in load.reason


def test_ordinals():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th",
    ]  # fmt: skip


def test_an_administrator_sets_a_teams_own_quota_in_the_admin(cast, client):
    from django.contrib.auth import get_user_model

    admin_user = get_user_model().objects.create_superuser(
        "root", "root@example.com", "a long admin passphrase"
    )
    client.force_login(admin_user)
    url = reverse("admin:benchmarks_team_change", args=[cast.team_a.pk])
    response = client.post(url, {"name": cast.team_a.name, "max_concurrent_runs": "1", "max_load_slots": "3"})
    assert response.status_code == 302
    cast.team_a.refresh_from_db()
    assert admit.team_quotas(cast.team_a) == (1, 3)
