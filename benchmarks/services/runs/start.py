"""Starting and cancelling runs."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from benchmarks import bridge
from benchmarks.models import Plan, Run, Shard
from benchmarks.services.dispatch import TaskName, enqueue_on_commit


@transaction.atomic
def run_start(*, plan: Plan, by: AbstractBaseUser | None, repeat_of: Run | None = None) -> Run:
    """A queued run with a snapshot of the plan (minus the key); coordination starts after commit.
    A capacity run has one shard (it drives the search); a plan with repeat N starts the first of N
    runs, and each finished one starts the next (``run_repeat_next``)."""
    variant = plan.variant()
    study = bridge.study(plan)
    if plan.repeat > 1:
        study["repeat"] = plan.repeat
    version = plan.dataset.current_version()  # pinned: later versions never change this run
    run = Run.objects.create(
        team=plan.team,
        plan=plan,
        endpoint=plan.endpoint,
        plan_name=plan.name,
        endpoint_name=plan.endpoint.name,
        created_by=by,
        spec={**bridge.stored_run_spec(plan, version), **study},
        dataset_version=version,
        variant=variant,
        variant_text=" ".join(f"{k}={v}" for k, v in variant.items()).lower(),
        shard_count=1 if "capacity" in study else plan.shard_count,
        repeat_of=repeat_of,
        repeat_index=(repeat_of.repetitions.count() + 1) if repeat_of else 0,
    )
    enqueue_on_commit(TaskName.COORDINATE_RUN, run.pk)
    return run


def run_cancel(*, run: Run, by: AbstractBaseUser) -> bool:
    """Queued runs end at once; running ones go to ``cancelling`` and shards stop on their next poll.
    Records measured so far are kept either way."""
    now = timezone.now()
    who = getattr(by, "username", "someone")
    if Run.objects.filter(pk=run.pk, status=Run.Status.QUEUED).update(
        status=Run.Status.PARTIAL, reason=f"Cancelled by {who} before it started.", ended_at=now
    ):
        return True
    cancelled = Run.objects.filter(pk=run.pk, status=Run.Status.RUNNING).update(
        status=Run.Status.CANCELLING, reason=f"Cancelled by {who}."
    )
    Shard.objects.filter(run_id=run.pk, status=Shard.Status.QUEUED).update(
        status=Shard.Status.CANCELLED, ended_by="cancel", ended_at=now
    )
    return bool(cancelled)


def run_repeat_next(*, run: Run) -> Run | None:
    """After a repetition finished cleanly, the plan's next one (same plan as it is now); None when
    the set is complete, the run did not finish, or its plan is gone."""
    total = int((run.spec or {}).get("repeat") or 1)
    if run.status != Run.Status.FINISHED or run.repeat_index + 1 >= total or run.plan is None:
        return None
    try:
        return run_start(plan=run.plan, by=run.created_by, repeat_of=run.repeat_of or run)
    except bridge.NoPrompts as exc:  # the dataset changed under the set: say so on the last run
        Run.objects.filter(pk=run.pk).update(reason=f"Repetitions stopped: {exc}")
        return None
