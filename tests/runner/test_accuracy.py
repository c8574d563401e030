"""The MATH-500 grader: finds the final answer, and equal answers written differently match."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.accuracy import equivalent, extract_answer, grade

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


def test_symbolic_forms_are_not_guessed() -> None:
    """No algebra: equal values in different symbolic forms are not matched (a false negative)."""
    assert not equivalent("\\frac{1}{\\sqrt{3}}", "\\frac{\\sqrt{3}}{3}")


def test_every_math500_answer_matches_itself_boxed_and_differs_from_a_different_number() -> None:
    rows = [json.loads(line) for line in MATH500.read_text().splitlines() if line.strip()]
    assert len(rows) == 500
    for row in rows:
        answer = row["answer"]
        assert grade(f"Working... so the answer is $\\boxed{{{answer}}}$.", answer), answer
    numeric = [r["answer"] for r in rows if r["answer"].isdigit()]
    for answer in numeric:
        assert not grade(f"\\boxed{{{int(answer) + 1}}}", answer)
