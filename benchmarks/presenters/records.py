"""A run's raw records as downloads, streamed over a server-side cursor (constant memory whatever the
run's size): the per-request CSV and the raw JSONL (one record a line, every field). The run page
and the API serve the same responses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.http import StreamingHttpResponse

from benchmarks.models import Run
from benchmarks.presenters.exports import csv_lines
from benchmarks.presenters.runs import CSV_FIELDS
from benchmarks.selectors.requests import run_records_stream


def jsonl_lines(rows: Iterator[tuple[int, dict[str, Any]]]) -> Iterator[str]:
    """One JSON object a line: the record exactly as the engine measured it (packets, ITLs, variant,
    level, usage and client token counts, ``correct``, the answer when kept) plus its ``record_id``."""
    for record_id, data in rows:
        yield json.dumps({"record_id": record_id, **data}, separators=(",", ":")) + "\n"


def records_jsonl_response(run: Run) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        jsonl_lines(run_records_stream(run=run)), content_type="application/x-ndjson"
    )
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-records.jsonl"'
    return response


def requests_csv_response(run: Run) -> StreamingHttpResponse:
    rows = (data for _, data in run_records_stream(run=run))
    response = StreamingHttpResponse(csv_lines(list(CSV_FIELDS), rows), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-requests.csv"'
    return response
