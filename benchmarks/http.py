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


def int_param(raw: str | None, default: int | None = None) -> int | None:
    """A whole number from a query or form parameter; junk ("abc", "1e9", "-") gives ``default``,
    never an exception: one rule for every hand-typed number in a URL or a POST."""
    text = (raw or "").strip()
    return int(text) if text.isdigit() and len(text) < 19 else default


def fraction_param(raw: str | None, default: float) -> float:
    """A non-negative decimal number, e.g. a percentage; junk gives ``default``."""
    text = (raw or "").strip()
    try:
        value = float(text)
    except ValueError:
        return default
    return value if value >= 0 and value == value and value != float("inf") else default
