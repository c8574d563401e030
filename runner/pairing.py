"""Request-by-request comparison of two measurements of the same traffic.

Mirror: production vs shadow. Replay: the replayed run vs the production timings a capture recorded.
Differences are ``other − base`` per pair (positive TTFT = the other side is slower); answer
similarity is ROUGE-L F1 over word tokens (Google's ``rouge-score``; no model involved).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any

from runner.summary import distribution

_WORD = re.compile(r"\w+", re.UNICODE)


class _Words:
    """rouge-score's own tokenizer drops every non-ASCII character; this keeps words in any script."""

    def tokenize(self, text: str) -> list[str]:
        return _WORD.findall(text.lower())


@functools.lru_cache(maxsize=1)
def _scorer() -> Any:
    from rouge_score import rouge_scorer  # imported on first use: it pulls in nltk

    return rouge_scorer.RougeScorer(["rougeL"], tokenizer=_Words())


def rouge_l(reference: str, candidate: str) -> float:
    """ROUGE-L F1 in [0, 1]; two empty answers are identical (1.0)."""
    if not reference.strip() and not candidate.strip():
        return 1.0
    return float(_scorer().score(reference, candidate)["rougeL"].fmeasure)


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
    scores = [rouge_l(str(a["answer_text"]), str(b["answer_text"])) for a, b in texts]
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
    }
