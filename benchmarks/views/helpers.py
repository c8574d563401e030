from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Model
from django.http import HttpRequest

from benchmarks.selectors.objects import can_write


def ensure_can_write(request: HttpRequest, obj: Model) -> None:
    """Owners and members change things; viewers get 403 (the buttons are hidden for them too)."""
    if not can_write(obj, user=request.user):
        raise PermissionDenied("Viewers cannot change anything in this team.")
