"""Ending a run: exact statistics from every raw record in the database, its comparison sample, and an
honest status.

Finalize reads the records as columns over a server-side cursor (never one Python object per record)
and is idempotent: the run's row changes only while it is still active, and only the call that made
that change pushes the final state and starts the next repetition. It heartbeats the run while it
reads, so the reaper leaves it alone; if its worker dies, the heartbeat goes stale and the reaper hands
the run to a new aggregator, which finalizes it from the start."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.utils import timezone

from benchmarks import bridge
from benchmarks.live.push import push_to_viewers
from benchmarks.models import Run, Shard
from benchmarks.selectors.runs import run_record_columns, stored_counts
from benchmarks.selectors.token_audit import token_audit_summary
from benchmarks.services.runs.admit import runs_admit_queued
from benchmarks.services.runs.spool import spool_discard, spool_load
from benchmarks.services.runs.start import run_repeat_next
from benchmarks.services.samples import run_sample_at_end

log = logging.getLogger(__name__)


def run_finalize(*, run_id: int) -> None:
    run = Run.objects.defer("live", "summary").get(pk=run_id)
    if not run.is_active:
        return
    spooled = spool_load(run_id=run_id)  # left by writers that ended while the database was away
    if spooled:
        log.warning("run %s: %d spooled records loaded at finalize", run_id, spooled)
    stored = _settled_counts(run)
    shards = list(run.shards.all())
    _beat(run_id)
    columns = run_record_columns(run_id=run_id, on_chunk=lambda _: _beat(run_id))
    try:
        summary = bridge.run_summary(run, shards, columns)
        status, reason = final_status(run, shards, columns.size)
        status, reason = reconcile(run, shards, stored, status, reason)
    except Exception as exc:
        log.exception("summary of run %s failed", run_id)
        summary, status, reason = {}, Run.Status.FAILED, f"Could not compute the summary: {exc}"
    # --- the run page's token audit: one SQL aggregation over the stored records, kept in the summary
    if summary:
        try:
            summary["token_audit"] = token_audit_summary(run)
        except Exception:  # the engine's own audit stays; the page computes the full one on demand
            log.exception("token audit of run %s failed", run_id)
    # ---
    if summary:  # the request table's unfiltered count, never recounted on a page view
        summary["records_stored"] = columns.size
    if summary:  # what comparisons need of the records, from the same columns
        run_sample_at_end(run=run, records=columns, summary=summary, shards=shards)
    ended = Run.objects.filter(pk=run_id, status__in=Run.ACTIVE).update(
        status=status, reason=reason, summary=summary, ended_at=timezone.now()
    )
    if not ended:
        return  # another finalize (a reaped aggregator's successor) got there first
    spool_discard(run_id=run_id)
    run = Run.objects.defer("live").get(pk=run_id)
    push_to_viewers(run, {"type": "run.final", "status": run.status, "reason": run.reason})
    run_repeat_next(run=run)
    try:  # its slots are free: the next runs in line may start now rather than at housekeeping
        runs_admit_queued()
    except Exception:  # housekeeping tries again; the run itself has ended either way
        log.exception("admitting queued runs after run %s failed", run_id)


def _beat(run_id: int) -> None:
    Run.objects.filter(pk=run_id, status__in=Run.ACTIVE).update(supervisor_heartbeat_at=timezone.now())


def _settled_counts(run: Run) -> dict[int, int]:
    """Records stored per shard, after waiting up to FINALIZE_SETTLE_S for writes still on their way
    (a shard counted more than the database holds)."""
    deadline = time.monotonic() + settings.FINALIZE_SETTLE_S
    while True:
        stored = stored_counts(run_id=run.pk)
        short = any(s.records_count > stored.get(s.index, 0) for s in run.shards.all())
        if not short or time.monotonic() >= deadline:
            return stored
        time.sleep(0.5)
        _beat(run.pk)


def reconcile(
    run: Run, shards: list[Shard], stored: dict[int, int], status: str, reason: str
) -> tuple[str, str]:
    """The summary covers the records in the database. A shard that counted more records than are
    stored (its writes were delayed past its reaping, or lost), or a live total above the stored one,
    makes the run partial and the reason says how many are missing: never a silent undercount."""
    missing: list[str] = []
    for s in shards:
        have = stored.get(s.index, 0)
        if s.records_count > have:
            missing.append(
                f"Shard {s.index} counted {s.records_count} requests but {have} are stored "
                f"({s.records_count - have} missing: its writes did not arrive)."
            )
    total = sum(stored.values())
    snapshot: dict[str, Any] = run.snapshot or {}
    live = int(snapshot.get("completed") or 0) + int(snapshot.get("failed") or 0)
    if live > total and not missing:
        missing.append(f"The live view counted {live} finished requests but {total} are stored.")
    if not missing:
        return status, reason
    text = " ".join([*missing, f"The summary covers the {total} stored requests."])
    if status == Run.Status.FINISHED:
        return Run.Status.PARTIAL, text
    return status, " ".join(x for x in (reason, text) if x)


def final_status(run: Run, shards: list[Shard], n_records: int) -> tuple[str, str]:
    broken = [s for s in shards if s.status in (Shard.Status.DEAD, Shard.Status.FAILED)]
    reasons = [f"Shard {s.index}{_on(s)} {s.status}: {s.error or s.ended_by}" for s in broken]
    if run.status == Run.Status.CANCELLING:
        return Run.Status.PARTIAL, " ".join(
            [run.reason or "Cancelled.", f"Kept {n_records} requests.", *reasons]
        )
    if not broken:
        return Run.Status.FINISHED, ""
    if n_records == 0:
        return Run.Status.FAILED, " ".join(reasons)
    # what was measured before the break is kept and reported: partial, with the reason
    return Run.Status.PARTIAL, " ".join([*reasons, f"Kept {n_records} requests."])


def _on(shard: Shard) -> str:
    return f" on {shard.hostname}" if shard.hostname else ""
