"""Ending a run: exact statistics from every raw record in the database, its comparison sample, and an
honest status."""

from __future__ import annotations

import logging

from django.utils import timezone

from benchmarks import bridge
from benchmarks.live.push import push_to_viewers
from benchmarks.models import RequestRecord, Run, Shard
from benchmarks.selectors.token_audit import token_audit_summary
from benchmarks.services.runs.admit import runs_admit_queued
from benchmarks.services.runs.spool import spool_discard, spool_load
from benchmarks.services.runs.start import run_repeat_next
from benchmarks.services.samples import run_sample_at_end

log = logging.getLogger(__name__)


def run_finalize(*, run_id: int) -> None:
    run = Run.objects.get(pk=run_id)
    if not run.is_active:
        return
    spooled = spool_load(run_id=run_id)  # left by writers that ended while the database was away
    if spooled:
        log.warning("run %s: %d spooled records loaded at finalize", run_id, spooled)
    shards = list(run.shards.all())
    records = list(RequestRecord.objects.filter(run_id=run_id).order_by("id").values_list("data", flat=True))
    try:
        summary = bridge.run_summary(run, shards, records)
        status, reason = final_status(run, shards, len(records))
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
    if summary:  # what comparisons need of the records, while they are in memory
        run_sample_at_end(run=run, records=records, summary=summary, shards=shards)
    Run.objects.filter(pk=run_id, status__in=Run.ACTIVE).update(
        status=status, reason=reason, summary=summary, ended_at=timezone.now()
    )
    spool_discard(run_id=run_id)
    run.refresh_from_db()
    push_to_viewers(run, {"type": "run.final", "status": run.status, "reason": run.reason})
    run_repeat_next(run=run)
    try:  # its slots are free: the next runs in line may start now rather than at housekeeping
        runs_admit_queued()
    except Exception:  # housekeeping tries again; the run itself has ended either way
        log.exception("admitting queued runs after run %s failed", run_id)


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
