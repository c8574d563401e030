"""Dataset uploads: a simple JSONL reader until runner.datasets (issue 4) takes over parsing."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from benchmarks.models import Dataset, Team

MAX_ITEMS = 100_000


def dataset_items_from_jsonl(content: str) -> list[dict[str, Any]]:
    """One prompt per line: ``text``/``prompt``/``problem``, OpenAI ``messages`` or ShareGPT
    ``conversations`` (the turns before the last answer). Raises ValidationError naming the line."""
    items: list[dict[str, Any]] = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"Line {number} is not valid JSON ({exc.msg}).") from None
        if not isinstance(row, dict):
            raise ValidationError(f"Line {number} must be a JSON object.")
        items.append(_item(row, number))
        if len(items) > MAX_ITEMS:
            raise ValidationError(f"More than {MAX_ITEMS} prompts; split the file.")
    if not items:
        raise ValidationError("The file holds no prompts.")
    return items


def _item(row: dict[str, Any], number: int) -> dict[str, Any]:
    messages = row.get("messages")
    if messages is None and isinstance(row.get("conversations"), list):
        messages = _sharegpt_messages(row["conversations"])
    text = row.get("text") or row.get("prompt") or row.get("problem") or ""
    if not text and not messages:
        raise ValidationError(f"Line {number} has no text, prompt, messages or conversations.")
    if messages is not None and not (
        isinstance(messages, list) and all(isinstance(m, dict) for m in messages)
    ):
        raise ValidationError(f"Line {number}: messages must be a list of objects.")
    return {
        "id": str(row.get("id") or row.get("unique_id") or number),
        "text": str(text),
        "messages": messages,
        "input_tokens": int(row.get("input_tokens") or 0),
        "max_tokens": row.get("max_tokens"),
        "expected": row.get("expected") or row.get("answer"),
    }


def _sharegpt_messages(turns: list[dict[str, Any]]) -> list[dict[str, str]]:
    roles = {
        "human": "user",
        "user": "user",
        "gpt": "assistant",
        "assistant": "assistant",
        "system": "system",
    }
    messages = [{"role": roles.get(t.get("from", ""), "user"), "content": t.get("value", "")} for t in turns]
    while messages and messages[-1]["role"] == "assistant":
        messages.pop()  # the prompt is everything up to the answer we want generated
    return messages


@transaction.atomic
def dataset_create(*, team: Team, name: str, description: str, items: list[dict[str, Any]]) -> Dataset:
    return Dataset.objects.create(team=team, name=name, description=description, items=items)


@transaction.atomic
def dataset_update(
    *, dataset: Dataset, name: str, description: str, items: list[dict[str, Any]] | None
) -> Dataset:
    dataset.name, dataset.description = name, description
    if items is not None:
        dataset.items = items
    dataset.save()
    return dataset


def synthetic_items(count: int = 50) -> list[dict[str, Any]]:
    topics = [
        "the ocean",
        "compilers",
        "bread",
        "jazz",
        "volcanoes",
        "chess",
        "bees",
        "trains",
        "tea",
        "rust",
    ]
    return [
        {
            "id": f"synthetic-{i}",
            "text": f"Write a short paragraph about {topics[i % len(topics)]}, variation {i}.",
            "messages": None,
            "input_tokens": 0,
            "max_tokens": None,
            "expected": None,
        }
        for i in range(count)
    ]
