"""A run's requests as a table: filtered, sorted and paginated in Postgres (worst first by default), so
a page of it costs the same at 50 records as at a million. The run page's token audit and failures
link here; each row links to the request's own page."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, F, IntegerField, QuerySet, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KT

from benchmarks.models import RequestRecord, Run
from benchmarks.selectors.token_audit import COUNTS, DISAGREES, TABLE, THRESHOLD, num

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
COLUMNS = ("id", "request_id", "prompt_id", "shard_index", "outcome", "ttft_ms", "e2e_ms", "tokens_per_s")
DATA_KEYS = ("variant", "level", "error", "http_status", "usage_output_tokens", "client_output_tokens")
# the count that placed a prompt in its bucket (runner.summary._bucket_tokens): the dataset's, else usage
BUCKET_TOKENS = f"coalesce({num('client_input_tokens')}, r.input_tokens::float8)"


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
        records = records.exclude(outcome="success")
    elif where.outcome:
        records = records.filter(outcome=where.outcome)
    bucket = next((b for b in run_buckets(run) if b["label"] == where.bucket), None)
    conditions: list[str] = []
    params: list[Any] = []
    if bucket is not None:
        conditions.append(f"{BUCKET_TOKENS} >= %s")
        params.append(bucket["lo"] or 0)
        if bucket["hi"] is not None:
            conditions.append(f"{BUCKET_TOKENS} < %s")
            params.append(bucket["hi"])
    if where.audit_disagrees:
        conditions.append(DISAGREES.replace("%(threshold)s", "%s"))
        params.append(where.audit_threshold)
    if conditions:  # the record's counts read out of its JSON once per row (token_audit.COUNTS)
        sql = f"SELECT r.id FROM {TABLE} r {COUNTS} WHERE r.run_id = %s AND " + " AND ".join(conditions)
        records = records.filter(id__in=RawSQL(sql, (run.pk, *params)))
    if where.variant is not None:
        records = records.filter(data__variant=where.variant)
    order = SORTS.get(where.sort, SORTS["worst"])[1]
    failed_first = Case(When(outcome="success", then=Value(1)), default=Value(0), output_field=IntegerField())
    return records.alias(failed_first=failed_first).order_by(*order, "id")


def request_rows(page: Any) -> list[dict[str, Any]]:
    """One page's rows: the indexed columns and a few small data keys (never packets or ITLs)."""
    keys = {f"d_{k}": _key(k) for k in DATA_KEYS}
    return [
        {**{k: row[k] for k in COLUMNS}, **{k[2:]: row[k] for k in keys}}
        for row in page.object_list.values(*COLUMNS, **keys)
    ]


def _key(name: str) -> Any:
    return KT(f"data__{name}")


def run_variants(run: Run) -> list[int]:
    return list(range(len((run.spec or {}).get("variants") or [])))


def run_records_stream(*, run: Run, chunk_size: int = 2000) -> Iterator[tuple[int, dict[str, Any]]]:
    """Every record (id, data), oldest first, over a server-side cursor: constant memory."""
    records = RequestRecord.objects.filter(run=run).order_by("started_epoch", "id")
    return records.values_list("id", "data").iterator(chunk_size=chunk_size)
