from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.db.models import QuerySet

from benchmarks.models import Membership, Team


def teams_for_user(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Team]:
    if not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user).order_by("name", "id")


def membership_get(*, user: AbstractBaseUser | AnonymousUser, team_id: int | None) -> Membership | None:
    if not user.is_authenticated or team_id is None:
        return None
    return Membership.objects.select_related("team").filter(user=user, team_id=team_id).first()


def membership_default(*, user: AbstractBaseUser | AnonymousUser) -> Membership | None:
    if not user.is_authenticated:
        return None
    return Membership.objects.select_related("team").filter(user=user).order_by("created_at", "id").first()


def team_members(*, team: Team) -> QuerySet[Membership]:
    return Membership.objects.filter(team=team).select_related("user").order_by("user__username")


def team_by_name(name: str) -> Team | None:
    return Team.objects.filter(name=name).first()


def plan_by_name_or_id(ref: str, *, team_name: str | None = None) -> Any:
    """One plan by id or exact name (within ``team_name`` when given); None when none or several."""
    from benchmarks.models import Plan

    plans = Plan.objects.select_related("team", "endpoint", "dataset", "profile")
    if team_name:
        plans = plans.filter(team__name=team_name)
    found = list(plans.filter(pk=int(ref))) if ref.isdigit() else []
    found = found or list(plans.filter(name=ref)[:2])
    return found[0] if len(found) == 1 else None


def team_disk_usage(*, team: Team, top: int = 20) -> dict[str, Any]:
    """Bytes the team's runs take in Postgres, as stored (``pg_column_size``: compressed, out-of-line
    values counted at their stored size; row headers and indexes left out): raw request records and
    per-second rows, in total and for the ``top`` biggest runs."""
    size = "pg_column_size" if connection.vendor == "postgresql" else "length"  # SQLite: text length
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT r.id, r.plan_name, r.status, r.records_purged_at,
                   COALESCE(rec.n, 0), COALESCE(rec.bytes, 0), COALESCE(sec.bytes, 0)
            FROM benchmarks_run r
            LEFT JOIN (
                SELECT run_id, count(*) AS n,
                       sum(SIZE(data) + COALESCE(SIZE(series), 0)) AS bytes
                FROM benchmarks_requestrecord GROUP BY run_id
            ) rec ON rec.run_id = r.id
            LEFT JOIN (
                SELECT run_id, sum(SIZE(point)) AS bytes FROM benchmarks_runsecond GROUP BY run_id
            ) sec ON sec.run_id = r.id
            WHERE r.team_id = %s
            ORDER BY COALESCE(rec.bytes, 0) + COALESCE(sec.bytes, 0) DESC, r.id DESC
            """.replace("SIZE", size),
            [team.pk],
        )
        rows = cursor.fetchall()
    runs = [
        {
            "id": pk,
            "plan_name": plan,
            "status": status,
            "records_purged_at": purged,
            "records": int(n),
            "records_bytes": int(rb),
            "seconds_bytes": int(sb),
            "bytes": int(rb) + int(sb),
        }
        for pk, plan, status, purged, n, rb, sb in rows
    ]
    return {
        "method": size,
        "runs": len(runs),
        "records": sum(r["records"] for r in runs),
        "records_bytes": sum(r["records_bytes"] for r in runs),
        "seconds_bytes": sum(r["seconds_bytes"] for r in runs),
        "bytes": sum(r["bytes"] for r in runs),
        "top": runs[:top],
    }
