"""Request-by-request comparison of two measurements of the same traffic.

Mirror: production vs shadow. Replay: the replayed run vs the production timings a capture recorded.
Differences are ``other − base`` per pair (positive TTFT = the other side is slower). Answer
similarity is ROUGE-L F1 over lower-cased word tokens: the longest common subsequence from
``rapidfuzz`` (C++, a few hundred times faster than ``rouge-score``'s pure-Python table, which the
tests use as the reference it must equal); no model involved. Past ``MAX_SCORED`` pairs a seeded
uniform sample is scored, so a mirror stopped after days still writes its summary in seconds.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from rapidfuzz.distance import LCSseq

from runner.summary import distribution

MAX_SCORED = 20_000
_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-cased word tokens in any script (rouge-score's default tokenizer drops non-ASCII)."""
    return _WORD.findall(text.lower())


def rouge_l(reference: str, candidate: str) -> float:
    """ROUGE-L F1 in [0, 1]; two answers without a word are identical (1.0)."""
    ref, cand = words(reference), words(candidate)
    if not ref and not cand:
        return 1.0
    lcs = LCSseq.similarity(ref, cand)
    if not lcs:
        return 0.0
    precision, recall = lcs / len(cand), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def _num(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _diff(base: Mapping[str, Any], other: Mapping[str, Any], key: str) -> float | None:
    a, b = _num(base, key), _num(other, key)
    return None if a is None or b is None else b - a


def _ok(row: Mapping[str, Any]) -> bool:
    return row.get("outcome") == "success"


def compare_pairs(pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> dict[str, Any]:
    """``pairs`` of (base, other) rows with ``outcome``, ``ttft_ms``, ``tokens_per_s``, ``e2e_ms`` and
    ``answer_text`` (records as dicts, or a capture's production block)."""
    both = [(a, b) for a, b in pairs if _ok(a) and _ok(b)]
    texts = [(a, b) for a, b in both if isinstance(a.get("answer_text"), str)]
    scored = texts if len(texts) <= MAX_SCORED else random.Random(0).sample(texts, MAX_SCORED)
    scores = [rouge_l(str(a["answer_text"]), str(b["answer_text"])) for a, b in scored]
    return {
        "pairs": len(pairs),
        "success": {
            "both": len(both),
            "base_only": sum(1 for a, b in pairs if _ok(a) and not _ok(b)),
            "other_only": sum(1 for a, b in pairs if _ok(b) and not _ok(a)),
            "neither": sum(1 for a, b in pairs if not _ok(a) and not _ok(b)),
            "agreement": sum(1 for a, b in pairs if _ok(a) == _ok(b)) / len(pairs) if pairs else None,
        },
        "ttft_ms_diff": distribution(_diff(a, b, "ttft_ms") for a, b in both),
        "e2e_ms_diff": distribution(_diff(a, b, "e2e_ms") for a, b in both),
        "tokens_per_s_diff": distribution(_diff(a, b, "tokens_per_s") for a, b in both),
        "answer_rouge_l": distribution(scores),
        "answers_identical": sum(1 for a, b in texts if a["answer_text"] == b["answer_text"]),
        "answers_scored": len(scored),
    }
