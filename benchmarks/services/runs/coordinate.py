"""Splitting a run into shards, one per live load worker, and sending each to its worker — once the
run is admitted (services/runs/admit.py: team quotas and free worker slots); until then it stays
queued, saying what it waits for."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from benchmarks.models import Run, Shard
from benchmarks.services.dispatch import TaskName, enqueue
from benchmarks.services.runs.admit import admission_lock, decide, load_worker_slots

log = logging.getLogger(__name__)


def shard_count_for(run: Run, workers: list[str]) -> int:
    if run.shard_count:
        return run.shard_count
    return len(workers) or settings.DEFAULT_SHARD_COUNT


_UNSET: Any = object()


def run_coordinate(*, run_id: int, slots: dict[str, int] | None = _UNSET) -> bool:
    """Admit the queued run (team quotas, free worker slots), create its shards, then start the
    aggregator and every shard. A run that must wait stays queued with the reason; one that can never
    start as it is (more shards than there are slots) fails saying so. Returns whether it started.
    ``slots``: the load workers' pool sizes when the caller already asked (None = unknown)."""
    if slots is _UNSET:
        slots = load_worker_slots()
    workers = sorted(slots) if slots else []
    with transaction.atomic():
        admission_lock()
        run = Run.objects.select_for_update().select_related("team").filter(pk=run_id).first()
        if run is None or run.status != Run.Status.QUEUED:
            return False  # cancelled before it started, or another coordinator has it
        count = shard_count_for(run, workers)
        decision = decide(run, count, slots)
        if decision.refuse:
            Run.objects.filter(pk=run.pk).update(
                status=Run.Status.FAILED, reason=decision.refuse, ended_at=timezone.now()
            )
            return False
        if decision.targets is None:
            if run.reason != decision.wait:
                Run.objects.filter(pk=run.pk).update(reason=decision.wait)
            return False
        run.status, run.started_at, run.reason = Run.Status.RUNNING, timezone.now(), ""
        run.shard_count = count
        run.spec["run_started_epoch"] = time.time()  # aligns the shards' per-second indices
        run.supervisor_token = uuid.uuid4().hex
        run.supervisor_heartbeat_at = timezone.now()
        run.save(
            update_fields=[
                "status",
                "started_at",
                "reason",
                "shard_count",
                "spec",
                "supervisor_token",
                "supervisor_heartbeat_at",
            ]
        )
        shards = [
            Shard.objects.create(run=run, index=i, target_worker=target)
            for i, target in enumerate(decision.targets)
        ]
    _dispatch(run, shards)
    return True


def _dispatch(run: Run, shards: list[Shard]) -> None:
    from celery.utils import worker_direct

    enqueue(TaskName.SUPERVISE_RUN, run.pk, run.supervisor_token)
    for shard in shards:
        # Straight to the chosen worker's own queue, so shards really spread over machines.
        queue = worker_direct(shard.target_worker) if shard.target_worker else settings.CELERY_LOAD_QUEUE
        enqueue(TaskName.RUN_SHARD, shard.pk, queue=queue)
