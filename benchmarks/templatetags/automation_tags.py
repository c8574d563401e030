"""Template tags for what automation adds to shared pages: a plan's A/B, schedule and alerts, and the
navigation's open-alert count."""

from __future__ import annotations

from typing import Any

from django import template

from benchmarks.models import Plan
from benchmarks.selectors.automation import open_alerts, open_alerts_count, plan_ab_get, plan_schedule_get

register = template.Library()


@register.inclusion_tag("benchmarks/automation/_plan_extras.html", takes_context=True)
def plan_extras(context: dict[str, Any], plan: Plan) -> dict[str, Any]:
    """A plan's A/B targets, schedule and open alerts."""
    return {
        "object": plan,
        "can_edit": context.get("can_edit", False),
        "plan_ab": plan_ab_get(plan=plan),
        "plan_schedule": plan_schedule_get(plan=plan),
        "plan_alerts": open_alerts(plan=plan)[:5],
    }


@register.simple_tag(takes_context=True)
def open_alert_count(context: dict[str, Any]) -> int:
    team = context.get("current_team")
    return 0 if team is None else open_alerts_count(team=team)
