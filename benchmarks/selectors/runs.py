from __future__ import annotations

import contextlib
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import orjson
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.db.models.fields.json import KT

from benchmarks.models import Comparison, Plan, PlanSchedule, RequestRecord, Run, RunSecond, Shard, Team
from runner import FAILURE_CLASSES, Columns, columns_from


def plans_for_team(*, team: Team) -> QuerySet[Plan]:
    return Plan.objects.filter(team=team).select_related("endpoint", "dataset", "profile")


# What lists and live ticks read of a run's big JSON columns: a few keys, extracted in SQL (the
# columns themselves — spec, summary, live — are never loaded for them).
HEAD_KEYS = {
    "head_duration_s": "spec__duration_s",
    "head_max_requests": "spec__max_requests",
    "head_capacity": "spec__capacity",
    "head_kv_reuse": "spec__kv_reuse",
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


def endpoint_last_e2e(*, endpoint_id: int) -> tuple[int, float] | None:
    """(run id, E2E p50 in ms) of the endpoint's latest finished run that measured one, or None."""
    finished = Run.objects.filter(endpoint_id=endpoint_id, status=Run.Status.FINISHED).order_by("-created_at")
    for run_id, summary in finished.values_list("pk", "summary")[:5]:
        p50 = ((summary or {}).get("e2e_ms") or {}).get("p50")
        if isinstance(p50, int | float) and p50 > 0:
            return run_id, float(p50)
    return None


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


def run_shards(*, run: Run) -> QuerySet[Shard]:
    return run.shards.order_by("index")


def run_failures(*, run: Run, limit: int = 200) -> QuerySet[RequestRecord]:
    """The first failed requests (an index on run, outcome, start: a few rows at any run size)."""
    return run_records(run=run).filter(outcome__in=FAILURE_CLASSES)[:limit]


def progress(run: Run, snapshot: dict[str, Any]) -> tuple[float, float | None]:
    """Fraction done (by time or by request count, whichever is further) and seconds left."""
    if not run.is_active:
        return 1.0, 0.0
    head = spec_head(run)
    if run.started_at is None or head["capacity"] or head["kv_reuse"]:
        # a capacity search's length depends on where it finds the boundary; KV-cache reuse runs
        # its prompts twice (cold, warm), past the plan's request count
        return 0.0, None
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
    """The spec's duration, request cap and capacity and KV-reuse flags: from ``lean``'s annotations when the run
    was read that way, else from the spec."""
    if hasattr(run, "head_duration_s"):
        return {
            "duration_s": head_value(run.head_duration_s),
            "max_requests": head_value(run.head_max_requests),
            "capacity": run.head_capacity not in (None, "null"),
            "kv_reuse": run.head_kv_reuse not in (None, "null"),
        }
    spec = run.spec or {}
    return {
        "duration_s": spec.get("duration_s"),
        "max_requests": spec.get("max_requests"),
        "capacity": "capacity" in spec,
        "kv_reuse": "kv_reuse" in spec,
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
    time (only one chunk's JSON is in memory at once); ``on_chunk(rows so far)`` after each. The
    records' gaps and chunks go to an unlinked temporary file, a chunk at a time, which the summary
    reads back the same way: memory holds the per-record fields, not every gap of the run."""
    parts: list[Columns] = []
    done = 0
    # closed when the columns are collected: they read it back after this returns
    spill = tempfile.TemporaryFile(prefix="llmperf-series-", buffering=0)  # noqa: SIM115
    for rows in _record_chunks(run_id, chunk_size):
        lean = [orjson.loads(d) if isinstance(d, str | bytes) else d for d, _ in rows]
        parts.append(columns_from(lean, [None if b is None else bytes(b) for _, b in rows], spill=spill))
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
        yield from _ahead(lambda: cursor.fetchmany(chunk_size))


def _ahead(fetch: Callable[[], list[Any]]) -> Iterator[list[Any]]:
    """``fetch()``'s chunks until an empty one, the next one fetched on a thread while the caller
    works on this one: Postgres builds the rows (and psycopg waits, without the GIL) meanwhile. One
    chunk ahead at most; the cursor is the caller's (psycopg serialises its connection's use)."""
    ahead: queue.Queue[tuple[list[Any] | None, BaseException | None]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.is_set():
                rows = fetch()
                ahead.put((rows, None))
                if not rows:
                    return
        except BaseException as exc:  # handed to the caller's thread
            ahead.put((None, exc))

    worker = threading.Thread(target=run, name="finalize-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            rows, exc = ahead.get()
            if exc is not None:
                raise exc
            if not rows:
                return
            yield rows
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):
            ahead.get_nowait()  # a worker waiting to put its chunk may see stop and end
        worker.join()


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


REPEAT_NEXT_GRACE_S = 600.0  # a set whose next repetition has not appeared this long after is over


def repeat_set_ended(*, run: Run) -> tuple[list[Run], bool]:
    """The set ``run`` belongs to, and whether it is over: none of it running, and either all N
    repetitions exist or no next one will start (the last did not finish, its plan is gone, the set
    was stopped, or nothing followed it for ``REPEAT_NEXT_GRACE_S``). Between one repetition's end and
    the next one's start the set is not over. A run that is not repeated is its own set."""
    runs = repeat_runs(run=run) or list(Run.objects.filter(pk=run.pk))
    if any(r.is_active for r in runs):
        return runs, False
    total = int((run.spec or {}).get("repeat") or 1)
    last = runs[-1]
    waited = last.ended_at is not None and time.time() - last.ended_at.timestamp() > REPEAT_NEXT_GRACE_S
    over = (
        len(runs) >= total
        or last.status != Run.Status.FINISHED
        or last.plan_id is None
        or (last.reason or "").startswith("Repetitions stopped")
        or waited
    )
    return runs, over


def run_uses(*, run: Run) -> dict[str, list[Any]]:
    """What would lose this run if it were deleted: the team's saved comparisons holding it, and the
    schedules that hold their runs against it as the baseline."""
    return {
        # run_ids is a JSON list: matched here, since SQLite (the embedded mode) has no JSON contains
        "comparisons": [
            c for c in Comparison.objects.filter(team_id=run.team_id).order_by("pk") if run.pk in c.run_ids
        ],
        "schedules": list(
            PlanSchedule.objects.filter(team_id=run.team_id, baseline_run=run).select_related("plan")
        ),
    }


def queue_place(run: Run) -> int | None:
    """A queued load run's place in line over every team (1 = next to start), else None. Only the
    count of runs ahead is read, nothing of other teams' runs."""
    if run.status != Run.Status.QUEUED or run.kind != Run.Kind.LOAD:
        return None
    return Run.objects.filter(kind=Run.Kind.LOAD, status=Run.Status.QUEUED, pk__lt=run.pk).count() + 1


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st …"""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
