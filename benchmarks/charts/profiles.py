"""A load profile's preview: users or requests/s over time, sampled by ``runner.profile_preview`` from
the same functions the engine schedules with, so the preview and the run agree."""

from __future__ import annotations

import plotly.graph_objects as go

from benchmarks.charts.base import LAYOUT, Figure, out
from runner import ProfileSpec, profile_preview


def profile_figure(spec: ProfileSpec, title: str, *, horizon_s: float | None = None) -> Figure:
    """``horizon_s``: the plan's duration (the run stops there whatever the shape says)."""
    curve = profile_preview(spec, horizon_s)
    key, unit = ("users", "users") if "users" in curve else ("rate", "requests/s")
    # each sample holds until the next one, as the engine's targets do
    fig = go.Figure(go.Scatter(x=curve["t"], y=curve[key], mode="lines", line_shape="hv", name=unit))
    fig.update_layout(title=title, xaxis_title="seconds", yaxis_title=unit, **LAYOUT)
    return out(fig)
