"""The simulator answering from a key: it finds the question in the prompt and boxes the reference.

A key is ``builtin:math500`` or a dataset file with a question (``problem``/``prompt``) and an
answer (``answer``/``expected``) per row, plus an id (``unique_id``/``id``, else the row number).
The question is recognised inside a templated prompt by its text (whitespace-insensitive; the
longest question contained wins). Exactly ``round(wrong_rate * N)`` of the N items are answered
wrongly: those with the lowest SHA-256 of ``"{seed}:{id}"``, so the same items in every process.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from runner.simulator.tokens import WordSource, token_pieces

if TYPE_CHECKING:
    from runner.tokenizers import Tokenizer

__all__ = ["EFFORT", "AnswerKey", "KeyItem", "ScriptedWords", "leak_words", "reply_words", "thinking_words"]

# Thinking demand per OpenAI reasoning_effort, as a factor of the configured thinking_tokens.
EFFORT = {"minimal": 0.25, "low": 0.5, "medium": 1.0, "high": 2.0}
THINKING_PREAMBLE = "Okay, let me work through this problem step by step."
LEAK_PREAMBLE = "Okay, so I need to work out the answer first."
_INTEGER = re.compile(r"^-?\d+$")


@dataclass(frozen=True, slots=True)
class KeyItem:
    id: str
    question: str  # whitespace-normalised
    answer: str  # what the simulator boxes: the reference, or a wrong value for a wrong item
    wrong: bool


def _norm(text: str) -> str:
    return " ".join(text.split())


def wrong_answer(reference: str) -> str:
    """A value never equal to ``reference``: an integer plus one, else 0 (or 1 where 0 is right)."""
    if _INTEGER.match(reference.strip()):
        return str(int(reference) + 1)
    return "1" if reference.strip() in ("0", "0.0") else "0"


def _wrong_ids(ids: list[str], rate: float, seed: int) -> set[str]:
    def rank(item_id: str) -> str:
        return hashlib.sha256(f"{seed}:{item_id}".encode()).hexdigest()

    return set(sorted(ids, key=rank)[: round(rate * len(ids))])


class AnswerKey:
    def __init__(self, items: list[KeyItem]) -> None:
        self.items = items
        self._exact = {item.question: item for item in items}
        # longest first: a question that contains another is tried before it
        self._by_length = sorted(items, key=lambda i: len(i.question), reverse=True)
        self._found: dict[str, KeyItem | None] = {}

    @classmethod
    def load(cls, ref: str, *, wrong_rate: float = 0.0, seed: int = 0) -> AnswerKey:
        from runner.datasets.parse import parse_dataset
        from runner.datasets.shipped import builtin_path, is_builtin

        path = builtin_path(ref) if is_builtin(ref) else Path(ref)
        result = parse_dataset(path.read_bytes(), filename=path.name)
        if not result.ok:
            raise ValueError(f"answer key {ref}: line {result.errors[0].line}: {result.errors[0].reason}")
        rows = [
            (str(it.metadata.get("unique_id", it.metadata.get("id", i))), it.prompt or "", it.expected)
            for i, it in enumerate(result.items)
        ]
        if any(expected is None for _, _, expected in rows):
            raise ValueError(f"answer key {ref}: every row needs an answer (answer or expected)")
        wrong = _wrong_ids([r[0] for r in rows], wrong_rate, seed)
        return cls(
            [
                KeyItem(i, _norm(q), wrong_answer(str(a)) if i in wrong else str(a), i in wrong)
                for i, q, a in rows
            ]
        )

    def find(self, prompt_text: str) -> KeyItem | None:
        """The key item whose question is in ``prompt_text``, or None."""
        text = _norm(prompt_text)
        if text in self._found:
            return self._found[text]
        found = self._exact.get(text) or next((i for i in self._by_length if i.question in text), None)
        if len(self._found) < 100_000:
            self._found[text] = found
        return found


def thinking_words(tok: Tokenizer | None = None) -> list[str]:
    return token_pieces(tok, THINKING_PREAMBLE)


def reply_words(item: KeyItem, tok: Tokenizer | None = None) -> list[str]:
    return token_pieces(tok, f"The final answer is $\\boxed{{{item.answer}}}$.")


def leak_words(tok: Tokenizer | None = None) -> list[str]:
    return token_pieces(tok, LEAK_PREAMBLE)


class ScriptedWords:
    """Output words in stream order: ``thinking`` tokens (the preamble, then filler), then the
    scripted answer, then filler. Same interface as :class:`WordSource`, which supplies the filler."""

    __slots__ = ("_filler", "_queue")

    def __init__(self, filler: WordSource, thinking: int, preamble: list[str], answer: list[str]) -> None:
        self._filler = filler
        head = preamble[:thinking]
        fill = filler.take(thinking - len(head)).split(" ")[1:]  # " the of" -> ["the", "of"]
        self._queue = [*head, *(" " + w for w in fill), *answer]
        self._queue.reverse()

    def take(self, n: int) -> str:
        out = [self._queue.pop() for _ in range(min(n, len(self._queue)))]
        return "".join(out) + self._filler.take(n - len(out))
