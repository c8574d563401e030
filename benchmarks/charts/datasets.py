"""A dataset version's input-token histogram."""

from __future__ import annotations

import plotly.graph_objects as go

from benchmarks.charts.base import LAYOUT, Figure, out


def token_histogram(
    counts: list[int], *, estimated: bool, tokenizer: str, limit: int | None = None
) -> Figure:
    """Input tokens per prompt; a dashed line at an endpoint's input context when one is chosen."""
    unit = f"input tokens ({tokenizer}{', estimated' if estimated else ''})"
    fig = go.Figure(go.Histogram(x=counts, nbinsx=60, name="prompts"))
    if limit is not None:
        fig.add_vline(x=limit, line_dash="dash", line_color="#c0362c", annotation_text=f"context {limit}")
    fig.update_layout(title="Input-token histogram", xaxis_title=unit, yaxis_title="prompts", **LAYOUT)
    return out(fig)
