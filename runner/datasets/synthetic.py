"""Synthetic prompts whose length in a given tokenizer is exactly the target.

Text comes from the built-in natural-text corpus (``corpus.txt``: OASST1 messages, Apache-2.0; its
header records the provenance). For each prompt a window of corpus token ids is sliced to the
target, decoded, and re-counted: byte-level BPE does not round-trip exactly (tokens merge across the
cut, a cut can split a UTF-8 character), so the cut moves by the miss until the count is exact, and
in the rare case where no cut lands on it, short filler words close the last gap.

Prompts start at distinct corpus paragraphs (so no two prompts are identical until the corpus's
~1,700 paragraphs are used up; then starts shift a few tokens into the paragraph). With a shared
prefix, prompt ``i`` belongs to group ``i % prefix_groups`` and starts with that group's K-token
prefix; the prefix ends with a blank line, so its tokens are the same inside every prompt and a
server's prefix cache can reuse all K of them. Same arguments and seed → identical prompts.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from runner.datasets.buckets import parse_label
from runner.spec import Prompt
from runner.tokenizers import Tokenizer

__all__ = [
    "MAX_TOKENS",
    "SyntheticItem",
    "block_prompts",
    "corpus_paragraphs",
    "sample_lengths",
    "synthesize",
]

MAX_TOKENS = 262_144  # longest synthetic prompt or output length accepted
PREFIX_END = "\n\n"
_FILLERS = (" the", " and", " of", " a", ".", "\n", " it")
_MAX_STEPS = 12


@dataclass(slots=True)
class SyntheticItem:
    prompt: str
    input_tokens: int
    max_tokens: int | None = None
    prefix_group: int | None = None  # None without a shared prefix

    def to_prompt(self, id: str) -> Prompt:
        return Prompt(id=id, text=self.prompt, input_tokens=self.input_tokens, max_tokens=self.max_tokens)


@dataclass(slots=True, frozen=True)
class _Corpus:
    ids: list[int]  # every paragraph encoded on its own, concatenated; used as a ring
    starts: list[int]  # index in ids where each paragraph begins


def synthesize(
    tokenizer: Tokenizer,
    *,
    n: int,
    distribution: Mapping[str, Any],
    seed: int,
    shared_prefix_tokens: int = 0,
    prefix_groups: int = 1,
    output_tokens: Mapping[str, Any] | int | None = None,
) -> list[SyntheticItem]:
    """``n`` prompts with lengths drawn from ``distribution`` (see :func:`sample_lengths`), each
    exactly that many tokens in ``tokenizer`` including its group's ``shared_prefix_tokens``-token
    prefix. ``output_tokens`` sets ``max_tokens``: a fixed int, a distribution, or None."""
    targets = sample_lengths(distribution, n, random.Random(f"{seed}:lengths"))
    outputs = _outputs(output_tokens, n, random.Random(f"{seed}:output"))
    if prefix_groups < 1:
        raise ValueError(f"prefix_groups must be at least 1, got {prefix_groups}")
    if shared_prefix_tokens < 0:
        raise ValueError(f"shared_prefix_tokens must not be negative, got {shared_prefix_tokens}")
    if shared_prefix_tokens and targets and min(targets) <= shared_prefix_tokens:
        raise ValueError(
            f"every prompt must be longer than the {shared_prefix_tokens}-token shared prefix; "
            f"the shortest target is {min(targets)}"
        )
    corpus = _corpus_for(tokenizer)
    rng = random.Random(f"{seed}:text")
    starts = _start_positions(corpus, n + (prefix_groups if shared_prefix_tokens else 0), rng)
    prefixes = [
        _fit(
            tokenizer,
            "",
            _window(corpus, starts.pop(), _slack(shared_prefix_tokens)),
            shared_prefix_tokens,
            PREFIX_END,
        )
        for _ in range(prefix_groups if shared_prefix_tokens else 0)
    ]
    items = []
    for i, (target, out) in enumerate(zip(targets, outputs, strict=True)):
        group = i % prefix_groups if prefixes else None
        head = prefixes[group] if group is not None else ""
        ids = _window(corpus, starts[i], _slack(target))
        items.append(SyntheticItem(_fit(tokenizer, head, ids, target), target, out, group))
    return items


# --- lengths -------------------------------------------------------------------------------------


def sample_lengths(distribution: Mapping[str, Any], n: int, rng: random.Random) -> list[int]:
    """``n`` token counts from a distribution, each in ``[1, MAX_TOKENS]``:

    - ``{"kind": "fixed", "tokens": 512}``
    - ``{"kind": "uniform", "min": 100, "max": 2000}`` (inclusive)
    - ``{"kind": "normal", "mean": 1000, "std": 200, "min": 1, "max": 4096}``: a normal truncated to
      ``[min, max]`` by redrawing (``min`` defaults to 1, ``max`` to MAX_TOKENS), rounded
    - ``{"kind": "buckets", "counts": {"16k-32k": 10, "1024-4096": 5}}``: exactly that many per bucket
      (``lo`` inclusive, ``hi`` exclusive), uniform within it, in the order given; the counts must add
      up to ``n``.
    """
    if n < 0:
        raise ValueError(f"n must not be negative, got {n}")
    kind = distribution.get("kind")
    if kind == "fixed":
        return [_int(distribution, "tokens")] * n
    if kind == "uniform":
        lo, hi = _bounds(distribution, "min", "max", None, None)
        return [rng.randint(lo, hi) for _ in range(n)]
    if kind == "normal":
        return _normal(distribution, n, rng)
    if kind == "buckets":
        return _from_buckets(distribution.get("counts"), n, rng)
    raise ValueError(f"unknown distribution kind {kind!r}; use fixed, uniform, normal or buckets")


def _int(d: Mapping[str, Any], key: str, default: int | None = None, low: int = 1) -> int:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"distribution {d.get('kind')!r} needs an integer {key!r}, got {value!r}")
    if not low <= value <= MAX_TOKENS:
        raise ValueError(f"{key} must be between {low} and {MAX_TOKENS}, got {value}")
    return value


def _bounds(
    d: Mapping[str, Any], lo_key: str, hi_key: str, lo: int | None, hi: int | None
) -> tuple[int, int]:
    low, high = _int(d, lo_key, lo), _int(d, hi_key, hi)
    if low > high:
        raise ValueError(f"{lo_key} ({low}) must not exceed {hi_key} ({high})")
    return low, high


def _normal(d: Mapping[str, Any], n: int, rng: random.Random) -> list[int]:
    lo, hi = _bounds(d, "min", "max", 1, MAX_TOKENS)
    mean, std = _number(d, "mean", None), _number(d, "std", 0.0)
    if std < 0:
        raise ValueError(f"std must not be negative, got {std}")
    out = []
    for _ in range(n):
        draw = round(rng.gauss(mean, std))
        for _retry in range(100):
            if lo <= draw <= hi:
                break
            draw = round(rng.gauss(mean, std))
        out.append(min(max(draw, lo), hi))  # clamp only if a hundred redraws all missed
    return out


def _number(d: Mapping[str, Any], key: str, default: float | None) -> float:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"distribution {d.get('kind')!r} needs a number {key!r}, got {value!r}")
    return float(value)


def _from_buckets(counts: Any, n: int, rng: random.Random) -> list[int]:
    if not isinstance(counts, Mapping) or not counts:
        raise ValueError('distribution "buckets" needs "counts": {"1k-4k": 10, ...}')
    out: list[int] = []
    for label, count in counts.items():
        lo, hi = parse_label(str(label))
        if hi is None:
            raise ValueError(f"bucket {label!r} is open-ended; give an upper bound, e.g. '48k-64k'")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"the count for bucket {label!r} must be a whole number, got {count!r}")
        low, high = max(lo, 1), min(hi - 1, MAX_TOKENS)
        if low > high:
            raise ValueError(f"bucket {label!r} holds no length between 1 and {MAX_TOKENS}")
        out.extend(rng.randint(low, high) for _ in range(count))
    if len(out) != n:
        raise ValueError(f"bucket counts add up to {len(out)} but n is {n}")
    return out


def _outputs(spec: Mapping[str, Any] | int | None, n: int, rng: random.Random) -> list[int | None]:
    if spec is None:
        return [None] * n
    if isinstance(spec, int) and not isinstance(spec, bool):
        if not 1 <= spec <= MAX_TOKENS:
            raise ValueError(f"output_tokens must be between 1 and {MAX_TOKENS}, got {spec}")
        return [spec] * n
    if isinstance(spec, Mapping):
        return list(sample_lengths(spec, n, rng))
    raise ValueError(f"output_tokens must be an int, a distribution or None, got {spec!r}")


# --- text ----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def corpus_paragraphs() -> tuple[str, ...]:
    """The built-in corpus's paragraphs (its ``# `` header skipped)."""
    raw = resources.files("runner.datasets").joinpath("corpus.txt").read_text(encoding="utf-8")
    lines = raw.split("\n")
    while lines and lines[0].startswith("# "):
        lines.pop(0)
    paragraphs = (p.strip() for p in "\n".join(lines).split("\n\n"))
    return tuple(p for p in paragraphs if p)


