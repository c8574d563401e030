"""Ending a run: exact statistics from every raw record in the database, and an honest status."""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from benchmarks.models import RequestRecord, Run, Shard
from benchmarks.services.compare_samples import run_sample_at_end
from benchmarks.services.push import push_to_viewers

log = logging.getLogger(__name__)


def run_finalize(*, run_id: int) -> None:
    run = Run.objects.get(pk=run_id)
    if not run.is_active:
        return
    shards = list(run.shards.all())
    records = list(RequestRecord.objects.filter(run_id=run_id).order_by("id").values_list("data", flat=True))
    try:
        summary = run_summary(run, shards, records)
        status, reason = final_status(run, shards, len(records))
    except Exception as exc:
        log.exception("summary of run %s failed", run_id)
        summary, status, reason = {}, Run.Status.FAILED, f"Could not compute the summary: {exc}"
    if summary:  # what comparisons need of the records, while they are in memory
        run_sample_at_end(run=run, records=records, summary=summary, shards=shards)
    Run.objects.filter(pk=run_id, status__in=Run.ACTIVE).update(
        status=status, reason=reason, summary=summary, ended_at=timezone.now()
    )
    run.refresh_from_db()
    push_to_viewers(run, {"type": "run.final", "status": run.status, "reason": run.reason})


def run_summary(run: Run, shards: list[Shard], records: list[dict[str, Any]]) -> dict[str, Any]:
    from runner import Slo, summarize

    spec = run.spec
    endpoint = spec.get("endpoint", {})
    return summarize(
        records,
        duration_s=measured_duration_s(shards),
        bucket_edges=list(spec.get("bucket_edges") or []),
        slo=Slo(**spec.get("slo", {})),
        price_in_per_1k=float(endpoint.get("price_in_per_1k") or 0),
        price_out_per_1k=float(endpoint.get("price_out_per_1k") or 0),
        currency=str(endpoint.get("currency") or "USD"),
        length_is_failure=bool(spec.get("length_is_failure")),
        engine=merged_engine(shards),
    )


def measured_duration_s(shards: list[Shard]) -> float:
    starts = [s.started_at for s in shards if s.started_at]
    ends = [s.ended_at for s in shards if s.ended_at]
    if not starts or not ends:
        return 0.0
    return max((max(ends) - min(starts)).total_seconds(), 0.0)


def merged_engine(shards: list[Shard]) -> dict[str, Any] | None:
    """The most loaded shard's engine health speaks for the run (saturation anywhere skews it)."""
    engines = [s.engine for s in shards if s.engine]
    if not engines:
        return None
    return max(engines, key=lambda e: float(e.get("lag_ms_p99") or 0.0))


def final_status(run: Run, shards: list[Shard], n_records: int) -> tuple[str, str]:
    broken = [s for s in shards if s.status in (Shard.Status.DEAD, Shard.Status.FAILED)]
    reasons = [f"Shard {s.index}{_on(s)} {s.status}: {s.error or s.ended_by}" for s in broken]
    if run.status == Run.Status.CANCELLING:
        return Run.Status.PARTIAL, " ".join(
            [run.reason or "Cancelled.", f"Kept {n_records} requests.", *reasons]
        )
    if not broken:
        return Run.Status.FINISHED, ""
    if n_records == 0 or len(broken) == len(shards):
        return Run.Status.FAILED, " ".join(reasons)
    return Run.Status.PARTIAL, " ".join(reasons)


def _on(shard: Shard) -> str:
    return f" on {shard.hostname}" if shard.hostname else ""
