from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import orjson
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.db.models.fields.json import KT

from benchmarks.models import Plan, RequestRecord, Run, RunSecond, Shard, Team
from runner import Columns, columns_from


def plans_for_team(*, team: Team) -> QuerySet[Plan]:
    return Plan.objects.filter(team=team).select_related("endpoint", "dataset", "profile")


# What lists and live ticks read of a run's big JSON columns: a few keys, extracted in SQL (the
# columns themselves — spec, summary, live — are never loaded for them).
HEAD_KEYS = {
    "head_duration_s": "spec__duration_s",
    "head_max_requests": "spec__max_requests",
    "head_capacity": "spec__capacity",
    "head_requests_total": "summary__requests__total",
    "head_ttft_p50": "summary__ttft_ms__p50",
}


def lean(runs: QuerySet[Run]) -> QuerySet[Run]:
    """``runs`` without their large columns, with the few keys lists and ticks show annotated
    (``Run.requests_total``, ``Run.ttft_p50`` and ``progress`` read them)."""
    return runs.defer("spec", "summary", "live").annotate(
        **{name: KT(path) for name, path in HEAD_KEYS.items()}
    )


def runs_for_plan(*, plan: Plan) -> QuerySet[Run]:
    return lean(Run.objects.filter(plan=plan)).order_by("-created_at")


def runs_filtered(
    *,
    team: Team,
    plan_id: int | None = None,
    endpoint_id: int | None = None,
    tag: str = "",
    status: str = "",
    since: date | None = None,
    until: date | None = None,
) -> QuerySet[Run]:
    runs = lean(Run.objects.filter(team=team))
    if plan_id:
        runs = runs.filter(plan_id=plan_id)
    if endpoint_id:
        runs = runs.filter(endpoint_id=endpoint_id)
    if tag:
        key, sep, value = tag.strip().partition("=")
        if sep and key.strip():  # key=value: that variant tag exactly (the value in any case)
            runs = runs.filter(**{f"variant__{key.strip()}__iexact": value.strip()})
        else:  # a bare word: any tag holding it
            runs = runs.filter(variant_text__icontains=tag.strip().lower())
    if status:
        runs = runs.filter(status=status)
    if since:
        runs = runs.filter(created_at__date__gte=since)
    if until:
        runs = runs.filter(created_at__date__lte=until)
    return runs.order_by("-created_at")


def run_series(*, run: Run, since_t: int | None = None) -> list[dict[str, Any]]:
    """The live view's per-second rows, oldest first (from ``since_t`` on when given)."""
    seconds = RunSecond.objects.filter(run=run)
    if since_t is not None:
        seconds = seconds.filter(t__gte=since_t)
    return list(seconds.order_by("t").values_list("point", flat=True))


