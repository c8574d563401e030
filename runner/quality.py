"""Quality monitors: what was wrong with an answer, whatever its latency. Pure functions.

Four things go wrong with reasoning models under load or against a budget, each counted per run,
per input bucket and per variant in the summary (:func:`quality_block`):

- ``empty_answer``: the model stopped by itself with no answer text (outcome ``empty_answer``, or
  thinking then a ``stop`` with no answer), or with an answer of only whitespace.
- ``truncated_thinking``: max_tokens spent inside the thinking, so no answer (outcome
  ``truncated_thinking`` with a length finish reason).
- ``cut_by_length``: an answer that max_tokens cut off (finish reason ``length``).
- ``reasoning_leak``: reasoning in the answer channel: think tags (``<think>``…), or an answer that
  opens the way reasoning traces do ("Okay, so I need to…", "Hmm, let me…", "The user asks…").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from runner.analysis import LENGTH_REASONS
from runner.records import Outcome, RequestRecord

__all__ = ["MONITORS", "flags", "quality_block", "reasoning_leak"]

MONITORS = ("empty_answer", "truncated_thinking", "cut_by_length", "reasoning_leak")
_TAGS = re.compile(
    r"</?(?:think|thinking|thought|reasoning|reflection)>|<\|(?:begin|end)_of_thought\|>", re.IGNORECASE
)
_PREAMBLE = re.compile(
    r"^\W*(?:(?:okay|ok|alright|wait)\b[,.!]?\s+(?:so\b|let me\b|let's (?:see|think|figure|break)\b"
    r"|the user\b|i need to\b|first,? i\b)"
    r"|hmm+\b|let me (?:think|figure|work|try|see)\b|the user (?:is asking|asks|wants|wrote|says)\b"
    r"|i need to (?:figure|find|solve|work)\b)",
    re.IGNORECASE,
)


def reasoning_leak(answer_text: str) -> bool:
    """Reasoning in the answer: think tags anywhere, or a reasoning trace's opening words."""
    return bool(_TAGS.search(answer_text) or _PREAMBLE.match(answer_text.lstrip()))


def flags(rec: RequestRecord) -> dict[str, bool]:
    """Each monitor's verdict on one record (a cancelled one has none set)."""
    ok = rec.ok or rec.outcome == Outcome.LENGTH_STOPPED.value
    has_answer = bool(rec.answer_text.strip()) if rec.answer_text else rec.answer_chars > 0
    no_answer = rec.outcome == Outcome.TRUNCATED_THINKING.value
    cut = rec.finish_reason in LENGTH_REASONS
    return {
        "empty_answer": rec.outcome == Outcome.EMPTY_ANSWER.value
        or (no_answer and not cut)
        or (ok and not has_answer),
        "truncated_thinking": no_answer and cut,
        "cut_by_length": ok and has_answer and rec.length_stopped,
        "reasoning_leak": ok and reasoning_leak(rec.answer_text),
    }


def _rates(recs: list[RequestRecord]) -> dict[str, Any]:
    counts = dict.fromkeys(MONITORS, 0)
    for r in recs:
        for name, hit in flags(r).items():
            counts[name] += hit
    n = len(recs)
    return {"requests": n, **{k: {"count": c, "rate": c / n if n else None} for k, c in counts.items()}}


def quality_block(
    records: Iterable[RequestRecord],
    *,
    buckets: Mapping[str, list[RequestRecord]] | None = None,
) -> dict[str, Any]:
    """Counts and rates of every monitor over the measured (not cancelled) requests, per input bucket
    (``buckets``: label → its records) and per A/B variant when there is more than one."""
    recs = [r for r in records if r.outcome != Outcome.CANCELLED.value]
    block = _rates(recs)
    block["by_bucket"] = {
        label: _rates([r for r in inside if r.outcome != Outcome.CANCELLED.value])
        for label, inside in (buckets or {}).items()
    }
    variants = sorted({r.variant for r in recs})
    if len(variants) > 1:
        block["by_variant"] = {str(v): _rates([r for r in recs if r.variant == v]) for v in variants}
    return block
