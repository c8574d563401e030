"""What every single-run figure shares: JSON-ready output for ``Plotly.newPlot`` and one layout."""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go

Figure = dict[str, Any]
LAYOUT = {"margin": {"l": 50, "r": 20, "t": 40, "b": 40}, "height": 300, "template": "plotly_white"}


def out(fig: go.Figure) -> Figure:
    return json.loads(fig.to_json())
