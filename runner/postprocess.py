"""What happens to a request after it ended, away from the measuring path: client-side token
counts, grading against an expected answer, and the billing check.

The engine hands finished requests over in batches; with a real tokenizer the batch is counted in a
worker thread (Hugging Face tokenizers encode in batches with the GIL released), with the
character estimate it is counted inline because a thread hop would cost more than the count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from runner.metrics import estimate_tokens, fill_tokens
from runner.protocols.base import prompt_text
from runner.records import RequestRecord
from runner.spec import Prompt


@dataclass(slots=True)
class Finished:
    """A request the engine finished measuring, waiting for its counts."""

    rec: RequestRecord
    prompt: Prompt
    thinking_text: str
    end_ns: int


class PostProcessor:
    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._input_counts: dict[str, int] = {}

    @property
    def needs_thread(self) -> bool:
        return self.tokenizer is not None

    def count(self, batch: list[Finished]) -> list[str]:
        """Fills token counts (and grades) in place; returns one error text per record that failed,
        and the record is kept all the same."""
        tok = self.tokenizer
        count: Callable[[str], int] = tok.count if tok is not None else estimate_tokens
        errors: list[str] = []
        for d in batch:
            try:
                self._count_one(count, d)
            except Exception as exc:  # a tokenizer or grader failure loses no record
                errors.append(f"counting tokens for {d.rec.request_id} failed: {exc!r}")
        return errors

    def _count_one(self, count: Callable[[str], int], d: Finished) -> None:
        rec, prompt = d.rec, d.prompt
        if prompt.input_tokens:
            client_in: int | None = prompt.input_tokens
        else:
            if prompt.id not in self._input_counts:
                self._input_counts[prompt.id] = count_prompt(self.tokenizer, prompt)
            client_in = self._input_counts[prompt.id]
        thinking = count(d.thinking_text) if d.thinking_text else 0
        answer = count(rec.answer_text) if rec.answer_text else 0
        fill_tokens(
            rec,
            client_input=client_in,
            client_output=thinking + answer,
            client_thinking=thinking or None,
            estimated=self.tokenizer is None,
        )
        if prompt.expected is not None:
            rec.correct = rec.ok and grade(rec.answer_text, prompt.expected)


def mismatch_pct(records: Iterable[RequestRecord]) -> float | None:
    """Server usage vs client count over records that have both (the billing check, live)."""
    usage = client = 0
    for r in records:
        if r.usage_output_tokens is not None and r.client_output_tokens:
            usage += r.usage_output_tokens
            client += r.client_output_tokens
    return (usage - client) * 100.0 / client if client else None


def grade(answer: str, expected: str) -> bool:
    from runner.accuracy import grade as grade_answer

    return bool(grade_answer(answer, expected))


def load_tokenizer(ref: str) -> Any:
    if not ref or ref == "estimate":
        return None
    from runner.tokenizers import load_tokenizer as load

    return load(ref)


def count_prompt(tok: Any, prompt: Prompt) -> int:
    if tok is None:
        return estimate_tokens(prompt_text(prompt))
    if prompt.messages:
        return int(tok.count_messages(prompt.messages))
    return int(tok.count(prompt.text))
