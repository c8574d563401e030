"""Comparisons: columns (a run, or one variant of a paired A/B run), the engine's comparison of their
stored summaries, rows ready to show, paired verdicts and the overlaid charts. Display only: saving
lives in ``services/comparisons.py``.

Nothing here reads raw records: summaries live on the runs, per-request samples and A/B statistics in
``RunSample`` (taken at run end), the time series in ``RunSecond``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import numpy as np

from benchmarks.charts import compare as charts_compare
from benchmarks.models import VARIANT_FIELDS, Run
from benchmarks.presenters.compare_studies import study_sections
from benchmarks.selectors.runs import runs_series
from benchmarks.services.samples import run_sample_get, sample_values, verdict_records
from runner import COMPARE_PATHS as PATHS
from runner import METRICS, compare_summaries

NOISE_TESTS = {"bootstrap-ci": "bootstrap CI", "mann-whitney": "Mann–Whitney U"}
TTFT, TPS = METRICS["ttft_ms"], METRICS["tokens_per_s"]
HEADLINE = ("success_rate", "accuracy", "throughput", "goodput", "cost")  # shown before the distributions


@dataclass
class Column:
    """One side of the comparison: a whole run, or variant ``variant`` of an A/B run."""

    run: Run
    label: str
    tags: dict[str, str]
    summary: dict[str, Any]
    samples: dict[str, np.ndarray] | None
    variant: int | None = None
    color: str = ""
    paired: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[dict[str, Any]] | None = None  # graded items, for the paired accuracy test

    @property
    def requests(self) -> int | None:
        return (self.summary.get("requests") or {}).get("total")


def comparison_build(*, runs: list[Run], charts: bool = True) -> dict[str, Any]:
    """Everything the page, the CSV and the HTML report show; the first column is the baseline."""
    columns = _columns(runs)
    samples = [c.samples for c in columns]
    comparison = compare_summaries(
        [c.summary for c in columns],
        labels=[c.label for c in columns],
        samples=samples if any(s is not None for s in samples) else None,
        records=[c.verdicts for c in columns],
    )
    sections = [{"title": "Overall", "key": "overall", "rows": _display_rows(comparison["rows"])}]
    sections += [
        {"title": f"Input tokens {b['label']}", "key": b["label"], "rows": _display_rows(b["rows"])}
        for b in comparison["buckets"]
        if b["rows"]
    ]
    return {
        "columns": columns,
        "comparison": comparison,
        "sections": sections,
        "noise_note": noise_note(comparison),
        "paired": paired_verdicts(columns),
        "accuracy": accuracy_rows(columns, comparison),
        "study_sections": study_sections(columns),
        "figures": _figures(columns, comparison) if charts else {},
    }


# -------------------------------------------------------------------------------------------- columns


def _columns(runs: list[Run]) -> list[Column]:
    columns: list[Column] = []
    for run in runs:
        sample = run_sample_get(run=run)
        variants = list(sample.variants) if sample is not None else []
        if len(variants) < 2:
            columns.append(
                Column(
                    run,
                    run_label(run),
                    ordered_tags(run),
                    run.summary,
                    sample_values(sample),
                    verdicts=verdict_records(sample),
                )
            )
            continue
        for i, summary in enumerate(variants):
            name = variant_name(run, i)
            columns.append(
                Column(
                    run,
                    f"#{run.pk}·{_letter(i)} {name}",
                    {**ordered_tags(run), "variant": f"{_letter(i)}: {name}"},
                    summary,
                    sample_values(sample, variant=i),
                    variant=i,
                    paired=list(sample.paired) if i == 0 and sample else [],
                    verdicts=verdict_records(sample, variant=i),
                )
            )
    for i, column in enumerate(columns):
        column.color = charts_compare.color(i)
    return columns


def run_label(run: Run) -> str:
    """``#12 quantization=int4 tp=4``: the variant tags name a run in headers and legends."""
    tags = " ".join(f"{k}={v}" for k, v in ordered_tags(run).items())
    return f"#{run.pk} {tags or run.plan_name}"


def ordered_tags(run: Run) -> dict[str, str]:
    """Variant tags in the plan form's order (the database keeps JSON keys in its own order)."""
    known = {name: i for i, name in enumerate(VARIANT_FIELDS)}
    keys = sorted(run.variant or {}, key=lambda k: (known.get(k, len(known)), k))
    return {k: str(run.variant[k]) for k in keys}


def variant_name(run: Run, index: int) -> str:
    variants = (run.spec or {}).get("variants") or []
    if index >= len(variants):
        return f"variant {index}"
    spec = variants[index]
    return str(spec.get("model") or urlparse(str(spec.get("base_url", ""))).netloc or f"variant {index}")


