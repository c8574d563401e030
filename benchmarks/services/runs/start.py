"""Starting and cancelling runs."""

from __future__ import annotations

import dataclasses

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
    runs, and each finished one starts the next (``run_repeat_next``). Raises ``bridge.RunRefused``
    (nothing to send, or past the deployment's limits) before anything is stored."""
    variant = plan.variant()
    study = bridge.study(plan)
    if plan.repeat > 1:
        study["repeat"] = plan.repeat
    version = plan.dataset.current_version()  # pinned: later versions never change this run
    spec = bridge.run_spec(plan, version)
    shard_count = 1 if "capacity" in study or "kv_reuse" in study else plan.shard_count
    # the limits again, as they are now: the plan and its profile may predate a lower limit
    bridge.run_limits_check(dataclasses.replace(spec, shard_count=max(shard_count, 1)), study)
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
        shard_count=shard_count,
        repeat_of=repeat_of,
        repeat_index=(repeat_of.repetitions.count() + 1) if repeat_of else 0,
    )
    enqueue_on_commit(TaskName.COORDINATE_RUN, run.pk)
    return run


class CannotRerun(ValueError):
    """A run whose snapshot cannot be sent again as it was (said in words for the page)."""


@transaction.atomic
def run_start_again(*, run: Run, by: AbstractBaseUser | None) -> Run:
    """A new run of exactly ``run``'s stored snapshot (``Run.spec``: the same prompts, load, endpoint
    settings and dataset version), whatever its plan says now; one run, even when the snapshot was one
    of a repeated set. The key is read from the endpoint at the shard, as for any run, so the endpoint
    must still point where the snapshot did (its key is never sent anywhere else)."""
    if run.kind != Run.Kind.LOAD:
        raise CannotRerun("A mirror session is not a load test: start a new session instead.")
    if run.endpoint is None:
        raise CannotRerun(f"Endpoint {run.endpoint_name!r} was deleted: there is no key to send with.")
    sent = (run.spec or {}).get("endpoint") or {}
    if [sent.get("base_url"), sent.get("model")] != [run.endpoint.base_url, run.endpoint.model]:
        raise CannotRerun(
            f"Endpoint {run.endpoint.name!r} now points at {run.endpoint.base_url} ({run.endpoint.model}), "
            f"not {sent.get('base_url')} ({sent.get('model')}) as in this run: its key is not sent "
            "to another server. Start the plan instead."
        )
    spec = {k: v for k, v in run.spec.items() if k not in ("run_started_epoch", "repeat")}
    try:  # the limits as they are now: the snapshot may predate a lower limit
        bridge.stored_limits_check(spec, shard_count=run.shard_count)
    except bridge.OverLimits as exc:
        raise CannotRerun(str(exc)) from None
    again = Run.objects.create(
        team=run.team,
        plan=run.plan,
        endpoint=run.endpoint,
        plan_name=run.plan_name,
        endpoint_name=run.endpoint_name,
        created_by=by,
        spec=spec,
        dataset_version=run.dataset_version,
        variant=run.variant,
        variant_text=run.variant_text,
        shard_count=run.shard_count,
        notes=f"Run again from the snapshot of run #{run.pk}.",
    )
    enqueue_on_commit(TaskName.COORDINATE_RUN, again.pk)
    return again


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
    root_id = run.repeat_of_id or run.pk
    with transaction.atomic():
        # the set's first run, locked: finalize and the reaper (which resumes a stalled set) may both
        # get here, and the next repetition starts once
        Run.all_objects.select_for_update().filter(pk=root_id).first()
        if Run.all_objects.filter(repeat_of_id=root_id, repeat_index__gt=run.repeat_index).exists():
            return None
        try:
            return run_start(plan=run.plan, by=run.created_by, repeat_of=run.repeat_of or run)
        except bridge.RunRefused as exc:  # the dataset or the limits changed under the set: say so
            Run.objects.filter(pk=run.pk).update(reason=f"Repetitions stopped: {exc}")
            return None
