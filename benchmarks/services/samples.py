"""What comparisons keep of a run's raw records, taken once when the run ends.

A comparison reads summaries (stored on the run) and, for the noise test, per-request values. Those come
from a uniform random sample of at most ``RunSample.SIZE`` successful requests, so comparing runs of any
size costs the same. An A/B run also keeps one summary per variant and the paired statistics of each
variant against variant 0, which need every record and so are computed here, while they are in memory.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks import bridge
from benchmarks.models import RequestRecord, Run, RunSample, Shard
from benchmarks.selectors.samples import run_sample_stored
from runner import Columns, columns_from

log = logging.getLogger(__name__)


def run_sample_save(
    *, run: Run, records: Columns | Sequence[dict[str, Any]], summary: dict[str, Any], shards: list[Shard]
) -> RunSample:
    """Called at run end with every record (as columns, or dicts); replaces any earlier sample."""
    fields = _sample_fields(run, _columns(records), summary, shards, complete=True)
    sample, _ = RunSample.objects.update_or_create(run=run, defaults=fields)
    return sample


def _columns(records: Columns | Sequence[dict[str, Any]]) -> Columns:
    return records if isinstance(records, Columns) else columns_from(list(records))


def _sample_fields(
    run: Run,
    columns: Columns,
    summary: dict[str, Any],
    shards: list[Shard],
    *,
    complete: bool,
) -> dict[str, Any]:
    """With ``complete=False`` the records are successes only, too few to summarise variants from."""
    ok = np.flatnonzero(_successes(run, columns))
    picked = _reservoir(ok, seed=run.pk)
    variant = columns.f("variant")
    fields: dict[str, Any] = {
        "population": int(ok.size),
        **{key: columns.f(key)[picked].astype(np.float64).tobytes() for key in RunSample.METRICS},
        "variant": variant[picked].astype(np.uint8).tobytes(),
        "variants": [],
        "paired": [],
        "verdicts": _verdicts(columns),
    }
    present = sorted({int(v) for v in variant})
    if len(present) > 1:
        fields["variants"] = summary.get("variants") or (
            [bridge.run_summary(run, shards, columns, variant=i) for i in range(max(present) + 1)]
            if complete
            else []
        )
        fields["paired"] = _paired(columns, present)
    return fields


def _verdicts(c: Columns) -> list[list[Any]]:
    """``verdicts`` of the records in columns."""
    graded = np.flatnonzero(~np.isnan(c.correct) & (c.outcome != "cancelled"))
    order = graded[np.argsort(c.f("scheduled_s")[graded], kind="stable")]
    variant = c.f("variant")
    return [
        [str(c.prompt_id[i] or ""), bool(c.correct[i]) and c.outcome[i] == "success", int(variant[i])]
        for i in order
    ]


def verdicts(records: Iterable[dict[str, Any]]) -> list[list[Any]]:
    """[prompt id, correct, variant] of every graded request in schedule order (a failed graded request
    is wrong; a cancelled one was never graded)."""
    graded = [r for r in records if r.get("correct") is not None and r.get("outcome") != "cancelled"]
    graded.sort(key=lambda r: float(r.get("scheduled_s") or 0.0))
    return [
        [
            str(r.get("prompt_id") or ""),
            bool(r["correct"]) and r.get("outcome") == "success",
            int(r.get("variant") or 0),
        ]
        for r in graded
    ]


def verdict_records(sample: RunSample | None, *, variant: int | None = None) -> list[dict[str, Any]] | None:
    """The stored verdicts as records ``runner.accuracy_delta`` pairs by item; None when there are none."""
    rows = list(sample.verdicts or []) if sample is not None else []
    if not rows:
        return None
    return [
        {"prompt_id": p, "correct": c, "outcome": "success", "scheduled_s": float(i)}
        for i, (p, c, v) in enumerate(rows)
        if variant is None or v == variant
    ]


def run_sample_at_end(
    *, run: Run, records: Columns | Sequence[dict[str, Any]], summary: dict[str, Any], shards: list[Shard]
) -> None:
    """The run-end hook: never fails the run (without one, run_sample_get builds it from the records)."""
    try:
        run_sample_save(run=run, records=records, summary=summary, shards=shards)
    except Exception:
        log.exception("sample of run %s failed", run.pk)


def run_sample_get(*, run: Run) -> RunSample | None:
    """The run's sample. Runs that ended before samples existed get one built from their stored records
    in memory, never saved: a page view writes nothing."""
    sample = run_sample_stored(run=run)
    if sample is not None or run.is_active or not run.summary:
        return sample
    keys = RunSample.METRICS  # each is a column of RequestRecord too
    rows = RequestRecord.objects.filter(run=run, outcome="success").values_list(
        *keys, "data__variant", "data__prompt_id", "data__scheduled_s", "shard_index"
    )
    graded = RequestRecord.objects.filter(run=run, data__correct__isnull=False).values_list(
        "outcome", "data__correct", "data__variant", "data__prompt_id", "data__scheduled_s"
    )
    records = [
        {
            "outcome": "success",
            **dict(zip(keys, row[: len(keys)], strict=True)),
            "variant": row[-4] or 0,
            "prompt_id": row[-3],
            "scheduled_s": row[-2],
            "shard": row[-1],
        }
        for row in rows.iterator(chunk_size=5000)
    ]
    fields = _sample_fields(run, columns_from(records), run.summary, [], complete=False)
    fields["verdicts"] = verdicts(
        {"outcome": o, "correct": c, "variant": v, "prompt_id": p, "scheduled_s": s}
        for o, c, v, p, s in graded.iterator(chunk_size=5000)
    )
    return RunSample(run=run, **fields)


def sample_values(sample: RunSample | None, *, variant: int | None = None) -> dict[str, np.ndarray] | None:
    """Per-request values by metric (``compare_summaries``' samples), optionally of one variant only."""
    if sample is None or not sample.population:
        return None
    values = {key: np.frombuffer(bytes(getattr(sample, key)), dtype=np.float64) for key in RunSample.METRICS}
    if variant is not None:
        mask = np.frombuffer(bytes(sample.variant), dtype=np.uint8) == variant
        values = {key: v[mask] for key, v in values.items()}
    return values


def samples_pair(baseline: Run, run: Run) -> list[dict[str, np.ndarray]] | None:
    """(baseline's, run's) samples for ``regressions``' noise test; None when either has none."""
    pair = [sample_values(run_sample_get(run=r)) for r in (baseline, run)]
    return [p for p in pair if p is not None] if all(p is not None for p in pair) else None


def _successes(run: Run, c: Columns) -> npt.NDArray[np.bool_]:
    """The population the summary's distributions describe (length-stopped answers count as failures
    when the plan says so)."""
    length_fails = bool((run.spec or {}).get("length_is_failure"))
    ok = c.outcome == "success"
    return ok & ~c.length_stopped if length_fails else ok


def _reservoir(indices: npt.NDArray[np.intp], *, seed: int) -> npt.NDArray[np.intp]:
    if indices.size <= RunSample.SIZE:
        return indices
    picks = sorted(random.Random(seed).sample(range(int(indices.size)), RunSample.SIZE))
    return indices[picks]


def _paired(c: Columns, variants: list[int]) -> list[dict[str, Any]]:
    """Each variant against variant 0 on the same prompts: twins share shard, prompt and schedule slot."""
    from runner import paired_stats

    variant, shard, scheduled = c.f("variant"), c.f("shard"), c.f("scheduled_s")
    ok = c.outcome == "success"

    def keyed(v: int) -> list[dict[str, Any]]:
        idx = np.flatnonzero(variant == v)
        metrics = {k: c.f(k) for k in RunSample.METRICS}
        return [
            {
                "pair": f"{int(shard[i])}/{c.prompt_id[i]}",
                "scheduled_s": float(scheduled[i]),
                **{k: _value(metrics[k][i]) if ok[i] else None for k in RunSample.METRICS},
            }
            for i in idx
        ]

    base = keyed(0)
    out = []
    for v in variants:
        if v == 0:
            continue
        other = keyed(v)
        out.append(
            {
                "variant": v,
                "metrics": {k: paired_stats(base, other, key=k, by="pair") for k in RunSample.METRICS},
            }
        )
    return out


def _value(x: float) -> float | None:
    return None if np.isnan(x) else float(x)