def _letter(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else str(index)


# ----------------------------------------------------------------------------------------------- rows


def _display_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def order(row: dict[str, Any]) -> tuple[int, int]:
        head = row["path"].split(".")[0]
        return (0 if head in HEADLINE else 1, list(PATHS).index(row["path"]))

    return [_display_row(row) for row in sorted(rows, key=order)]


def _display_row(row: dict[str, Any]) -> dict[str, Any]:
    cells = []
    for value, delta in zip(row["values"], row["deltas"], strict=True):
        cell = {"value": fmt(value, row["unit"]), "raw": value, "verdict": "", "delta": "", "noise": ""}
        if delta is not None:
            cell |= {
                "verdict": delta["verdict"],
                "delta": fmt_delta(delta, row["unit"]),
                "noise": noise_text(delta),
                "noise_detail": noise_detail(delta),
                "is_noise": delta["noise"] is True,
                "test": NOISE_TESTS.get(delta["test"] or "", ""),
                "p_value": delta["p_value"],
                "ci": delta["ci"],
            }
        cells.append(cell)
    arrow = "↓" if row["better"] == "lower" else "↑"
    return {**row, "cells": cells, "direction": f"{arrow} better"}


def fmt(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if unit == "fraction":
        return f"{value * 100:.2f}%"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}"


def fmt_delta(delta: dict[str, Any], unit: str) -> str:
    if delta["verdict"] == "same":
        return "same"
    if unit == "fraction":
        return f"{delta['abs'] * 100:+.2f} pt"
    pct = f"{delta['pct']:+.1f}%" if delta["pct"] is not None else ""
    return f"{pct} ({delta['abs']:+.4g} {unit})".strip()


def noise_text(delta: dict[str, Any]) -> str:
    """A short note naming the test, only where the difference is inside run-to-run noise."""
    test = NOISE_TESTS.get(delta.get("test") or "")
    if delta.get("noise") is not True or test is None:
        return ""
    if delta["test"] == "mann-whitney":
        return f"within noise ({test}, p={delta['p_value']:.2g})"
    return f"within noise (95% {test})"


def noise_detail(delta: dict[str, Any]) -> str:
    """What the test found, inside noise or not (the cell's tooltip)."""
    test = NOISE_TESTS.get(delta.get("test") or "")
    if delta.get("noise") is None or test is None:
        return "noise unknown: no per-request samples for this row"
    verdict = "inside run-to-run noise" if delta["noise"] else "outside run-to-run noise"
    if delta["test"] == "mann-whitney":
        return f"{verdict}: {test} on the whole distribution, p={delta['p_value']:.3g}"
    lo, hi = delta["ci"]
    return f"{verdict}: 95% {test} of the difference [{lo:+.4g}, {hi:+.4g}]"


def noise_note(comparison: dict[str, Any]) -> str:
    method = comparison.get("noise")
    if not method:
        return "Run-to-run noise unknown: no per-request samples were stored for these runs."
    sizes = [max(n.values(), default=0) for n in method["n"]]
    return (
        f"A difference marked “within noise” is inside run-to-run noise at {method['level']:.0%}: "
        "percentiles and means by a bootstrap confidence interval of the difference that holds 0; "
        "max and min by a two-sided Mann–Whitney U test on the whole distribution. Tested on "
        f"{', '.join(method['metrics']) or 'no metric'}, from random samples of up to "
        f"{max(sizes, default=0):,} requests per run; per-bucket rows have no noise test."
    )


# ------------------------------------------------------------------------------------------- accuracy

ACCURACY_TESTS = {"mcnemar": "McNemar (paired by item)", "two-proportion": "two-proportion z-test"}


def accuracy_rows(columns: list[Column], comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per column whose summary graded answers: its accuracy and, against the baseline, the
    delta in points with its 95% interval, the test used and whether it is a regression; [] when no
    column graded anything."""
    deltas = comparison.get("accuracy") or [None] * len(columns)
    rows = []
    for column, delta in zip(columns, deltas, strict=True):
        block = column.summary.get("accuracy")
        rate = block.get("rate") if isinstance(block, dict) else block
        if rate is None:
            continue
        row: dict[str, Any] = {
            "label": column.label,
            "rate": fmt(rate, "fraction"),
            "ci": _interval(block.get("ci95")) if isinstance(block, dict) else "",
            "graded": block.get("graded") if isinstance(block, dict) else None,
            "delta": None,
        }
        if delta is not None:
            lo, hi = delta["ci95"]
            row["delta"] = {
                **delta,
                "text": f"{delta['delta_pt']:+.1f} pt",
                "interval": f"[{lo * 100:+.1f}, {hi * 100:+.1f}] pt",
                "test_name": ACCURACY_TESTS.get(delta["test"], delta["test"]),
                "verdict": "regression"
                if delta["regression"]
                else "improvement"
                if delta["improvement"]
                else "noise",
                "subjects": [
                    {"name": name, **d, "interval": f"[{d['ci95_pt'][0]:+.1f}, {d['ci95_pt'][1]:+.1f}] pt"}
                    for name, d in (delta.get("by_subject") or {}).items()
                ],
            }
        rows.append(row)
    return rows


def _interval(ci: Any) -> str:
    return f"{ci[0] * 100:.1f}–{ci[1] * 100:.1f}%" if isinstance(ci, list | tuple) and len(ci) == 2 else ""


# ------------------------------------------------------------------------------------------ paired A/B


def paired_verdicts(columns: list[Column]) -> list[dict[str, Any]]:
    """One line per A/B variant against its run's variant A, per metric: Wilcoxon on per-prompt pairs."""
    out = []
    for column in columns:
        for entry in column.paired:
            b = entry["variant"]
            for key, stats in entry["metrics"].items():
                out.append(
                    {
                        "run": column.run.pk,
                        "a": f"{_letter(0)}: {variant_name(column.run, 0)}",
                        "b": f"{_letter(b)}: {variant_name(column.run, b)}",
                        "metric": METRICS[key].label,
                        "unit": METRICS[key].unit,
                        "text": paired_text(stats),
                        **stats,
                    }
                )
    return out


def paired_text(stats: dict[str, Any]) -> str:
    if not stats["n_pairs"]:
        return "no matched pairs"
    verdict = {"b_better": "B better", "b_worse": "B worse", "no_difference": "no difference"}[
        stats["verdict"]
    ]
    median = f"{stats['median_diff']:+.4g}"
    pct = f" ({stats['median_pct']:+.1f}%)" if stats["median_pct"] is not None else ""
    p = f"{stats['p_value']:.3g}" if stats["p_value"] is not None else "–"
    share = stats["b_better_share"] or 0.0
    return (
        f"{verdict}: median B−A {median}{pct} over {stats['n_pairs']} pairs, B better in "
        f"{share:.0%} of them (Wilcoxon signed-rank p={p})"
    )


# --------------------------------------------------------------------------------------------- charts


def _figures(columns: list[Column], comparison: dict[str, Any]) -> dict[str, Any]:
    named = [(c.label, c.color) for c in columns]
    samples = [(c.samples or {}) for c in columns]
    figures = {
        "ttft_cdf": charts_compare.cdf_overlay(
            [(n, col, s.get("ttft_ms")) for (n, col), s in zip(named, samples, strict=True)],
            f"{TTFT.label} CDF",
            TTFT.unit,
        ),
        "tps_dist": charts_compare.distribution_overlay(
            [(n, col, s.get("tokens_per_s")) for (n, col), s in zip(named, samples, strict=True)],
            TPS.label,
            TPS.unit,
        ),
    }
    figures |= _time_series(columns)
    for m in (TTFT, TPS):
        figures[f"bucket_{m.key}"] = charts_compare.bucket_bars(
            named, _bucket_values(comparison, f"{m.key}.p50"), f"{m.label} p50 per bucket", m.unit
        )
    sweeps = [(n, col, c.summary.get("sweep")) for (n, col), c in zip(named, columns, strict=True)]
    if any(s for _, _, s in sweeps):
        figures["sweep"] = charts_compare.sweep_curves([s for s in sweeps if s[2]])
    return figures


def _time_series(columns: list[Column]) -> dict[str, Any]:
    """Per-second live rows of each run, on seconds since its start (A/B variants share their run's)."""
    first = {}
    for c in columns:
        first.setdefault(c.run.pk, c)
    points = runs_series(run_ids=list(first))
    label = {pk: (c.label if c.variant is None else run_label(c.run)) for pk, c in first.items()}
    series = [(label[pk], first[pk].color, points[pk]) for pk in first]
    return {
        "ttft_time": charts_compare.time_series_overlay(
            series, "ttft_p50", f"{TTFT.label} p50 over the run", TTFT.unit
        ),
        "qpm_time": charts_compare.time_series_overlay(
            series, "qpm", "Queries per minute over the run", "QPM"
        ),
    }


def _bucket_values(comparison: dict[str, Any], path: str) -> list[tuple[str, list[float | None]]]:
    out = []
    for bucket in comparison["buckets"]:
        row = next((r for r in bucket["rows"] if r["path"] == path), None)
        if row is not None:
            out.append((bucket["label"], row["values"]))
    return out