# id(tokenizer) -> (tokenizer, its corpus); holding the tokenizer keeps its id from being reused.
_CORPORA: dict[int, tuple[Tokenizer, _Corpus]] = {}


def _corpus_for(tokenizer: Tokenizer) -> _Corpus:
    cached = _CORPORA.get(id(tokenizer))
    if cached is None:
        ids: list[int] = []
        starts: list[int] = []
        for paragraph in corpus_paragraphs():
            starts.append(len(ids))
            ids.extend(tokenizer.encode(paragraph + "\n\n"))
        starts = _distinct_starts(ids, starts)
        if len(_CORPORA) >= 8:
            _CORPORA.pop(next(iter(_CORPORA)))
        cached = _CORPORA[id(tokenizer)] = (tokenizer, _Corpus(ids, starts))
    return cached[1]


def _distinct_starts(ids: list[int], starts: list[int], key_len: int = 16) -> list[int]:
    """Paragraph starts whose first ``key_len`` ids differ: two windows never open the same way."""
    seen: set[tuple[int, ...]] = set()
    out = []
    for start in starts:
        key = tuple(ids[start : start + key_len])
        if key not in seen:
            seen.add(key)
            out.append(start)
    return out


def _start_positions(corpus: _Corpus, n: int, rng: random.Random) -> list[int]:
    """``n`` distinct window starts: shuffled paragraph starts, then the same shifted ``c`` tokens
    into the paragraph on the ``c``-th pass, so texts differ even when the corpus runs out."""
    out: list[int] = []
    shift = 0
    while len(out) < n:
        order = rng.sample(corpus.starts, len(corpus.starts))
        out.extend((s + shift) % len(corpus.ids) for s in order[: n - len(out)])
        shift += 1
    return out


