"""Request-by-request comparison and ROUGE-L answer similarity."""

from __future__ import annotations

import pytest

from runner.pairing import compare_pairs, rouge_l


def test_rouge_l_is_one_for_the_same_answer_and_lower_as_it_drifts() -> None:
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == 1.0
    assert rouge_l("the cat sat on the mat", "the cat is on the mat") == pytest.approx(5 / 6)
    assert rouge_l("alpha beta", "gamma delta") == 0.0
    assert rouge_l("", "") == 1.0


def test_rouge_l_equals_the_rouge_score_reference() -> None:
    import random

    from rouge_score import rouge_scorer

    class Words:
        def tokenize(self, text: str) -> list[str]:
            from runner.pairing import words

            return words(text)

    reference = rouge_scorer.RougeScorer(["rougeL"], tokenizer=Words())
    vocab = "the of and a to in is you that it he was for on are as with his they".split()
    rng = random.Random(1)
    for n in (1, 5, 40, 300):
        for _ in range(10):
            a = " ".join(rng.choice(vocab) for _ in range(n))
            b = " ".join(rng.choice(vocab) for _ in range(rng.randint(1, n)))
            assert rouge_l(a, b) == pytest.approx(reference.score(a, b)["rougeL"].fmeasure, abs=1e-12)


def test_rouge_l_counts_words_in_any_script() -> None:
    assert rouge_l("Grüße aus Köln", "Grüße aus Köln") == 1.0
    assert rouge_l("Grüße aus Köln", "Grüße aus Bonn") == pytest.approx(2 / 3)


def _row(
    outcome: str = "success", ttft: float | None = 100.0, tps: float | None = 50.0, text: str = "a b c"
) -> dict:  # type: ignore[type-arg]
    return {"outcome": outcome, "ttft_ms": ttft, "e2e_ms": 500.0, "tokens_per_s": tps, "answer_text": text}


def test_differences_are_other_minus_base_over_pairs_that_both_succeeded() -> None:
    pairs = [
        (_row(ttft=100), _row(ttft=150, tps=40)),
        (_row(ttft=200), _row(ttft=260, tps=45, text="a b d")),
        (_row(), _row(outcome="http_error", ttft=None, tps=None, text="")),
        (_row(outcome="timeout"), _row(outcome="timeout")),
    ]
    out = compare_pairs(pairs)
    assert out["pairs"] == 4
    assert out["success"] == {"both": 2, "base_only": 1, "other_only": 0, "neither": 1, "agreement": 0.75}
    assert out["ttft_ms_diff"]["count"] == 2 and out["ttft_ms_diff"]["p50"] == pytest.approx(55.0)
    assert out["tokens_per_s_diff"]["max"] == pytest.approx(-5.0)
    assert out["answers_identical"] == 1 and out["answer_rouge_l"]["min"] == pytest.approx(2 / 3)


def test_no_pairs_is_an_empty_comparison_not_an_error() -> None:
    out = compare_pairs([])
    assert out["pairs"] == 0 and out["success"]["agreement"] is None and out["ttft_ms_diff"]["p50"] is None
