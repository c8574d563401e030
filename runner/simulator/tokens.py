"""Tokens as the simulator counts them: one whitespace-separated word = one token, or, with
``--tokenizer``, the tokens of a real tokenizer.

Input: the words of the prompt (for chat, every message's text joined); with a tokenizer, the
prompt's count in it (chat messages through its chat template, as a chat server counts them).
Output: words of a small fixed English vocabulary, each with a leading space, drawn from a
per-request seeded RNG — every one of them a single token in Qwen3's vocabulary too; scripted text
(reasoning preambles, boxed answers) is cut into the tokenizer's own pieces, one piece per token,
so the reported usage equals the count a client makes of the streamed text with that tokenizer.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runner.simulator.plan import Ask
    from runner.tokenizers import Tokenizer

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


def load_sim_tokenizer(ref: str) -> Tokenizer | None:
    """The configured tokenizer, or None (one word per token). Raises ``ValueError`` if it cannot load."""
    if not ref:
        return None
    from runner.tokenizers import TokenizerError, load_tokenizer

    try:
        tok = load_tokenizer(ref)
    except TokenizerError as exc:
        raise ValueError(f"tokenizer {ref}: {exc}") from None
    bad = [w for w in VOCAB if tok.count(w) != 1]
    if bad:  # filler words must stay one token each, or usage and the client's count part ways
        raise ValueError(f"tokenizer {ref} splits the simulator's filler words {bad[:5]} into several tokens")
    return tok


def count_prompt(tok: Tokenizer, ask: Ask) -> int:
    """The prompt's input tokens as a server with ``tok`` reports them."""
    if ask.messages:
        return int(tok.count_messages(ask.messages))
    return int(tok.count(ask.text))


def token_pieces(tok: Tokenizer | None, text: str) -> list[str]:
    """``text`` as one string per token: its words (each with a leading space) without a tokenizer,
    else the tokenizer's pieces of ``" " + text``. A character that spans several byte-level tokens
    goes out whole with its first token and empty strings for the rest, so the pieces join to
    ``text`` and their number is its count."""
    if tok is None:
        return [" " + word for word in text.split()]
    pieces: list[str] = []
    pending: list[int] = []
    for token_id in tok.encode(" " + text):
        pending.append(token_id)
        piece = tok.decode(pending)
        if "\ufffd" not in piece:
            pieces += [piece, *[""] * (len(pending) - 1)]
            pending = []
    if pending:
        pieces += [tok.decode(pending), *[""] * (len(pending) - 1)]
    return pieces


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
