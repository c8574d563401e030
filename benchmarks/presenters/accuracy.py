"""The run page's accuracy and answer-quality blocks (``templates/benchmarks/runs/_accuracy.html``,
``_quality.html``), from the run's summary and its wrong answers."""

from __future__ import annotations

from typing import Any

from benchmarks.models import Run
from benchmarks.selectors.accuracy import run_wrong_answers, run_wrong_count

MONITOR_LABELS = {
    "empty_answer": "Empty answer",
    "truncated_thinking": "Thinking truncated (no answer)",
    "cut_by_length": "Answer cut by max_tokens",
    "reasoning_leak": "Reasoning leaked into the answer",
}


def accuracy_of(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    """A summary's accuracy block, whatever its age: runs summarised before the block existed stored a
    bare rate (a float); it stands as a block with the rate alone (no counts, so no interval)."""
    value = (summary or {}).get("accuracy")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return {"graded": 0, "correct": 0, "rate": float(value), "ci95": None, "failed": 0, "migrated": True}
    return value if isinstance(value, dict) else None


def summary_current(summary: dict[str, Any] | None) -> dict[str, Any]:
    """A stored summary as today's shape (what the API and downloads hand out): a bare accuracy rate
    becomes its block, so a client reads ``accuracy.rate`` from any run."""
    summary = dict(summary or {})
    if "accuracy" in summary:
        block = accuracy_of(summary)
        if block is None:
            summary.pop("accuracy")
        else:
            summary["accuracy"] = block
    return summary


def accuracy_page(run: Run) -> dict[str, Any]:
    """``accuracy`` (the block with its group tables as rows) and ``wrong_answers``; empty when the run
    graded nothing."""
    block = accuracy_of(run.summary)
    if block is None:
        return {}
    groups = {
        name: _rows(block.get(f"by_{name}") or {}) for name in ("subject", "level", "variant", "bucket")
    }
    return {
        "accuracy": {**block, "groups": groups},
        "wrong_answers": run_wrong_answers(run=run),
        "wrong_count": run_wrong_count(run=run),
    }


def quality_page(run: Run) -> dict[str, Any]:
    """``quality``: each monitor's count and rate, overall and per variant."""
    block = (run.summary or {}).get("quality")
    if not isinstance(block, dict) or not block.get("requests"):
        return {}
    variants = block.get("by_variant") or {}
    rows = [
        {
            "name": name,
            "label": label,
            "count": (block.get(name) or {}).get("count", 0),
            "rate": (block.get(name) or {}).get("rate"),
            "variants": [(v, (q.get(name) or {}).get("rate")) for v, q in variants.items()],
        }
        for name, label in MONITOR_LABELS.items()
    ]
    return {"quality": {"requests": block["requests"], "rows": rows, "variants": list(variants)}}


def _rows(groups: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": name, **tally} for name, tally in groups.items() if isinstance(tally, dict)]
