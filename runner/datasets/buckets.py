"""Input-length buckets: labels, histograms and choosing which prompts a run sends.

Edges are ascending token counts; bucket ``i`` holds ``edges[i] <= tokens < edges[i + 1]`` and the
last bucket is open-ended. Labels print a multiple of 1024 as ``Nk`` and any other number in full,
joined by an en dash: ``0–1k``, ``1k–4k``, ``16k–32k``, ``1500–4k``, and ``48k+`` for the last.
:func:`parse_label` reads them back, also with a hyphen and in plain numbers (``1024-4096``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Any, Literal, Protocol, TypeVar

__all__ = [
    "DEFAULT_EDGES",
    "Order",
    "bucket_index",
    "bucket_label",
    "bucket_labels",
    "histogram",
    "parse_label",
    "select",
]

DEFAULT_EDGES: list[int] = [0, 1024, 4096, 16384, 32768, 49152]
Order = Literal["sequential", "shuffled", "weighted"]
_LABEL = re.compile(r"^\s*(\d+k?)\s*(?:[-–]\s*(\d+k?)|(\+))\s*$", re.IGNORECASE)


class HasInputTokens(Protocol):
    @property
    def input_tokens(self) -> int: ...


T = TypeVar("T", bound=HasInputTokens)


def _check(edges: Sequence[int]) -> None:
    if not edges or any(b <= a for a, b in pairwise(edges)):
        raise ValueError(f"bucket edges must be a non-empty ascending list, got {list(edges)}")


def _fmt(tokens: int) -> str:
    return f"{tokens // 1024}k" if tokens and tokens % 1024 == 0 else str(tokens)


def bucket_index(tokens: int, edges: Sequence[int] = DEFAULT_EDGES) -> int:
    """The bucket holding ``tokens``; a count at an edge belongs to the bucket the edge opens."""
    _check(edges)
    if tokens < edges[0]:
        raise ValueError(f"{tokens} tokens is below the first bucket edge {edges[0]}")
    return next(i for i in range(len(edges) - 1, -1, -1) if tokens >= edges[i])


def bucket_labels(edges: Sequence[int] = DEFAULT_EDGES) -> list[str]:
    _check(edges)
    inner = [f"{_fmt(lo)}–{_fmt(hi)}" for lo, hi in pairwise(edges)]
    return [*inner, f"{_fmt(edges[-1])}+"]


def bucket_label(tokens: int, edges: Sequence[int] = DEFAULT_EDGES) -> str:
    return bucket_labels(edges)[bucket_index(tokens, edges)]


def parse_label(label: str) -> tuple[int, int | None]:
    """``(lo, hi)`` of a label, ``hi`` exclusive and None when open-ended; ValueError if unreadable."""
    match = _LABEL.match(label)
    if not match:
        raise ValueError(f"bad bucket {label!r}: write it like '1k–4k', '1024-4096' or '48k+'")
    lo = _tokens(match.group(1))
    hi = None if match.group(3) else _tokens(match.group(2))
    if hi is not None and hi <= lo:
        raise ValueError(f"bad bucket {label!r}: the upper bound must exceed the lower")
    return lo, hi


def _tokens(text: str) -> int:
    return int(text[:-1]) * 1024 if text.lower().endswith("k") else int(text)


def histogram(counts: Iterable[int], edges: Sequence[int] = DEFAULT_EDGES) -> list[dict[str, Any]]:
    """Every bucket in order as ``{label, lo, hi, count}`` (``hi`` None for the last), empty ones too."""
    labels = bucket_labels(edges)
    tally = [0] * len(labels)
    for tokens in counts:
        tally[bucket_index(tokens, edges)] += 1
    his: list[int | None] = [*edges[1:], None]
    return [
        {"label": label, "lo": lo, "hi": hi, "count": n}
        for label, lo, hi, n in zip(labels, edges, his, tally, strict=True)
    ]


def select(
    prompts: Sequence[T],
    buckets: Sequence[str] | None = None,
    order: Order = "sequential",
    weights: Mapping[str, float] | None = None,
    seed: int = 0,
    *,
    edges: Sequence[int] = DEFAULT_EDGES,
    n: int | None = None,
) -> list[T]:
    """The prompts a run sends, in order: only those whose ``input_tokens`` fall in ``buckets``
    (labels; None = every bucket of ``edges``).

    - ``sequential``: in their given order; ``shuffled``: a seeded shuffle of the same prompts.
    - ``weighted``: each position draws a bucket with probability proportional to ``weights[label]``
      (equal when None; buckets without prompts or weight are skipped), then the next prompt of that
      bucket, cycling through each bucket's prompts in a seeded order. ``n`` positions, by default
      as many as there are chosen prompts.
    """
    ranges = _ranges(buckets, edges)
    groups: dict[str, list[T]] = {label: [] for label in ranges}
    chosen: list[T] = []
    for prompt in prompts:
        label = next((lb for lb, r in ranges.items() if _within(prompt.input_tokens, r)), None)
        if label is not None:
            groups[label].append(prompt)
            chosen.append(prompt)
    rng = random.Random(seed)
    if order == "sequential":
        return chosen[:n] if n is not None else chosen
    if order == "shuffled":
        rng.shuffle(chosen)
        return chosen[:n] if n is not None else chosen
    if order == "weighted":
        return _weighted(groups, weights, rng, len(chosen) if n is None else n)
    raise ValueError(f"unknown order {order!r}; use sequential, shuffled or weighted")


def _ranges(buckets: Sequence[str] | None, edges: Sequence[int]) -> dict[str, tuple[int, int | None]]:
    labels = bucket_labels(edges) if buckets is None else list(buckets)
    return {label: parse_label(label) for label in labels}


def _within(tokens: int, bounds: tuple[int, int | None]) -> bool:
    lo, hi = bounds
    return tokens >= lo and (hi is None or tokens < hi)


def _weighted(
    groups: Mapping[str, list[T]], weights: Mapping[str, float] | None, rng: random.Random, n: int
) -> list[T]:
    weight = _weights_by_label(groups, weights)
    live = [(members, weight[label]) for label, members in groups.items() if members and weight[label] > 0]
    if not live or n <= 0:
        return []
    pools = [rng.sample(members, len(members)) for members, _ in live]
    cursors = [0] * len(live)
    out: list[T] = []
    for k in rng.choices(range(len(live)), weights=[w for _, w in live], k=n):
        out.append(pools[k][cursors[k] % len(pools[k])])
        cursors[k] += 1
    return out


def _weights_by_label(labels: Iterable[str], weights: Mapping[str, float] | None) -> dict[str, float]:
    """Weights keyed by the chosen labels; ``weights`` may spell labels differently (1024-4096)."""
    if weights is None:
        return {label: 1.0 for label in labels}
    by_range = {parse_label(k): float(w) for k, w in weights.items()}
    if any(w < 0 for w in by_range.values()):
        raise ValueError("bucket weights must not be negative")
    result = {label: by_range.pop(parse_label(label), 0.0) for label in labels}
    if by_range:
        raise ValueError(f"weights name buckets that are not chosen: {sorted(by_range)}")
    return result
