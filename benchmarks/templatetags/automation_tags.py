"""Template tags for issue 5's additions to shared pages (plan page, navigation)."""

from __future__ import annotations

from typing import Any

from django import template

from benchmarks.models import Plan, PlanAB, PlanSchedule, RunCheck

register = template.Library()


@register.inclusion_tag("benchmarks/compare/_plan_extras.html", takes_context=True)
def plan_extras(context: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """A plan's A/B targets, schedule and open alerts."""
    alerts = RunCheck.objects.filter(schedule__plan=plan, dismissed=False).exclude(
        status__in=[RunCheck.Status.OK, RunCheck.Status.PENDING]
    )
    return {
        "object": plan,
        "can_edit": context.get("can_edit", False),
        "plan_ab": PlanAB.objects.filter(plan=plan).first(),
        "plan_schedule": PlanSchedule.objects.filter(plan=plan).first(),
        "plan_alerts": alerts.order_by("-created_at")[:5],
    }


@register.simple_tag(takes_context=True)
def open_alert_count(context: dict[str, Any]) -> int:
    team = context.get("current_team")
    if team is None:
        return 0
    return (
        RunCheck.objects.filter(team=team, dismissed=False)
        .exclude(status__in=[RunCheck.Status.OK, RunCheck.Status.PENDING])
        .count()
    )
