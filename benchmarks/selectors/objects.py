"""Team-aware lookups for every team-owned model (endpoints, datasets, profiles, plans, runs)."""

from __future__ import annotations

from typing import TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Model, QuerySet
from django.http import Http404

from benchmarks.models import Membership, Team

M = TypeVar("M", bound=Model)


def visible_to(model: type[M], *, user: AbstractBaseUser | AnonymousUser) -> QuerySet[M]:
    """Objects of every team the user belongs to."""
    if not user.is_authenticated:
        return model._default_manager.none()
    return model._default_manager.filter(team__memberships__user=user)


def in_team(model: type[M], *, team: Team) -> QuerySet[M]:
    return model._default_manager.filter(team=team)


def object_get(model: type[M], *, user: AbstractBaseUser | AnonymousUser, pk: int) -> M:
    """The object, or 404 when it does not exist *or* belongs to a team the user is not in."""
    obj = visible_to(model, user=user).filter(pk=pk).first()
    if obj is None:
        raise Http404(f"No {model._meta.verbose_name} {pk}")
    return obj


def team_object_get(model: type[M], *, team: Team, pk: int) -> M:
    """The team's object, or 404 (the API's lookup: the token decides the team)."""
    obj = in_team(model, team=team).filter(pk=pk).first()
    if obj is None:
        raise Http404(f"No {model._meta.verbose_name} {pk}")
    return obj


def role_on(obj: Model, *, user: AbstractBaseUser | AnonymousUser) -> str | None:
    team_id = getattr(obj, "team_id", None)
    membership = Membership.objects.filter(user_id=user.pk, team_id=team_id).first()
    return membership.role if membership else None


def can_write(obj: Model, *, user: AbstractBaseUser | AnonymousUser) -> bool:
    return role_on(obj, user=user) in (Membership.Role.OWNER, Membership.Role.MEMBER)
