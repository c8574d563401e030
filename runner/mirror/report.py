"""The mirror's summary JSON, written when it stops."""

from __future__ import annotations

from typing import Any

from runner.columns import summarize_columns
from runner.mirror.live import SIDES
from runner.mirror.store import RecordStore
from runner.pairing import compare_rows
from runner.summary import distribution


def mirror_summary(proxy: Any, duration_s: float) -> dict[str, Any]:
    """``requests``; ``overhead_ms``; ``production``: the engine's summary block; ``shadow``: its
    counts (sampled, sent, succeeded, failed, dropped, failures) and its own summary block;
    ``paired``: shadow − production, request by request. Computed from the records' spill files
    and the pairs' rows (:mod:`runner.mirror.store`): the numbers ``summarize`` and
    ``compare_pairs`` give over the records themselves."""
    prod: RecordStore = proxy.production.records
    pool = proxy.shadow
    overhead = distribution(proxy.production.overhead_ms)
    shadow_block: dict[str, Any] | None = None
    if pool is not None:  # the spec's counters, then the engine's metric block beside them
        shadow_block = {
            **pool.counts.to_dict(),
            **summarize_columns(pool.records.columns(), duration_s=duration_s),
        }
    out: dict[str, Any] = {
        "requests": proxy.requests,
        "websockets": proxy.websockets,
        "passed_through": proxy.passed_through,
        "duration_s": duration_s,
        "overhead_ms": overhead,
        "shadow": shadow_block,
        "production": summarize_columns(prod.columns(), duration_s=duration_s),
        "paired": compare_rows(proxy.pairing.pairs()),
        "errors": [*proxy.production.errors, *(pool.errors if pool is not None else [])][:50],
    }
    if proxy.capture is not None:
        out["captured"] = proxy.capture.lines
    return out


def mirror_records(proxy: Any) -> list[dict[str, Any]]:
    """Both sides' records as one paired A/B run's: production is variant 0, the shadow variant 1,
    each pair sharing the mirror's request id as its prompt id (request ids get a side prefix)."""
    pool = proxy.shadow
    stores: list[RecordStore] = [proxy.production.records, *([pool.records] if pool is not None else [])]
    out = []
    for variant, store in enumerate(stores):
        for row in store.rows():
            rid = row["request_id"]
            row.update(request_id=f"{SIDES[variant]}-{rid}", prompt_id=rid, variant=variant)
            out.append(row)
    return out
