"""The run's summary, exact: percentiles over the raw records (never from sketches)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from runner.metrics import CONVENTIONS
from runner.records import Outcome, RequestRecord
from runner.spec import Slo

LATENCY_KEYS = (
    "ttft_ms",
    "ttft_answer_ms",
    "first_chunk_ms",
    "thinking_ms",
    "tpot_ms",
    "e2e_ms",
    "tokens_per_s",
)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on sorted input."""
    n = len(sorted_values)
    if n == 1:
        return float(sorted_values[0])
    pos = (n - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def distribution(values: Iterable[float | None]) -> dict[str, float | int | None]:
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return {"count": 0, "p50": None, "p90": None, "p95": None, "p99": None, "mean": None, "max": None}
    return {
        "count": len(xs),
        "p50": percentile(xs, 50),
        "p90": percentile(xs, 90),
        "p95": percentile(xs, 95),
        "p99": percentile(xs, 99),
        "mean": sum(xs) / len(xs),
        "max": xs[-1],
        "min": xs[0],
    }


def _as_records(records: Iterable[RequestRecord | dict[str, Any]]) -> list[RequestRecord]:
    return [r if isinstance(r, RequestRecord) else RequestRecord.from_dict(r) for r in records]


def bucket_bounds(edges: Sequence[int]) -> list[tuple[int, int | None]]:
    edges = sorted(set(edges))
    return [(lo, edges[i + 1] if i + 1 < len(edges) else None) for i, lo in enumerate(edges)]


def bucket_label(lo: int, hi: int | None) -> str:
    def k(n: int) -> str:
        return f"{n // 1024}k" if n and n % 1024 == 0 else str(n)

    return f"{k(lo)}+" if hi is None else f"{k(lo)}–{k(hi)}"


def _goodput(ok: list[RequestRecord], slo: Slo, duration_s: float) -> dict[str, Any]:
    def meets(r: RequestRecord) -> bool:
        if slo.ttft_ms is not None and (r.ttft_ms is None or r.ttft_ms > slo.ttft_ms):
            return False
        if slo.tokens_per_s is not None and (r.tokens_per_s is None or r.tokens_per_s < slo.tokens_per_s):
            return False
        return not (slo.e2e_ms is not None and (r.e2e_ms is None or r.e2e_ms > slo.e2e_ms))

    good = sum(1 for r in ok if meets(r))
    return {
        "slo": {"ttft_ms": slo.ttft_ms, "tokens_per_s": slo.tokens_per_s, "e2e_ms": slo.e2e_ms},
        "requests": good,
        "requests_per_s": good / duration_s if duration_s > 0 else None,
        "fraction_of_ok": good / len(ok) if ok else None,
    }


def _block(recs: list[RequestRecord], duration_s: float, slo: Slo, length_is_failure: bool) -> dict[str, Any]:
    measured = [r for r in recs if r.outcome != Outcome.CANCELLED.value]

    def failed_as(r: RequestRecord) -> str | None:
        if not r.ok:
            return r.outcome
        return Outcome.LENGTH_STOPPED.value if length_is_failure and r.length_stopped else None

    failures: dict[str, int] = {}
    ok: list[RequestRecord] = []
    for r in measured:
        cls = failed_as(r)
        if cls is None:
            ok.append(r)
        else:
            failures[cls] = failures.get(cls, 0) + 1
    out_tokens = sum(r.output_tokens or 0 for r in ok)
    in_tokens = sum(r.input_tokens or 0 for r in ok)
    # what a provider bills: every request the server processed, failed ones included (a 4k-token
    # truncated thinking costs the same); a refusal with no usage and no token processed nothing
    processed = [r for r in measured if r.usage_input_tokens is not None or r.ttft_ms is not None]
    billed_in = sum(r.input_tokens or 0 for r in processed)
    billed_out = sum(r.output_tokens or 0 for r in processed)
    block: dict[str, Any] = {
        "requests": {
            "total": len(measured),
            "succeeded": len(ok),
            "failed": len(measured) - len(ok),
            "failures": dict(sorted(failures.items())),
            "cancelled": len(recs) - len(measured),
            "length_stopped": sum(1 for r in ok if r.length_stopped),
        },
        "success_rate": len(ok) / len(measured) if measured else None,
        "itl_ms": distribution(g for r in ok for g in r.itl_ms),
        "throughput": {
            "requests_per_s": len(ok) / duration_s if duration_s > 0 else None,
            "qpm": len(ok) * 60.0 / duration_s if duration_s > 0 else None,
            "output_tokens_per_s": out_tokens / duration_s if duration_s > 0 else None,
            "input_tokens_per_s": in_tokens / duration_s if duration_s > 0 else None,
        },
        "tokens": {
            "input": in_tokens,
            "output": out_tokens,
            "billed_input": billed_in,
            "billed_output": billed_out,
            "thinking": sum(r.thinking_tokens or 0 for r in ok),
            "estimated": any(r.tokens_estimated for r in measured),
        },
        "goodput": _goodput(ok, slo, duration_s),
    }
    for key in LATENCY_KEYS:
        block[key] = distribution(getattr(r, key) for r in ok)
    return block


def _conventions(ok: list[RequestRecord]) -> dict[str, Any]:
    def tpot_incl(r: RequestRecord) -> float | None:
        return r.e2e_ms / r.output_tokens if r.e2e_ms and r.output_tokens else None

    def tps_e2e(r: RequestRecord) -> float | None:
        return r.output_tokens / (r.e2e_ms / 1000) if r.e2e_ms and r.output_tokens else None

    values: dict[str, Iterable[float | None]] = {
        "ttft_ms": (r.ttft_ms for r in ok),
        "ttft_first_chunk_ms": (r.first_chunk_ms for r in ok),
        "ttft_answer_ms": (r.ttft_answer_ms for r in ok),
        "itl_pooled_ms": (g for r in ok for g in r.itl_ms),
        "itl_request_mean_ms": (r.tpot_ms for r in ok),
        "tpot_ms": (r.tpot_ms for r in ok),
        "tpot_incl_first_ms": (tpot_incl(r) for r in ok),
        "tokens_per_s": (r.tokens_per_s for r in ok),
        "tokens_per_s_e2e": (tps_e2e(r) for r in ok),
        "output_tokens_usage": (r.usage_output_tokens for r in ok),
        "output_tokens_client": (r.client_output_tokens for r in ok),
    }
    return {
        name: {"formula": CONVENTIONS[name][0], "used_by": CONVENTIONS[name][1], **distribution(vals)}
        for name, vals in values.items()
    }


def token_audit(recs: list[RequestRecord], threshold: float = 0.05) -> dict[str, Any]:
    """Server usage vs client count: per request and in total (a billing check)."""
    pairs = [r for r in recs if r.usage_output_tokens is not None and r.client_output_tokens is not None]
    usage = sum(r.usage_output_tokens or 0 for r in pairs)
    client = sum(r.client_output_tokens or 0 for r in pairs)
    off = [
        r.request_id
        for r in pairs
        if abs((r.usage_output_tokens or 0) - (r.client_output_tokens or 0))
        > threshold * max(1, r.client_output_tokens or 0)
    ]
    return {
        "compared": len(pairs),
        "usage_output_tokens": usage,
        "client_output_tokens": client,
        "discrepancy_pct": (usage - client) * 100.0 / client if client else None,
        "disagreeing": len(off),
        "disagreeing_ids": off[:50],
    }


def _bucket_tokens(r: RequestRecord) -> int | None:
    """The count that placed a prompt in its bucket (the dataset's, in the endpoint's tokenizer),
    so a plan drawn from 16k–32k reports in 16k–32k; server usage only when no count was sent."""
    return r.client_input_tokens if r.client_input_tokens is not None else r.input_tokens


def summarize(
    records: Iterable[RequestRecord | dict[str, Any]],
    *,
    duration_s: float,
    bucket_edges: Sequence[int] = (0, 1024, 4096, 16384, 32768, 49152),
    slo: Slo | None = None,
    price_in_per_1k: float = 0.0,
    price_out_per_1k: float = 0.0,
    currency: str = "USD",
    length_is_failure: bool = False,
    engine: dict[str, Any] | None = None,
    level_duration_s: float | None = None,
) -> dict[str, Any]:
    recs = _as_records(records)
    slo = slo or Slo()
    summary = _block(recs, duration_s, slo, length_is_failure)
    ok = [r for r in recs if r.ok]
    summary["duration_s"] = duration_s
    summary["conventions"] = _conventions(ok)
    summary["schedule_lag_ms"] = distribution(r.schedule_lag_ms for r in recs)
    summary["token_audit"] = token_audit(recs)
    t = summary["tokens"]
    summary["cost"] = {
        "currency": currency,
        "input": t["billed_input"] / 1000 * price_in_per_1k,
        "output": t["billed_output"] / 1000 * price_out_per_1k,
        "total": t["billed_input"] / 1000 * price_in_per_1k + t["billed_output"] / 1000 * price_out_per_1k,
    }
    buckets = []
    for lo, hi in bucket_bounds(bucket_edges):
        inside = [
            r for r in recs if (n := _bucket_tokens(r)) is not None and n >= lo and (hi is None or n < hi)
        ]
        if inside:
            buckets.append(
                {
                    "label": bucket_label(lo, hi),
                    "lo": lo,
                    "hi": hi,
                    **_block(inside, duration_s, slo, length_is_failure),
                }
            )
    summary["buckets"] = buckets
    levels = sorted({r.level for r in recs if r.level is not None})
    if levels:
        summary["sweep"] = [
            _sweep_point(
                level, [r for r in recs if r.level == level], slo, length_is_failure, level_duration_s
            )
            for level in levels
        ]
    graded = [r for r in recs if r.correct is not None and r.outcome != Outcome.CANCELLED.value]
    if graded:
        right = sum(1 for r in graded if r.correct)
        summary["accuracy"] = right / len(graded)  # a failed request counts as a wrong answer
        summary["accuracy_detail"] = {"graded": len(graded), "correct": right}
    from runner.token_stats import chunk_stats, prefix_cache_share  # here: token_stats imports summary

    summary["prefix_cache"] = prefix_cache_share(r for r in recs if r.outcome != Outcome.CANCELLED.value)
    summary["chunks"] = chunk_stats(ok)
    summary["engine"] = engine or {}
    return summary


def _sweep_point(
    level: int, recs: list[RequestRecord], slo: Slo, length_is_failure: bool, level_duration_s: float | None
) -> dict[str, Any]:
    span = level_duration_s or (max(r.scheduled_s for r in recs) - min(r.scheduled_s for r in recs)) or 1.0
    b = _block(recs, span, slo, length_is_failure)
    return {
        "level": level,
        "throughput": b["throughput"],
        "ttft_ms": b["ttft_ms"],
        "e2e_ms": b["e2e_ms"],
        "tokens_per_s": b["tokens_per_s"],
        "success_rate": b["success_rate"],
        "requests": b["requests"],
    }
