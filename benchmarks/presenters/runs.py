"""The run page and one request's page: what the templates show, built from selectors' rows and the
metric registry (every heading is the glossary's)."""

from __future__ import annotations

from typing import Any

from benchmarks.charts import runs as charts
from benchmarks.models import RequestRecord, Run
from benchmarks.presenters.accuracy import accuracy_page, quality_page, summary_current
from benchmarks.presenters.studies import study_page
from benchmarks.selectors.runs import live_payload, run_failures, run_series, run_shards
from benchmarks.selectors.token_audit import run_token_audit
from runner import CSV_KEYS, DISTRIBUTION_KEYS, METRICS, LiveAggregate

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


FAILURES_SHOWN = 10  # the rest are a click away in the requests table
VERDICTS = {  # the engine's verdict on its own measurement, in one sentence (runner/monitor.py)
    "trustworthy": "The load generator kept up: its event loop and send schedule stayed within limits, "
    "so these latencies are the server's.",
    "suspect": "The load generator kept up, but something it measured looks off (below): check it before "
    "trusting the numbers.",
    "client-bound": "The load generator itself was saturated (below): latencies include its own delay, so "
    "the server may be faster than shown — rerun with more shards or fewer users per shard.",
}


def run_page(run: Run, *, audit_threshold: float) -> dict[str, Any]:
    """Everything the run page shows, from bounded reads only: the stored summary, the per-second rows,
    the stored histograms and a few rows of failures — never a query over every record."""
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


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The first numbers a reader looks for, straight from the exact summary."""
    throughput = summary.get("throughput") or {}
    engine = summary.get("engine") or {}
    return {
        "ttft_p50": (summary.get("ttft_ms") or {}).get("p50"),
        "ttft_p99": (summary.get("ttft_ms") or {}).get("p99"),
        "tokens_per_s_p50": (summary.get("tokens_per_s") or {}).get("p50"),
        "output_tokens_per_s": throughput.get("output_tokens_per_s"),
        "qpm": throughput.get("qpm"),
        "success_rate": summary.get("success_rate"),
        "verdict": engine.get("verdict"),
        "verdict_sentence": VERDICTS.get(str(engine.get("verdict")), ""),
    }


def conventions(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """How other tools would report this run: each convention's formula, the tools using it, and its
    distribution (computed from the same records at finalize)."""
    return [
        {"name": name, **c} for name, c in (summary.get("conventions") or {}).items() if isinstance(c, dict)
    ]


def _finished(run: Run) -> dict[str, Any]:
    summary = run.summary or {}
    ttft, tps, e2e, itl = METRICS["ttft_ms"], METRICS["tokens_per_s"], METRICS["e2e_ms"], METRICS["itl_ms"]
    stored = LiveAggregate.from_dict({"total": (run.live or {}).get("total")}).total
    figures = {}
    if stored.ttft.get_total_count():
        figures["ttft_hist"] = charts.stored_histogram(
            stored.ttft, 1000.0, f"{ttft.label} distribution", ttft.unit
        )
        figures["ttft_cdf"] = charts.stored_cdf(stored.ttft, 1000.0, f"{ttft.label} CDF", ttft.unit)
    if stored.e2e.get_total_count():
        figures["e2e_hist"] = charts.stored_histogram(
            stored.e2e, 1000.0, f"{e2e.label} distribution", e2e.unit
        )
    if stored.tokens_per_s.get_total_count():
        figures["tps_hist"] = charts.stored_histogram(
            stored.tokens_per_s, 1000.0, f"{tps.label} distribution", tps.unit
        )
    if (summary.get("itl_ms") or {}).get("count"):
        figures["itl_hist"] = charts.percentile_bars(
            summary["itl_ms"], f"{itl.label} percentiles (every gap, pooled)", itl.unit
        )
    failed = (summary.get("requests") or {}).get("failures") or {}
    return {
        "summary": summary,
        "headline": headline(summary),
        "conventions": conventions(summary),
        "metric_rows": metric_rows(summary),
        "buckets": summary.get("buckets") or [],
        "failure_counts": failed,
        "failures": run_failures(run=run, limit=FAILURES_SHOWN),
        "figures": figures,
        "histograms_stored": bool(figures.get("ttft_hist")),
    }


def _buckets_and_audit(run: Run, threshold: float) -> dict[str, Any]:
    """The finished run page's per-bucket blocks (every metric) and its token audit (a summary)."""
    blocks = [
        {"label": b.get("label"), "block": b, "metrics": metric_rows(b)}
        for b in (run.summary or {}).get("buckets") or []
    ]
    return {"bucket_blocks": blocks, "audit": run_token_audit(run, threshold=threshold)}


def request_page(run: Run, record: RequestRecord) -> dict[str, Any]:
    """One request: its packets, inter-token gaps, usage against the client's count, error, answer."""
    data = record.data
    usage = {k: data.get(k) for k in USAGE_KEYS if k in data}
    return {
        "run": run,
        "record": record,
        "fields": [
            (k, v) for k, v in data.items() if k not in ("packets", "itl_ms", "answer_text", *USAGE_KEYS)
        ],
        "usage": usage,
        "itl": data.get("itl_ms") or [],
        "error": data.get("error") or "",
        "packets": data.get("packets") or [],
        "timeline": charts.packet_timeline(data.get("packets") or []),
        "answer": data.get("answer_text", ""),
    }


USAGE_KEYS = (
    "usage_input_tokens",
    "client_input_tokens",
    "usage_output_tokens",
    "client_output_tokens",
    "cached_input_tokens",
    "thinking_tokens",
    "tokens_estimated",
)


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
