"""Retention: raw records of finished runs older than the team's N days go, in batches; summaries,
samples and per-second rows stay; the team page sets it and shows the disk the runs take."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import current_app
from django.conf import settings as django_settings
from django.urls import reverse
from django.utils import timezone

from benchmarks.models import RequestRecord, Run, RunSample, RunSecond, Shard
from benchmarks.services import dispatch
from benchmarks.services.runs.retention import records_purge_expired
from tests.benchmarks.factories import make_finished_run, make_plan


def with_records(run: Run, n: int, *, ended_days_ago: float, status: str = Run.Status.FINISHED) -> Run:
    RequestRecord.objects.bulk_create(
        [
            RequestRecord(run=run, request_id=f"x{i}", outcome="success", data={"request_id": f"x{i}"})
            for i in range(n)
        ]
    )
    Run.objects.filter(pk=run.pk).update(
        status=status, ended_at=timezone.now() - timedelta(days=ended_days_ago)
    )
    RunSample.objects.get_or_create(run=run, defaults={"population": n})
    return Run.objects.get(pk=run.pk)


@pytest.fixture
def runs(cast):
    cast.team_a.raw_records_days = 7
    cast.team_a.save()
    old = with_records(cast.run, 4, ended_days_ago=10)  # 1 record from the factory + 4
    recent = with_records(make_finished_run(cast.plan), 3, ended_days_ago=2)
    active = with_records(make_finished_run(cast.plan), 2, ended_days_ago=30, status=Run.Status.RUNNING)
    other_team = with_records(make_finished_run(make_plan(cast.team_b)), 2, ended_days_ago=400)
    return old, recent, active, other_team


def test_old_finished_runs_lose_their_raw_records_only(runs):
    old, recent, active, other_team = runs
    summary = old.summary
    assert records_purge_expired(batch=2) == 5  # three batches of at most 2 rows
    assert not RequestRecord.objects.filter(run=old).exists()
    old.refresh_from_db()
    assert old.records_purged_at is not None and old.summary == summary
    assert RunSecond.objects.filter(run=old).exists() and RunSample.objects.filter(run=old).exists()
    assert Shard.objects.filter(run=old).exists()
    counts = {r.pk: RequestRecord.objects.filter(run=r).count() for r in (recent, active, other_team)}
    assert counts == {recent.pk: 4, active.pk: 3, other_team.pk: 3}  # each with the factory's one
    assert Run.objects.exclude(records_purged_at=None).count() == 1
    assert records_purge_expired() == 0  # nothing left to do: idempotent


def test_the_run_page_says_its_raw_records_are_gone(runs, cast, client):
    old, recent, *_ = runs
    records_purge_expired()
    client.force_login(cast.alice)
    page = client.get(reverse("run_detail", args=[old.pk])).content.decode()
    assert 'id="records-purged"' in page and "retention" in page
    assert 'id="records-purged"' not in client.get(reverse("run_detail", args=[recent.pk])).content.decode()


def test_blank_keeps_records_forever(runs, cast):
    cast.team_a.raw_records_days = None
    cast.team_a.save()
    assert records_purge_expired() == 0
    assert RequestRecord.objects.filter(run=runs[0]).count() == 5


def test_the_purge_runs_from_beat_and_from_embedded_housekeeping():
    assert current_app.tasks[dispatch.TaskName.PURGE_RECORDS.value]
    assert any(
        e["task"] == dispatch.TaskName.PURGE_RECORDS.value
        for e in django_settings.CELERY_BEAT_SCHEDULE.values()
    )
    import inspect

    assert "PURGE_RECORDS" in inspect.getsource(dispatch._housekeeping_loop)


def test_the_team_page_sets_retention_and_shows_disk(runs, cast, client_for):
    old = runs[0]
    owner = client_for(cast.alice)
    url = reverse("team_retention", args=[cast.team_a.pk])
    for junk in ("abc", "0", "-3", "1.5", "99999999999"):
        response = owner.post(url, {"raw_records_days": junk})
        assert response.status_code == 400, junk
        assert "raw_records_days" in response.content.decode() or "Ensure" in response.content.decode()
    assert owner.post(url, {"raw_records_days": "30"}).status_code == 302
    cast.team_a.refresh_from_db()
    assert cast.team_a.raw_records_days == 30
    page = owner.get(reverse("team_detail", args=[cast.team_a.pk])).content.decode()
    assert "Kept 30 days" in page and 'id="disk-runs"' in page and f"#{old.pk}" in page
    assert "pg_column_size" in page
    assert owner.post(url, {"raw_records_days": ""}).status_code == 302
    cast.team_a.refresh_from_db()
    assert cast.team_a.raw_records_days is None
    member = client_for(cast.bob)  # a member, not an owner
    assert member.post(url, {"raw_records_days": "1"}).status_code == 403
    cast.team_a.refresh_from_db()
    assert cast.team_a.raw_records_days is None


def test_disk_counts_the_teams_records_only(runs, cast):
    from benchmarks.selectors.teams import team_disk_usage

    disk = team_disk_usage(team=cast.team_a)
    assert disk["runs"] == 3 and disk["records"] == 5 + 4 + 3
    assert disk["records_bytes"] > 0 and disk["top"][0]["id"] == runs[0].pk  # the biggest first
    assert team_disk_usage(team=cast.team_b)["records"] == 3
