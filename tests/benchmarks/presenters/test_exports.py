"""Exports: spreadsheet-safe cells, and the requests CSV streamed row by row."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from benchmarks.models import RequestRecord
from benchmarks.presenters.exports import csv_lines, spreadsheet_safe


@pytest.mark.parametrize("text", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_a_cell_a_spreadsheet_would_run_is_neutralised(text: str) -> None:
    assert spreadsheet_safe(text) == "'" + text


def test_numbers_and_plain_text_stay_as_they_are() -> None:
    assert spreadsheet_safe(-1.5) == -1.5 and spreadsheet_safe("timeout") == "timeout"


def test_csv_lines_stream_one_line_per_row() -> None:
    rows = ({"a": i, "b": "=1+1"} for i in range(3))
    lines = csv_lines(["a", "b"], rows)
    assert next(lines) == "a,b\r\n"
    assert list(lines) == ["0,'=1+1\r\n", "1,'=1+1\r\n", "2,'=1+1\r\n"]


def test_the_requests_csv_is_streamed_and_safe(cast, client_for) -> None:
    RequestRecord.objects.create(
        run=cast.run,
        request_id="r-evil",
        prompt_id="=cmd|' /C calc'!A0",
        outcome="http_error",
        data={"request_id": "r-evil", "prompt_id": "=cmd|' /C calc'!A0", "outcome": "http_error",
              "error": "@SUM(1+1)"},
    )  # fmt: skip
    response = client_for(cast.alice).get(reverse("run_requests_csv", args=[cast.run.pk]))
    assert response.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    evil = next(r for r in rows if r["request_id"] == "r-evil")
    assert evil["prompt_id"].startswith("'=") and evil["error"] == "'@SUM(1+1)"
