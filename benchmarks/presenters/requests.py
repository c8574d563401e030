"""The per-request table of a run (``/runs/<pk>/requests/``): its filters read from the query string
(junk falls back to the default, never an error), one page of rows, and the links between pages."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.core.paginator import Paginator
from django.http import QueryDict

from benchmarks.http import fraction_param, int_param
from benchmarks.models import Run
from benchmarks.selectors.requests import (
    SORTS,
    THRESHOLD,
    RequestFilter,
    request_rows,
    run_buckets,
    run_requests,
    run_requests_count,
    run_variants,
)
from runner import FAILURE_CLASSES

PER_PAGE = 50


class _Counted(Paginator):
    """A paginator told its count (never a COUNT over every row of a big run)."""

    def __init__(self, object_list: Any, per_page: int, count: int) -> None:
        super().__init__(object_list, per_page)
        self._count = count

    @cached_property
    def count(self) -> int:
        return self._count


def request_filter(run: Run, query: QueryDict) -> RequestFilter:
    outcome = query.get("outcome", "")
    buckets = {b["label"] for b in run_buckets(run)}
    variant = int_param(query.get("variant"))
    return RequestFilter(
        sort=query.get("sort", "worst") if query.get("sort") in SORTS else "worst",
        outcome=outcome if outcome in ("failed", "success", *FAILURE_CLASSES) else "",
        bucket=query.get("bucket", "") if query.get("bucket") in buckets else "",
        variant=variant if variant is not None and variant in run_variants(run) else None,
        audit_disagrees=query.get("audit") == "disagrees",
        audit_threshold=fraction_param(query.get("audit_threshold"), THRESHOLD * 100) / 100,
    )


def requests_page(run: Run, query: QueryDict) -> dict[str, Any]:
    where = request_filter(run, query)
    # the page's ids first (sorted in the index-only columns), then those few rows' details
    records = run_requests(run=run, where=where)
    count, capped = run_requests_count(run=run, where=where, records=records)
    ids = records.values_list("id", flat=True)
    # a capped count pages through the first COUNT_CAP rows (worst first by default)
    page = _Counted(ids, PER_PAGE, count).get_page(int_param(query.get("page"), 1))
    rest = query.copy()
    rest.pop("page", None)
    return {
        "run": run,
        "page": page,
        "count": count,
        "count_capped": capped,
        "rows": request_rows(list(page.object_list)),
        "where": where,
        "page_query": rest.urlencode(),
        "sorts": [(key, label) for key, (label, _) in SORTS.items()],
        "outcomes": ["failed", "success", *FAILURE_CLASSES],
        "buckets": run_buckets(run),
        "variants": run_variants(run),
    }
