"""A run's figures (distributions, per-request points, the live series, one request's packets), from
plain data; titles and units come from the metric registry."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from benchmarks.charts.base import LAYOUT, Figure, out
from runner import METRICS


def ttft_histogram(values: list[float]) -> Figure:
    m = METRICS["ttft_ms"]
    fig = go.Figure(go.Histogram(x=values, nbinsx=40, name=m.label))
    fig.update_layout(title=f"{m.label} distribution", xaxis_title=m.unit, yaxis_title="requests", **LAYOUT)
    return out(fig)


def cdf(values: list[float], title: str, unit: str = "ms") -> Figure:
    ordered = sorted(values)
    n = len(ordered)
    fig = go.Figure(go.Scatter(x=ordered, y=[(i + 1) / n for i in range(n)], mode="lines", name=title))
    fig.update_layout(title=title, xaxis_title=unit, yaxis_title="fraction of requests", **LAYOUT)
    return out(fig)


def itl_histogram(values: list[float]) -> Figure:
    m = METRICS["itl_ms"]
    fig = go.Figure(go.Histogram(x=values, nbinsx=50, name=m.label))
    fig.update_layout(title=f"{m.label} distribution", xaxis_title=m.unit, yaxis_title="gaps", **LAYOUT)
    return out(fig)


def per_request_scatter(rows: list[dict[str, Any]], metric: str, title: str, unit: str) -> Figure:
    """One point per request; ``customdata`` carries the record id so a click opens its timeline."""
    fig = go.Figure(
        go.Scatter(
            x=[r["t"] for r in rows],
            y=[r[metric] for r in rows],
            customdata=[r["id"] for r in rows],
            mode="markers",
            marker={"size": 6},
            name=title,
        )
    )
    fig.update_layout(title=title, xaxis_title="seconds since start", yaxis_title=unit, **LAYOUT)
    return out(fig)


def time_series(series: list[dict[str, Any]], keys: list[tuple[str, str]], title: str, unit: str) -> Figure:
    fig = go.Figure()
    for key, label in keys:
        fig.add_trace(go.Scatter(x=[p.get("t") for p in series], y=[p.get(key) for p in series], name=label))
    fig.update_layout(title=title, xaxis_title="seconds", yaxis_title=unit, **LAYOUT)
    return out(fig)


def packet_timeline(packets: list[list[Any]]) -> Figure:
    """Packets of one request: arrival time vs cumulative characters, coloured by kind."""
    by_kind: dict[str, tuple[list[float], list[int]]] = {}
    chars = 0
    for packet in packets:  # [kind, t_ms, tokens, chars, (text)]
        kind, t_ms, n_chars = packet[0], packet[1], packet[3]
        chars += int(n_chars or 0)
        xs, ys = by_kind.setdefault(str(kind), ([], []))
        xs.append(float(t_ms))
        ys.append(chars)
    fig = go.Figure([go.Scatter(x=xs, y=ys, mode="markers", name=kind) for kind, (xs, ys) in by_kind.items()])
    fig.update_layout(
        title="Packet timeline",
        xaxis_title="ms since scheduled send",
        yaxis_title="characters so far",
        **LAYOUT,
    )
    return out(fig)
