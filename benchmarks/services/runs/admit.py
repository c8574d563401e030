"""Admitting queued runs: a run starts only within its team's quotas (runs at once, load slots at
once) and when the live load workers have a free slot for each of its shards. Otherwise it stays
queued, its ``reason`` says what it waits for and its page shows its place in line; housekeeping
(beat, or the embedded thread) and every run that ends try the queue again, oldest first.

A load slot is one shard: a worker's slots are its pool size (Celery's ``inspect().stats()``), less
the shards of active runs already sent to it. Where the workers are unknown (embedded mode, or no
answer from the broker) only the team quotas apply.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.utils import timezone

from benchmarks.models import Run, Shard, Team

log = logging.getLogger(__name__)
LOCK_KEY = 0x6C6C6D70  # "llmp": one admission at a time (Postgres advisory lock)


@dataclass(slots=True, frozen=True)
class Decision:
    """``targets``: a worker per shard when admitted ("" = the shared load queue); ``wait``: why it
    stays queued; ``refuse``: why it can never start as it is (more shards than there are slots)."""

    targets: list[str] | None = None
    wait: str = ""
    refuse: str = ""


def team_quotas(team: Team) -> tuple[int, int]:
    """(runs at once, load slots at once): the team's own, else the settings'."""
    runs = team.max_concurrent_runs if team.max_concurrent_runs is not None else settings.TEAM_MAX_RUNS
    slots = team.max_load_slots if team.max_load_slots is not None else settings.TEAM_MAX_LOAD_SLOTS
    return runs, slots


def load_worker_slots() -> dict[str, int] | None:
    """Pool size of each live worker consuming the load queue; None when not known."""
    if settings.EMBEDDED_WORKER:
        return None
    from llmperf_site.celery import app

    try:
        inspect = app.control.inspect(timeout=1.0)
        queues = inspect.active_queues() or {}
        stats = inspect.stats() or {}
    except Exception:  # broker hiccup: the workers are unknown, only the quotas apply
        log.exception("could not inspect workers")
        return None
    load = settings.CELERY_LOAD_QUEUE
    hosts = [host for host, qs in queues.items() if any(q.get("name") == load for q in qs)]
    if not hosts:
        return None
    return {
        h: int(((stats.get(h) or {}).get("pool") or {}).get("max-concurrency") or 1) for h in sorted(hosts)
    }


def admission_lock() -> None:
    """Serialise admissions (inside a transaction): two coordinators never give away one slot."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


def decide(run: Run, count: int, slots: dict[str, int] | None) -> Decision:
    """Whether ``run`` (needing ``count`` shards) may start now; call under :func:`admission_lock`."""
    max_runs, max_slots = team_quotas(run.team)
    if count > max_slots:
        return Decision(
            refuse=f"The run needs {count} shards; the team's quota is {max_slots} load slots "
            "(TEAM_MAX_LOAD_SLOTS or the team's own)."
        )
    if slots is not None and count > sum(slots.values()):
        short = (
            f"The run needs {count} shards; the live load workers have {sum(slots.values())} "
            f"slots ({len(slots)} workers)."
        )
        # workers restarting or missing one inspect must not fail a run: it waits, and is refused
        # only once it has waited as long as a shard may take to start
        waited = (timezone.now() - run.created_at).total_seconds()
        if waited >= settings.SHARD_START_TIMEOUT_S:
            return Decision(refuse=f"{short} Waited {waited:.0f} s for more.")
        return Decision(wait=f"Waiting for load workers: {short}")
    earlier = (
        Run.objects.filter(team_id=run.team_id, kind=Run.Kind.LOAD, status=Run.Status.QUEUED, pk__lt=run.pk)
        .order_by("pk")
        .first()
    )
    if earlier is not None:
        return Decision(wait=f"Waiting behind run {earlier.pk} of the same team.")
    active = Run.objects.filter(
        team_id=run.team_id, kind=Run.Kind.LOAD, status__in=[Run.Status.RUNNING, Run.Status.CANCELLING]
    )
    if active.count() >= max_runs:
        return Decision(
            wait=f"Waiting for the team's quota: {max_runs} runs at once, {active.count()} running."
        )
    busy = busy_shards()
    team_busy = Shard.objects.filter(
        run__team_id=run.team_id,
        run__status__in=Run.ACTIVE,
        status__in=[Shard.Status.QUEUED, Shard.Status.RUNNING],
    ).count()
    if team_busy + count > max_slots:
        return Decision(
            wait=f"Waiting for the team's quota: {max_slots} load slots at once, {team_busy} in use, "
            f"this run needs {count}."
        )
    if slots is None:
        return Decision(targets=[""] * count)
    free = [host for host, n in slots.items() for _ in range(max(0, n - busy[host]))]
    if len(free) < count:
        return Decision(
            wait=f"Waiting for a free load worker: {len(free)} of {sum(slots.values())} slots free, "
            f"this run needs {count}."
        )
    return Decision(targets=_spread(free, count))


def busy_shards() -> Counter[str]:
    """Shards of active runs queued for or running on each worker."""
    rows = Shard.objects.filter(
        run__status__in=Run.ACTIVE, status__in=[Shard.Status.QUEUED, Shard.Status.RUNNING]
    ).values_list("target_worker", "hostname")
    return Counter(target or host for target, host in rows)


def _spread(free: list[str], count: int) -> list[str]:
    """``count`` workers from the free slots, one per worker before any worker gets a second."""
    order: list[str] = []
    remaining = list(free)
    while len(order) < count:
        for host in dict.fromkeys(remaining):
            if len(order) < count:
                order.append(host)
                remaining.remove(host)
    return order


def runs_admit_queued() -> int:
    """Try every queued load run, oldest first; returns how many started."""
    from benchmarks.services.runs.coordinate import run_coordinate

    queued = list(
        Run.objects.filter(kind=Run.Kind.LOAD, status=Run.Status.QUEUED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not queued:
        return 0
    slots = load_worker_slots()
    return sum(1 for run_id in queued if run_coordinate(run_id=run_id, slots=slots))
