"""Puts the user's current team (``request.team``) and membership on every request."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from benchmarks.selectors.teams import membership_default, membership_get

SESSION_KEY = "team_id"


class CurrentTeamMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        membership = membership_get(user=request.user, team_id=request.session.get(SESSION_KEY))
        if membership is None:
            membership = membership_default(user=request.user)
        # None for visitors and users without a team: @team_required sends those elsewhere first
        setattr(request, "membership", membership)  # noqa: B010  (see benchmarks.http.TeamRequest)
        setattr(request, "team", membership.team if membership else None)  # noqa: B010
        return self.get_response(request)
