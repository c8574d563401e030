"""Finding shards (and aggregators) whose worker died, so no run stays stuck."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, F, IntegerField, OuterRef, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from benchmarks.models import Run, Shard
from benchmarks.selectors.runs import REPEAT_NEXT_GRACE_S
from benchmarks.services.dispatch import TaskName, enqueue
from benchmarks.services.runs.admit import runs_admit_queued
from benchmarks.services.runs.outage import DATABASE_DOWN, database_recently_unreachable, database_unreachable
from benchmarks.services.runs.spool import spool_load, spool_runs

log = logging.getLogger(__name__)
DELETE_RETRY_S = 600.0  # a deleted run still here this long after: its delete task is sent again
REPEAT_RESUME_S = 60.0  # a repetition that finished this long ago with no next one: start the next


def _mark_dead(shards: QuerySet[Shard], now: datetime, error: str) -> int:
    """One conditional UPDATE: only rows still in the filtered state change, so two reapers agree."""
    return shards.update(status=Shard.Status.DEAD, ended_at=now, ended_by="dead", error=error)


def shards_reap_stale(*, run_id: int | None = None) -> int:
    """Running shards silent for SHARD_HEARTBEAT_TIMEOUT_S, and queued ones nobody picked up for
    SHARD_START_TIMEOUT_S, are dead. Their records so far stay."""
    now = timezone.now()
    shards = Shard.objects.all() if run_id is None else Shard.objects.filter(run_id=run_id)
    beat = settings.SHARD_HEARTBEAT_TIMEOUT_S
    silent = _mark_dead(
        shards.filter(status=Shard.Status.RUNNING, heartbeat_at__lt=now - timedelta(seconds=beat)),
        now,
        f"No heartbeat for {beat:g} s: its worker died or lost the database.",
    )
    start = settings.SHARD_START_TIMEOUT_S
    unclaimed = _mark_dead(
        shards.filter(status=Shard.Status.QUEUED, created_at__lt=now - timedelta(seconds=start)),
        now,
        f"No worker started it within {start:g} s.",
    )
    return silent + unclaimed


def runs_reap_stale() -> int:
    """Periodic (beat): reap shards everywhere, hand runs whose aggregator went silent to a new one,
    and try the queue of load runs waiting for a quota or a free worker (never reaped for waiting).
    Records spooled here by writers that ended while the database was away are loaded. Silence is
    not trusted until the database has been back for SHARD_HEARTBEAT_TIMEOUT_S."""
    spools_load()
    if database_recently_unreachable():
        return 0
    shards_reap_stale()
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.SHARD_HEARTBEAT_TIMEOUT_S)
    handed = 0
    for run in Run.objects.filter(
        status__in=[Run.Status.RUNNING, Run.Status.CANCELLING], supervisor_heartbeat_at__lt=cutoff
    ):
        token = uuid.uuid4().hex
        if Run.objects.filter(pk=run.pk, supervisor_token=run.supervisor_token).update(
            supervisor_token=token, supervisor_heartbeat_at=now
        ):
            enqueue(TaskName.SUPERVISE_RUN, run.pk, token)
            handed += 1
    never = now - timedelta(seconds=settings.SHARD_START_TIMEOUT_S)
    # a mirror session is claimed by the worker that holds its socket: unclaimed, no worker took it
    Run.objects.filter(kind=Run.Kind.MIRROR, status=Run.Status.QUEUED, created_at__lt=never).update(
        status=Run.Status.FAILED, ended_at=now, reason="No worker picked the run up."
    )
    runs_repeat_resume()
    runs_admit_queued()
    # a deleted run whose background delete never ran (broker down, worker restarted): again
    for run_id in (
        Run.all_objects.exclude(deleted_at=None)
        .filter(deleted_at__lt=now - timedelta(seconds=DELETE_RETRY_S))
        .values_list("pk", flat=True)[:20]
    ):
        enqueue(TaskName.DELETE_RUN, run_id)
    return handed


def runs_repeat_resume() -> list[int]:
    """Repeated sets whose latest repetition finished but whose next one never started (the database
    went away between finalize's status update and its ``run_repeat_next``): the next one starts now,
    once (``run_repeat_next`` locks the set). Only within ``REPEAT_NEXT_GRACE_S`` of that end: past
    it the pages call the set over, and it stays so. Returns the runs started."""
    from benchmarks.services.runs.start import run_repeat_next

    now = timezone.now()
    started: list[int] = []
    successor = Run.all_objects.filter(
        repeat_of_id=Coalesce(OuterRef("repeat_of_id"), OuterRef("pk")),
        repeat_index__gt=OuterRef("repeat_index"),
    )
    stalled = (
        Run.objects.filter(
            status=Run.Status.FINISHED,
            spec__repeat__gt=1,
            ended_at__lt=now - timedelta(seconds=REPEAT_RESUME_S),
            ended_at__gt=now - timedelta(seconds=REPEAT_NEXT_GRACE_S),
            plan__isnull=False,
        )
        .annotate(total=Cast(KeyTextTransform("repeat", "spec"), IntegerField()))
        .filter(repeat_index__lt=F("total") - 1)
        .exclude(reason__startswith="Repetitions stopped")
        .exclude(Exists(successor))
        .only("pk")
        .order_by("pk")
    )
    for run_id in [r.pk for r in stalled]:
        try:
            run = Run.objects.select_related("plan", "created_by").get(pk=run_id)
            nxt = run_repeat_next(run=run)
        except Exception:  # one set must not stop the reaper's other work
            log.exception("resuming the repeated set of run %s failed", run_id)
            continue
        if nxt is not None:
            log.warning("run %s: repetition %d started late by the reaper", run_id, nxt.repeat_index)
            started.append(nxt.pk)
    return started


def spools_load() -> int:
    """Load every spool on this machine whose database insert can go through now."""
    loaded = 0
    for run_id in spool_runs():
        try:
            loaded += spool_load(run_id=run_id)
        except DATABASE_DOWN:
            database_unreachable()
            break
        except Exception:  # one bad spool must not stop the reaper
            log.exception("loading the spool of run %s failed", run_id)
    return loaded
