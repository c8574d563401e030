"""A custom stream format is checked as a whole (unknown keys, kind map, template) and a pasted sample
stream is classified line by line by the very parser a run uses."""

from __future__ import annotations

import pytest

from runner import GENERIC_KEYS, GenericFormat, classify_sample, generic_format

SSE = """data: {"delta": {"reasoning": "hmm"}}
: keep-alive

data: {"delta": {"text": "Hi"}}
data: {"other": 1}
data: {"usage": {"prompt_tokens": 3, "completion_tokens": 2}, "finish": "stop"}
data: {"error": {"message": "overloaded"}}
data: [DONE]
data: {broken"""


def test_each_line_is_classified_as_a_run_would_read_it() -> None:
    fmt = generic_format(
        {"thinking_path": "delta.reasoning", "answer_path": "delta.text", "finish_path": "finish"}
    )
    rows = classify_sample(fmt, SSE)
    assert [(r["line"], r["packets"]) for r in rows] == [
        (1, ["thinking"]),
        (2, ["heartbeat"]),
        (4, ["answer"]),
        (5, ["unknown"]),
        (6, ["usage", "done"]),
        (7, ["error"]),
        (8, ["done"]),
        (9, ["unknown"]),
    ]
    assert "'Hi'" in rows[2]["note"] and "'stop'" in rows[4]["note"] and "overloaded" in rows[5]["note"]
    assert "malformed JSON" in rows[7]["note"]


def test_a_kind_field_with_a_map() -> None:
    fmt = generic_format(
        {"kind_path": "type", "kind_map": {"think": "thinking", "text": "answer", "ping": "heartbeat"}}
    )
    sample = '{"type": "think", "text": "so"}\n{"type": "text", "text": "4"}\n{"type": "ping"}'
    assert [r["packets"] for r in classify_sample(fmt, sample)] == [["thinking"], ["answer"], ["heartbeat"]]


def test_misspelt_keys_bad_maps_and_broken_templates_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown stream-format keys answer_pth"):
        generic_format({"answer_pth": "choices.0.text"})
    with pytest.raises(ValueError, match="kind map values must be packet kinds"):
        generic_format({"kind_path": "type", "kind_map": {"t": "text"}})
    with pytest.raises(ValueError, match="not valid JSON"):
        generic_format({"body_template": '{"prompt": {{prompt}}'})
    assert set(GenericFormat.__dataclass_fields__) == GENERIC_KEYS
    assert generic_format({}) == GenericFormat()
