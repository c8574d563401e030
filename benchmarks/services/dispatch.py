"""Enqueue Celery tasks, or run them on an in-process thread pool in embedded mode.

Services name tasks (:class:`TaskName`) instead of importing ``benchmarks.tasks``, which imports the
services: tasks call services, never the other way round. ``BenchmarksConfig.ready`` registers them.

Embedded mode (no REDIS_URL) has no broker another process could read, so the worker lives inside
the web process: tasks truly run in the background there, on threads, with the same task code.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from typing import Any

from celery import Task, current_app
from django.conf import settings
from django.db import close_old_connections, connection, transaction

log = logging.getLogger(__name__)


class TaskName(StrEnum):
    COORDINATE_RUN = "benchmarks.tasks.coordinate_run"
    RUN_SHARD = "benchmarks.tasks.run_shard"
    SUPERVISE_RUN = "benchmarks.tasks.supervise_run"
    REAP_STALE_RUNS = "benchmarks.tasks.reap_stale_runs"
    TICK_SCHEDULES = "benchmarks.tasks.tick_schedules"
    COUNT_TOKENS = "benchmarks.tasks.count_tokens"
    SYNTHESIZE_DATASET = "benchmarks.tasks.synthesize_dataset"
    RUN_MIRROR = "benchmarks.tasks.run_mirror"


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _embedded_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(settings.EMBEDDED_WORKER_THREADS, thread_name_prefix="llmperf-worker")
        return _pool


def _run_embedded(task: Task, args: tuple[Any, ...]) -> None:
    close_old_connections()
    try:
        task.apply(args=args, throw=False)
    except Exception:  # the pool swallows exceptions silently otherwise
        log.exception("embedded task %s%r failed", task.name, args)
    finally:
        connection.close()


def enqueue(name: TaskName, *args: Any, queue: Any = None) -> None:
    """Send now (call inside ``on_commit`` when the task reads rows written in this transaction)."""
    task = current_app.tasks[name.value]
    if settings.EMBEDDED_WORKER:
        _embedded_pool().submit(_run_embedded, task, args)
    else:
        task.apply_async(args=args, queue=queue)


def enqueue_on_commit(name: TaskName, *args: Any, queue: Any = None) -> None:
    transaction.on_commit(lambda: enqueue(name, *args, queue=queue))
