"""A capacity search's curve and the server's metrics beside the client's TTFT, from plain data."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from benchmarks.charts.base import LAYOUT, Figure, out

SERVER_GAUGES = (("requests_running", "running"), ("requests_waiting", "waiting"))


def capacity_curve(block: dict[str, Any], title: str) -> Figure:
    """Attainment (left axis) and TTFT p99 (right axis) per level, with the two objectives as lines;
    the confirming level is drawn as a diamond."""
    levels = [lv for lv in block.get("levels") or [] if not lv.get("superseded")]
    unit = "req/s" if block.get("mode") == "rate" else "users"
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = [lv["load"] for lv in levels]
    symbols = ["diamond" if lv.get("confirmation") else "circle" for lv in levels]
    colours = ["#2a9d4b" if lv["slo_pass"] else "#c0392b" for lv in levels]
    attainment = [None if lv["attainment"] is None else lv["attainment"] * 100 for lv in levels]
    fig.add_trace(
        go.Scatter(x=x, y=attainment, name="attainment %", mode="lines+markers",
                   marker={"symbol": symbols, "color": colours, "size": 9}),
        secondary_y=False,
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=x, y=[lv["ttft_p99"] for lv in levels], name="TTFT p99 (ms)", mode="lines+markers",
                   line={"dash": "dot"}),
        secondary_y=True,
    )  # fmt: skip
    target = block.get("attainment_target")
    if target is not None:
        _objective(fig, "y", target * 100, f"target {target * 100:g}%", "#2a9d4b")
    ttft_slo = (block.get("slo") or {}).get("ttft_ms")
    if ttft_slo is not None:
        _objective(fig, "y2", ttft_slo, f"TTFT ≤ {ttft_slo:g} ms", "#e67e22")
    fig.update_layout(title=title, xaxis_title=f"load ({unit})", **LAYOUT)
    fig.update_yaxes(title_text="attainment %", range=[0, 105], secondary_y=False)
    fig.update_yaxes(title_text="ms", rangemode="tozero", secondary_y=True)
    return out(fig)


def _objective(fig: go.Figure, yref: str, y: float, text: str, colour: str) -> None:
    """A dashed line across the plot at ``y`` on axis ``yref`` (an explicit shape: ``add_hline``
    ignores a secondary axis)."""
    line = {"dash": "dash", "color": colour, "width": 1.5}
    fig.add_shape(type="line", xref="paper", x0=0, x1=1, yref=yref, y0=y, y1=y, line=line)
    fig.add_annotation(xref="paper", x=0.97, yref=yref, y=y, text=text, showarrow=False, xanchor="right",
                       yanchor="bottom", font={"color": colour})  # fmt: skip


def server_beside_ttft(report: dict[str, Any], seconds: list[dict[str, Any]]) -> Figure:
    """The server's batch and queue (left axis) and the client's TTFT p99 per second (right axis), on
    the run's clock: second ``t`` of the live view spans [t, t+1) of the series' ``t_s``."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    series = report.get("series") or {}
    for name, label in SERVER_GAUGES:
        points = series.get(name) or []
        fig.add_trace(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=f"server {label}",
                                 line={"shape": "hv"}), secondary_y=False)  # fmt: skip
    fig.add_trace(
        go.Scatter(x=[p["t"] + 0.5 for p in seconds], y=[p.get("ttft_p99") for p in seconds],
                   name="client TTFT p99 (ms)", mode="lines+markers"),
        secondary_y=True,
    )  # fmt: skip
    fig.update_layout(
        title="Server batch and queue beside the client's TTFT", xaxis_title="seconds", **LAYOUT
    )
    fig.update_yaxes(title_text="requests", secondary_y=False)
    fig.update_yaxes(title_text="ms", rangemode="tozero", secondary_y=True)
    return out(fig)


def server_series(report: dict[str, Any], names: list[str], title: str, unit: str) -> Figure:
    series = report.get("series") or {}
    fig = go.Figure(
        [
            go.Scatter(x=[p[0] for p in series[n]], y=[p[1] for p in series[n]], name=n)
            for n in names
            if n in series
        ]
    )
    fig.update_layout(title=title, xaxis_title="seconds", yaxis_title=unit, **LAYOUT)
    return out(fig)


def sweep_curve(levels: list[dict[str, Any]], unit: str) -> Figure:
    """A sweep's levels: TTFT p50/p99 and tokens/s p50 (left axis) and, with a graded dataset,
    accuracy and the empty / truncated-thinking rates (right axis, %), each against the level."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    x = [lv["load"] for lv in levels]
    for key, name, dash in (("ttft_p50", "TTFT p50 (ms)", None), ("ttft_p99", "TTFT p99 (ms)", "dot")):
        fig.add_trace(
            go.Scatter(
                x=x, y=[lv[key] for lv in levels], name=name, mode="lines+markers", line={"dash": dash}
            ),
            secondary_y=False,
        )
    fig.add_trace(
        go.Scatter(
            x=x, y=[lv["tokens_per_s_p50"] for lv in levels], name="tokens/s p50", mode="lines+markers"
        ),
        secondary_y=False,
    )
    for key, name in (
        ("accuracy", "accuracy %"),
        ("empty", "empty answers %"),
        ("truncated", "truncated thinking %"),
    ):
        values = [None if lv.get(key) is None else lv[key] * 100 for lv in levels]
        if any(v is not None for v in values):
            fig.add_trace(
                go.Scatter(x=x, y=values, name=name, mode="lines+markers", line={"dash": "dash"}),
                secondary_y=True,
            )
    fig.update_layout(title="Sweep: latency and answers per level", xaxis_title=f"level ({unit})", **LAYOUT)
    fig.update_yaxes(title_text="ms · tokens/s", rangemode="tozero", secondary_y=False)
    fig.update_yaxes(title_text="%", range=[0, 105], secondary_y=True)
    return out(fig)
