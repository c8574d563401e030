"""A run's raw records as downloads, streamed over a server-side cursor (constant memory whatever the
run's size): the per-request CSV and the raw JSONL (one record a line, every field). The run page
and the API serve the same responses."""

from __future__ import annotations

from collections.abc import Iterator

from django.http import StreamingHttpResponse

from benchmarks.models import Run
from benchmarks.presenters.exports import csv_lines
from benchmarks.presenters.runs import CSV_FIELDS
from benchmarks.selectors.requests import run_record_fields, run_records_stream


def jsonl_lines(rows: Iterator[tuple[int, str]]) -> Iterator[str]:
    """One JSON object a line: the record exactly as the engine measured it (packets, ITLs, variant,
    level, usage and client token counts, ``correct``, the answer when kept) plus its ``record_id``
    first — spliced into the stored JSON text, which is never parsed here."""
    for record_id, text in rows:  # jsonb's text is one line: its strings escape their newlines
        inner = text.strip()[1:-1].strip()
        yield f'{{"record_id": {int(record_id)}{", " if inner else ""}{inner}}}\n'


def records_jsonl_response(run: Run) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        jsonl_lines(run_records_stream(run=run)), content_type="application/x-ndjson"
    )
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-records.jsonl"'
    return response


def requests_csv_response(run: Run) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        csv_lines(list(CSV_FIELDS), run_record_fields(run=run)), content_type="text/csv"
    )
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-requests.csv"'
    return response
