"""The run page's capacity, server-metrics and repetition blocks (each its own template include)."""

from __future__ import annotations

from typing import Any

from benchmarks.charts import studies as charts
from benchmarks.models import Run
from benchmarks.selectors.runs import repeat_runs
from runner import METRICS, capacity_sentence, repeat_combine

# the server's metrics in the order the page lists them, with units
SERVER_METRICS = {
    "requests_running": "requests",
    "requests_waiting": "requests",
    "kv_cache_usage": "fraction",
    "prefix_cache_hit_rate": "fraction",
    "spec_decode_acceptance_rate": "fraction",
    "generation_tokens_per_s": "tokens/s",
    "prompt_tokens_per_s": "tokens/s",
}
# repeat.HEADLINES names → the registry's label
REPEAT_LABELS = {
    "ttft_ms_p50": f"{METRICS['ttft_ms'].label} p50",
    "ttft_ms_p99": f"{METRICS['ttft_ms'].label} p99",
    "tokens_per_s_p50": f"{METRICS['tokens_per_s'].label} p50",
    "itl_ms_p50": f"{METRICS['itl_ms'].label} p50",
    "e2e_ms_p50": f"{METRICS['e2e_ms'].label} p50",
    "e2e_ms_p99": f"{METRICS['e2e_ms'].label} p99",
    "qpm": "QPM",
    "output_tokens_per_s": "output tokens/s",
    "goodput_requests_per_s": "goodput (req/s)",
    "success_rate": "success rate",
}


def study_page(run: Run, *, seconds: list[dict[str, Any]]) -> dict[str, Any]:
    """``capacity``, ``server_metrics`` and ``repetitions`` for the run page, and their figures."""
    summary = run.summary or {}
    figures: dict[str, Any] = {}
    context: dict[str, Any] = {"study_figures": figures, "is_capacity": "capacity" in (run.spec or {})}
    if summary.get("capacity"):
        context["capacity"] = capacity_view(summary["capacity"], figures)
    if summary.get("server_metrics"):
        context["server_metrics"] = server_view(summary["server_metrics"], seconds, figures)
    context["repetitions"] = repetitions_view(run)
    context["kv_reuse"] = kv_reuse_view(summary.get("kv_cache_reuse"))
    if summary.get("sweep"):
        context["sweep"] = sweep_view(summary["sweep"], (run.spec or {}).get("profile") or {}, figures)
    return context


def sweep_view(
    points: list[dict[str, Any]], profile: dict[str, Any], figures: dict[str, Any]
) -> dict[str, Any]:
    """A sweep's levels as rows (its load, throughput, latency and — graded — accuracy per level) and
    their curve: throughput against latency, with answer quality beside it."""
    if profile.get("sweep_mode") == "budget":  # a thinking-budget sweep: the level is the budget
        loads, unit = list(profile.get("budget_levels") or []), str(profile.get("budget_param") or "budget")
    else:
        loads = list(profile.get("sweep_levels") or [])
        unit = "req/s" if profile.get("sweep_mode") == "rate" else "users"
    levels = []
    for point in points:
        i = int(point["level"])
        quality = point.get("quality") or {}
        accuracy = point.get("accuracy") or {}
        levels.append(
            {
                "load": loads[i] if i < len(loads) else i,
                "qpm": (point.get("throughput") or {}).get("qpm"),
                "requests_per_s": (point.get("throughput") or {}).get("requests_per_s"),
                "ttft_p50": (point.get("ttft_ms") or {}).get("p50"),
                "ttft_p99": (point.get("ttft_ms") or {}).get("p99"),
                "tokens_per_s_p50": (point.get("tokens_per_s") or {}).get("p50"),
                "success": point.get("success_rate"),
                "accuracy": accuracy.get("rate") if isinstance(accuracy, dict) else None,
                "graded": accuracy.get("graded") if isinstance(accuracy, dict) else None,
                "empty": (quality.get("empty_answer") or {}).get("rate"),
                "truncated": (quality.get("truncated_thinking") or {}).get("rate"),
            }
        )
    figures["sweep_curve"] = charts.sweep_curve(levels, unit)
    return {"levels": levels, "unit": unit, "graded": any(lv["accuracy"] is not None for lv in levels)}


def capacity_view(block: dict[str, Any], figures: dict[str, Any]) -> dict[str, Any]:
    searches = block.get("buckets") or [block]
    out = []
    for i, search in enumerate(searches):
        title = f"Capacity at {search['label']}" if search.get("label") else "Capacity curve"
        figures[f"capacity_curve_{i}"] = charts.capacity_curve(search, title)
        out.append(
            {
                "label": search.get("label"),
                "sentence": capacity_sentence(search),
                "trusted": search.get("trusted", True),
                "client_bound_at": search.get("client_bound_at") or [],
                "max_qpm": search.get("max_qpm"),
                "limiting_slo": search.get("limiting_slo"),
                "levels": [lv for lv in search.get("levels") or [] if not lv.get("superseded")],
                "unit": "req/s" if search.get("mode") == "rate" else "users",
            }
        )
    return {"mode": block.get("mode"), "searches": out}


def server_view(
    report: dict[str, Any], seconds: list[dict[str, Any]], figures: dict[str, Any]
) -> dict[str, Any]:
    stats = report.get("summary") or {}
    if report.get("series"):
        figures["server_ttft"] = charts.server_beside_ttft(report, seconds)
        fractions = [n for n in ("kv_cache_usage", "prefix_cache_hit_rate", "spec_decode_acceptance_rate")]
        if any(n in report["series"] for n in fractions):
            figures["server_fractions"] = charts.server_series(
                report, fractions, "Server KV cache and MTP", "fraction"
            )
    ordered = [n for n in SERVER_METRICS if n in stats] + sorted(n for n in stats if n not in SERVER_METRICS)
    return {
        "rows": [(n, SERVER_METRICS.get(n, ""), stats[n]) for n in ordered],
        "errors": report.get("errors") or [],
        "endpoints": report.get("endpoints") or [],
    }


def kv_reuse_view(block: dict[str, Any] | None) -> dict[str, Any] | None:
    """The KV-cache reuse block: TTFT cold and warm per input-token bucket (all requests first), and
    what the warm prefixes saved; a bucket with no answered request on either pass shows dashes."""
    if not block:
        return None
    rows = [
        {**row, "label": "all requests" if row["label"] == "all" else row["label"]}
        for row in [block["all"], *block["buckets"]]
    ]
    return {"rows": rows, "cancelled": bool(block.get("cancelled")), "tag": block.get("tag", "")}


def repetitions_view(run: Run) -> dict[str, Any] | None:
    runs = repeat_runs(run=run)
    if not runs:
        return None
    done = [r for r in runs if r.status == Run.Status.FINISHED and r.summary]
    combined = repeat_combine([r.summary for r in done]) if len(done) >= 2 else None
    rows = [
        (REPEAT_LABELS.get(k, k), m)
        for k, m in (combined or {}).get("metrics", {}).items()
        if m["mean"] is not None
    ]
    return {
        "total": int(run.spec.get("repeat") or 1),
        "index": run.repeat_index,
        "runs": runs,
        "finished": len(done),
        "rows": rows,
    }


def repeat_intervals(run: Run) -> dict[str, Any] | None:
    """The set's combined intervals (``repeat.combine``) when ``run`` is repeated and two or more of
    its repetitions finished; what comparisons use instead of one run's value."""
    runs = [r for r in repeat_runs(run=run) if r.status == Run.Status.FINISHED and r.summary]
    return repeat_combine([r.summary for r in runs]) if len(runs) >= 2 else None
