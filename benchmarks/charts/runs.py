"""Plotly figures from plain data, returned as JSON-ready dicts for ``Plotly.newPlot`` in the page."""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go

from benchmarks.profile_curve import Curve

Figure = dict[str, Any]
_LAYOUT = {"margin": {"l": 50, "r": 20, "t": 40, "b": 40}, "height": 300, "template": "plotly_white"}


def _out(fig: go.Figure) -> Figure:
    return json.loads(fig.to_json())


def profile_preview(curve: Curve, title: str) -> Figure:
    xs, ys = [p[0] for p in curve.points], [p[1] for p in curve.points]
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="lines", line_shape="linear", name=curve.unit))
    fig.update_layout(title=title, xaxis_title="seconds", yaxis_title=curve.unit, **_LAYOUT)
    return _out(fig)


def ttft_histogram(values: list[float]) -> Figure:
    fig = go.Figure(go.Histogram(x=values, nbinsx=40, name="TTFT"))
    fig.update_layout(title="TTFT distribution", xaxis_title="ms", yaxis_title="requests", **_LAYOUT)
    return _out(fig)


def cdf(values: list[float], title: str, unit: str = "ms") -> Figure:
    ordered = sorted(values)
    n = len(ordered)
    fig = go.Figure(go.Scatter(x=ordered, y=[(i + 1) / n for i in range(n)], mode="lines", name=title))
    fig.update_layout(title=title, xaxis_title=unit, yaxis_title="fraction of requests", **_LAYOUT)
    return _out(fig)


def itl_histogram(values: list[float]) -> Figure:
    fig = go.Figure(go.Histogram(x=values, nbinsx=50, name="ITL"))
    fig.update_layout(title="Inter-token latency", xaxis_title="ms", yaxis_title="gaps", **_LAYOUT)
    return _out(fig)


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
    fig.update_layout(title=title, xaxis_title="seconds since start", yaxis_title=unit, **_LAYOUT)
    return _out(fig)


def time_series(series: list[dict[str, Any]], keys: list[tuple[str, str]], title: str, unit: str) -> Figure:
    fig = go.Figure()
    for key, label in keys:
        fig.add_trace(go.Scatter(x=[p.get("t") for p in series], y=[p.get(key) for p in series], name=label))
    fig.update_layout(title=title, xaxis_title="seconds", yaxis_title=unit, **_LAYOUT)
    return _out(fig)


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
        **_LAYOUT,
    )
    return _out(fig)


def token_histogram(
    counts: list[int], *, estimated: bool, tokenizer: str, limit: int | None = None
) -> Figure:
    """Input tokens per prompt; a dashed line at an endpoint's input context when one is chosen."""
    unit = f"input tokens ({tokenizer}{', estimated' if estimated else ''})"
    fig = go.Figure(go.Histogram(x=counts, nbinsx=60, name="prompts"))
    if limit is not None:
        fig.add_vline(x=limit, line_dash="dash", line_color="#c0362c", annotation_text=f"context {limit}")
    fig.update_layout(title="Input-token histogram", xaxis_title=unit, yaxis_title="prompts", **_LAYOUT)
    return _out(fig)
