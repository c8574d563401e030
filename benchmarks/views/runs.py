"""Runs: list with filters, the live/finished page, one request's timeline, downloads."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_POST

from benchmarks.decorators import team_required
from benchmarks.forms.runs import RunNotesForm
from benchmarks.http import TeamRequest, fraction_param, int_param
from benchmarks.models import Endpoint, Plan, Run
from benchmarks.presenters.records import records_jsonl_response, requests_csv_response
from benchmarks.presenters.requests import requests_page
from benchmarks.presenters.runs import request_page, run_page, summary_document
from benchmarks.selectors.objects import can_write, in_team, object_get
from benchmarks.selectors.runs import (
    live_payload,
    ordinal,
    queue_place,
    run_record_get,
    run_series,
    run_uses,
    runs_filtered,
)
from benchmarks.services.runs.delete import CannotDelete, run_delete, run_notes_update
from benchmarks.services.runs.start import CannotRerun, run_cancel, run_start_again
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
        "notes_form": RunNotesForm(initial={"notes": run.notes}),
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
def run_requests(request: TeamRequest, pk: int) -> HttpResponse:
    """Every request of the run, a page at a time, worst first; sorted and filtered in Postgres."""
    run = object_get(Run, user=request.user, pk=pk)
    return render(request, "benchmarks/runs/requests.html", requests_page(run, request.GET))


@team_required
def run_request_detail(request: TeamRequest, pk: int, record_pk: int) -> HttpResponse:
    run = object_get(Run, user=request.user, pk=pk)
    record = run_record_get(run=run, record_id=record_pk)
    if record is None:
        raise Http404("No such request in this run")
    return render(request, "benchmarks/run_request.html", request_page(run, record))


@team_required
def run_export_jsonl(request: TeamRequest, pk: int) -> HttpResponse:
    return records_jsonl_response(object_get(Run, user=request.user, pk=pk))


@team_required
@require_POST
def run_notes(request: TeamRequest, pk: int) -> HttpResponse:
    run = object_get(Run, user=request.user, pk=pk)
    ensure_can_write(request, run)
    form = RunNotesForm(request.POST)
    if form.is_valid():
        run_notes_update(run=run, notes=form.cleaned_data["notes"])
        messages.success(request, "Notes saved.")
    else:
        messages.error(request, " ".join(e for field in form.errors for e in form.errors[field]))
    return redirect("run_detail", pk=pk)


@team_required
def run_delete_view(request: TeamRequest, pk: int) -> HttpResponse:
    """A confirmation page (naming the saved comparisons and schedules that use the run), then the
    delete on POST."""
    run = object_get(Run, user=request.user, pk=pk)
    ensure_can_write(request, run)
    if request.method == "POST":
        try:
            run_delete(run=run, by=request.user)
        except CannotDelete as exc:
            messages.error(request, str(exc))
            return redirect("run_detail", pk=pk)
        messages.success(request, f"Run #{pk} deleted; its records are being removed in the background.")
        return redirect("run_list")
    return render(request, "benchmarks/runs/confirm_delete.html", {"run": run, **run_uses(run=run)})


@team_required
@require_POST
def run_again(request: TeamRequest, pk: int) -> HttpResponse:
    run = object_get(Run, user=request.user, pk=pk)
    ensure_can_write(request, run)
    try:
        again = run_start_again(run=run, by=request.user)
    except CannotRerun as exc:
        messages.error(request, str(exc))
        return redirect("run_detail", pk=pk)
    messages.success(request, f"Started run #{again.pk} from run #{run.pk}'s snapshot.")
    return redirect("run_detail", pk=again.pk)


@team_required
def run_requests_csv(request: TeamRequest, pk: int) -> HttpResponse:
    return requests_csv_response(object_get(Run, user=request.user, pk=pk))


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
