"""Create, update, clone and delete for team-owned objects. Each write is atomic: nothing half-saved."""

from __future__ import annotations

from typing import TypeVar

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import ProtectedError
from django.forms import ModelForm

from benchmarks.models import Team

M = TypeVar("M", bound=models.Model)


@transaction.atomic
def object_save(*, form: ModelForm, team: Team | None = None) -> models.Model:
    """Save a validated model form; ``team`` is set on creation only (objects never change team)."""
    obj = form.save(commit=False)
    if team is not None and obj.pk is None:
        obj.team = team
    obj.save()
    form.save_m2m()
    return obj


@transaction.atomic
def object_clone(*, obj: M) -> M:
    copy = type(obj)._default_manager.get(pk=obj.pk)
    copy.pk = None
    copy.id = None  # type: ignore[attr-defined]
    copy._state.adding = True
    copy.name = _copy_name(obj.name)  # type: ignore[attr-defined]
    copy.save()
    return copy


def object_delete(*, obj: models.Model) -> None:
    try:
        with transaction.atomic():
            obj.delete()
    except ProtectedError as exc:
        users = sorted({str(o) for o in exc.protected_objects})[:5]
        raise ValidationError(
            f"“{obj}” is still used by: {', '.join(users)}. Delete or change those first."
        ) from exc


def _copy_name(name: str) -> str:
    suffix = " (copy)"
    return (name[: 100 - len(suffix)] + suffix) if not name.endswith(suffix) else name
