"""Comparing runs: deltas in each metric's own direction, run-to-run noise, paired A/B, regression gates.

Pure functions over the summary dicts :func:`runner.summary.summarize` produces (plus, for the noise
test, per-request samples); no I/O, and every result is JSON-serialisable. The first run is the baseline.

Noise is sampling noise between two sets of requests, measured on the per-request values:

* percentiles (p50…p99) and the mean: a seeded bootstrap CI of the difference (run − baseline). A
  percentile's resampling distribution is drawn exactly from the order-statistic formula over all n
  values, so 100k requests cost what 1k do; the mean is resampled up to 2,000 values and drawn from its
  normal limit above that. The difference is noise when the CI holds 0.
* max and min are single requests that no bootstrap describes; a two-sided Mann–Whitney U test on the
  whole distribution decides there (on a seeded subsample of at most 10,000 values per run): the change
  is real only when the distribution moved (p < alpha) the same way. Its p-value is on every
  distribution row.

Without samples the answer is ``noise: None`` (unknown), never a guess.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from runner.accuracy import Z95, wilson
from runner.metrics import DISTRIBUTION_KEYS, METRICS
from runner.records import RequestRecord

Array = npt.NDArray[np.float64]
Samples = Mapping[str, Sequence[float | None] | Array]  # one run's per-request values, by metric key
Record = Mapping[str, Any] | RequestRecord

DIST_METRICS = DISTRIBUTION_KEYS
QUANTILES = {"p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}
DIST_STATS = (*QUANTILES, "mean", "max", "min")
EXTREMES = frozenset({"max", "min"})

RESAMPLES = 1000
MEAN_RESAMPLE_CAP = 2000  # above this the bootstrap mean comes from its normal limit (CLT)
MANN_WHITNEY_CAP = 10_000  # values per run fed to Mann–Whitney (seeded subsample above it)
MIN_SAMPLES = 5


@dataclass(frozen=True, slots=True)
class MetricPath:
    """One comparable number in a summary: where it lives, its unit and which way is better."""

    path: str
    label: str
    unit: str
    better: str  # "lower" | "higher"
    metric: str | None = None  # per-request metric key when the path is a statistic of a distribution
    stat: str | None = None


# Directions not in METRICS (run-level numbers); per-request metrics take theirs from METRICS.
_RUN_LEVEL = (
    MetricPath("success_rate", "Success rate", "fraction", "higher"),
    MetricPath("accuracy", "Accuracy", "fraction", "higher"),
    MetricPath("throughput.requests_per_s", "Throughput", "req/s", "higher"),
    MetricPath("throughput.qpm", "Throughput", "req/min", "higher"),
    MetricPath("throughput.output_tokens_per_s", "Output tokens/s", "tokens/s", "higher"),
    MetricPath("throughput.input_tokens_per_s", "Input tokens/s", "tokens/s", "higher"),
    MetricPath("goodput.requests_per_s", "Goodput", "req/s", "higher"),
    MetricPath("goodput.fraction_of_ok", "Goodput share of OK", "fraction", "higher"),
    MetricPath("cost.total", "Cost", "currency", "lower"),
)


def _distribution_paths() -> list[MetricPath]:
    return [
        MetricPath(f"{key}.{stat}", f"{m.label} {stat}", m.unit, m.better, key, stat)
        for key in DIST_METRICS
        for m in (METRICS[key],)
        for stat in DIST_STATS
    ]


PATHS: dict[str, MetricPath] = {p.path: p for p in (*_distribution_paths(), *_RUN_LEVEL)}


def value_at(summary: Mapping[str, Any], path: str) -> float | None:
    """The number at a dotted path, or None when it is absent or not a finite number. A block with a
    ``rate`` stands for its rate (``accuracy`` is ``accuracy.rate``; older summaries held the float)."""
    node: Any = summary
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if isinstance(node, Mapping) and "rate" in node:
        node = node["rate"]
    if isinstance(node, bool) or not isinstance(node, int | float) or not math.isfinite(node):
        return None
    return float(node)


# ---------------------------------------------------------------------------------------------- noise


@dataclass(frozen=True, slots=True)
class _Sample:
    stats: dict[str, float]  # each statistic computed from the samples
    devs: dict[str, Array]  # bootstrap draws of (statistic* − statistic), percentiles and mean
    mw: Array  # values Mann–Whitney sees
    n: int


def _order_stat_devs(xs: Array, q: float, rng: np.random.Generator, resamples: int) -> Array:
    """Bootstrap draws of a percentile minus itself, without building any resample.

    The k-th smallest of a resample of n is at most x_(j) iff at least k draws are ≤ x_(j), and that
    count is Binomial(n, j/n): the exact bootstrap distribution, evaluated around rank k only.
    """
    n = xs.size
    k = min(n, round((n - 1) * q / 100) + 1)
    half = int(10 * math.sqrt(n * q / 100 * (1 - q / 100))) + 10
    ranks = np.arange(max(1, k - half), min(n, k + half) + 1)
    cdf = np.asarray(stats.binom.sf(k - 1, n, ranks / n), dtype=np.float64)
    cdf[-1] = 1.0
    picks = ranks[np.searchsorted(cdf, rng.random(resamples))]
    return np.asarray(xs[picks - 1] - xs[k - 1], dtype=np.float64)


def _mean_devs(xs: Array, rng: np.random.Generator, resamples: int) -> Array:
    if xs.size <= MEAN_RESAMPLE_CAP:
        means = xs[rng.integers(0, xs.size, (resamples, xs.size))].mean(axis=1)
        return np.asarray(means - xs.mean(), dtype=np.float64)
    return rng.normal(0.0, float(xs.std()) / math.sqrt(xs.size), resamples)


def _prepare(
    values: Sequence[float | None] | Array, rng: np.random.Generator, resamples: int
) -> _Sample | None:
    xs = np.asarray(values, dtype=np.float64)
    xs = np.sort(xs[np.isfinite(xs)])
    if xs.size < MIN_SAMPLES:
        return None
    values_of = {s: float(np.percentile(xs, q)) for s, q in QUANTILES.items()}
    values_of |= {"mean": float(xs.mean()), "max": float(xs[-1]), "min": float(xs[0])}
    devs = {s: _order_stat_devs(xs, q, rng, resamples) for s, q in QUANTILES.items()}
    devs["mean"] = _mean_devs(xs, rng, resamples)
    mw = xs if xs.size <= MANN_WHITNEY_CAP else rng.choice(xs, MANN_WHITNEY_CAP, replace=False)
    return _Sample(values_of, devs, mw, int(xs.size))


def _prepare_runs(samples: Sequence[Samples | None], seed: int, resamples: int) -> list[dict[str, _Sample]]:
    runs: list[dict[str, _Sample]] = []
    for i, run in enumerate(samples):
        prepared: dict[str, _Sample] = {}
        for j, key in enumerate(DIST_METRICS):
            if run is not None and key in run:
                sample = _prepare(run[key], np.random.default_rng([seed, i, j]), resamples)
                if sample is not None:
                    prepared[key] = sample
        runs.append(prepared)
    return runs


def _pair_tests(base: _Sample, run: _Sample, alpha: float) -> dict[str, dict[str, Any]]:
    """Noise fields for every statistic of one metric, run vs baseline."""
    mw = stats.mannwhitneyu(base.mw, run.mw, alternative="two-sided")
    p = 1.0 if math.isnan(float(mw.pvalue)) else float(mw.pvalue)
    run_shift = np.sign(base.mw.size * run.mw.size / 2 - float(mw.statistic))  # +1: run tends larger
    out: dict[str, dict[str, Any]] = {}
    for stat in DIST_STATS:
        diff = run.stats[stat] - base.stats[stat]
        if stat in EXTREMES:
            # An extreme is one request: real only when the whole distribution moved the same way.
            noise = p >= alpha or np.sign(diff) != run_shift
            out[stat] = {"noise": bool(noise), "test": "mann-whitney", "p_value": p, "ci": None}
            continue
        lo, hi = np.quantile(run.devs[stat] - base.devs[stat], [alpha / 2, 1 - alpha / 2]) + diff
        ci = [float(lo), float(hi)]
        out[stat] = {"noise": ci[0] <= 0.0 <= ci[1], "test": "bootstrap-ci", "p_value": p, "ci": ci}
    return out


def _noise_method(runs: list[dict[str, _Sample]], alpha: float, seed: int, resamples: int) -> dict[str, Any]:
    sizes = [{key: s.n for key, s in run.items()} for run in runs]
    return {
        "level": 1 - alpha,
        "seed": seed,
        "resamples": resamples,
        "metrics": sorted({key for run in runs for key in run}),
        "n": sizes,
        "bootstrap_ci": "percentiles: exact order-statistic bootstrap over all n values; "
        f"mean: resampled up to n={MEAN_RESAMPLE_CAP}, its normal limit above",
        "mann_whitney": f"two-sided; seeded subsample of {MANN_WHITNEY_CAP} values where n is larger",
        "mann_whitney_subsampled": any(n > MANN_WHITNEY_CAP for run in sizes for n in run.values()),
        "decides": {"p50-p99, mean": "bootstrap-ci", "max, min": "mann-whitney, same direction"},
        "buckets": "no per-bucket samples: noise unknown",
    }


# ------------------------------------------------------------------------------------------- compare

_NO_TEST: dict[str, Any] = {"noise": None, "test": None, "p_value": None, "ci": None}


def _verdict(delta: float, better: str) -> str:
    if delta == 0:
        return "same"
    return "better" if (delta < 0) == (better == "lower") else "worse"


def _delta(
    base: float | None, value: float | None, better: str, noise: Mapping[str, Any]
) -> dict[str, Any] | None:
    if base is None or value is None:
        return None
    diff = value - base
    pct = diff * 100.0 / abs(base) if base else None
    return {"abs": diff, "pct": pct, "verdict": _verdict(diff, better), **noise}


def _rows(
    blocks: Sequence[Mapping[str, Any]],
    tests: Sequence[Mapping[str, Mapping[str, dict[str, Any]]]],
) -> list[dict[str, Any]]:
    rows = []
    for mp in PATHS.values():
        values = [value_at(b, mp.path) for b in blocks]
        if all(v is None for v in values):
            continue
        deltas: list[dict[str, Any] | None] = [None]
        for i in range(1, len(values)):
            noise = tests[i].get(mp.metric or "", {}).get(mp.stat or "", _NO_TEST)
            deltas.append(_delta(values[0], values[i], mp.better, noise))
        unit = mp.unit
        if mp.path.startswith("cost.") and isinstance(blocks[0].get("cost"), Mapping):
            unit = str(blocks[0]["cost"].get("currency", unit))
        rows.append(
            {
                "path": mp.path,
                "label": mp.label,
                "unit": unit,
                "better": mp.better,
                "values": values,
                "deltas": deltas,
            }
        )
    return rows


def _bucket_index(summaries: Sequence[Mapping[str, Any]]) -> list[tuple[str, Any, Any]]:
    seen: dict[str, tuple[str, Any, Any]] = {}
    for s in summaries:
        for b in s.get("buckets") or []:
            seen.setdefault(b["label"], (b["label"], b.get("lo"), b.get("hi")))
    return sorted(seen.values(), key=lambda t: t[1] if isinstance(t[1], int | float) else math.inf)


def _bucket(summary: Mapping[str, Any], label: str) -> Mapping[str, Any]:
    return next((b for b in summary.get("buckets") or [] if b.get("label") == label), {})


def compare_summaries(
    summaries: Sequence[Mapping[str, Any]],
    *,
    labels: Sequence[str],
    samples: Sequence[Samples | None] | None = None,
    alpha: float = 0.05,
    seed: int = 0,
    resamples: int = RESAMPLES,
    records: Sequence[Sequence[Record] | None] | None = None,
) -> dict[str, Any]:
    """Every comparable metric of every run against the first (the baseline), overall and per bucket.

    ``samples[i]`` holds run i's per-request values by metric key (``{"ttft_ms": [...]}``), the same
    population the summary was computed from. ``deltas[i]`` lines up with ``values[i]``; the baseline's
    is None, as is any delta where a value is missing. ``accuracy[i]`` is :func:`accuracy_delta` of run i
    (paired by item when ``records[i]`` and the baseline's graded the same items).
    """
    if not summaries:
        raise ValueError("nothing to compare: pass at least one summary")
    if len(labels) != len(summaries):
        raise ValueError(f"{len(summaries)} summaries but {len(labels)} labels")
    if samples is not None and len(samples) != len(summaries):
        raise ValueError(f"{len(summaries)} summaries but {len(samples)} sample sets")
    runs = _prepare_runs(samples, seed, resamples) if samples is not None else [{} for _ in summaries]
    tests: list[dict[str, dict[str, dict[str, Any]]]] = [{}]
    for run in runs[1:]:
        tests.append({key: _pair_tests(runs[0][key], s, alpha) for key, s in run.items() if key in runs[0]})
    buckets = [
        {
            "label": label,
            "lo": lo,
            "hi": hi,
            "rows": _rows([_bucket(s, label) for s in summaries], [{}] * len(summaries)),
        }
        for label, lo, hi in _bucket_index(summaries)
    ]
    recs = list(records) if records is not None else [None] * len(summaries)
    accuracy = [None] + [
        accuracy_delta(
            summaries[0].get("accuracy"),
            s.get("accuracy"),
            base_records=recs[0],
            run_records=recs[i],
            alpha=alpha,
        )
        for i, s in enumerate(summaries[1:], start=1)
    ]
    return {
        "labels": list(labels),
        "baseline": labels[0],
        "alpha": alpha,
        "noise": _noise_method(runs, alpha, seed, resamples) if samples is not None else None,
        "rows": _rows(summaries, tests),
        "buckets": buckets,
        "accuracy": accuracy,
    }


# ---------------------------------------------------------------------------------------- paired A/B


def _field(record: Record, name: str) -> Any:
    return record.get(name) if isinstance(record, Mapping) else getattr(record, name, None)


def _by_occurrence(records: Sequence[Record], key: str, by: str) -> dict[tuple[Any, int], float | None]:
    """(prompt id, n-th time it was scheduled) → value; the schedule order matches twin variants."""
    ordered = sorted(records, key=lambda r: _field(r, "scheduled_s") or 0.0)
    seen: dict[Any, int] = {}
    out: dict[tuple[Any, int], float | None] = {}
    for r in ordered:
        pid = _field(r, by)
        out[(pid, seen.get(pid, 0))] = _field(r, key)
        seen[pid] = seen.get(pid, 0) + 1
    return out


def _wilcoxon_p(diffs: Array) -> float | None:
    if diffs.size == 0:
        return None
    if not diffs.any():
        return 1.0
    p = float(stats.wilcoxon(diffs, alternative="two-sided").pvalue)
    return None if math.isnan(p) else p


def paired_stats(
    a: Sequence[Record],
    b: Sequence[Record],
    key: str = "ttft_ms",
    by: str = "prompt_id",
    *,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Variant B against A on the same prompts and schedule: per-pair differences (B − A) and Wilcoxon."""
    if key not in METRICS:
        raise ValueError(f"unknown metric {key!r}; known: {', '.join(METRICS)}")
    better = METRICS[key].better
    va, vb = _by_occurrence(a, key, by), _by_occurrence(b, key, by)
    both = [k for k in va if k in vb]
    pairs = [(va[k], vb[k]) for k in both if va[k] is not None and vb[k] is not None]
    xa = np.array([p[0] for p in pairs], dtype=np.float64)
    diffs = np.array([p[1] for p in pairs], dtype=np.float64) - xa
    p_value = _wilcoxon_p(diffs)
    median = float(np.median(diffs)) if diffs.size else None
    improved, worsened = (diffs < 0, diffs > 0) if better == "lower" else (diffs > 0, diffs < 0)
    verdict = "no_difference"
    if p_value is not None and p_value < alpha and median:
        verdict = "b_better" if _verdict(median, better) == "better" else "b_worse"
    return {
        "key": key,
        "by": by,
        "better": better,
        "n_pairs": len(pairs),
        "unmatched": {"a": len(va) - len(both), "b": len(vb) - len(both)},
        "missing_values": len(both) - len(pairs),
        "median_diff": median,
        "mean_diff": float(diffs.mean()) if diffs.size else None,
        "median_pct": median * 100.0 / float(np.median(xa)) if median is not None and np.median(xa) else None,
        "b_better_share": float(improved.mean()) if diffs.size else None,
        "b_worse_share": float(worsened.mean()) if diffs.size else None,
        "test": "wilcoxon",
        "p_value": p_value,
        "alpha": alpha,
        "verdict": verdict,
    }


# ------------------------------------------------------------------------------------------ accuracy


def _graded(records: Sequence[Record]) -> list[tuple[Any, bool]]:
    """(item id, correct) per graded request in schedule order; a failed graded request is wrong."""
    ordered = sorted(records, key=lambda r: _field(r, "scheduled_s") or 0.0)
    return [
        (_field(r, "prompt_id"), bool(_field(r, "correct")) and _field(r, "outcome") == "success")
        for r in ordered
        if _field(r, "correct") is not None and _field(r, "outcome") != "cancelled"
    ]


def _pairs(base: Sequence[Record], run: Sequence[Record]) -> list[tuple[bool, bool]] | None:
    """Both runs' verdicts item by item (a repeated item paired in order), or None unless both runs
    graded exactly the same items."""
    a, b = _graded(base), _graded(run)
    if not a or sorted(map(str, (i for i, _ in a))) != sorted(map(str, (i for i, _ in b))):
        return None

    def by_item(graded: list[tuple[Any, bool]]) -> dict[tuple[Any, int], bool]:
        seen: dict[Any, int] = {}
        out = {}
        for item, ok in graded:
            out[(item, seen.get(item, 0))] = ok
            seen[item] = seen.get(item, 0) + 1
        return out

    va, vb = by_item(a), by_item(b)
    return [(va[k], vb[k]) for k in va]


def _counts(block: Any) -> tuple[int, int] | None:
    if isinstance(block, Mapping) and isinstance(block.get("graded"), int) and block["graded"] > 0:
        return int(block["correct"]), int(block["graded"])
    return None  # absent, or an old summary's bare float: no counts, no test


def _newcombe(k1: int, n1: int, k2: int, n2: int) -> list[float]:
    """95% interval of p2 − p1 from the two Wilson intervals (Newcombe's hybrid score method)."""
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = wilson(k1, n1) or [0.0, 1.0], wilson(k2, n2) or [0.0, 1.0]
    d = p2 - p1
    return [d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2), d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)]


