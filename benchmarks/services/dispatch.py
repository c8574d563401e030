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
    PURGE_RECORDS = "benchmarks.tasks.purge_records"
    COUNT_TOKENS = "benchmarks.tasks.count_tokens"
    SYNTHESIZE_DATASET = "benchmarks.tasks.synthesize_dataset"
    RUN_MIRROR = "benchmarks.tasks.run_mirror"
    DELETE_RUN = "benchmarks.tasks.delete_run"


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
    if not settings.EMBEDDED_WORKER:
        task.apply_async(args=args, queue=queue)
    elif name is TaskName.SUPERVISE_RUN:
        # an aggregator lives as long as its run: a thread of its own, never a slot of the pool the
        # shards need (five concurrent runs would otherwise starve new shards)
        threading.Thread(
            target=_run_embedded, args=(task, args), name=f"llmperf-aggregator-{args[0]}", daemon=True
        ).start()
    else:
        _embedded_pool().submit(_run_embedded, task, args)


HOUSEKEEPING_EVERY_S = 30.0
_housekeeping: threading.Thread | None = None
_housekeeping_stop = threading.Event()


def housekeeping_start(every_s: float = HOUSEKEEPING_EVERY_S) -> bool:
    """Embedded mode has no Celery beat: one thread reaps stale runs (once at start-up, so a restart
    ends the runs it interrupted as partial, with the reason), ticks the schedules and applies the
    teams' record retention, every
    ``every_s``. Idempotent; returns whether it started the thread now."""
    global _housekeeping
    if not settings.EMBEDDED_WORKER:
        return False
    with _pool_lock:
        if _housekeeping is not None and _housekeeping.is_alive():
            return False
        _housekeeping_stop.clear()
        _housekeeping = threading.Thread(
            target=_housekeeping_loop, args=(every_s,), name="llmperf-housekeeping", daemon=True
        )
        _housekeeping.start()
        return True


def housekeeping_stop(timeout_s: float = 10.0) -> None:
    _housekeeping_stop.set()
    if _housekeeping is not None:
        _housekeeping.join(timeout_s)


def _housekeeping_loop(every_s: float) -> None:
    while not _housekeeping_stop.is_set():
        for name in (TaskName.REAP_STALE_RUNS, TaskName.TICK_SCHEDULES, TaskName.PURGE_RECORDS):
            _run_embedded(current_app.tasks[name.value], ())
        _housekeeping_stop.wait(every_s)


def enqueue_on_commit(name: TaskName, *args: Any, queue: Any = None) -> None:
    transaction.on_commit(lambda: enqueue(name, *args, queue=queue))
