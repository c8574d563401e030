"""Starting and cancelling runs."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from benchmarks import bridge
from benchmarks.models import Plan, Run, Shard
from benchmarks.services.dispatch import TaskName, enqueue_on_commit


@transaction.atomic
def run_start(*, plan: Plan, by: AbstractBaseUser) -> Run:
    """A queued run with a snapshot of the plan (minus the key); coordination starts after commit."""
    variant = plan.variant()
    version = plan.dataset.current_version()  # pinned: later versions never change this run
    run = Run.objects.create(
        team=plan.team,
        plan=plan,
        endpoint=plan.endpoint,
        plan_name=plan.name,
        endpoint_name=plan.endpoint.name,
        created_by=by,
        spec=bridge.run_spec(plan, version).to_dict(),
        dataset_version=version,
        variant=variant,
        variant_text=" ".join(f"{k}={v}" for k, v in variant.items()).lower(),
        shard_count=plan.shard_count,
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
