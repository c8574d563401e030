"""Comparing runs: the ad hoc page (``/compare/?runs=3,5``), saved comparisons, and their exports."""

from __future__ import annotations

import io
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from benchmarks.decorators import team_required
from benchmarks.models import Comparison, Run
from benchmarks.selectors.comparisons import (
    NotComparable,
    comparisons_for_team,
    parse_run_ids,
    runs_to_compare,
)
from benchmarks.selectors.objects import can_write, object_get
from benchmarks.services.compare import comparison_build, comparison_create, comparison_update, run_label
from benchmarks.services.compare_exports import comparison_csv, report_html
from benchmarks.views.helpers import ensure_can_write


class ComparisonForm(forms.Form):
    title = forms.CharField(max_length=200)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


@team_required
def compare(request: HttpRequest) -> HttpResponse:
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
def comparison_save(request: HttpRequest) -> HttpResponse:
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
def comparison_detail(request: HttpRequest, pk: int) -> HttpResponse:
    comparison = object_get(Comparison, user=request.user, pk=pk)
    run_ids = _still_there(comparison)
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
def comparison_edit(request: HttpRequest, pk: int) -> HttpResponse:
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
def comparison_delete(request: HttpRequest, pk: int) -> HttpResponse:
    comparison = object_get(Comparison, user=request.user, pk=pk)
    ensure_can_write(request, comparison)
    comparison.delete()
    messages.success(request, f"Deleted “{comparison.title}”.")
    return redirect("comparison_list")


@team_required
def comparison_list(request: HttpRequest) -> HttpResponse:
    comparisons = comparisons_for_team(team=request.team)  # type: ignore[attr-defined]
    return render(request, "benchmarks/compare/list.html", {"comparisons": comparisons})


# ---------------------------------------------------------------------------------------------- exports


@team_required
def compare_export(request: HttpRequest, fmt: str) -> HttpResponse:
    run_ids = parse_run_ids(request.GET.getlist("runs"))
    runs = _runs_or_400(request, run_ids)
    if isinstance(runs, HttpResponse):
        return runs
    return _export(fmt, runs, title=f"Comparison of runs {', '.join(map(str, run_ids))}", stem="comparison")


@team_required
def comparison_export(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    comparison = object_get(Comparison, user=request.user, pk=pk)
    runs = _runs_or_400(request, _still_there(comparison))
    if isinstance(runs, HttpResponse):
        return runs
    return _export(fmt, runs, title=comparison.title, notes=comparison.notes, stem=f"comparison-{pk}")


@team_required
def run_export(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
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


def _runs_or_400(request: HttpRequest, run_ids: list[int]) -> list[Run] | HttpResponse:
    try:
        return runs_to_compare(user=request.user, run_ids=run_ids)
    except NotComparable as exc:
        return render(request, "benchmarks/compare/page.html", {"problem": str(exc)}, status=400)


def _still_there(comparison: Comparison) -> list[int]:
    """The saved runs that were not deleted since (a saved comparison outlives a deleted run)."""
    ids = set(
        Run.objects.filter(pk__in=comparison.run_ids, team=comparison.team).values_list("pk", flat=True)
    )
    return [i for i in comparison.run_ids if i in ids]


def _page(built: dict[str, Any], run_ids: list[int]) -> dict[str, Any]:
    for column in built["columns"]:  # "make baseline": the same runs with this one first
        column.rebase = ",".join(map(str, [column.run.pk, *(i for i in run_ids if i != column.run.pk)]))
    return built | {
        "run_ids": run_ids,
        "runs_param": ",".join(map(str, run_ids)),
        "span": 2 + len(built["columns"]),
    }
