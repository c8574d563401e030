"""A run's requests as a table: filtered, sorted and paginated in Postgres (worst first by default), so
a page of it costs the same at 50 records as at a million. The run page's token audit and failures
link here; each row links to the request's own page."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Case, F, IntegerField, JSONField, QuerySet, TextField, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from benchmarks.models import RequestRecord, Run
from benchmarks.selectors.token_audit import DISAGREES, THRESHOLD
from runner import FAILURE_CLASSES

SORTS = {  # ?sort= → (label, ORDER BY); ties broken by id so pages never overlap
    "worst": (
        "Worst first (failures, then slowest TTFT)",
        ("failed_first", F("ttft_ms").desc(nulls_first=True)),
    ),
    "ttft": ("TTFT, slowest first", (F("ttft_ms").desc(nulls_last=True),)),
    "e2e": ("End-to-end, slowest first", (F("e2e_ms").desc(nulls_last=True),)),
    "tokens_per_s": ("Tokens/s, slowest first", (F("tokens_per_s").asc(nulls_last=True),)),
    "output_tokens": ("Output tokens, most first", (F("output_tokens").desc(nulls_last=True),)),
}
COLUMNS = (
    "id",
    "request_id",
    "prompt_id",
    "shard_index",
    "variant",
    "outcome",
    "ttft_ms",
    "e2e_ms",
    "tokens_per_s",
    "usage_output_tokens",
    "client_output_tokens",
)
DATA_KEYS = ("level", "error", "http_status")  # read from ``data`` for one page's rows only
COUNT_CAP = 10_000  # a filtered table counts this many rows at most, then says "10,000+"
# the count that placed a prompt in its bucket (runner.summary._bucket_tokens): the dataset's, else usage
BUCKET_TOKENS = "coalesce(client_input_tokens, input_tokens)"


@dataclass(frozen=True)
class RequestFilter:
    sort: str = "worst"
    outcome: str = ""  # "failed", "success" or one outcome
    bucket: str = ""  # a label of the run's summary buckets
    variant: int | None = None
    audit_disagrees: bool = False
    audit_threshold: float = THRESHOLD  # a share of the client's output count, as on the run page


def run_buckets(run: Run) -> list[dict[str, Any]]:
    """The run's input-length buckets (label, lo, hi) as its summary defined them."""
    return [
        {"label": b["label"], "lo": b.get("lo"), "hi": b.get("hi")}
        for b in (run.summary or {}).get("buckets") or []
        if b.get("label") is not None
    ]


def run_requests(*, run: Run, where: RequestFilter) -> QuerySet[RequestRecord]:
    records = RequestRecord.objects.filter(run=run)
    if where.outcome == "failed":
        records = records.filter(outcome__in=FAILURE_CLASSES)
    elif where.outcome:
        records = records.filter(outcome=where.outcome)
    bucket = next((b for b in run_buckets(run) if b["label"] == where.bucket), None)
    if bucket is not None:
        tokens = RawSQL(BUCKET_TOKENS, (), output_field=IntegerField())
        records = records.alias(bucket_tokens=tokens).filter(bucket_tokens__gte=bucket["lo"] or 0)
        if bucket["hi"] is not None:
            records = records.filter(bucket_tokens__lt=bucket["hi"])
    if where.audit_disagrees:
        sql = DISAGREES.replace("%(threshold)s", "%s")
        disagrees = RawSQL(sql, (where.audit_threshold,), output_field=BooleanField())
        records = records.alias(disagrees=disagrees).filter(disagrees=True)
    if where.variant is not None:
        records = records.filter(variant=where.variant)
    order = SORTS.get(where.sort, SORTS["worst"])[1]
    failed_first = Case(When(outcome="success", then=Value(1)), default=Value(0), output_field=IntegerField())
    return records.alias(failed_first=failed_first).order_by(*order, "id")


def run_requests_count(
    *, run: Run, where: RequestFilter, records: QuerySet[RequestRecord]
) -> tuple[int, bool]:
    """(rows, capped) of ``records`` (``run_requests(run=run, where=where)``) without counting a big
    run's rows on every view: an ended run's whole table is the number finalize read
    (``summary["records_stored"]``); anything else is counted up to ``COUNT_CAP`` + 1 rows (a
    bounded scan), and capped = there are more than ``COUNT_CAP``."""
    unfiltered = not (where.outcome or where.bucket or where.variant is not None or where.audit_disagrees)
    stored = (run.summary or {}).get("records_stored")
    if unfiltered and not run.is_active and run.records_purged_at is None and isinstance(stored, int):
        return stored, False
    n = records[: COUNT_CAP + 1].count()
    return (COUNT_CAP, True) if n > COUNT_CAP else (n, False)


def request_rows(ids: list[int]) -> list[dict[str, Any]]:
    """One page's rows, in the page's order: the columns and a few small data keys (never packets
    or ITLs), read for these ids only."""
    keys = {f"d_{k}": KT(f"data__{k}") for k in DATA_KEYS}
    found = {row["id"]: row for row in RequestRecord.objects.filter(id__in=ids).values(*COLUMNS, **keys)}
    return [{k.removeprefix("d_"): v for k, v in found[i].items()} for i in ids if i in found]


def run_variants(run: Run) -> list[int]:
    return list(range(len((run.spec or {}).get("variants") or [])))


def run_records_stream(*, run: Run, chunk_size: int = 2000) -> Iterator[tuple[int, str]]:
    """Every record (id, its data as JSON text, never parsed here), oldest first, over a server-side
    cursor: constant memory whatever the run's size."""
    records = RequestRecord.objects.filter(run=run).order_by("started_epoch", "id")
    text = Cast("data", TextField())
    return records.annotate(text=text).values_list("id", "text").iterator(chunk_size=chunk_size)


BULKY = ("packets", "itl_ms", "answer_text")  # per-request arrays and text: in the JSONL, not the CSV


def run_record_fields(*, run: Run, chunk_size: int = 2000) -> Iterator[dict[str, Any]]:
    """Every record's scalar fields (its data less ``BULKY``, dropped in Postgres), oldest first, over
    a server-side cursor: the per-request CSV's rows."""
    records = RequestRecord.objects.filter(run=run).order_by("started_epoch", "id")
    if connection.vendor != "postgresql":  # the embedded mode's SQLite: dropped here instead
        rows = records.values_list("data", flat=True).iterator(chunk_size=chunk_size)
        return ({k: v for k, v in data.items() if k not in BULKY} for data in rows)
    slim = RawSQL("data - %s::text[]", (list(BULKY),), output_field=JSONField())
    return records.annotate(slim=slim).values_list("slim", flat=True).iterator(chunk_size=chunk_size)
