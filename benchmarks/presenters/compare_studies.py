"""The comparison's study rows: capacity at SLO (max QPM and what limited it) per column, the server's
own metrics (batch, KV cache, MTP acceptance beside the client's tokens/s), and — where a column's run
was repeated — each headline metric's mean and 95 % interval across its repetitions, a difference
counting as real only when the intervals do not overlap."""

from __future__ import annotations

from typing import Any

from benchmarks.presenters.studies import REPEAT_LABELS, SERVER_METRICS, repeat_intervals

LIMITS = {
    "ttft": "TTFT",
    "tokens_per_s": "tokens/s",
    "e2e": "E2E",
    "errors": "errors",
    "queue": "queue growth",
}


def study_sections(columns: list[Any]) -> list[dict[str, Any]]:
    """Sections of ``{"title", "key", "rows": [{"label", "unit", "cells": [{"value", "note", "verdict"}]}]}``;
    only the sections some column has data for."""
    summaries = [c.summary or {} for c in columns]
    sections = [
        ("Capacity at SLO", "capacity", _capacity_rows(summaries)),
        ("Server metrics", "server", _server_rows(summaries)),
        ("Across repetitions (mean, 95% interval)", "repeat", _repeat_rows(columns)),
    ]
    return [{"title": t, "key": k, "rows": rows} for t, k, rows in sections if rows]


def _searches(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    block = summary.get("capacity") or {}
    if block.get("buckets"):
        return {b["label"]: b for b in block["buckets"]}
    return {"": block} if block else {}


def _capacity_rows(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    per_column = [_searches(s) for s in summaries]
    labels = list(dict.fromkeys(label for searches in per_column for label in searches))
    rows = []
    for label in labels:
        found = [searches.get(label) for searches in per_column]
        values = [s.get("max_qpm") if s else None for s in found]
        cells = [
            {
                "value": "–" if v is None else f"{v:.0f}",
                "note": _capacity_note(s),
                "verdict": _verdict(values[0], v, higher_better=True) if i else "",
            }
            for i, (v, s) in enumerate(zip(values, found, strict=True))
        ]
        rows.append({"label": f"max QPM{f' at {label}' if label else ''}", "unit": "1/min", "cells": cells})
    return rows


def _capacity_note(search: dict[str, Any] | None) -> str:
    if not search:
        return ""
    parts = []
    if search.get("limiting_slo"):
        parts.append(f"limited by {LIMITS.get(search['limiting_slo'], search['limiting_slo'])}")
    if not search.get("trusted", True):
        parts.append("NOT TRUSTED: client saturated")
    return "; ".join(parts)


def _server_rows(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    stats = [(s.get("server_metrics") or {}).get("summary") or {} for s in summaries]
    names = [n for n in SERVER_METRICS if any(n in st for st in stats)]
    if not names:
        return []
    rows = [
        _plain_row(
            "client tokens/s p50", "tokens/s", [(s.get("tokens_per_s") or {}).get("p50") for s in summaries]
        )
    ]
    for name in names:
        for stat in ("p50", "max"):
            values = [(st.get(name) or {}).get(stat) for st in stats]
            rows.append(_plain_row(f"server {name} {stat}", SERVER_METRICS[name], values))
    return rows


def _plain_row(label: str, unit: str, values: list[float | None]) -> dict[str, Any]:
    return {
        "label": label,
        "unit": unit,
        "cells": [{"value": _fmt(v), "note": "", "verdict": ""} for v in values],
    }


def _repeat_rows(columns: list[Any]) -> list[dict[str, Any]]:
    intervals = [repeat_intervals(c.run) if c.variant is None else None for c in columns]
    if not any(intervals):
        return []
    rows = []
    for key, label in REPEAT_LABELS.items():
        metrics = [(iv or {}).get("metrics", {}).get(key) for iv in intervals]
        if not any(m and m["mean"] is not None for m in metrics):
            continue
        base = metrics[0]
        cells = [
            {
                "value": "–" if not m or m["mean"] is None else _fmt(m["mean"]),
                "note": _ci_text(m),
                "verdict": _overlap(base, m) if i else "",
            }
            for i, m in enumerate(metrics)
        ]
        rows.append(
            {"label": label, "unit": f"n={metrics[0]['n'] if metrics[0] else '–'} runs", "cells": cells}
        )
    return rows


def _ci_text(m: dict[str, Any] | None) -> str:
    if not m or not m.get("ci95"):
        return ""
    lo, hi = m["ci95"]
    return f"[{_fmt(lo)}, {_fmt(hi)}] over {m['n']} runs"


def _overlap(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    """ "within noise" when the two 95 % intervals overlap, else "differs"; "" without both."""
    if not a or not b or not a.get("ci95") or not b.get("ci95"):
        return ""
    (alo, ahi), (blo, bhi) = a["ci95"], b["ci95"]
    return "within noise" if alo <= bhi and blo <= ahi else "differs"


def _verdict(base: float | None, value: float | None, *, higher_better: bool) -> str:
    if base is None or value is None or value == base:
        return "same" if base is not None and value == base else ""
    return "better" if (value > base) == higher_better else "worse"


def _fmt(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"
