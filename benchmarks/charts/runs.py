"""A run's figures (distributions from stored histograms and percentiles, the live series, one
request's packets), from plain data; titles and units come from the metric registry."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import plotly.graph_objects as go

from benchmarks.charts.base import LAYOUT, Figure, out, plain

BINS = 40
CDF_POINTS = 200


def hdr_counts(
    hist: Any, scale: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """A HDR histogram's recorded buckets: each bucket's lowest and highest value (÷ ``scale``) and its
    count, read from the counts array in one pass (the library's own iterators walk it per call)."""
    counts = np.ctypeslib.as_array(hist.counts)[: hist.counts_len]
    nonzero = np.nonzero(counts)[0]
    lowest = [hist.get_value_from_index(int(i)) for i in nonzero]
    highest = [hist.get_highest_equivalent_value(v) for v in lowest]
    return (
        np.asarray(lowest, dtype=np.float64) / scale,
        np.asarray(highest, dtype=np.float64) / scale,
        counts[nonzero].astype(np.int64),
    )


def stored_histogram(hist: Any, scale: float, title: str, unit: str, y_title: str = "requests") -> Figure:
    """A distribution drawn from a stored HDR histogram (the run's merged live sketch, 3 significant
    digits): its recorded buckets re-binned into ``BINS`` bars. Bounded whatever the run's size."""
    lowest, highest, counts = hdr_counts(hist, scale)
    xs: list[float] = []
    bars: list[int] = []
    if counts.size:
        middle = (lowest + highest) / 2
        lo, hi = float(middle[0]), float(middle[-1])
        width = (hi - lo) / BINS or 1.0
        index = np.minimum(((middle - lo) / width).astype(np.int64), BINS - 1)
        bars = np.bincount(index, weights=counts, minlength=BINS).astype(np.int64).tolist()
        xs = [lo + (i + 0.5) * width for i in range(BINS)]
    return plain(
        [{"type": "bar", "x": xs, "y": bars, "name": title}],
        title=title,
        x_title=unit,
        y_title=y_title,
        bargap=0.02,
    )


def stored_cdf(hist: Any, scale: float, title: str, unit: str) -> Figure:
    """The CDF of a stored HDR histogram at ``CDF_POINTS`` quantiles (each the highest value of the
    bucket holding it, as HDR's own percentiles are)."""
    _, highest, counts = hdr_counts(hist, scale)
    xs: list[float] = []
    ys: list[float] = []
    if counts.size:
        cumulative = np.cumsum(counts)
        quantiles = np.arange(1, CDF_POINTS + 1) / CDF_POINTS
        at = np.searchsorted(cumulative, np.maximum(np.rint(quantiles * cumulative[-1]), 1))
        xs, ys = highest[np.minimum(at, counts.size - 1)].tolist(), quantiles.tolist()
    trace = {"type": "scatter", "x": xs, "y": ys, "mode": "lines", "name": title}
    return plain([trace], title=title, x_title=unit, y_title="fraction of requests")


def percentile_bars(block: dict[str, Any], title: str, unit: str) -> Figure:
    """A summary distribution (exact percentiles over the raw records) as bars: min, p50 … p99, max."""
    keys = [k for k in ("min", "p50", "p90", "p95", "p99", "max") if block.get(k) is not None]
    trace = {"type": "bar", "x": keys, "y": [block[k] for k in keys], "name": title}
    return plain([trace], title=title, x_title="percentile", y_title=unit)


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
