"""API tokens: created in the UI and shown once; only a hash is stored, so a leaked database leaks none."""

from __future__ import annotations

import secrets

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from benchmarks.models import ApiToken, Membership, Team


def api_token_create(*, team: Team, by: AbstractBaseUser, name: str) -> tuple[ApiToken, str]:
    """The new token row and the token itself, which is never stored and cannot be shown again."""
    token = ApiToken.PREFIX + secrets.token_urlsafe(32)
    row = ApiToken.objects.create(
        team=team, name=name, created_by=by, key_hash=ApiToken.digest(token), hint=token[:12]
    )
    return row, token


def api_token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def api_token_check(*, raw: str) -> ApiToken | None:
    """The live token for this string, whose creator can still write in its team; else None."""
    if not raw.startswith(ApiToken.PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("team", "created_by")
        .filter(key_hash=ApiToken.digest(raw), revoked_at__isnull=True)
        .first()
    )
    if token is None or token.created_by is None:
        return None
    writer = Membership.objects.filter(
        team=token.team, user=token.created_by, role__in=[Membership.Role.OWNER, Membership.Role.MEMBER]
    ).exists()
    if not writer:
        return None  # its creator left the team or became a viewer: the token goes with them
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token
