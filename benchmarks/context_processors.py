from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from benchmarks.selectors.teams import teams_for_user


def teams(request: HttpRequest) -> dict[str, Any]:
    membership = getattr(request, "membership", None)
    return {
        "current_team": getattr(request, "team", None),
        "current_membership": membership,
        "can_write": bool(membership and membership.can_write),
        "my_teams": teams_for_user(user=request.user) if hasattr(request, "user") else [],
        "allow_signup": settings.ALLOW_SIGNUP,
    }
