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


# A pair reduced to what :func:`compare_pairs` reads of it, once: (base ok, other ok, ttft diff,
# e2e diff, tokens/s diff, ROUGE-L or None when not scored, answers identical). Tuples of numbers
# hold no answer text and give the garbage collector nothing to trace.
PairRow = tuple[bool, bool, float | None, float | None, float | None, float | None, bool]


def pair_row(base: Mapping[str, Any], other: Mapping[str, Any]) -> PairRow:
    """One pair of rows (as :func:`compare_pairs` takes them) reduced to a :data:`PairRow`; the answers
    are scored here, so neither text needs keeping afterwards."""
    ok_a, ok_b = _ok(base), _ok(other)
    both = ok_a and ok_b
    text_a, text_b = base.get("answer_text"), other.get("answer_text")
    scored = both and isinstance(text_a, str)
    return (
        ok_a,
        ok_b,
        _diff(base, other, "ttft_ms") if both else None,
        _diff(base, other, "e2e_ms") if both else None,
        _diff(base, other, "tokens_per_s") if both else None,
        rouge_l(str(text_a), str(text_b)) if scored else None,
        scored and text_a == text_b,
    )


def compare_rows(rows: Sequence[PairRow]) -> dict[str, Any]:
    """:func:`compare_pairs` of pairs already reduced by :func:`pair_row`: the same numbers (past
    ``MAX_SCORED`` the same seeded sample of positions among the scored pairs)."""
    both = [r for r in rows if r[0] and r[1]]
    texts = [r for r in both if r[5] is not None]
    scored = texts if len(texts) <= MAX_SCORED else random.Random(0).sample(texts, MAX_SCORED)
    n = len(rows)
    return {
        "pairs": n,
        "success": {
            "both": len(both),
            "base_only": sum(1 for r in rows if r[0] and not r[1]),
            "other_only": sum(1 for r in rows if r[1] and not r[0]),
            "neither": sum(1 for r in rows if not r[0] and not r[1]),
            "agreement": sum(1 for r in rows if r[0] == r[1]) / n if n else None,
        },
        "ttft_ms_diff": distribution(r[2] for r in both),
        "e2e_ms_diff": distribution(r[3] for r in both),
        "tokens_per_s_diff": distribution(r[4] for r in both),
        "answer_rouge_l": distribution(r[5] for r in scored),
        "answers_identical": sum(1 for r in texts if r[6]),
        "answers_scored": len(scored),
    }
