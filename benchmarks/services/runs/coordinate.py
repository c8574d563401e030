"""Splitting a run into shards, one per live load worker, and sending each to its worker."""

from __future__ import annotations

import logging
import time
import uuid

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from benchmarks.models import Run, Shard
from benchmarks.services.dispatch import TaskName, enqueue

log = logging.getLogger(__name__)


def load_workers() -> list[str]:
    """Hostnames of live workers consuming the load queue (none in embedded mode)."""
    if settings.EMBEDDED_WORKER:
        return []
    from llmperf_site.celery import app

    try:
        queues = app.control.inspect(timeout=1.0).active_queues() or {}
    except Exception:  # broker hiccup: fall back to the default shard count
        log.exception("could not inspect workers")
        return []
    load = settings.CELERY_LOAD_QUEUE
    return sorted(host for host, qs in queues.items() if any(q.get("name") == load for q in qs))


def shard_count_for(run: Run, workers: list[str]) -> int:
    if run.shard_count:
        return run.shard_count
    return len(workers) or settings.DEFAULT_SHARD_COUNT


def run_coordinate(*, run_id: int) -> None:
    """Claim the queued run, create its shards, then start the aggregator and every shard."""
    if not Run.objects.filter(pk=run_id, status=Run.Status.QUEUED).update(
        status=Run.Status.RUNNING, started_at=timezone.now()
    ):
        return  # cancelled before it started, or another coordinator has it
    workers = load_workers()
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        count = shard_count_for(run, workers)
        run.shard_count = count
        run.spec["run_started_epoch"] = time.time()  # aligns the shards' per-second indices
        run.supervisor_token = uuid.uuid4().hex
        run.supervisor_heartbeat_at = timezone.now()
        run.save(update_fields=["shard_count", "spec", "supervisor_token", "supervisor_heartbeat_at"])
        shards = [
            Shard.objects.create(run=run, index=i, target_worker=workers[i % len(workers)] if workers else "")
            for i in range(count)
        ]
    _dispatch(run, shards)


def _dispatch(run: Run, shards: list[Shard]) -> None:
    from celery.utils import worker_direct

    enqueue(TaskName.SUPERVISE_RUN, run.pk, run.supervisor_token)
    for shard in shards:
        # Straight to the chosen worker's own queue, so shards really spread over machines.
        queue = worker_direct(shard.target_worker) if shard.target_worker else settings.CELERY_LOAD_QUEUE
        enqueue(TaskName.RUN_SHARD, shard.pk, queue=queue)
