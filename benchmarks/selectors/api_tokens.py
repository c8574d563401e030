"""The current team's API tokens (their hashes only; a token is shown once, at creation)."""

from __future__ import annotations

from django.db.models import QuerySet

from benchmarks.models import ApiToken, Team


def api_tokens_for_team(*, team: Team) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(team=team).select_related("created_by")
