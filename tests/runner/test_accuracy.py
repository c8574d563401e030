"""The MATH-500 grader: finds the final answer, and equal answers written differently match."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from runner.accuracy import Grade, equivalent, extract_answer, grade, grade_many, grade_one, grade_records
from runner.records import RequestRecord
from runner.spec import Prompt

MATH500 = Path(__file__).resolve().parents[2] / "runner" / "datasets" / "builtin" / "math500.jsonl"

# (expected answer from MATH-500, model output, verdict)
CASES = [
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "So the point is $\\boxed{(3, \\frac{\\pi}{2})}$.", True),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "\\boxed{(3, \\pi)}", False),
    ("\\frac{14}{3}", "Therefore the answer is 14/3.", True),
    ("\\frac{14}{3}", "\\boxed{4\\frac{2}{3}}", True),
    ("\\frac{14}{3}", "\\boxed{4.67}", False),
    ("90^\\circ", "\\boxed{90}", True),
    ("90^\\circ", "\\boxed{90°}", True),
    ("90^\\circ", "\\boxed{90 degrees}", True),
    ("\\text{Evelyn}", "The answer is **Evelyn**.", True),
    ("\\text{Evelyn}", "\\boxed{\\text{Bob}}", False),
    ("\\text{east}", "The answer is East", True),
    ("\\dfrac{17}{50}", "\\boxed{0.34}", True),
    ("\\dfrac{17}{50}", "\\boxed{\\frac{17}{50}}", True),
    ("10,\\!080", "\\boxed{10080}", True),
    ("11,\\! 111,\\! 111,\\! 100", "\\boxed{11111111100}", True),
    ("\\$32,\\!348", "\\boxed{\\$32,348}", True),
    ("\\$18.90", "\\boxed{18.9}", True),
    ("864 \\mbox{ inches}^2", "\\boxed{864}", True),
    ("5.4 \\text{ cents}", "\\boxed{5.4}", True),
    ("\\frac{270}7\\text{ degrees}", "\\boxed{\\frac{270}{7}}", True),
    ("x=5", "\\boxed{5}", True),
    ("5", "\\boxed{x = 5}", True),
    ("1\\frac{4}{5}", "\\boxed{\\frac{9}{5}}", True),
    ("1\\frac{4}{5}", "\\boxed{1.8}", True),
    ("137 \\frac{1}{2}", "\\boxed{137.5}", True),
    ("\\text{(C)}", "\\boxed{C}", True),
    ("\\text{(C)}", "\\boxed{\\text{(D)}}", False),
    (
        "\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}",
        "\\boxed{\\begin{pmatrix} -\\frac{1}{3} \\\\ \\frac{2}{3} \\\\ \\frac{5}{3} \\end{pmatrix}}",
        True,
    ),
    (
        "\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 5/3 \\end{pmatrix}",
        "\\boxed{\\begin{pmatrix} -1/3 \\\\ 2/3 \\\\ 4/3 \\end{pmatrix}}",
        False,
    ),
    (".35625", "\\boxed{0.35625}", True),
    ("3\\sqrt{13}", "\\boxed{3 \\sqrt{13}}", True),
    ("11\\sqrt2", "\\boxed{11\\sqrt{2}}", True),
    ("3\\sqrt{13}", "\\boxed{3\\sqrt13}", False),  # LaTeX reads \sqrt13 as sqrt(1)·3
    ("6 - 5i", "\\boxed{6-5i}", True),
    ("6 - 5i", "\\boxed{6+5i}", False),
    ("(3,4]", "\\boxed{(3,4)}", False),
    ("(3,4]", "\\boxed{\\left(3, 4\\right]}", True),
    ("1,-2", "\\boxed{-2, 1}", True),
    ("1,-2", "\\boxed{-2, 2}", False),
    ("\\frac{1}{2}", "\\boxed{1/2}", True),
    ("\\frac{1}{2}", "\\boxed{0.5}", True),
    ("\\frac{1}{2}", "\\boxed{\\tfrac12}", True),
    ("0.5", "\\boxed{\\frac{2}{4}}", True),
    ("5", "\\boxed{5.0}", True),
    ("5", "\\boxed{50}", False),
    ("-\\frac{\\pi}{6}", "\\boxed{-\\frac{\\pi}{6}}", True),
    ("\\frac{3\\sqrt{3}}{4}", "\\boxed{\\dfrac{3\\sqrt3}{4}}", True),
    ("\\left[ \\frac{\\pi^2}{8}, \\frac{5 \\pi^2}{4} \\right]", "\\boxed{[\\pi^2/8, 5\\pi^2/4]}", True),
    ("x \\in [-2,7]", "\\boxed{[-2, 7]}", True),
    ("(2,\\infty)", "\\boxed{(2, \\infty)}", True),
    ("\\{1\\pm\\sqrt{5},-2\\}", "\\boxed{\\{1\\pm\\sqrt{5},-2\\}}", True),
    ("52_8", "\\boxed{52_{8}}", True),
    ("2k+2", "\\boxed{2k + 2}", True),
    ("y = 2x + 3", "\\boxed{y=2x+3}", True),
    ("50\\%", "\\boxed{50}", True),
]


@pytest.mark.parametrize(("expected", "output", "verdict"), CASES)
def test_grade(expected: str, output: str, verdict: bool) -> None:
    assert grade(output, expected) is verdict


def test_the_last_box_is_the_answer() -> None:
    text = "First I thought \\boxed{3}, but correcting the sign gives \\boxed{4}."
    assert extract_answer(text) == "4"
    assert grade(text, "4") and not grade(text, "3")


def test_nested_braces_are_balanced() -> None:
    assert extract_answer("so \\boxed{\\frac{\\sqrt{3}}{2}} done") == "\\frac{\\sqrt{3}}{2}"


def test_boxed_without_braces() -> None:
    assert extract_answer("The result is \\boxed 7.") == "7."
    assert grade("The result is \\boxed 7", "7")


def test_no_final_answer_is_wrong() -> None:
    assert extract_answer("I am not sure how to solve this.") is None
    assert not grade("I am not sure how to solve this.", "5")
    assert not grade("\\boxed{}", "5")


def test_answer_is_takes_the_math_between_dollars() -> None:
    assert extract_answer("Hence the answer is $\\frac{3}{56}$. Good.") == "\\frac{3}{56}"


def test_the_textual_pass_does_no_algebra_the_symbolic_one_does() -> None:
    assert not equivalent("\\frac{1}{\\sqrt{3}}", "\\frac{\\sqrt{3}}{3}")
    assert grade_one("\\boxed{\\frac{1}{\\sqrt{3}}}", "\\frac{\\sqrt{3}}{3}") == Grade(
        True, "\\frac{1}{\\sqrt{3}}", "equal symbolically"
    )


# (expected, boxed answer, verdict): equal values written differently, and near misses
SYMBOLIC = [
    ("\\frac{\\sqrt{3}}{3}", "\\frac{1}{\\sqrt3}", True),
    ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}", True),
    ("2\\sqrt{2}", "\\sqrt{8}", True),
    ("2\\sqrt{2}", "\\sqrt{6}", False),
    ("x^2+2x+1", "(x+1)^2", True),
    ("x^2+2x+1", "(x-1)^2", False),
    ("\\frac{\\pi}{3}", "60^\\circ", False),  # degrees are read as numbers, never converted
    ("\\frac{1+\\sqrt{5}}{2}", "\\frac{2}{\\sqrt{5}-1}", True),
    ("\\left( -\\infty, 3 \\right]", "(-\\infty,3]", True),
    ("[1,3)", "[1,3]", False),
    ("\\{2,3\\}", "\\{3,2\\}", True),
    ("(1,2)", "(2,1)", False),  # a tuple's order matters
    ("\\frac{3}{4}", "75\\%", True),
    ("25\\%", "0.3", False),
    ("\\text{(B)}", "\\text{(b)}", True),
    ("12 \\text{ cm}^2", "12", True),
    ("2^{10}", "1024", True),
    ("\\log_2 8", "3", True),
    ("\\sin^2 x + \\cos^2 x", "1", True),
    ("52_8", "52", False),  # a base is not dropped
    ("i", "-i", False),
    ("(1,2)", "\\left(1, \\sqrt{4}\\right)", True),  # tuples element by element, symbolically
    ("(1,2)", "(1,\\sqrt{5})", False),
    ("[2,3)", "[\\sqrt{4}, 3)", True),
    ("\\frac{1}{8}", "12.5\\%", True),
    ("\\frac{1}{8}", "12\\%", False),
    ("30^\\circ", "30", True),
    ("5\\text{ cm}", "\\frac{10}{2}", True),
    ("\\text{(A)}", "\\text{(A)}", True),
    ("\\sqrt{3}", "1.732", False),  # a rounded decimal is not the surd
    ("-\\frac{1}{2}", "\\frac{-1}{2}", True),
    (
        "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}",
        "\\begin{pmatrix} \\frac{2}{2} \\\\ \\sqrt{4} \\end{pmatrix}",
        True,
    ),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}", False),
    ("\\infty", "-\\infty", False),
    ("x^2", "x^3", False),
]


@pytest.mark.parametrize(("expected", "answer", "verdict"), SYMBOLIC)
def test_symbolic_grading(expected: str, answer: str, verdict: bool) -> None:
    assert grade_one(f"so \\boxed{{{answer}}}", expected).correct is verdict


def test_reasoning_in_think_tags_is_never_graded() -> None:
    assert extract_answer("<think>maybe \\boxed{3}</think> It is \\boxed{4}.") == "4"
    assert extract_answer("so \\boxed{3} then</think>\\boxed{4}") == "4"
    assert grade_one("<think>it is \\boxed{4}", "4") == Grade(False, None, "no final answer")


def test_grade_one_says_why() -> None:
    assert grade_one("\\boxed{5}", "5").reason == "equal as text"
    assert grade_one("\\boxed{\\text{Bob}}", "\\text{Evelyn}") == Grade(
        False, "\\text{Bob}", "different symbolically"
    )
    assert grade_one("nothing", "5") == Grade(False, None, "no final answer")


def hang(answer_text: str, expected: str) -> Grade:
    """A grader that never returns on "hang" (sympy evaluating a tower of powers does the same)."""
    if "hang" in answer_text:
        time.sleep(3600)
    return grade_one(answer_text, expected)


def test_grade_many_lines_up_with_its_items_and_uses_worker_processes() -> None:
    items = [
        ("\\boxed{\\frac{1}{\\sqrt3}}", "\\frac{\\sqrt{3}}{3}"),
        ("\\boxed{5}", "5"),
        ("no answer here", "5"),
        ("\\boxed{(x-1)^2}", "x^2+2x+1"),
    ]
    grades = grade_many(items, timeout_s=60, processes=2)
    assert [g.correct for g in grades] == [True, True, False, False]
    assert grades == [grade_one(*item) for item in items]


def test_a_hung_item_times_out_alone_and_counts_as_wrong() -> None:
    items = [("\\boxed{hang}", "1"), ("\\boxed{(x+1)^2}", "x^2+2x+1"), ("\\boxed{2}", "3")]
    grades = grade_many(items, timeout_s=1.0, processes=1, grader=hang)
    assert grades[0] == Grade(False, "hang", "timeout")
    assert grades[1:] == [grade_one(*item) for item in items[1:]]


def die(answer_text: str, expected: str) -> Grade:
    """A grader whose process dies at once (a broken install, say)."""
    os._exit(1)


def test_workers_that_keep_dying_are_given_up_on_with_a_reason() -> None:
    grades = grade_many([("\\boxed{x}", "y"), ("\\boxed{z}", "y")], timeout_s=60, processes=1, grader=die)
    assert grades == [
        Grade(False, "x", "error: the grading process died"),
        Grade(False, "z", "error: the grading process died"),
    ]


def test_a_real_sympy_hang_is_cut_by_the_time_limit() -> None:
    grades = grade_many([("\\boxed{10^{10^{10}}}", "3")], timeout_s=1.0, processes=1)
    assert grades == [Grade(False, "10^{10^{10}}", "timeout")]


def test_grade_many_in_process() -> None:
    assert grade_many([("\\boxed{\\sqrt8}", "2\\sqrt2")], processes=0) == [
        Grade(True, "\\sqrt8", "equal symbolically")
    ]


def test_every_math500_answer_matches_itself_boxed_and_differs_from_a_different_number() -> None:
    rows = [json.loads(line) for line in MATH500.read_text().splitlines() if line.strip()]
    assert len(rows) == 500
    for row in rows:
        answer = row["answer"]
        assert grade(f"Working... so the answer is $\\boxed{{{answer}}}$.", answer), answer
    numeric = [r["answer"] for r in rows if r["answer"].isdigit()]
    for answer in numeric:
        assert not grade(f"\\boxed{{{int(answer) + 1}}}", answer)


def test_grade_records_sets_verdicts_and_counts_failed_requests_wrong_without_grading() -> None:
    prompts = {
        "a": Prompt(id="a", expected="\\frac{\\sqrt3}{3}"),
        "b": Prompt(id="b", expected="5"),
        "c": Prompt(id="c"),
    }
    recs = [
        RequestRecord(request_id="1", prompt_id="a", answer_text="so \\boxed{\\frac{1}{\\sqrt3}}"),
        RequestRecord(request_id="2", prompt_id="b", outcome="timeout", answer_text="\\boxed{5}"),
        RequestRecord(request_id="3", prompt_id="c", answer_text="\\boxed{5}"),
        RequestRecord(request_id="4", prompt_id="b", outcome="cancelled"),
    ]
    grades = grade_records(recs, prompts, timeout_s=60, processes=1)
    assert grades == [
        Grade(True, "\\frac{1}{\\sqrt3}", "equal symbolically"),
        Grade(False, None, "failed request"),
        None,
        None,
    ]
    assert [r.correct for r in recs] == [True, False, None, None]
