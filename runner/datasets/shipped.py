"""Datasets that ship with llmperf (``builtin:NAME``), their sources and licences, and prompt templates.

The files live in ``runner/datasets/builtin/`` beside the licence texts in ``licenses/``; a clone has
everything, and nothing is downloaded:

- ``builtin:math500``: MATH-500, the 500 held-out MATH test problems of "Let's Verify Step by Step",
  byte-identical to ``openai/prm800k`` ``prm800k/math_splits/test.jsonl`` (MIT, © 2023 OpenAI; the MATH
  dataset, Hendrycks et al., is MIT). Rows: ``problem``, ``solution``, ``answer``, ``subject``,
  ``level`` (1–5), ``unique_id``.
- ``builtin:conversations``: 383 ShareGPT-style English conversations derived (reformatted, hence
  modified per Apache-2.0 §4) from OpenAssistant OASST1 trees in ``LAION-AI/Open-Assistant``
  (Apache-2.0).

A prompt template is text with one ``{prompt}`` placeholder; other braces are literal (``\\boxed{}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.datasets.parse import DatasetItem, parse_dataset
from runner.spec import Prompt

__all__ = [
    "BUILTINS",
    "BUILTIN_DIR",
    "MATH_TEMPLATE",
    "META_KEYS",
    "Builtin",
    "apply_template",
    "builtin",
    "builtin_path",
    "is_builtin",
    "load_builtin",
    "prompts_from_items",
]

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
PREFIX = "builtin:"
PLACEHOLDER = "{prompt}"
MATH_TEMPLATE = "{prompt}\n\nPlease reason step by step, and put your final answer within \\boxed{}."
META_KEYS = ("subject", "level", "unique_id")  # what a prompt carries to the summary, and no more


@dataclass(frozen=True, slots=True)
class Builtin:
    name: str
    filename: str
    title: str
    rows: int
    license: str
    license_file: str  # under BUILTIN_DIR / "licenses"
    source: str
    template: str = ""  # the default prompt template; "" = the prompt as it is
    graded: bool = False  # items carry an expected answer the grader can check


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin(
            name="math500",
            filename="math500.jsonl",
            title="MATH-500",
            rows=500,
            license="MIT",
            license_file="prm800k-MIT.txt",
            source="openai/prm800k, prm800k/math_splits/test.jsonl",
            template=MATH_TEMPLATE,
            graded=True,
        ),
        Builtin(
            name="conversations",
            filename="conversations.jsonl",
            title="OpenAssistant conversations (English)",
            rows=383,
            license="Apache-2.0",
            license_file="Open-Assistant-Apache-2.0.txt",
            source="LAION-AI/Open-Assistant, model/model_eval/manual/data/en_100_message.jsonl (reformatted)",
        ),
    )
}


def is_builtin(ref: str) -> bool:
    return ref.startswith(PREFIX)


def builtin(ref: str) -> Builtin:
    """``builtin:math500`` (or ``math500``) → its entry; ValueError naming the known ones otherwise."""
    name = ref.removeprefix(PREFIX)
    if name not in BUILTINS:
        raise ValueError(
            f"unknown built-in dataset {ref!r}; known: {', '.join(PREFIX + n for n in BUILTINS)}"
        )
    return BUILTINS[name]


def builtin_path(ref: str) -> Path:
    return BUILTIN_DIR / builtin(ref).filename


def load_builtin(ref: str) -> list[DatasetItem]:
    entry = builtin(ref)
    result = parse_dataset(builtin_path(ref).read_bytes(), filename=entry.filename)
    if not result.ok:  # pragma: no cover - the shipped files are tested
        raise ValueError(f"{ref}: {result.errors[0].reason}")
    return result.items


def apply_template(template: str, text: str) -> str:
    """``template`` with its ``{prompt}`` replaced by ``text``; "" leaves the text as it is."""
    if not template:
        return text
    if PLACEHOLDER not in template:
        raise ValueError(f"a prompt template needs a {PLACEHOLDER} placeholder: {template!r}")
    return template.replace(PLACEHOLDER, text)


def _templated(item: DatasetItem, template: str) -> tuple[str, list[dict[str, Any]] | None]:
    if item.messages is None:
        return apply_template(template, item.prompt or ""), None
    messages = [dict(m) for m in item.messages]
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    if last_user is not None and isinstance(messages[last_user].get("content"), str):
        messages[last_user]["content"] = apply_template(template, messages[last_user]["content"])
    return item.prompt or "", messages


def prompts_from_items(items: list[DatasetItem], *, template: str = "") -> list[Prompt]:
    """Prompts to send: the template applied (to a chat's last user turn), the expected answer and
    the item's ``subject``/``level``/``unique_id`` kept; ``unique_id`` is the prompt's id when present,
    so two runs pair their answers by item."""
    prompts = []
    for i, item in enumerate(items):
        text, messages = _templated(item, template)
        meta = {k: item.metadata[k] for k in META_KEYS if k in item.metadata}
        prompts.append(
            Prompt(
                id=str(meta.get("unique_id", i)),
                text=text,
                messages=messages,
                max_tokens=item.max_tokens,
                expected=item.expected,
                meta=meta,
            )
        )
    return prompts
