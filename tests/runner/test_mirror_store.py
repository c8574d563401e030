"""What a mirror keeps per request over a long session: pair rows and counts, not records."""

from __future__ import annotations

import gc
import random
import tracemalloc
from typing import Any

import pytest

from runner import pairing
from runner.mirror.store import Pairing, RecordStore
from runner.pairing import compare_pairs, compare_rows, pair_row
from runner.records import RequestRecord


def _rows(rng: random.Random, n: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    def side() -> dict[str, Any]:
        ok = rng.random() < 0.8
        return {
            "outcome": "success" if ok else rng.choice(["http_error", "timeout"]),
            "ttft_ms": rng.uniform(10, 200) if ok or rng.random() < 0.5 else None,
            "e2e_ms": rng.uniform(200, 900),
            "tokens_per_s": rng.choice([rng.uniform(10, 90), None]),
            "answer_text": rng.choice(["the cat sat", "the cat sat down", "a dog", "", "Ünïcode wörds"]),
        }

    return [(side(), side()) for _ in range(n)]


@pytest.mark.parametrize("max_scored", [pairing.MAX_SCORED, 7])
def test_pair_rows_compare_as_the_pairs_do(monkeypatch: pytest.MonkeyPatch, max_scored: int) -> None:
    """Past MAX_SCORED both score the same seeded sample of positions."""
    monkeypatch.setattr(pairing, "MAX_SCORED", max_scored)
    pairs = _rows(random.Random(5), 60)
    expected = compare_pairs(pairs)
    assert expected["success"]["neither"] and expected["answers_scored"] == min(
        max_scored, expected["success"]["both"]
    )
    assert compare_rows([pair_row(a, b) for a, b in pairs]) == expected


def _record(rid: str, words: int, ok: bool = True) -> RequestRecord:
    """A finished record whose size grows with its answer: gaps, packet rows and text."""
    return RequestRecord(
        request_id=rid,
        prompt_id=rid,
        outcome="success" if ok else "http_error",
        ttft_ms=25.0,
        e2e_ms=25.0 + 2.0 * words,
        tokens_per_s=500.0,
        output_tokens=words,
        content_chunks=words,
        itl_ms=[2.0] * (words - 1),
        packets=[("answer", 25.0 + 2.0 * i, 1, 5, "word ") for i in range(words)],
        answer_text="word " * words,
        answer_chars=5 * words,
    )


def test_pairing_keeps_a_half_pair_only_while_its_other_side_may_come() -> None:
    p = Pairing()
    p.add(0, "unsampled", _record("unsampled", 5))  # no copy was queued: nothing kept
    p.expect("a")
    p.add(0, "a", _record("a", 5))  # production first
    p.add(1, "b", _record("b", 5))  # the shadow first
    assert p.waiting == 2 and len(p.pairs()) == 0
    p.add(1, "a", _record("a", 5))
    p.add(0, "b", _record("b", 5, ok=False))
    assert p.waiting == 0
    assert [(r[0], r[1]) for r in p.pairs()] == [(False, True), (True, True)]  # the shadow's order: b, a


def _retained_per_request(words: int, n: int = 300) -> float:
    """Bytes still allocated per request after ``n`` requests went through both sides."""
    gc.collect()
    tracemalloc.start()
    try:
        pairs = Pairing()
        prod, shadow = RecordStore(0, pairs), RecordStore(1, pairs)
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            rid = f"m{i}"
            pairs.expect(rid)
            prod.add(rid, _record(rid, words))
            shadow.add(rid, _record(rid, words))
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(pairs.pairs()) == n and pairs.waiting == 0 and prod.count == shadow.count == n
    prod.close()
    shadow.close()
    return (after - before) / n


def test_what_a_request_leaves_behind_is_small_and_does_not_grow_with_its_answer() -> None:
    short, long = _retained_per_request(40), _retained_per_request(400)
    assert short < 512, f"{short:.0f} bytes kept per request"
    assert long < 1.25 * short, f"{short:.0f} -> {long:.0f} bytes per request with 10x longer answers"
