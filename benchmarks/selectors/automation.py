"""A plan's paired A/B targets and schedule, and the alerts scheduled runs raise."""

from __future__ import annotations

from django.db.models import QuerySet

from benchmarks.models import Plan, PlanAB, PlanSchedule, RunCheck, Team


def plan_ab_get(*, plan: Plan) -> PlanAB | None:
    return PlanAB.objects.filter(plan=plan).prefetch_related("targets__endpoint").first()


def plan_schedule_get(*, plan: Plan) -> PlanSchedule | None:
    return PlanSchedule.objects.filter(plan=plan).first()


def alerts_for_team(*, team: Team, limit: int = 100) -> QuerySet[RunCheck]:
    """Every check of the team's scheduled runs, newest first (the alerts page)."""
    return (
        RunCheck.objects.filter(team=team)
        .select_related("run", "baseline_run", "schedule__plan")
        .order_by("-created_at")[:limit]
    )


def open_alerts(*, team: Team | None = None, plan: Plan | None = None) -> QuerySet[RunCheck]:
    """Checks that failed or errored and nobody dismissed: of a team, or of one plan's schedule."""
    checks = RunCheck.objects.filter(dismissed=False).exclude(
        status__in=[RunCheck.Status.OK, RunCheck.Status.PENDING]
    )
    if team is not None:
        checks = checks.filter(team=team)
    if plan is not None:
        checks = checks.filter(schedule__plan=plan)
    return checks.order_by("-created_at")


def open_alerts_count(*, team: Team) -> int:
    return open_alerts(team=team).count()