def _slack(target: int) -> int:
    """Ids to cut from: the target plus room for cuts that come up short."""
    return target + target // 8 + 16


def _window(corpus: _Corpus, start: int, length: int) -> list[int]:
    out = corpus.ids[start : start + length]
    while len(out) < length:  # wrap around the ring
        out.extend(corpus.ids[: length - len(out)])
    return out


def _fit(tokenizer: Tokenizer, head: str, ids: Sequence[int], target: int, tail: str = "") -> str:
    """``head + body + tail`` counting exactly ``target`` tokens, ``body`` a decoded cut of ``ids``."""

    def body(k: int) -> str:
        text = tokenizer.decode(ids[:k]).lstrip().rstrip("\ufffd")  # no half characters
        return text.rstrip() if tail else text

    k = target - tokenizer.count(head + tail)
    tried: dict[int, tuple[int, str]] = {}
    for _ in range(_MAX_STEPS):
        k = min(max(k, 0), len(ids))
        if k in tried:
            break  # oscillating between two cuts that miss on either side
        text = body(k)
        count = tokenizer.count(head + text + tail)
        if count == target:
            return head + text + tail
        tried[k] = (count, text)
        k += target - count
    below = [(count, text) for count, text in tried.values() if count < target]
    if below:
        count, text = max(below, key=lambda ct: ct[0])
        filled = _fill(tokenizer, head, text, tail, count, target)
        if filled is not None:
            return filled
    raise RuntimeError(f"could not build a prompt of exactly {target} tokens with {tokenizer.name}")


def _fill(tokenizer: Tokenizer, head: str, text: str, tail: str, count: int, target: int) -> str | None:
    """Append filler words one token at a time; None if no filler adds exactly one."""
    while count < target:
        for filler in _FILLERS:
            grown = tokenizer.count(head + text + filler + tail)
            if grown == count + 1:
                text, count = text + filler, grown
                break
        else:
            return None
    return head + text + tail


# --- shared blocks (public traffic traces) -------------------------------------------------------


def block_prompts(
    tokenizer: Tokenizer, requests: Sequence[tuple[Sequence[int], int]], *, block_tokens: int, seed: int
) -> list[str]:
    """One prompt per ``(block ids, target tokens)``, as traces describe requests (Mooncake's and
    Bailian's ``hash_ids``): every id stands for one ``block_tokens``-token text, so prompts naming the
    same leading ids share that text as their prefix, and a prefix cache hits where the trace says.
    Each prompt is exactly its target long; the tail after the shared blocks is its own."""
    if block_tokens < 1:
        raise ValueError(f"block_tokens must be at least 1, got {block_tokens}")
    corpus = _corpus_for(tokenizer)
    blocks: dict[int, str] = {}

    def block(block_id: int) -> str:
        if block_id not in blocks:
            rng = random.Random(f"{seed}:block:{block_id}")
            blocks[block_id] = _fit_somewhere(tokenizer, corpus, rng, "", block_tokens, PREFIX_END)
        return blocks[block_id]

    out = []
    for i, (ids, target) in enumerate(requests):
        if not 1 <= target <= MAX_TOKENS:
            raise ValueError(f"request {i}: a prompt must be 1..{MAX_TOKENS} tokens, got {target}")
        k = min(len(ids), (target - 1) // block_tokens)  # whole blocks that leave room for a tail
        head = "".join(block(b) for b in ids[:k])
        while k and tokenizer.count(head) >= target:  # a merge across a block edge cost a token
            k -= 1
            head = "".join(block(b) for b in ids[:k])
        out.append(_fit_somewhere(tokenizer, corpus, random.Random(f"{seed}:tail:{i}"), head, target, ""))
    return out


def _fit_somewhere(
    tokenizer: Tokenizer, corpus: _Corpus, rng: random.Random, head: str, target: int, tail: str
) -> str:
    """``_fit`` from a random corpus position, moving on when a short target misses from there."""
    rest = target - tokenizer.count(head)
    for attempt in range(16):
        window = _window(corpus, rng.choice(corpus.starts), _slack(rest))
        try:
            return _fit(tokenizer, head, window, target, tail)
        except RuntimeError:
            if attempt == 15:
                raise
    raise AssertionError("unreachable")
