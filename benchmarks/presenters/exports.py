"""A comparison (or one run) as CSV, and as one self-contained HTML file: the same table and charts, with
plotly.js and the styles inlined, so it opens offline and loads nothing from anywhere."""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import plotly
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
STYLES = ("css/app.css", "css/compare.css")


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula (``=HYPERLINK(…)`` in an error text or a
    prompt id) gets a leading apostrophe; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


class SafeWriter:
    """``csv.writer`` whose every cell goes through :func:`spreadsheet_safe`."""

    def __init__(self, out: IO[str]) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([spreadsheet_safe(v) for v in row])


class _Line:
    """A write target that hands back what it was given (for streaming CSV line by line)."""

    def write(self, text: str) -> str:
        return text


def csv_lines(header: list[str], rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The header, then one CSV line per row (missing keys blank), made as they are sent: memory stays
    flat however many rows there are."""
    writer = csv.writer(_Line())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([spreadsheet_safe(row.get(name, "")) for name in header])


def comparison_csv(built: dict[str, Any], out: IO[str]) -> None:
    """One row per metric and section; per column its value, delta, verdict and noise verdict."""
    columns = built["columns"]
    head = ["section", "metric", "label", "unit", "better"]
    for c in columns:
        head += [
            f"{c.label} {part}" for part in ("value", "delta", "delta %", "verdict", "noise", "test", "p")
        ]
    writer = SafeWriter(out)
    writer.writerow(head)
    for section in built["sections"]:
        for row in section["rows"]:
            line: list[Any] = [section["title"], row["path"], row["label"], row["unit"], row["better"]]
            for value, delta in zip(row["values"], row["deltas"], strict=True):
                line += [_num(value), *_delta_fields(delta)]
            writer.writerow(line)
    if any(d is not None for d in built["comparison"].get("accuracy") or []):
        writer.writerow(_accuracy_line(built))
    for section in built.get("study_sections") or []:  # capacity, server metrics, repetitions
        for row in section["rows"]:
            line = [section["title"], section["key"], row["label"], row["unit"], ""]
            for cell in row["cells"]:
                line += [cell["value"], "", "", cell.get("verdict", ""), cell.get("note", ""), "", ""]
            writer.writerow(line)


def _accuracy_line(built: dict[str, Any]) -> list[Any]:
    """Accuracy against the baseline with its own test (McNemar when paired by item, else two
    proportions): delta in points, verdict (regression/improvement/noise), test and p."""
    line: list[Any] = ["Accuracy test", "accuracy", "Accuracy", "fraction", "higher"]
    for column, delta in zip(built["columns"], built["comparison"]["accuracy"], strict=True):
        block = column.summary.get("accuracy")
        rate = block.get("rate") if isinstance(block, dict) else block
        if delta is None:
            line += [_num(rate), "", "", "baseline" if column is built["columns"][0] else "", "", "", ""]
            continue
        verdict = "regression" if delta["regression"] else "improvement" if delta["improvement"] else "same"
        noise = "within noise" if delta["noise"] else "outside noise"
        line += [_num(rate), _num(delta["delta"]), "", verdict, noise, delta["test"], _num(delta["p_value"])]
    return line


def _delta_fields(delta: dict[str, Any] | None) -> list[Any]:
    if delta is None:
        return ["", "", "baseline", "", "", ""]
    noise = {True: "within noise", False: "outside noise", None: "unknown"}[delta["noise"]]
    return [
        _num(delta["abs"]),
        _num(delta["pct"]),
        delta["verdict"],
        noise,
        delta["test"] or "",
        _num(delta["p_value"]),
    ]


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def report_html(*, built: dict[str, Any], title: str, notes: str = "") -> str:
    context = {
        **built,
        "title": title,
        "notes": notes,
        "generated_at": timezone.now(),
        "plotly_js": plotly_bundle(),
        "styles": styles(),
        "report": True,
    }
    return render_to_string("benchmarks/compare/report.html", context)


@functools.cache
def plotly_bundle() -> str:
    """plotly.min.js from the installed plotly package (the same file the dashboard serves)."""
    return PLOTLY_JS.read_text(encoding="utf-8")


@functools.cache
def styles() -> str:
    static = Path(settings.BASE_DIR) / "static"
    return "\n".join((static / name).read_text(encoding="utf-8") for name in STYLES)
