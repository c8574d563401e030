"""Celery tasks: thin, take ids, call services.

Load never runs twice: no retries, and acks happen on receipt (acks_late=False), so a worker that
dies mid-shard loses that shard (the reaper ends it) instead of a second worker re-running the load.
"""

from __future__ import annotations

from celery import shared_task

from benchmarks.services.datasets import synthetic_execute, token_count_execute
from benchmarks.services.dispatch import TaskName
from benchmarks.services.mirrors import mirror_execute
from benchmarks.services.runs.coordinate import run_coordinate
from benchmarks.services.runs.delete import run_delete_execute
from benchmarks.services.runs.reap import runs_reap_stale
from benchmarks.services.runs.retention import records_purge_expired
from benchmarks.services.runs.shard import shard_execute
from benchmarks.services.runs.supervise import run_supervise
from benchmarks.services.schedules import schedules_tick

ONCE = {"acks_late": False, "max_retries": 0, "ignore_result": True}


@shared_task(name=TaskName.COORDINATE_RUN, **ONCE)
def coordinate_run(run_id: int) -> None:
    run_coordinate(run_id=run_id)


@shared_task(bind=True, name=TaskName.RUN_SHARD, **ONCE)
def run_shard(self, shard_id: int) -> None:  # type: ignore[no-untyped-def]
    shard_execute(shard_id=shard_id, hostname=self.request.hostname or "embedded")


@shared_task(name=TaskName.SUPERVISE_RUN, **ONCE)
def supervise_run(run_id: int, token: str) -> None:
    run_supervise(run_id=run_id, token=token)


@shared_task(name=TaskName.REAP_STALE_RUNS, **ONCE)
def reap_stale_runs() -> None:
    runs_reap_stale()


@shared_task(name=TaskName.PURGE_RECORDS, **ONCE)
def purge_records() -> None:
    """Hourly (beat): delete raw records past their team's retention."""
    records_purge_expired()


@shared_task(name=TaskName.TICK_SCHEDULES, **ONCE)
def tick_schedules() -> None:
    """Every minute (beat): start due scheduled runs, check ended ones against their baseline."""
    schedules_tick()


@shared_task(name=TaskName.COUNT_TOKENS, **ONCE)
def count_tokens(count_id: int) -> None:
    """Input tokens of a dataset version in one tokenizer, with progress (never in a web request)."""
    token_count_execute(count_id=count_id)


@shared_task(name=TaskName.SYNTHESIZE_DATASET, **ONCE)
def synthesize_dataset(version_id: int) -> None:
    synthetic_execute(version_id=version_id)


@shared_task(bind=True, name=TaskName.RUN_MIRROR, **ONCE)
def run_mirror(self, run_id: int) -> None:  # type: ignore[no-untyped-def]
    """Holds a mirror session's listening socket on this worker until the session is stopped."""
    mirror_execute(run_id=run_id, hostname=self.request.hostname or "embedded")


@shared_task(name=TaskName.DELETE_RUN, **ONCE)
def delete_run(run_id: int) -> None:
    """A deleted run's records, removed in chunks in the background (the page hid it at once)."""
    run_delete_execute(run_id=run_id)
