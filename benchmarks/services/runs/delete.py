"""Notes on a run, and deleting one: the run disappears from every page at once (``deleted_at``; the
default manager hides it), and a background task removes its records in chunks, then the row."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from benchmarks.models import RequestRecord, Run, RunSecond
from benchmarks.selectors.runs import repeat_set_ended
from benchmarks.services.dispatch import TaskName, enqueue_on_commit

DELETE_CHUNK = 5_000  # records per DELETE statement: short transactions, no long lock on the table
NOTES_MAX = 10_000


class CannotDelete(ValueError):
    """A run that cannot be deleted now (said in words for the page)."""


def run_notes_update(*, run: Run, notes: str) -> Run:
    run.notes = notes.strip()[:NOTES_MAX]
    Run.objects.filter(pk=run.pk).update(notes=run.notes)  # not save(): never rewrites live or summary
    return run


@transaction.atomic
def run_delete(*, run: Run, by: AbstractBaseUser) -> None:
    """Hide the run now; its records go in the background (task ``delete_run``). A run still going
    is refused: cancel it first, so no shard writes records into a run being deleted. So is a run of
    a repeated set that is still going: its next repetitions would attach to a run being removed."""
    if int((run.spec or {}).get("repeat") or 1) > 1 and not repeat_set_ended(run=run)[1]:
        raise CannotDelete(
            f"Run {run.pk} belongs to a repeated set that is still going: delete it once the set has ended."
        )
    if (
        not Run.objects.filter(pk=run.pk, deleted_at=None)
        .exclude(status__in=Run.ACTIVE)
        .update(deleted_at=timezone.now())
    ):
        raise CannotDelete(f"Run {run.pk} is {run.status}: cancel it first, then delete it.")
    enqueue_on_commit(TaskName.DELETE_RUN, run.pk)


def run_delete_execute(*, run_id: int, chunk: int = DELETE_CHUNK) -> int:
    """Remove a deleted run's records chunk by chunk, then the run (its shards, seconds and sample
    cascade); idempotent, so the task can simply run again. Returns how many records it removed."""
    if not Run.all_objects.filter(pk=run_id).exclude(deleted_at=None).exists():
        return 0  # not deleted (or already gone): never remove a live run's records
    removed = 0
    while True:
        ids = list(RequestRecord.objects.filter(run_id=run_id).values_list("pk", flat=True)[:chunk])
        if not ids:
            break
        removed += RequestRecord.objects.filter(pk__in=ids).delete()[0]
    RunSecond.objects.filter(run_id=run_id).delete()
    Run.all_objects.filter(pk=run_id).delete()
    return removed
