"""``Authorization: Bearer llmp_…``: the token decides the team; every object outside it is a 404."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from benchmarks.services.api_tokens import api_token_check


class ApiTokenAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() not in (b"bearer", b"token"):
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send 'Authorization: Bearer <token>'.")
        token = api_token_check(raw=parts[1].decode("latin-1"))
        if token is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API token.")
        return token.created_by, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="llmperf"'  # makes a missing token a 401, not a 403


class HasTeamToken(permissions.BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return request.auth is not None