def _two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float:
    pooled = (k1 + k2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        return 1.0
    z = (k2 / n2 - k1 / n1) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return float(2 * stats.norm.sf(abs(z)))


def _mcnemar(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    """Exact McNemar: the discordant pairs split as Binomial(b + c, ½) when nothing changed."""
    n = len(pairs)
    lost = sum(1 for a, b in pairs if a and not b)  # right in the baseline, wrong in the run
    gained = sum(1 for a, b in pairs if b and not a)
    p = float(stats.binomtest(lost, lost + gained, 0.5).pvalue) if lost + gained else 1.0
    d = (gained - lost) / n
    se = math.sqrt(max(0.0, (lost + gained) / n - d * d) / n)  # Wald, paired
    return {
        "test": "mcnemar",
        "p_value": p,
        "ci95": [d - Z95 * se, d + Z95 * se],
        "n_pairs": n,
        "lost": lost,
        "gained": gained,
    }


def accuracy_delta(
    base: Mapping[str, Any] | None,
    run: Mapping[str, Any] | None,
    *,
    base_records: Sequence[Record] | None = None,
    run_records: Sequence[Record] | None = None,
    alpha: float = 0.05,
) -> dict[str, Any] | None:
    """Accuracy of ``run`` against ``base`` (each a summary's ``accuracy`` block): the delta (run − base)
    with its 95% interval, McNemar's exact test when both runs' records graded the same items (paired by
    item id, a repeated item in order), else a two-proportion z-test (interval: Newcombe). A drop with
    p < alpha is a regression. Per-subject deltas when both blocks have subjects. None without counts.
    """
    a, b = _counts(base), _counts(run)
    if a is None or b is None or base is None or run is None:
        return None
    pairs = (
        _pairs(base_records, run_records) if base_records is not None and run_records is not None else None
    )
    if pairs is not None:
        tested = _mcnemar(pairs)
    else:
        tested = {"test": "two-proportion", "p_value": _two_proportion_p(*a, *b), "ci95": _newcombe(*a, *b)}
    delta = b[0] / b[1] - a[0] / a[1]
    significant = tested["p_value"] < alpha
    return {
        "baseline": base["rate"],
        "run": run["rate"],
        "delta": delta,
        "delta_pt": delta * 100,
        **tested,
        "alpha": alpha,
        "noise": not significant,
        "regression": significant and delta < 0,
        "improvement": significant and delta > 0,
        "by_subject": _subject_deltas(base, run),
    }


def _subject_deltas(base: Mapping[str, Any], run: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for subject, block in (base.get("by_subject") or {}).items():
        other = (run.get("by_subject") or {}).get(subject)
        a, b = _counts(block), _counts(other)
        if a is None or b is None:
            continue
        delta = b[0] / b[1] - a[0] / a[1]
        out[subject] = {
            "baseline": a[0] / a[1],
            "run": b[0] / b[1],
            "delta_pt": delta * 100,
            "ci95_pt": [x * 100 for x in _newcombe(*a, *b)],
            "p_value": _two_proportion_p(*a, *b),
        }
    return out


# ------------------------------------------------------------------------------------ regression gate

_OPS = {"<": float.__lt__, ">": float.__gt__, "<=": float.__le__, ">=": float.__ge__}
_RULE_RE = re.compile(r"^\s*(?P<path>[^<>=!\s]+)\s*(?P<op>[<>=!]+)\s*(?P<value>.*?)\s*$")
_VALUE_RE = re.compile(r"^(?P<sign>[+-]?)(?P<num>\d+(?:\.\d*)?|\.\d+)(?P<pct>%|pt)?$")


@dataclass(frozen=True, slots=True)
class Rule:
    """A failing condition: ``ttft_ms.p99>+10%`` breaks when p99 exceeds the baseline's by more than 10%;
    ``accuracy<-2pt`` when a rate falls more than 2 percentage points below the baseline's."""

    path: str
    op: str
    value: float
    relative: bool
    points: bool = False  # percentage points of a rate, relative to the baseline's

    def __str__(self) -> str:
        if self.points:
            return f"{self.path}{self.op}{self.value:+g}pt"
        return (
            f"{self.path}{self.op}{self.value:+g}%"
            if self.relative
            else f"{self.path}{self.op}{self.value:g}"
        )


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule: Rule
    actual: float | None
    baseline: float | None
    threshold: float | None
    broken: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rule": str(self.rule)}


def known_paths() -> str:
    """The paths rules accept, grouped: ``ttft_ms.{p50,p90,…}, success_rate, …``."""
    groups: dict[str, list[str]] = {}
    for path in PATHS:
        head, _, tail = path.partition(".")
        groups.setdefault(head, []).append(tail)
    return ", ".join(
        head if tails == [""] else f"{head}.{{{','.join(tails)}}}" for head, tails in groups.items()
    )


def parse_rule(text: str) -> Rule:
    """``PATH OP VALUE``: OP one of < > <= >=; VALUE absolute (``0.99``), signed relative (``+10%``) or,
    for a rate, signed percentage points from the baseline's (``-2pt``)."""
    m = _RULE_RE.match(text)
    if m is None:
        raise ValueError(
            f"rule {text!r} has no comparison; write e.g. 'ttft_ms.p99>+10%' or 'success_rate<0.99'"
        )
    path, op, raw = m["path"], m["op"], m["value"]
    if op not in _OPS:
        raise ValueError(f"rule {text!r}: unsupported operator {op!r}; use <, >, <= or >=")
    if path not in PATHS:
        close = difflib.get_close_matches(path, PATHS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown metric path {path!r}{hint}; known: {known_paths()}")
    v = _VALUE_RE.match(raw)
    if v is None:
        raise ValueError(
            f"rule {text!r}: threshold {raw!r} is not a number (absolute, e.g. 3000) "
            "or a signed percentage of the baseline (e.g. +10%, -5%)"
        )
    if v["pct"] and not v["sign"]:
        raise ValueError(
            f"rule {text!r}: a relative threshold needs a sign, '+{raw}' (above the baseline) or "
            f"'-{raw}' (below); an absolute threshold has no '%'"
        )
    points = v["pct"] == "pt"
    if points and PATHS[path].unit != "fraction":
        raise ValueError(f"rule {text!r}: 'pt' (percentage points) applies to rates, not {path}")
    value = float(v["num"]) * (-1 if v["sign"] == "-" else 1)
    return Rule(path, op, value, relative=bool(v["pct"]), points=points)


def _check(rule: Rule, summary: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> RuleResult:
    actual = value_at(summary, rule.path)
    base = value_at(baseline, rule.path) if baseline is not None else None
    threshold: float | None = rule.value
    if rule.points:
        threshold = None if base is None else base + rule.value / 100
    elif rule.relative:
        threshold = None if base is None else base * (1 + rule.value / 100)
    if actual is None or threshold is None:
        missing = "this run" if actual is None else "the baseline"
        return RuleResult(
            rule, actual, base, threshold, True, f"{rule}: no value in {missing}; failing closed"
        )
    broken = _OPS[rule.op](actual, threshold)
    of = f" (baseline {base:g} {rule.value:+g}{'pt' if rule.points else '%'})" if rule.relative else ""
    state = "BROKEN" if broken else "ok"
    return RuleResult(
        rule, actual, base, threshold, broken, f"{rule}: {actual:g} vs {threshold:g}{of}: {state}"
    )


def check_rules(
    summary: Mapping[str, Any], rules: Sequence[Rule], baseline: Mapping[str, Any] | None = None
) -> list[RuleResult]:
    """Evaluate every rule; a missing value breaks the rule (a gate fails closed)."""
    relative = [str(r) for r in rules if r.relative]
    if relative and baseline is None:
        raise ValueError(f"relative rules need a baseline run: {', '.join(relative)}")
    return [_check(rule, summary, baseline) for rule in rules]


def regressions(
    summary: Mapping[str, Any],
    baseline: Mapping[str, Any],
    *,
    threshold_pct: float = 10.0,
    samples: Sequence[Samples | None] | None = None,
    records: Sequence[Sequence[Record] | None] | None = None,
) -> list[dict[str, Any]]:
    """Overall metrics worse than the baseline by more than threshold_pct and not inside noise.

    ``samples`` is (baseline's, this run's). Where noise is unknown the threshold alone decides; max and
    min are left out, being single requests. Accuracy is a regression when its test says the drop is
    outside noise (:func:`accuracy_delta`; paired with ``records``), whatever its size.
    """
    comparison = compare_summaries(
        [baseline, summary], labels=["baseline", "run"], samples=samples, records=records
    )
    found = []
    accuracy = comparison["accuracy"][1]
    for row in comparison["rows"]:
        d = row["deltas"][1]
        if row["path"] == "accuracy" and accuracy is not None:
            if accuracy["regression"]:
                found.append({k: row[k] for k in ("path", "label", "unit", "better")} | accuracy)
            continue
        if PATHS[row["path"]].stat in EXTREMES or d is None or d["verdict"] != "worse":
            continue
        if d["pct"] is not None and abs(d["pct"]) > threshold_pct and d["noise"] is not True:
            found.append(
                {k: row[k] for k in ("path", "label", "unit", "better")}
                | {"baseline": row["values"][0], "value": row["values"][1]}
                | d
            )
    return found


# ------------------------------------------------------------------------------------------- table


def _num(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.1f}" if abs(v) >= 100 else f"{v:.2f}" if abs(v) >= 1 else f"{v:.4f}"


def _change(d: Mapping[str, Any]) -> str:
    if d["verdict"] == "same":
        return "same"
    size = f"{d['pct']:+.1f}%" if d["pct"] is not None else f"{d['abs']:+.4g}"
    return f"{size} {d['verdict']}{', noise' if d['noise'] else ''}"


def _cell(value: float | None, d: Mapping[str, Any] | None) -> str:
    return _num(value) if d is None else f"{_num(value)} ({_change(d)})"


def _grid(rows: Sequence[Mapping[str, Any]], labels: Sequence[str]) -> list[list[str]]:
    head = ["metric", "unit", f"{labels[0]} (baseline)", *labels[1:]]
    body = [
        [r["path"], r["unit"], *(_cell(v, d) for v, d in zip(r["values"], r["deltas"], strict=True))]
        for r in rows
    ]
    return [head, *body]


def _render(grid: list[list[str]]) -> list[str]:
    widths = [max(len(line[i]) for line in grid) for i in range(len(grid[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in grid]


def format_table(comparison: Mapping[str, Any]) -> str:
    """Plain text: baseline value, then each run's value with ``(+12.3% worse)``-style deltas."""
    labels = comparison["labels"]
    lines = _render(_grid(comparison["rows"], labels))
    for bucket in comparison["buckets"]:
        if bucket["rows"]:
            lines += ["", f"input tokens {bucket['label']}", *_render(_grid(bucket["rows"], labels))]
    for label, acc in zip(labels, comparison.get("accuracy") or [], strict=False):
        if acc is not None:
            lo, hi = (x * 100 for x in acc["ci95"])
            verdict = "REGRESSION" if acc["regression"] else "improvement" if acc["improvement"] else "noise"
            lines += [
                "",
                f"accuracy {label}: {acc['delta_pt']:+.1f}pt (95% CI {lo:+.1f}…{hi:+.1f}pt), "
                f"{acc['test']} p={acc['p_value']:.3g}: {verdict}",
            ]
    method = comparison.get("noise")
    lines.append("")
    if method is None:
        lines.append("noise: unknown (no per-request samples)")
    else:
        lines.append(
            f"noise: 0 inside the {method['level']:.0%} bootstrap CI (p50–p99, mean); max/min: Mann–Whitney "
            f"p ≥ {comparison['alpha']:g} or the distribution moved the other way; "
            f"tested: {', '.join(method['metrics']) or 'none'}; buckets: unknown"
        )
    return "\n".join(lines) + "\n"
