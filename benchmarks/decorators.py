"""View decorators: a current team, and write access to it."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, cast

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from benchmarks.http import TeamRequest

View = Callable[..., HttpResponse]


def team_required(view: View) -> View:
    """Logged in and in at least one team (new users get one at sign-up)."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if getattr(request, "team", None) is None:
            return redirect("team_create")
        return view(request, *args, **kwargs)

    return wrapper


def writer_required(view: View) -> View:
    """Owner or member of the current team; viewers get 403."""

    @team_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not cast(TeamRequest, request).membership.can_write:
            raise PermissionDenied("Viewers cannot change anything in this team.")
        return view(request, *args, **kwargs)

    return wrapper
