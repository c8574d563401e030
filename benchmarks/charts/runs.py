"""A run's figures (distributions from stored histograms and percentiles, the live series, one
request's packets), from plain data; titles and units come from the metric registry."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from benchmarks.charts.base import LAYOUT, Figure, out

BINS = 40
CDF_POINTS = 200


def stored_histogram(hist: Any, scale: float, title: str, unit: str, y_title: str = "requests") -> Figure:
    """A distribution drawn from a stored HDR histogram (the run's merged live sketch, 3 significant
    digits): its recorded values re-binned into ``BINS`` bars. Bounded whatever the run's size."""
    values = [
        (v.value_iterated_to / scale, v.count_at_value_iterated_to) for v in hist.get_recorded_iterator()
    ]
    xs, counts = [], []
    if values:
        lo, hi = values[0][0], values[-1][0]
        width = (hi - lo) / BINS or 1.0
        bins = [0] * BINS
        for value, count in values:
            bins[min(int((value - lo) / width), BINS - 1)] += count
        xs = [lo + (i + 0.5) * width for i in range(BINS)]
        counts = bins
    fig = go.Figure(go.Bar(x=xs, y=counts, name=title))
    fig.update_layout(title=title, xaxis_title=unit, yaxis_title=y_title, bargap=0.02, **LAYOUT)
    return out(fig)


def stored_cdf(hist: Any, scale: float, title: str, unit: str) -> Figure:
    """The CDF of a stored HDR histogram at ``CDF_POINTS`` quantiles."""
    qs = [100.0 * i / CDF_POINTS for i in range(1, CDF_POINTS + 1)] if hist.get_total_count() else []
    xs = [hist.get_value_at_percentile(q) / scale for q in qs]
    fig = go.Figure(go.Scatter(x=xs, y=[q / 100 for q in qs], mode="lines", name=title))
    fig.update_layout(title=title, xaxis_title=unit, yaxis_title="fraction of requests", **LAYOUT)
    return out(fig)


def percentile_bars(block: dict[str, Any], title: str, unit: str) -> Figure:
    """A summary distribution (exact percentiles over the raw records) as bars: min, p50 … p99, max."""
    keys = [k for k in ("min", "p50", "p90", "p95", "p99", "max") if block.get(k) is not None]
    fig = go.Figure(go.Bar(x=keys, y=[block[k] for k in keys], name=title))
    fig.update_layout(title=title, xaxis_title="percentile", yaxis_title=unit, **LAYOUT)
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
