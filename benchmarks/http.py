"""The request our views receive: Django's, plus the current team and membership the middleware adds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

    from benchmarks.models import Membership, Team


class TeamRequest(HttpRequest):
    """For type checking only (the object is Django's own request): ``team`` and ``membership`` are
    set by ``CurrentTeamMiddleware`` on every request, and never None behind ``@team_required``."""

    user: AbstractBaseUser | AnonymousUser
    team: Team
    membership: Membership