def runs_series(*, run_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Several runs' per-second rows at once, oldest first, by run id."""
    points: dict[int, list[dict[str, Any]]] = {pk: [] for pk in run_ids}
    rows = RunSecond.objects.filter(run_id__in=run_ids).order_by("t").values_list("run_id", "point")
    for run_id, point in rows:
        points[run_id].append(point)
    return points


def run_record_get(*, run: Run, record_id: int) -> RequestRecord | None:
    return RequestRecord.objects.filter(run=run, pk=record_id).first()


def run_records(*, run: Run) -> QuerySet[RequestRecord]:
    return RequestRecord.objects.filter(run=run).order_by("started_epoch", "id")


def run_points(*, run: Run) -> list[dict[str, Any]]:
    """One row per request for the per-request charts: id, wall-clock start, TTFT and tokens/s."""
    return list(run_records(run=run).values("id", "started_epoch", "ttft_ms", "tokens_per_s"))


def run_gaps(*, run: Run, limit: int) -> list[float]:
    """Every inter-token gap of the run's requests, pooled (at most ``limit``)."""
    gaps: list[float] = []
    for data in run_records(run=run).values_list("data__itl_ms", flat=True):
        gaps.extend(data or [])
    return gaps[:limit]


def run_shards(*, run: Run) -> QuerySet[Shard]:
    return run.shards.order_by("index")


def run_record_rows(*, run: Run) -> Iterator[dict[str, Any]]:
    """Every record's data, oldest first, streamed (the CSV download)."""
    return run_records(run=run).values_list("data", flat=True).iterator()


def run_failures(*, run: Run, limit: int = 200) -> QuerySet[RequestRecord]:
    return run_records(run=run).exclude(outcome="success")[:limit]


def progress(run: Run, snapshot: dict[str, Any]) -> tuple[float, float | None]:
    """Fraction done (by time or by request count, whichever is further) and seconds left."""
    if not run.is_active:
        return 1.0, 0.0
    head = spec_head(run)
    if run.started_at is None or head["capacity"]:
        return 0.0, None  # a capacity search's length depends on where it finds the boundary
    elapsed = max(time.time() - run.started_at.timestamp(), 0.0)
    fractions = []
    if head["duration_s"]:
        fractions.append(elapsed / float(head["duration_s"]))
    if head["max_requests"]:
        done = float(snapshot.get("completed", 0) or 0) + float(snapshot.get("failed", 0) or 0)
        fractions.append(done / float(head["max_requests"]))
    done = min(max(fractions, default=0.0), 1.0)
    eta = elapsed * (1 - done) / done if done > 0 else None
    return done, eta


def head_value(value: Any) -> float | None:
    """A number ``lean`` extracted as text (SQLite gives JSON null as the text 'null')."""
    return None if value in (None, "", "null") else float(value)


def spec_head(run: Run) -> dict[str, Any]:
    """The spec's duration, request cap and capacity flag: from ``lean``'s annotations when the run
    was read that way, else from the spec."""
    if hasattr(run, "head_duration_s"):
        return {
            "duration_s": head_value(run.head_duration_s),
            "max_requests": head_value(run.head_max_requests),
            "capacity": run.head_capacity not in (None, "null"),
        }
    spec = run.spec or {}
    return {
        "duration_s": spec.get("duration_s"),
        "max_requests": spec.get("max_requests"),
        "capacity": "capacity" in spec,
    }


def live_payload(run: Run, *, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What a viewer gets: series rows (all of them on connect, the recent ones after), totals,
    state, progress and any engine-saturation warning."""
    fraction, eta = progress(run, run.snapshot or {})
    return {
        "rows": rows,
        "snapshot": run.snapshot or {},
        "status": run.status,
        "reason": run.reason,
        "progress": round(fraction, 4),
        "eta_s": None if eta is None else round(eta, 1),
        "warnings": saturation_warnings(run.snapshot or {}),
        "shards": list(
            run.shards.values("index", "status", "hostname", "records_count", "ended_by", "error")
        ),
    }


def saturation_warnings(snapshot: dict[str, Any]) -> list[str]:
    """The engine's own health per shard: a saturated load generator makes latencies look worse."""
    warnings = []
    for shard, engine in sorted((snapshot.get("engine") or {}).items()):
        if isinstance(engine, dict) and engine.get("saturated"):
            reasons = "; ".join(str(r) for r in engine.get("reasons") or []) or "saturated"
            warnings.append(f"Shard {shard}: load generator saturated ({reasons}).")
    return warnings


# finalize's read: every record without its packets and gaps (their float64 blob instead); old rows
# without a blob bring their packets and gaps so the blob can be computed from them
_COLUMNS_SQL = """
    SELECT CASE WHEN series IS NULL THEN data ELSE data - 'packets' - 'itl_ms' END, series
    FROM benchmarks_requestrecord WHERE run_id = %s ORDER BY id
"""


def run_record_columns(
    *, run_id: int, chunk_size: int = 5000, on_chunk: Callable[[int], None] | None = None
) -> Columns:
    """Every record of the run as columns, read over a server-side cursor ``chunk_size`` rows at a
    time (only one chunk's JSON is in memory at once); ``on_chunk(rows so far)`` after each."""
    parts: list[Columns] = []
    done = 0
    for rows in _record_chunks(run_id, chunk_size):
        lean = [orjson.loads(d) if isinstance(d, str | bytes) else d for d, _ in rows]
        parts.append(columns_from(lean, [None if b is None else bytes(b) for _, b in rows]))
        done += len(rows)
        if on_chunk is not None:
            on_chunk(done)
    return Columns.concat(parts)


def _record_chunks(run_id: int, chunk_size: int) -> Iterator[list[tuple[Any, Any]]]:
    """(JSON, series blob) rows, ``chunk_size`` at a time: on PostgreSQL without the packets and
    gaps of rows that have a blob (the database drops them); elsewhere (the embedded mode's
    SQLite) whole, through the ORM."""
    if connection.vendor != "postgresql":
        rows = RequestRecord.objects.filter(run_id=run_id).order_by("id").values_list("data", "series")
        chunk: list[tuple[Any, Any]] = []
        for row in rows.iterator(chunk_size=chunk_size):
            chunk.append(row)
            if len(chunk) == chunk_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk
        return
    with connection.chunked_cursor() as cursor:
        cursor.execute(_COLUMNS_SQL, [run_id])
        while rows := cursor.fetchmany(chunk_size):
            yield rows


def stored_counts(*, run_id: int) -> dict[int, int]:
    """Records in the database per shard index."""
    rows = RequestRecord.objects.filter(run_id=run_id).values("shard_index").annotate(n=Count("id"))
    return {row["shard_index"]: row["n"] for row in rows.order_by()}


def run_get(*, run_id: int) -> Run:
    return Run.objects.get(pk=run_id)


def run_live_get(*, run_id: int) -> Run:
    """What a live tick needs of the run: state, snapshot and the spec's few keys, no large column."""
    return lean(Run.objects.filter(pk=run_id)).get()


def can_see_run(*, user: AbstractBaseUser, run_id: int) -> Run | None:
    if not user.is_authenticated:
        return None
    return Run.objects.filter(pk=run_id, team__memberships__user=user).only("id", "team_id").first()


def repeat_runs(*, run: Run) -> list[Run]:
    """Every repetition of the set ``run`` belongs to (a plan with repeat N), first one first; [] for a
    run that is not repeated."""
    if not (run.spec or {}).get("repeat"):
        return []
    first_id = run.repeat_of_id or run.pk
    return list(Run.objects.filter(Q(pk=first_id) | Q(repeat_of_id=first_id)).order_by("repeat_index", "pk"))
