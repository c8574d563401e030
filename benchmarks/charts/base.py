"""What every single-run figure shares: JSON-ready output for ``Plotly.newPlot`` and one layout."""

from __future__ import annotations

import functools
import json
from typing import Any

import plotly.graph_objects as go

Figure = dict[str, Any]
LAYOUT = {"margin": {"l": 50, "r": 20, "t": 40, "b": 40}, "height": 300, "template": "plotly_white"}


def out(fig: go.Figure) -> Figure:
    return json.loads(fig.to_json())


@functools.cache
def _template() -> dict[str, Any]:
    """LAYOUT's named template as Plotly.js takes it (resolved once per process)."""
    return dict(
        json.loads(go.Figure(layout={"template": LAYOUT["template"]}).to_json())["layout"]["template"]
    )


def plain(data: list[dict[str, Any]], *, title: str, x_title: str, y_title: str, **layout: Any) -> Figure:
    """A figure built as the plain data ``out`` would give, without plotly's object validation (tens
    of milliseconds a figure): for the pages that must answer fast whatever the run's size."""
    return {
        "data": data,
        "layout": {
            **LAYOUT,
            "template": _template(),
            "title": {"text": title},
            "xaxis": {"title": {"text": x_title}},
            "yaxis": {"title": {"text": y_title}},
            **layout,
        },
    }
