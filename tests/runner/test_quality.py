"""Quality monitors: empty answers, truncated thinking, answers cut by length, reasoning leaks."""

from __future__ import annotations

import pytest

from runner.quality import flags, quality_block, reasoning_leak
from runner.records import RequestRecord
from runner.summary import summarize


@pytest.mark.parametrize(
    "answer",
    [
        "<think>the user wants 2+2</think>4",
        "4 </think>",
        "<|begin_of_thought|>hmm<|end_of_thought|> 4",
        "Okay, so I need to add 2 and 2.",
        "Alright, let's see: 2+2",
        "Hmm, let me think about this.",
        "  The user is asking for a sum.",
        "Let me think step by step.",
        "OK so the user wants",
    ],
)
def test_leaks_are_seen(answer: str) -> None:
    assert reasoning_leak(answer)


@pytest.mark.parametrize(
    "answer",
    [
        "The answer is $\\boxed{4}$.",
        "4",
        "So, the total is 4.",
        "Okay.",
        "We need 4 apples: 2 and 2.",
        "Think of it as 2+2 = 4.",
        "Let me know if you need more help.",
        "Okay, I can help with that: 4.",
        "OK! Here is the answer.",
        "Wait times are about 4 minutes.",
        "",
    ],
)
def test_ordinary_answers_are_not_leaks(answer: str) -> None:
    assert not reasoning_leak(answer)


def _rec(
    outcome: str = "success", answer: str = "4", length: bool = False, variant: int = 0
) -> RequestRecord:
    r = RequestRecord(request_id="r", prompt_id="p", outcome=outcome, variant=variant)
    r.answer_text, r.answer_chars, r.length_stopped = answer, len(answer), length
    r.finish_reason = "length" if length or outcome == "truncated_thinking" else "stop"
    r.input_tokens = 10
    return r


def test_each_monitor_on_one_record() -> None:
    none = dict.fromkeys(("empty_answer", "truncated_thinking", "cut_by_length", "reasoning_leak"), False)
    assert flags(_rec()) == none
    assert flags(_rec("empty_answer", "")) == none | {"empty_answer": True}
    assert flags(_rec(answer="  \n")) == none | {"empty_answer": True}
    assert flags(_rec("truncated_thinking", "")) == none | {"truncated_thinking": True}
    stopped = _rec("truncated_thinking", "")
    stopped.finish_reason = "stop"  # thought, then stopped by itself with no answer
    assert flags(stopped) == none | {"empty_answer": True}
    assert flags(_rec(answer="the sum is", length=True)) == none | {"cut_by_length": True}
    assert flags(_rec(answer="<think>x</think>4")) == none | {"reasoning_leak": True}
    assert flags(_rec("timeout", "<think>")) == none  # a failed request's partial text is no answer


def test_summary_counts_monitors_per_bucket_and_variant() -> None:
    recs = [
        _rec(),
        _rec("empty_answer", ""),
        _rec("truncated_thinking", "", variant=1),
        _rec(answer="cut", length=True, variant=1),
        _rec(answer="<think>oops</think>4", variant=1),
        _rec("cancelled", ""),
    ]
    recs[0].input_tokens = 5000
    q = summarize(recs, duration_s=1)["quality"]
    assert q["requests"] == 5
    assert {
        k: q[k]["count"] for k in ("empty_answer", "truncated_thinking", "cut_by_length", "reasoning_leak")
    } == {
        "empty_answer": 1,
        "truncated_thinking": 1,
        "cut_by_length": 1,
        "reasoning_leak": 1,
    }
    assert q["reasoning_leak"]["rate"] == pytest.approx(0.2)
    assert q["by_bucket"]["0–1k"]["requests"] == 4 and q["by_bucket"]["4k–16k"]["empty_answer"]["count"] == 0
    assert q["by_variant"]["1"]["truncated_thinking"]["rate"] == pytest.approx(1 / 3)
    assert quality_block([])["requests"] == 0
