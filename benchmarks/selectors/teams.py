from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from benchmarks.models import Membership, Team


def teams_for_user(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Team]:
    if not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user).order_by("name", "id")


def membership_get(*, user: AbstractBaseUser | AnonymousUser, team_id: int | None) -> Membership | None:
    if not user.is_authenticated or team_id is None:
        return None
    return Membership.objects.select_related("team").filter(user=user, team_id=team_id).first()


def membership_default(*, user: AbstractBaseUser | AnonymousUser) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.select_related("team").filter(user=user).order_by("created_at", "id").first()


def team_members(*, team: Team) -> QuerySet[Membership]:
    return Membership.objects.filter(team=team).select_related("user").order_by("user__username")


def team_by_name(name: str) -> Team | None:
    return Team.objects.filter(name=name).first()


def plan_by_name_or_id(ref: str, *, team_name: str | None = None) -> Any:
    """One plan by id or exact name (within ``team_name`` when given); None when none or several."""
    from benchmarks.models import Plan

    plans = Plan.objects.select_related("team", "endpoint", "dataset", "profile")
    if team_name:
        plans = plans.filter(team__name=team_name)
    found = list(plans.filter(pk=int(ref))) if ref.isdigit() else []
    found = found or list(plans.filter(name=ref)[:2])
    return found[0] if len(found) == 1 else None
