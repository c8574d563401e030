"""Comparing runs: the ad hoc page (``/compare/?runs=3,5``), saved comparisons, and their exports."""

from __future__ import annotations

import io
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from benchmarks.decorators import team_required
from benchmarks.forms.compare import ComparisonForm
from benchmarks.http import TeamRequest
from benchmarks.models import Comparison, Run
from benchmarks.presenters.compare import comparison_build, run_label
from benchmarks.presenters.exports import comparison_csv, report_html
from benchmarks.selectors.comparisons import (
    NotComparable,
    comparison_run_ids,
    comparisons_for_team,
    parse_run_ids,
    runs_to_compare,
)
from benchmarks.selectors.objects import can_write, object_get
from benchmarks.services.comparisons import comparison_create, comparison_delete, comparison_update
from benchmarks.views.helpers import ensure_can_write


@team_required
def compare(request: TeamRequest) -> HttpResponse:
    run_ids = parse_run_ids(request.GET.getlist("runs"))
    runs = _runs_or_400(request, run_ids)
    if isinstance(runs, HttpResponse):
        return runs
    built = comparison_build(runs=runs)
    default_title = " vs ".join(c.label for c in built["columns"])[:200]
    context = _page(built, run_ids) | {
        "form": ComparisonForm(initial={"title": default_title}),
        "can_save": can_write(runs[0], user=request.user),
    }
    return render(request, "benchmarks/compare/page.html", context)


@team_required
@require_POST
def comparison_save(request: TeamRequest) -> HttpResponse:
    run_ids = parse_run_ids(request.POST.getlist("runs"))
    runs = _runs_or_400(request, run_ids)
    if isinstance(runs, HttpResponse):
        return runs
    ensure_can_write(request, runs[0])
    form = ComparisonForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A comparison needs a title.")
        return redirect(f"{reverse('compare')}?runs={','.join(map(str, run_ids))}")
    comparison = comparison_create(
        team=runs[0].team,
        by=request.user,
        title=form.cleaned_data["title"],
        notes=form.cleaned_data["notes"],
        run_ids=run_ids,
    )
    messages.success(request, f"Saved “{comparison.title}”; everyone in the team can open this page.")
    return redirect("comparison_detail", pk=comparison.pk)


@team_required
def comparison_detail(request: TeamRequest, pk: int) -> HttpResponse:
    comparison = object_get(Comparison, user=request.user, pk=pk)
    run_ids = comparison_run_ids(comparison=comparison)
    runs = _runs_or_400(request, run_ids)
    if isinstance(runs, HttpResponse):
        return runs
    context = _page(comparison_build(runs=runs), run_ids) | {
        "saved": comparison,
        "form": ComparisonForm(initial={"title": comparison.title, "notes": comparison.notes}),
        "can_save": can_write(comparison, user=request.user),
    }
    return render(request, "benchmarks/compare/page.html", context)


@team_required
@require_POST
def comparison_edit(request: TeamRequest, pk: int) -> HttpResponse:
    comparison = object_get(Comparison, user=request.user, pk=pk)
    ensure_can_write(request, comparison)
    form = ComparisonForm(request.POST)
    if form.is_valid():
        comparison_update(
            comparison=comparison, title=form.cleaned_data["title"], notes=form.cleaned_data["notes"]
        )
        messages.success(request, "Saved.")
    else:
        messages.error(request, "A comparison needs a title.")
    return redirect("comparison_detail", pk=pk)


@team_required
@require_POST
def comparison_delete_view(request: TeamRequest, pk: int) -> HttpResponse:
    comparison = object_get(Comparison, user=request.user, pk=pk)
    ensure_can_write(request, comparison)
    comparison_delete(comparison=comparison)
    messages.success(request, f"Deleted “{comparison.title}”.")
    return redirect("comparison_list")


@team_required
def comparison_list(request: TeamRequest) -> HttpResponse:
    comparisons = comparisons_for_team(team=request.team)
    return render(request, "benchmarks/compare/list.html", {"comparisons": comparisons})


# ---------------------------------------------------------------------------------------------- exports


@team_required
def compare_export(request: TeamRequest, fmt: str) -> HttpResponse:
    run_ids = parse_run_ids(request.GET.getlist("runs"))
    runs = _runs_or_400(request, run_ids)
    if isinstance(runs, HttpResponse):
        return runs
    return _export(fmt, runs, title=f"Comparison of runs {', '.join(map(str, run_ids))}", stem="comparison")


@team_required
def comparison_export(request: TeamRequest, pk: int, fmt: str) -> HttpResponse:
    comparison = object_get(Comparison, user=request.user, pk=pk)
    runs = _runs_or_400(request, comparison_run_ids(comparison=comparison))
    if isinstance(runs, HttpResponse):
        return runs
    return _export(fmt, runs, title=comparison.title, notes=comparison.notes, stem=f"comparison-{pk}")


@team_required
def run_export(request: TeamRequest, pk: int, fmt: str) -> HttpResponse:
    run = object_get(Run, user=request.user, pk=pk)
    if run.is_active or not run.summary:
        return HttpResponse("The run has no summary yet.", status=400, content_type="text/plain")
    return _export(fmt, [run], title=f"Run {run_label(run)} — {run.plan_name}", stem=f"run-{pk}")


def _export(fmt: str, runs: list[Run], *, title: str, stem: str, notes: str = "") -> HttpResponse:
    built = comparison_build(runs=runs, charts=fmt == "html")
    if fmt == "csv":
        buffer = io.StringIO()
        comparison_csv(built, buffer)
        response = HttpResponse(buffer.getvalue(), content_type="text/csv")
    else:
        response = HttpResponse(report_html(built=built, title=title, notes=notes), content_type="text/html")
    response["Content-Disposition"] = f'attachment; filename="{stem}.{fmt}"'
    return response


def _runs_or_400(request: TeamRequest, run_ids: list[int]) -> list[Run] | HttpResponse:
    try:
        return runs_to_compare(user=request.user, run_ids=run_ids)
    except NotComparable as exc:
        return render(request, "benchmarks/compare/page.html", {"problem": str(exc)}, status=400)


def _page(built: dict[str, Any], run_ids: list[int]) -> dict[str, Any]:
    for column in built["columns"]:  # "make baseline": the same runs with this one first
        column.rebase = ",".join(map(str, [column.run.pk, *(i for i in run_ids if i != column.run.pk)]))
    return built | {
        "run_ids": run_ids,
        "runs_param": ",".join(map(str, run_ids)),
        "span": 2 + len(built["columns"]),
    }
