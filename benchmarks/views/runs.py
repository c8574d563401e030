"""Runs: list with filters, the live/finished page, one request's timeline, downloads."""

from __future__ import annotations

import csv
import json
from datetime import date
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_POST

from benchmarks import charts
from benchmarks.decorators import team_required
from benchmarks.models import Endpoint, Plan, Run
from benchmarks.selectors.objects import can_write, in_team, object_get
from benchmarks.selectors.runs import (
    live_payload,
    run_failures,
    run_record_get,
    run_records,
    run_series,
    runs_filtered,
)
from benchmarks.services.runs import run_cancel
from benchmarks.views.datasets import run_dataset_context
from benchmarks.views.helpers import ensure_can_write
from runner import CSV_KEYS, DISTRIBUTION_KEYS
from runner import METRICS as METRICS_BY_KEY

METRICS = [(key, METRICS_BY_KEY[key].heading) for key in DISTRIBUTION_KEYS]
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


@team_required
def run_list(request: HttpRequest) -> HttpResponse:
    team = request.team  # type: ignore[attr-defined]
    query = request.GET
    runs = runs_filtered(
        team=team,
        plan_id=_int(query.get("plan")),
        endpoint_id=_int(query.get("endpoint")),
        tag=query.get("tag", ""),
        status=query.get("status", ""),
        since=_date(query.get("since")),
        until=_date(query.get("until")),
    )
    context = {
        "runs": runs[:200],
        "plans": in_team(Plan, team=team),
        "endpoints": in_team(Endpoint, team=team),
        "statuses": Run.Status.values,
        "query": query,
    }
    return render(request, "benchmarks/run_list.html", context)


@team_required
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = object_get(Run, user=request.user, pk=pk)
    context: dict[str, Any] = {
        "run": run,
        "can_edit": can_write(run, user=request.user),
        "shards": run.shards.all(),
        "live": live_payload(run, rows=run_series(run=run)),
    }
    if not run.is_active:
        context |= _finished_context(run)
        context |= run_dataset_context(request, run, METRICS)
    return render(request, "benchmarks/run_detail.html", context)


def _finished_context(run: Run) -> dict[str, Any]:
    summary = run.summary or {}
    rows = [
        {
            "id": r.pk,
            "t": round(r.started_epoch - _t0(run), 3),
            "ttft_ms": r.ttft_ms,
            "tokens_per_s": r.tokens_per_s,
        }
        for r in run_records(run=run).only("id", "started_epoch", "ttft_ms", "tokens_per_s")
    ]
    ttfts = [r["ttft_ms"] for r in rows if r["ttft_ms"] is not None]
    itls = [
        gap for data in run_records(run=run).values_list("data__itl_ms", flat=True) for gap in (data or [])
    ]
    figures = {
        "ttft_hist": charts.ttft_histogram(ttfts),
        "ttft_cdf": charts.cdf(ttfts, "TTFT CDF"),
        "itl_hist": charts.itl_histogram(itls[:200_000]),
        "ttft_points": charts.per_request_scatter(
            [r for r in rows if r["ttft_ms"] is not None], "ttft_ms", "TTFT per request (click a point)", "ms"
        ),
        "tps_points": charts.per_request_scatter(
            [r for r in rows if r["tokens_per_s"] is not None],
            "tokens_per_s",
            "Tokens/s per request (click a point)",
            "tokens/s",
        ),
    }
    return {
        "summary": summary,
        "metric_rows": [(label, summary.get(key) or {}) for key, label in METRICS],
        "buckets": summary.get("buckets") or [],
        "failures": run_failures(run=run),
        "figures": figures,
    }


def _t0(run: Run) -> float:
    return float(run.spec.get("run_started_epoch") or (run.started_at.timestamp() if run.started_at else 0.0))


@team_required
@require_POST
def run_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = object_get(Run, user=request.user, pk=pk)
    ensure_can_write(request, run)
    if run_cancel(run=run, by=request.user):
        messages.success(
            request, "Cancelling: every shard stops within a few seconds; measured requests are kept."
        )
    else:
        messages.info(request, "The run had already ended.")
    return redirect("run_detail", pk=pk)


@team_required
def run_request(request: HttpRequest, pk: int, record_pk: int) -> HttpResponse:
    run = object_get(Run, user=request.user, pk=pk)
    record = run_record_get(run=run, record_id=record_pk)
    if record is None:
        raise Http404("No such request in this run")
    data = record.data
    fields = [(k, v) for k, v in data.items() if k not in ("packets", "itl_ms", "answer_text")]
    context = {
        "run": run,
        "record": record,
        "fields": fields,
        "packets": data.get("packets") or [],
        "timeline": charts.packet_timeline(data.get("packets") or []),
        "answer": data.get("answer_text", ""),
    }
    return render(request, "benchmarks/run_request.html", context)


@team_required
def run_requests_csv(request: HttpRequest, pk: int) -> HttpResponse:
    run = object_get(Run, user=request.user, pk=pk)
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-requests.csv"'
    writer = csv.DictWriter(response, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for data in run_records(run=run).values_list("data", flat=True).iterator():
        writer.writerow(data)
    return response


@team_required
def run_summary_json(request: HttpRequest, pk: int) -> HttpResponse:
    run = object_get(Run, user=request.user, pk=pk)
    body = {
        "run": run.pk,
        "plan": run.plan_name,
        "endpoint": run.endpoint_name,
        "status": run.status,
        "reason": run.reason,
        "variant": run.variant,
        "summary": run.summary,
    }
    response = HttpResponse(json.dumps(body, indent=2), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-summary.json"'
    return response


@team_required
def run_api(request: HttpRequest, pk: int) -> JsonResponse:
    """Run state as JSON (used by scripts and the page's fallback polling)."""
    run = object_get(Run, user=request.user, pk=pk)
    return JsonResponse({"id": run.pk, **live_payload(run, rows=run_series(run=run)), "summary": run.summary})


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _date(value: str | None) -> date | None:
    try:
        return parse_date(value) if value else None
    except ValueError:
        return None
