"""Runs: list with filters, the live/finished page, one request's timeline, downloads."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_POST

from benchmarks.decorators import team_required
from benchmarks.http import TeamRequest, fraction_param, int_param
from benchmarks.models import Endpoint, Plan, Run
from benchmarks.presenters.exports import csv_lines
from benchmarks.presenters.runs import CSV_FIELDS, request_page, run_page, summary_document
from benchmarks.selectors.objects import can_write, in_team, object_get
from benchmarks.selectors.runs import (
    live_payload,
    ordinal,
    queue_place,
    run_record_get,
    run_record_rows,
    run_series,
    runs_filtered,
)
from benchmarks.services.runs.start import run_cancel
from benchmarks.views.helpers import ensure_can_write

AUDIT_THRESHOLD = 0.05  # share of the client's count a server's usage may differ by, unless ?audit_threshold=


RUNS_PER_PAGE = 50


@team_required
def run_list(request: TeamRequest) -> HttpResponse:
    team = request.team
    query = request.GET
    runs = runs_filtered(
        team=team,
        plan_id=int_param(query.get("plan")),
        endpoint_id=int_param(query.get("endpoint")),
        tag=query.get("tag", ""),
        status=query.get("status", ""),
        since=_date(query.get("since")),
        until=_date(query.get("until")),
    )
    page = Paginator(runs, RUNS_PER_PAGE).get_page(query.get("page"))
    context = {
        "runs": page.object_list,
        "page": page,
        "page_query": _without_page(query),
        "plans": in_team(Plan, team=team),
        "endpoints": in_team(Endpoint, team=team),
        "statuses": Run.Status.values,
        "query": query,
    }
    return render(request, "benchmarks/run_list.html", context)


def _without_page(query: Any) -> str:
    rest = query.copy()
    rest.pop("page", None)
    return str(rest.urlencode())


@team_required
def run_detail(request: TeamRequest, pk: int) -> HttpResponse:
    run = object_get(Run, user=request.user, pk=pk)
    threshold = fraction_param(request.GET.get("audit_threshold"), AUDIT_THRESHOLD * 100) / 100
    place = queue_place(run)
    context = run_page(run, audit_threshold=threshold) | {
        "can_edit": can_write(run, user=request.user),
        "queue_place": ordinal(place) if place else None,
    }
    return render(request, "benchmarks/run_detail.html", context)


@team_required
@require_POST
def run_cancel_view(request: TeamRequest, pk: int) -> HttpResponse:
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
def run_request(request: TeamRequest, pk: int, record_pk: int) -> HttpResponse:
    run = object_get(Run, user=request.user, pk=pk)
    record = run_record_get(run=run, record_id=record_pk)
    if record is None:
        raise Http404("No such request in this run")
    return render(request, "benchmarks/run_request.html", request_page(run, record))


@team_required
def run_requests_csv(request: TeamRequest, pk: int) -> HttpResponse:
    run = object_get(Run, user=request.user, pk=pk)
    lines = csv_lines(list(CSV_FIELDS), run_record_rows(run=run))  # streamed over a server-side cursor
    response = StreamingHttpResponse(lines, content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-requests.csv"'
    return response


@team_required
def run_summary_json(request: TeamRequest, pk: int) -> HttpResponse:
    run = object_get(Run, user=request.user, pk=pk)
    response = HttpResponse(json.dumps(summary_document(run), indent=2), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-summary.json"'
    return response


@team_required
def run_api(request: TeamRequest, pk: int) -> JsonResponse:
    """Run state as JSON (used by scripts and the page's fallback polling)."""
    run = object_get(Run, user=request.user, pk=pk)
    return JsonResponse({"id": run.pk, **live_payload(run, rows=run_series(run=run)), "summary": run.summary})


def _date(value: str | None) -> date | None:
    try:
        return parse_date(value) if value else None
    except ValueError:
        return None
