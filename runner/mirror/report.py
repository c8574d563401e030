"""The mirror's summary JSON, written when it stops."""

from __future__ import annotations

from typing import Any

from runner.mirror.live import record_row
from runner.pairing import compare_pairs
from runner.records import RequestRecord
from runner.summary import distribution, summarize


def _row(rec: RequestRecord) -> dict[str, Any]:
    return {
        "outcome": rec.outcome,
        "ttft_ms": rec.ttft_ms,
        "e2e_ms": rec.e2e_ms,
        "tokens_per_s": rec.tokens_per_s,
        "answer_text": rec.answer_text,
    }


def mirror_summary(proxy: Any, duration_s: float) -> dict[str, Any]:
    """``requests``; ``overhead_ms``; ``production``: the engine's summary block; ``shadow``: its
    counts (sampled, sent, succeeded, failed, dropped, failures) and its own summary block;
    ``paired``: shadow − production, request by request."""
    prod: dict[str, RequestRecord] = proxy.production.records
    pool = proxy.shadow
    shadow: dict[str, RequestRecord] = pool.records if pool is not None else {}
    pairs = [(_row(prod[rid]), _row(rec)) for rid, rec in shadow.items() if rid in prod]
    overhead = distribution(proxy.production.overhead_ms)
    shadow_block: dict[str, Any] | None = None
    if pool is not None:  # the spec's counters, then the engine's metric block beside them
        shadow_block = {**pool.counts.to_dict(), **summarize(list(shadow.values()), duration_s=duration_s)}
    out: dict[str, Any] = {
        "requests": proxy.requests,
        "websockets": proxy.websockets,
        "passed_through": proxy.passed_through,
        "duration_s": duration_s,
        "overhead_ms": overhead,
        "shadow": shadow_block,
        "production": summarize(list(prod.values()), duration_s=duration_s),
        "paired": compare_pairs(pairs),
        "errors": [*proxy.production.errors, *(pool.errors if pool is not None else [])][:50],
    }
    if proxy.capture is not None:
        out["captured"] = proxy.capture.lines
    return out


def mirror_records(proxy: Any) -> list[dict[str, Any]]:
    """Both sides' records as one paired A/B run's: production is variant 0, the shadow variant 1,
    each pair sharing the mirror's request id as its prompt id (request ids get a side prefix)."""
    pool = proxy.shadow
    sides = [(0, proxy.production.records), (1, pool.records if pool is not None else {})]
    return [record_row(variant, rid, rec) for variant, records in sides for rid, rec in list(records.items())]
