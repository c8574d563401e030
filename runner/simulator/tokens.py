"""Tokens as the simulator counts them: one whitespace-separated word = one token.

Input: the words of the prompt (for chat, every message's text joined). Output: words of a small
fixed English vocabulary, each with a leading space, drawn from a per-request seeded RNG.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

VOCAB: tuple[str, ...] = tuple(
    " " + word
    for word in [
        "the",
        "of",
        "and",
        "to",
        "in",
        "a",
        "is",
        "that",
        "for",
        "it",
        "as",
        "was",
        "with",
        "be",
        "by",
        "on",
        "not",
        "this",
        "are",
        "or",
        "from",
        "at",
        "which",
        "but",
        "have",
        "an",
        "they",
        "you",
        "were",
        "one",
        "all",
        "we",
        "their",
        "has",
        "been",
        "if",
        "more",
        "when",
        "will",
        "would",
        "who",
        "so",
        "no",
        "model",
        "token",
        "stream",
        "answer",
        "data",
        "time",
        "first",
        "can",
        "some",
        "what",
        "there",
        "about",
        "out",
        "up",
        "into",
        "than",
        "its",
        "only",
        "other",
    ]
)
PREFIX_BLOCK = 16


def content_text(content: Any) -> str:
    """Text of an OpenAI/Anthropic message ``content``: a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def messages_text(messages: Sequence[Any], system: Any = None) -> str:
    texts = [content_text(system)] if system else []
    texts += [content_text(m.get("content")) for m in messages if isinstance(m, dict)]
    return " ".join(texts)


def prompt_text(prompt: Any) -> str:
    """Completions ``prompt``: a string, a list of strings, or token ids (each id counts as a word)."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        return " ".join(str(p) for p in prompt)
    return ""


class WordSource:
    """Deterministic output words for one request: same seed and request number, same words."""

    __slots__ = ("_rng",)

    def __init__(self, seed: int, request_number: int) -> None:
        self._rng = random.Random(seed * 1_000_003 + request_number)

    def take(self, n: int) -> str:
        pick = self._rng.randrange
        size = len(VOCAB)
        return "".join([VOCAB[pick(size)] for _ in range(n)])


class PrefixCache:
    """Remembers prompts by chained hashes of 16-word blocks, like a paged KV cache (LRU-bounded)."""

    def __init__(self, capacity_blocks: int = 1_000_000) -> None:
        self._blocks: OrderedDict[int, None] = OrderedDict()
        self._capacity = capacity_blocks

    def lookup_and_insert(self, words: Sequence[str]) -> int:
        """Tokens of the longest block-aligned prefix seen before; then remembers all of ``words``."""
        chained, cached, hit = 0, 0, True
        for start in range(0, len(words) - PREFIX_BLOCK + 1, PREFIX_BLOCK):
            chained = hash((chained, tuple(words[start : start + PREFIX_BLOCK])))
            if hit and chained in self._blocks:
                cached += PREFIX_BLOCK
                self._blocks.move_to_end(chained)
            else:
                hit = False
                self._blocks[chained] = None
        while len(self._blocks) > self._capacity:
            self._blocks.popitem(last=False)
        return cached

    def clear(self) -> None:
        self._blocks.clear()
