"""Retention: a team keeps raw request records for N days after a run ended, then they are deleted in
the background, in batches. What the run page, comparisons and the API read stays: the summary, the
sample, the per-second rows; the run remembers when its records went (``records_purged_at``)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from benchmarks.models import RequestRecord, Run, Team

log = logging.getLogger(__name__)
BATCH = 5000


def records_purge_expired(*, now: datetime | None = None, batch: int = BATCH) -> int:
    """Deletes the raw records of every finished run past its team's retention; returns how many.
    Safe to run from several places at once (each batch is one DELETE of rows still there)."""
    now = now or timezone.now()
    deleted = 0
    for team in Team.objects.exclude(raw_records_days=None):
        cutoff = now - timedelta(days=int(team.raw_records_days or 0))
        runs = (
            Run.objects.filter(team=team, ended_at__lt=cutoff, records_purged_at=None)
            .exclude(status__in=Run.ACTIVE)
            .values_list("pk", flat=True)
        )
        for run_id in list(runs):
            deleted += run_records_purge(run_id=run_id, batch=batch)
            Run.objects.filter(pk=run_id, records_purged_at=None).update(records_purged_at=now)
    if deleted:
        log.info("retention deleted %s raw request records", deleted)
    return deleted


def run_records_purge(*, run_id: int, batch: int = BATCH) -> int:
    """One run's raw records, ``batch`` rows per statement (short locks, bounded WAL per step)."""
    table = RequestRecord._meta.db_table
    total = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE run_id = %s LIMIT %s)",
                [run_id, batch],
            )
            n = cursor.rowcount
        total += n
        if n < batch:
            return total


def team_retention_set(*, team: Team, days: int | None) -> Team:
    team.raw_records_days = days
    team.save(update_fields=["raw_records_days"])
    return team
