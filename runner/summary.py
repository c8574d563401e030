"""The run's summary, exact: percentiles over the raw records (never from sketches)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from runner.accuracy import accuracy_block
from runner.exact import blocked_sum
from runner.metrics import CONVENTIONS, DISTRIBUTION_KEYS
from runner.quality import quality_block
from runner.records import Outcome, RequestRecord
from runner.spec import Prompt, Slo

LATENCY_KEYS = tuple(k for k in DISTRIBUTION_KEYS if k != "itl_ms")  # itl_ms: every gap, pooled below


# The summary's shape (CLI --json, stored runs, the API). Bump it when a key changes meaning or
# moves, and say what changed in CHANGELOG.md.
SCHEMA_VERSION = 3


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), on sorted input."""
    n = len(sorted_values)
    if n == 1:
        return float(sorted_values[0])
    pos = (n - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def distribution(values: Iterable[float | None] | npt.NDArray[np.float64]) -> dict[str, float | int | None]:
    """Exact percentiles (linear interpolation between closest ranks), mean, max and min. The mean sums
    the values in blocks (:func:`runner.exact.blocked_sum`), so :class:`runner.exact.Exact` gives the
    same one from a stream read in chunks."""
    if isinstance(values, np.ndarray):
        xs = values
    else:
        xs = np.fromiter((v for v in values if v is not None), dtype=np.float64)
    if not xs.size:
        return {"count": 0, "p50": None, "p90": None, "p95": None, "p99": None, "mean": None, "max": None}
    p50, p90, p95, p99 = (float(q) for q in np.percentile(xs, [50, 90, 95, 99]))
    return {
        "count": int(xs.size),
        "p50": p50,
        "p90": p90,
        "p95": p95,
        "p99": p99,
        "mean": blocked_sum(xs) / xs.size,
        "max": float(xs.max()),
        "min": float(xs.min()),
    }


def pooled_itl(recs: Sequence[RequestRecord]) -> npt.NDArray[np.float64]:
    """Every inter-token gap of every request, as one array (built per record, not per gap)."""
    parts = [np.asarray(r.itl_ms, dtype=np.float64) for r in recs if r.itl_ms]
    return np.concatenate(parts) if parts else np.empty(0)


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
        "itl_ms": distribution(pooled_itl(ok)),
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

    values: dict[str, Iterable[float | None] | npt.NDArray[np.float64]] = {
        "ttft_ms": (r.ttft_ms for r in ok),
        "ttft_first_chunk_ms": (r.first_chunk_ms for r in ok),
        "ttft_answer_ms": (r.ttft_answer_ms for r in ok),
        "itl_pooled_ms": pooled_itl(ok),
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
    prompts: Mapping[str, Prompt] | Iterable[Prompt] | None = None,
) -> dict[str, Any]:
    """``prompts`` (by id, or the run's list) give graded items their subject and level, and make a
    request whose prompt has an expected answer count as graded even when it failed ungraded."""
    recs = _as_records(records)
    by_id = _prompts_by_id(prompts)
    slo = slo or Slo()
    summary = {"schema_version": SCHEMA_VERSION, **_block(recs, duration_s, slo, length_is_failure)}
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
    in_bucket = _by_bucket(recs, bucket_edges)
    for lo, hi in bucket_bounds(bucket_edges):
        inside = in_bucket.get(bucket_label(lo, hi))
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
            | _quality_point([r for r in recs if r.level == level], by_id)
            for level in levels
        ]
    accuracy = accuracy_block(recs, prompts=by_id, buckets=in_bucket)
    if accuracy is not None:  # a failed request counts as a wrong answer
        summary["accuracy"] = accuracy
    summary["quality"] = quality_block(recs, buckets=in_bucket)
    from runner.token_stats import chunk_stats, prefix_cache_share  # here: token_stats imports summary

    summary["prefix_cache"] = prefix_cache_share(r for r in recs if r.outcome != Outcome.CANCELLED.value)
    summary["chunks"] = chunk_stats(ok)
    summary["engine"] = engine or {}
    return summary


def _by_bucket(recs: list[RequestRecord], edges: Sequence[int]) -> dict[str, list[RequestRecord]]:
    out: dict[str, list[RequestRecord]] = {}
    for lo, hi in bucket_bounds(edges):
        inside = [
            r for r in recs if (n := _bucket_tokens(r)) is not None and n >= lo and (hi is None or n < hi)
        ]
        if inside:
            out[bucket_label(lo, hi)] = inside
    return out


def refresh_accuracy(
    summary: dict[str, Any],
    records: Iterable[RequestRecord | dict[str, Any]],
    *,
    prompts: Mapping[str, Prompt] | Iterable[Prompt],
    bucket_edges: Sequence[int] = (0, 1024, 4096, 16384, 32768, 49152),
) -> None:
    """Recompute ``summary``'s accuracy (overall, per sweep level, per variant) from ``records`` after
    they were graded again (e.g. symbolically, after the run), with subjects and levels from ``prompts``."""
    recs, by_id = _as_records(records), _prompts_by_id(prompts)
    accuracy = accuracy_block(recs, prompts=by_id, buckets=_by_bucket(recs, bucket_edges))
    if accuracy is not None:
        summary["accuracy"] = accuracy
    for point in summary.get("sweep") or []:
        level = accuracy_block([r for r in recs if r.level == point["level"]], prompts=by_id, detail=False)
        if level is not None:
            point["accuracy"] = level
    for variant in summary.get("variants") or []:
        mine = [r for r in recs if r.variant == variant.get("variant")]
        block = accuracy_block(mine, prompts=by_id, buckets=_by_bucket(mine, bucket_edges))
        if block is not None:
            variant["accuracy"] = block


def _prompts_by_id(prompts: Mapping[str, Prompt] | Iterable[Prompt] | None) -> dict[str, Prompt]:
    if prompts is None:
        return {}
    if isinstance(prompts, Mapping):
        return dict(prompts)
    return {p.id: p for p in prompts}


def _quality_point(recs: list[RequestRecord], prompts: Mapping[str, Prompt]) -> dict[str, Any]:
    """A sweep level's (or a budget's) accuracy and answer quality, beside its latency."""
    q = quality_block(recs)
    point: dict[str, Any] = {"quality": {k: v for k, v in q.items() if k != "by_bucket"}}
    accuracy = accuracy_block(recs, prompts=prompts, detail=False)
    if accuracy is not None:
        point["accuracy"] = accuracy
    return point


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
