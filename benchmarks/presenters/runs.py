"""The run page and one request's page: what the templates show, built from selectors' rows and the
metric registry (every heading is the glossary's)."""

from __future__ import annotations

from typing import Any

from benchmarks.charts import runs as charts
from benchmarks.models import RequestRecord, Run
from benchmarks.presenters.accuracy import accuracy_page, quality_page, summary_current
from benchmarks.presenters.studies import study_page
from benchmarks.selectors.runs import (
    live_payload,
    run_failures,
    run_gaps,
    run_points,
    run_series,
    run_shards,
)
from benchmarks.selectors.token_audit import run_token_audit
from runner import CSV_KEYS, DISTRIBUTION_KEYS, METRICS

ITL_POINTS = 200_000  # gaps drawn in the ITL histogram at most
CSV_FIELDS = [
    "request_id",
    "prompt_id",
    "shard",
    "user",
    "outcome",
    "error",
    "http_status",
    "started_epoch",
    "scheduled_s",
    *CSV_KEYS,
    "input_tokens",
    "output_tokens",
    "thinking_tokens",
    "content_chunks",
    "finish_reason",
]


def run_page(run: Run, *, audit_threshold: float) -> dict[str, Any]:
    seconds = run_series(run=run)
    context: dict[str, Any] = {
        "run": run,
        "shards": run_shards(run=run),
        "live": live_payload(run, rows=seconds),
    }
    context |= study_page(run, seconds=seconds)
    if not run.is_active:
        context |= _finished(run) | _buckets_and_audit(run, audit_threshold)
        context |= accuracy_page(run) | quality_page(run)
    return context


def metric_rows(block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(heading, distribution) of every distribution metric, in the registry's order."""
    return [(METRICS[key].heading, block.get(key) or {}) for key in DISTRIBUTION_KEYS]


def _finished(run: Run) -> dict[str, Any]:
    summary = run.summary or {}
    t0 = _t0(run)
    rows = [{**r, "t": round(r["started_epoch"] - t0, 3)} for r in run_points(run=run)]
    ttfts = [r["ttft_ms"] for r in rows if r["ttft_ms"] is not None]
    ttft, tps = METRICS["ttft_ms"], METRICS["tokens_per_s"]
    figures = {
        "ttft_hist": charts.ttft_histogram(ttfts),
        "ttft_cdf": charts.cdf(ttfts, f"{ttft.label} CDF", ttft.unit),
        "itl_hist": charts.itl_histogram(run_gaps(run=run, limit=ITL_POINTS)),
        "ttft_points": charts.per_request_scatter(
            [r for r in rows if r["ttft_ms"] is not None],
            "ttft_ms",
            f"{ttft.label} per request (click a point)",
            ttft.unit,
        ),
        "tps_points": charts.per_request_scatter(
            [r for r in rows if r["tokens_per_s"] is not None],
            "tokens_per_s",
            f"{tps.label} (click a point)",
            tps.unit,
        ),
    }
    return {
        "summary": summary,
        "metric_rows": metric_rows(summary),
        "buckets": summary.get("buckets") or [],
        "failures": run_failures(run=run),
        "figures": figures,
    }


def _buckets_and_audit(run: Run, threshold: float) -> dict[str, Any]:
    """The finished run page's per-bucket blocks (every metric) and its token audit."""
    blocks = [
        {"label": b.get("label"), "block": b, "metrics": metric_rows(b)}
        for b in (run.summary or {}).get("buckets") or []
    ]
    return {"bucket_blocks": blocks, "audit": run_token_audit(run, threshold=threshold)}


def _t0(run: Run) -> float:
    return float(run.spec.get("run_started_epoch") or (run.started_at.timestamp() if run.started_at else 0.0))


def request_page(run: Run, record: RequestRecord) -> dict[str, Any]:
    data = record.data
    return {
        "run": run,
        "record": record,
        "fields": [(k, v) for k, v in data.items() if k not in ("packets", "itl_ms", "answer_text")],
        "packets": data.get("packets") or [],
        "timeline": charts.packet_timeline(data.get("packets") or []),
        "answer": data.get("answer_text", ""),
    }


def summary_document(run: Run) -> dict[str, Any]:
    """The run's summary.json download."""
    return {
        "run": run.pk,
        "plan": run.plan_name,
        "endpoint": run.endpoint_name,
        "status": run.status,
        "reason": run.reason,
        "variant": run.variant,
        "summary": summary_current(run.summary),
    }
