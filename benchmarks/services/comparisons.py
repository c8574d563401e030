"""Saved comparisons: a title, notes and the runs, for the whole team."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from benchmarks.models import Comparison, Team


@transaction.atomic
def comparison_create(
    *, team: Team, by: AbstractBaseUser, title: str, notes: str, run_ids: list[int]
) -> Comparison:
    return Comparison.objects.create(team=team, created_by=by, title=title, notes=notes, run_ids=run_ids)


def comparison_update(*, comparison: Comparison, title: str, notes: str) -> Comparison:
    comparison.title, comparison.notes = title, notes
    comparison.save(update_fields=["title", "notes", "updated_at"])
    return comparison


def comparison_delete(*, comparison: Comparison) -> None:
    comparison.delete()
