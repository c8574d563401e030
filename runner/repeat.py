"""Repeat runs with confidence: each headline metric's mean and 95 % interval across repetitions.

The interval is Student's t on the per-run values (runs are the independent samples; requests
within one run are not), so two repetitions give a wide interval, honestly.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

__all__ = ["HEADLINES", "combine", "interval", "lines", "mean_summary", "regressions"]

# name -> path into a run's summary
HEADLINES: dict[str, tuple[str, ...]] = {
    "ttft_ms_p50": ("ttft_ms", "p50"),
    "ttft_ms_p99": ("ttft_ms", "p99"),
    "tokens_per_s_p50": ("tokens_per_s", "p50"),
    "itl_ms_p50": ("itl_ms", "p50"),
    "e2e_ms_p50": ("e2e_ms", "p50"),
    "e2e_ms_p99": ("e2e_ms", "p99"),
    "qpm": ("throughput", "qpm"),
    "output_tokens_per_s": ("throughput", "output_tokens_per_s"),
    "goodput_requests_per_s": ("goodput", "requests_per_s"),
    "success_rate": ("success_rate",),
}
# two-sided 95 % Student t quantiles for 1..30 degrees of freedom
_T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def _get(summary: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = summary
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def interval(values: Sequence[float]) -> dict[str, Any]:
    """Mean and 95 % interval; one value gives no interval."""
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "ci95": None, "values": []}
    mean = statistics.fmean(values)
    if n == 1:
        return {"n": 1, "mean": mean, "ci95": None, "values": list(values)}
    t = _T95[n - 2] if n - 1 <= len(_T95) else 1.96
    half = t * statistics.stdev(values) / math.sqrt(n)
    return {"n": n, "mean": mean, "ci95": [mean - half, mean + half], "values": list(values)}


def combine(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    metrics = {}
    for name, path in HEADLINES.items():
        values = [v for s in summaries if (v := _get(s, path)) is not None]
        metrics[name] = interval(values)
    return {"runs": len(summaries), "metrics": metrics}


def lines(block: dict[str, Any]) -> list[str]:
    out = [f"across {block['runs']} repetitions (mean, 95% interval):"]
    for name, m in block["metrics"].items():
        if m["mean"] is None:
            continue
        ci = m["ci95"]
        span = f"[{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "(one value)"
        out.append(f"  {name:<24}{m['mean']:>12.4g}  {span}")
    return out


def mean_summary(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One summary standing for a set of repetitions: every number that all of them have is their
    mean (so a gate rule on any path reads the set's mean), and ``repeat`` holds :func:`combine`."""

    def mean(values: list[Any]) -> Any:
        if all(isinstance(v, dict) for v in values):
            keys = [k for k in values[0] if all(k in v for v in values[1:])]
            return {k: mean([v[k] for v in values]) for k in keys}
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            return statistics.fmean(values)
        return values[-1]  # text, lists, flags: the last repetition's

    if not summaries:
        return {}
    out = mean(list(summaries))
    out["repeat"] = combine(summaries)
    return dict(out)


def regressions(
    summaries: Sequence[dict[str, Any]],
    baselines: Sequence[dict[str, Any]],
    *,
    threshold_pct: float = 10.0,
    noise_aware: bool = True,
) -> list[dict[str, Any]]:
    """Headline metrics whose mean over the repetitions is worse than the baseline's (its mean, when
    the baseline was repeated too) by more than ``threshold_pct``, and — when ``noise_aware`` —
    outside run-to-run noise: the set's 95 % interval excludes the baseline's value, or, with a
    repeated baseline, the two intervals do not overlap. One value has no interval: then the
    threshold alone decides (``noise: None``), as with a single run."""
    from runner.compare import PATHS

    mine, theirs = combine(summaries)["metrics"], combine(baselines)["metrics"]
    found = []
    for name, path in HEADLINES.items():
        m, b = mine[name], theirs[name]
        if m["mean"] is None or b["mean"] is None or not b["mean"]:
            continue
        meta = PATHS[".".join(path)]
        pct = (m["mean"] - b["mean"]) * 100.0 / abs(b["mean"])
        worse = pct > 0 if meta.better == "lower" else pct < 0
        if not worse or abs(pct) <= threshold_pct:
            continue
        noise = _inside_noise(m, b) if noise_aware else None
        if noise is True:
            continue
        found.append(
            {
                "path": meta.path,
                "label": meta.label,
                "unit": meta.unit,
                "better": meta.better,
                "baseline": b["mean"],
                "value": m["mean"],
                "pct": pct,
                "ci95": m["ci95"],
                "baseline_ci95": b["ci95"],
                "runs": m["n"],
                "baseline_runs": b["n"],
                "noise": noise,
            }
        )
    return found


def _inside_noise(m: dict[str, Any], b: dict[str, Any]) -> bool | None:
    """True: the difference is inside the intervals; False: outside; None: no interval to tell."""
    if m["ci95"] is None and b["ci95"] is None:
        return None
    lo, hi = m["ci95"] or [m["mean"], m["mean"]]
    blo, bhi = b["ci95"] or [b["mean"], b["mean"]]
    return not (hi < blo or bhi < lo)
