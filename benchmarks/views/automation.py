"""A plan's paired A/B targets and schedule, and the alerts scheduled runs raise."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from benchmarks.decorators import team_required
from benchmarks.forms.automation import AB_SLOTS, PlanABForm, PlanScheduleForm
from benchmarks.http import TeamRequest
from benchmarks.models import Plan, RunCheck
from benchmarks.selectors.automation import alerts_for_team, plan_ab_get, plan_schedule_get
from benchmarks.selectors.objects import object_get
from benchmarks.services.ab_tests import plan_ab_set
from benchmarks.services.schedules import check_dismiss, plan_schedule_save
from benchmarks.views.helpers import ensure_can_write


@team_required
def plan_ab(request: TeamRequest, pk: int) -> HttpResponse:
    plan = object_get(Plan, user=request.user, pk=pk)
    ensure_can_write(request, plan)
    ab = plan_ab_get(plan=plan)
    initial: dict[str, object] = {"mode": ab.mode} if ab else {}
    for slot, endpoint in zip(AB_SLOTS, ab.endpoints() if ab else [], strict=False):
        initial[f"variant_{slot}"] = endpoint.pk
    form = PlanABForm(request.POST or None, plan=plan, initial=initial)
    if request.method == "POST" and form.is_valid():
        plan_ab_set(plan=plan, endpoints=form.cleaned_data["endpoints"], mode=form.cleaned_data["mode"])
        n = len(form.cleaned_data["endpoints"])
        messages.success(request, f"Paired A/B with {n + 1} variants." if n else "Paired A/B turned off.")
        return redirect("plan_detail", pk=pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "benchmarks/automation/plan_ab.html", {"plan": plan, "form": form}, status=status)


@team_required
def plan_schedule(request: TeamRequest, pk: int) -> HttpResponse:
    plan = object_get(Plan, user=request.user, pk=pk)
    ensure_can_write(request, plan)
    form = PlanScheduleForm(request.POST or None, instance=plan_schedule_get(plan=plan), plan=plan)
    if request.method == "POST" and form.is_valid():
        saved = plan_schedule_save(plan=plan, form=form, by=request.user)
        when = f", next at {saved.next_run_at:%Y-%m-%d %H:%M} UTC" if saved.next_run_at else ""
        messages.success(request, f"Schedule saved: {saved.get_every_display().lower()}{when}.")
        return redirect("plan_detail", pk=pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request, "benchmarks/automation/plan_schedule.html", {"plan": plan, "form": form}, status=status
    )


@team_required
def alert_list(request: TeamRequest) -> HttpResponse:
    checks = alerts_for_team(team=request.team)
    return render(request, "benchmarks/automation/alerts.html", {"checks": checks})


@team_required
@require_POST
def alert_dismiss(request: TeamRequest, pk: int) -> HttpResponse:
    check = object_get(RunCheck, user=request.user, pk=pk)
    ensure_can_write(request, check)
    check_dismiss(check=check)
    return redirect(request.POST.get("next") or "alert_list")
