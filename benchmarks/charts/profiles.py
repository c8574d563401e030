"""A load profile's preview: users or requests/s over time, sampled by ``runner.profile_preview`` from
the same functions the engine schedules with, so the preview and the run agree."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from django.conf import settings as django_settings

from benchmarks.charts.base import LAYOUT, Figure, out
from runner import ProfileSpec, profile_preview

PREVIEW_POINTS = 200  # samples of a preview curve, at most LIMIT_PREVIEW_POINTS


def preview_points() -> int:
    return max(2, min(PREVIEW_POINTS, django_settings.LIMIT_PREVIEW_POINTS))


def profile_figure(spec: ProfileSpec, title: str, *, horizon_s: float | None = None) -> Figure:
    """``horizon_s``: the plan's duration (the run stops there whatever the shape says). The curve
    has a fixed number of samples whatever the profile's length (a replay a million seconds long
    included)."""
    curve = profile_preview(spec, horizon_s, points=preview_points())
    key, unit = ("users", "users") if "users" in curve else ("rate", "requests/s")
    # each sample holds until the next one, as the engine's targets do
    fig = go.Figure(go.Scatter(x=curve["t"], y=curve[key], mode="lines", line_shape="hv", name=unit))
    fig.update_layout(title=title, xaxis_title="seconds", yaxis_title=unit, **LAYOUT)
    return out(fig)


def capacity_figure(settings: dict[str, Any], title: str) -> Figure:
    """A capacity search's bracket before it runs: the load doubling from the lowest level to the
    highest, each level held for its warm-up and steady window; the search stops climbing at the
    first level that fails and then bisects below it (so the real run is usually shorter)."""
    low, high = float(settings.get("load_min") or 1.0), float(settings.get("load_max") or 256.0)
    hold = float(settings.get("warmup_s") or 3.0) + float(settings.get("min_level_s") or 10.0)
    unit = "users" if settings.get("mode") == "users" else "requests/s"
    levels, load = [], low
    while load < high and len(levels) < django_settings.LIMIT_PREVIEW_POINTS:
        levels.append(load)
        load *= 2
    levels.append(high)
    t = [i * hold for i in range(len(levels) + 1)]
    fig = go.Figure(go.Scatter(x=t, y=[*levels, levels[-1]], mode="lines", line_shape="hv", name=unit))
    fig.update_layout(
        title=f"{title}: levels tried, doubling until one fails, then bisected",
        xaxis_title="seconds (at most)",
        yaxis_title=unit,
        **LAYOUT,
    )
    return out(fig)
