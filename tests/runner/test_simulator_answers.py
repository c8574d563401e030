"""The simulator answers from a key: it finds the question in a templated prompt and boxes the
reference (or, for exactly round(R·N) items, a wrong value); thinking follows reasoning_effort."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from runner.accuracy import grade_many, grade_one
from runner.datasets.shipped import MATH_TEMPLATE, apply_template, load_builtin
from runner.quality import reasoning_leak
from runner.simulator import SimConfig, run_simulator
from runner.simulator.answers import AnswerKey
from runner.simulator.server import load_key

MATH = load_builtin("builtin:math500")
KEYED = SimConfig(ttft_ms=1, itl_ms=0, thinking_tokens=40, answer_key="builtin:math500")


def test_exactly_round_r_n_items_are_wrong_chosen_by_seed() -> None:
    key = AnswerKey.load("builtin:math500", wrong_rate=0.1, seed=0)
    wrong = {i.id for i in key.items if i.wrong}
    assert len(key.items) == 500 and len(wrong) == 50
    assert wrong == {i.id for i in AnswerKey.load("builtin:math500", wrong_rate=0.1, seed=0).items if i.wrong}
    other = {i.id for i in AnswerKey.load("builtin:math500", wrong_rate=0.1, seed=1).items if i.wrong}
    assert len(other) == 50 and other != wrong
    assert sum(i.wrong for i in AnswerKey.load("builtin:math500", wrong_rate=0.013).items) == 6  # round(6.5)


def test_every_key_answer_grades_as_intended() -> None:
    """Right items are graded right and wrong ones wrong, for all 500: the end-to-end rate is exact."""
    key = AnswerKey.load("builtin:math500", wrong_rate=1.0)
    wrong = grade_many(
        [(f"\\boxed{{{i.answer}}}", it.expected or "") for i, it in zip(key.items, MATH, strict=True)]
    )
    assert not any(g.correct for g in wrong), [g for g in wrong if g.correct]
    right = AnswerKey.load("builtin:math500")
    assert all(
        grade_one(f"\\boxed{{{i.answer}}}", it.expected or "").correct
        for i, it in zip(right.items, MATH, strict=True)
    )


def test_a_question_is_found_inside_a_templated_prompt() -> None:
    key = AnswerKey.load("builtin:math500")
    problem = MATH[7].prompt or ""
    found = key.find(
        "System: be brief.\n" + apply_template(MATH_TEMPLATE, "  " + problem.replace(" ", "\n "))
    )
    assert found is not None and found.id == MATH[7].metadata["unique_id"]
    assert key.find("What is the capital of France?") is None


def test_a_key_file_with_prompt_expected_and_id(tmp_path: Path) -> None:
    path = tmp_path / "key.jsonl"
    rows = [{"prompt": "What is 2+2?", "expected": "4", "id": "a"}, {"prompt": "And 3+3?", "expected": "6"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    key = AnswerKey.load(str(path), wrong_rate=0.5)
    assert [i.id for i in key.items] == ["a", "1"] and sum(i.wrong for i in key.items) == 1
    assert {i.answer for i in key.items if i.wrong} <= {"5", "7"}
    with pytest.raises(ValueError, match="answer key"):
        load_key(SimConfig(answer_key=str(tmp_path / "missing.jsonl")))


async def _chat(base: str, text: str, **extra: Any) -> tuple[int, str, str]:
    body = {"model": "m", "messages": [{"role": "user", "content": text}], "stream": True, **extra}
    thinking, answer = [], []
    async with aiohttp.ClientSession() as s, s.post(base + "/chat/completions", json=body) as resp:
        if resp.status != 200:
            return resp.status, "", await resp.text()
        async for raw in resp.content:
            line = raw.decode().strip()
            if line.startswith("data: {"):
                for choice in json.loads(line[6:])["choices"]:
                    thinking.append(choice["delta"].get("reasoning_content") or "")
                    answer.append(choice["delta"].get("content") or "")
    return 200, "".join(thinking), "".join(answer)


async def test_the_simulator_reasons_then_boxes_the_reference() -> None:
    item = MATH[0]
    async with run_simulator(KEYED) as base:
        status, thinking, answer = await _chat(base, apply_template(MATH_TEMPLATE, item.prompt or ""))
        _, _, unknown = await _chat(base, "hello there")
    assert status == 200
    assert thinking.startswith(" Okay, let me work through this problem step by step.")
    assert len(thinking.split()) == 40
    assert "\\boxed{" in answer and grade_one(answer, item.expected or "").correct
    assert not reasoning_leak(answer)
    assert "\\boxed" not in unknown  # not in the key: the usual filler words


async def test_thinking_follows_reasoning_effort_and_max_tokens() -> None:
    text = MATH[1].prompt or ""
    async with run_simulator(KEYED) as base:
        lengths = {
            effort: len((await _chat(base, text, reasoning_effort=effort))[1].split())
            for effort in ("low", "medium", "high")
        }
        status, _, error = await _chat(base, text, reasoning_effort="extreme")
        _, cut_thinking, cut_answer = await _chat(base, text, max_tokens=30)
    assert lengths == {"low": 20, "medium": 40, "high": 80}
    assert status == 400 and "reasoning_effort" in error
    assert len(cut_thinking.split()) == 30 and cut_answer == ""  # the budget ran out inside thinking


async def test_leaks_put_reasoning_into_the_answer_and_the_log_says_so() -> None:
    config = SimConfig(ttft_ms=1, itl_ms=0, answer_key="builtin:math500", leak_rate=1.0)
    item = MATH[2]
    async with run_simulator(config) as base:
        _, _, answer = await _chat(base, item.prompt or "")
        async with aiohttp.ClientSession() as s, s.get(base.removesuffix("/v1") + "/sim/log") as resp:
            (record,) = await resp.json()
    assert reasoning_leak(answer) and grade_one(answer, item.expected or "").correct
    assert record["leaked"] and record["answer_id"] == item.metadata["unique_id"]
    assert not record["answered_wrong"]
