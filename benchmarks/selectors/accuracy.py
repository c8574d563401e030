"""A run's graded answers: the wrong ones with their question and reference, for the run page."""

from __future__ import annotations

from typing import Any

from benchmarks.models import DatasetItem, RequestRecord, Run

WRONG_LIMIT = 200


def run_wrong_answers(*, run: Run, limit: int = WRONG_LIMIT) -> list[dict[str, Any]]:
    """Wrong graded requests, first sent first: the question (the dataset item as it was, before the
    template), the reference answer, what the grader read as the model's answer and why it is wrong."""
    rows = list(
        RequestRecord.objects.filter(run=run, data__correct=False)
        .order_by("started_epoch", "id")
        .values("pk", "request_id", "prompt_id", "outcome", "data__extracted_answer", "data__grade_reason")[
            :limit
        ]
    )
    items = _items(run, {r["prompt_id"] for r in rows})
    return [
        {
            "pk": r["pk"],
            "request_id": r["request_id"],
            "prompt_id": r["prompt_id"],
            "outcome": r["outcome"],
            "question": items.get(r["prompt_id"], {}).get("question", ""),
            "reference": items.get(r["prompt_id"], {}).get("reference"),
            "extracted": r["data__extracted_answer"],
            "reason": r["data__grade_reason"] or "",
        }
        for r in rows
    ]


def run_wrong_count(*, run: Run) -> int:
    return RequestRecord.objects.filter(run=run, data__correct=False).count()


def _items(run: Run, keys: set[str]) -> dict[str, dict[str, Any]]:
    """Question and reference by prompt id: from the dataset version the run sent, else its spec."""
    if not keys:
        return {}
    if run.dataset_version_id is not None:
        found = DatasetItem.objects.filter(version_id=run.dataset_version_id, key__in=keys).values_list(
            "key", "prompt", "messages", "expected"
        )
        out = {k: {"question": _question(p, m), "reference": e} for k, p, m, e in found}
        if out:
            return out
    return {
        str(p.get("id")): {
            "question": _question(p.get("text"), p.get("messages")),
            "reference": p.get("expected"),
        }
        for p in (run.spec or {}).get("prompts") or []
        if str(p.get("id")) in keys
    }


def _question(text: str | None, messages: list[dict[str, Any]] | None) -> str:
    if text:
        return text
    users = [m.get("content") for m in messages or [] if m.get("role") == "user"]
    return str(users[-1]) if users else ""
