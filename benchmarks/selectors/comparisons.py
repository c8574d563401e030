"""Which runs a user may compare, and saved comparisons, team-aware like every selector."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.http import Http404

from benchmarks.models import Comparison, Run, RunSample, Team
from benchmarks.selectors.objects import visible_to

MAX_RUNS = 8


class NotComparable(ValueError):
    """The runs exist and are visible, but cannot be compared (the message says why)."""


def parse_run_ids(values: Iterable[str]) -> list[int]:
    """``?runs=3&runs=5`` or ``?runs=3,5``: ids in the order given, first = baseline, no repeats."""
    ids = [part.strip() for value in values for part in str(value).split(",")]
    return list(dict.fromkeys(int(i) for i in ids if i.isdigit()))


def runs_to_compare(*, user: AbstractBaseUser | AnonymousUser, run_ids: list[int]) -> list[Run]:
    """The runs in the given order; 404 when any is missing or another team's."""
    found = {r.pk: r for r in visible_to(Run, user=user).filter(pk__in=run_ids).distinct()}
    missing = [i for i in run_ids if i not in found]
    if missing:
        raise Http404(f"No run {missing[0]}")
    runs = [found[i] for i in run_ids]
    check_comparable(runs)
    return runs


def check_comparable(runs: list[Run]) -> None:
    ab = RunSample.objects.filter(run__in=runs).exclude(variants=[]).exists()
    if len(runs) < 2 and not ab:
        raise NotComparable("Pick at least two runs (or one paired A/B run).")
    if len(runs) > MAX_RUNS:
        raise NotComparable(f"Compare at most {MAX_RUNS} runs at a time.")
    if len({r.team_id for r in runs}) > 1:
        raise NotComparable("Runs of different teams cannot be compared.")
    unfinished = [f"#{r.pk}" for r in runs if r.is_active or not r.summary]
    if unfinished:
        raise NotComparable(f"Not finished or without a summary yet: {', '.join(unfinished)}.")


def comparisons_for_team(*, team: Team) -> QuerySet[Comparison]:
    return Comparison.objects.filter(team=team).select_related("created_by").order_by("-created_at")


def comparison_run_ids(*, comparison: Comparison) -> list[int]:
    """The saved runs that were not deleted since (a saved comparison outlives a deleted run)."""
    ids = set(
        Run.objects.filter(pk__in=comparison.run_ids, team=comparison.team).values_list("pk", flat=True)
    )
    return [i for i in comparison.run_ids if i in ids]


def runs_outside_team(*, run_ids: list[int], team: Team) -> bool:
    """Whether any of the ids is another team's run (the API answers 404 for those, as for missing)."""
    return Run.objects.filter(pk__in=run_ids).exclude(team=team).exists()
