"""Overlaid plotly figures for comparisons, from plain data: one colour per run, legend names from its
variant tags. Long series are reduced to what a chart can show (quantiles, bin counts), so a page stays
small whatever the runs' size."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

Figure = dict[str, Any]
Named = tuple[str, str]  # (legend name, colour)
PALETTE = qualitative.Plotly
CDF_POINTS = 200
BINS = 40
_BASE = {"margin": {"l": 55, "r": 20, "t": 40, "b": 40}, "template": "plotly_white", "height": 360}
_LEGEND = {"legend": {"orientation": "h", "y": -0.25}}


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _layout(title: str, x: str, y: str) -> dict[str, Any]:
    return {**_BASE, "title": title, "xaxis_title": x, "yaxis_title": y, **_LEGEND}


def _out(fig: go.Figure) -> Figure:
    return json.loads(fig.to_json())


def _finite(values: Sequence[float] | np.ndarray | None) -> np.ndarray:
    xs = np.asarray(values if values is not None else [], dtype=np.float64)
    return xs[np.isfinite(xs)]


def cdf_overlay(series: list[tuple[str, str, Any]], title: str, unit: str) -> Figure:
    """Empirical CDF per run, drawn through CDF_POINTS quantiles."""
    fig = go.Figure()
    probs = np.linspace(0.0, 1.0, CDF_POINTS + 1)
    for name, colour, values in series:
        xs = _finite(values)
        if xs.size:
            fig.add_trace(
                go.Scatter(x=np.quantile(xs, probs), y=probs, mode="lines", name=name, line={"color": colour})
            )
    fig.update_layout(**_layout(title, unit, "fraction of requests"))
    return _out(fig)


def distribution_overlay(series: list[tuple[str, str, Any]], title: str, unit: str) -> Figure:
    """Share of requests per bin, on bins shared by every run, as overlaid step lines."""
    arrays = [(name, colour, _finite(values)) for name, colour, values in series]
    pooled = np.concatenate([xs for _, _, xs in arrays]) if arrays else np.array([])
    fig = go.Figure()
    if pooled.size:
        lo, hi = np.quantile(pooled, [0.001, 0.999])
        edges = np.linspace(lo, hi if hi > lo else lo + 1.0, BINS + 1)
        centres = (edges[:-1] + edges[1:]) / 2
        for name, colour, xs in arrays:
            if xs.size:
                counts, _ = np.histogram(np.clip(xs, edges[0], edges[-1]), bins=edges)
                fig.add_trace(
                    go.Scatter(
                        x=centres,
                        y=counts / xs.size,
                        mode="lines",
                        line={"shape": "hvh", "color": colour},
                        name=name,
                    )
                )
    fig.update_layout(**_layout(title, unit, "share of requests"))
    return _out(fig)


def time_series_overlay(
    series: list[tuple[str, str, list[dict[str, Any]]]], key: str, title: str, unit: str
) -> Figure:
    """Per-second values on seconds since each run's start, so runs line up whenever they ran."""
    fig = go.Figure()
    for name, colour, points in series:
        if points:
            t0 = points[0].get("t") or 0
            fig.add_trace(
                go.Scatter(
                    x=[p.get("t", 0) - t0 for p in points],
                    y=[p.get(key) for p in points],
                    mode="lines",
                    name=name,
                    line={"color": colour},
                )
            )
    fig.update_layout(**_layout(title, "seconds since start", unit))
    return _out(fig)


def bucket_bars(
    named: list[Named], buckets: list[tuple[str, list[float | None]]], title: str, unit: str
) -> Figure:
    """Grouped bars: one group per input-token bucket, one bar per run."""
    fig = go.Figure()
    for i, (name, colour) in enumerate(named):
        fig.add_trace(
            go.Bar(
                x=[b for b, _ in buckets],
                y=[values[i] for _, values in buckets],
                name=name,
                marker_color=colour,
            )
        )
    fig.update_layout(barmode="group", **_layout(title, "input tokens", unit))
    return _out(fig)


def sweep_curves(series: list[tuple[str, str, list[dict[str, Any]]]]) -> Figure:
    """Throughput vs latency of sweep runs: one point per load level, joined in level order."""
    fig = go.Figure()
    for name, colour, levels in series:
        xs = [(p.get("throughput") or {}).get("output_tokens_per_s") for p in levels]
        ys = [(p.get("ttft_ms") or {}).get("p50") for p in levels]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines+markers",
                text=[f"level {p.get('level')}" for p in levels],
                name=name,
                line={"color": colour},
            )
        )
    fig.update_layout(**_layout("Throughput vs latency (sweep)", "output tokens/s", "TTFT p50 (ms)"))
    return _out(fig)
