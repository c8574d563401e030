"""Public traces become requests with the trace's arrival times, exact lengths and shared prefixes."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.datasets.synthetic import block_prompts
from runner.tokenizers import load_tokenizer
from runner.traces import TraceError, detect_trace, parse_time, read_rows, read_trace, trace_prompts

FIXTURES = Path(__file__).parent / "fixtures" / "traces"


def _common(texts: list[str]) -> str:
    a, b = texts
    n = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return a[:n]


def _load(name: str) -> tuple[str, list]:  # type: ignore[type-arg]
    rows = read_rows((FIXTURES / name).read_bytes())
    fmt = detect_trace(rows[0])
    assert fmt is not None
    return fmt, read_trace(rows, fmt)


def test_mooncake_timestamps_are_milliseconds_and_lengths_exact() -> None:
    fmt, reqs = _load("mooncake_conversation_first40.jsonl")
    assert fmt == "mooncake" and len(reqs) == 40
    assert reqs[0].t_s == 0.0 and reqs[-1].t_s == pytest.approx(12.0)  # 12000 ms
    tok = load_tokenizer("")
    prompts = trace_prompts(reqs[:12], fmt, tok)
    assert [tok.count(p.text) for p in prompts] == [r.input_tokens for r in reqs[:12]]
    assert [p.max_tokens for p in prompts] == [r.output_tokens for r in reqs[:12]]


def test_mooncake_shared_hash_ids_are_shared_prompt_prefixes() -> None:
    _, reqs = _load("mooncake_conversation_first40.jsonl")
    tok = load_tokenizer("")
    prompts = trace_prompts(reqs[:3], "mooncake", tok)
    assert reqs[0].blocks[0] == reqs[1].blocks[0] == 0 and reqs[0].blocks[1] != reqs[1].blocks[1]
    shared = _common([prompts[0].text, prompts[1].text])
    assert tok.count(shared) >= 512  # one 512-token block in common, and no more than about that
    assert tok.count(shared) < 2 * 512


def test_bailian_turns_become_one_conversation_whose_history_is_the_models_own() -> None:
    fmt, reqs = _load("bailian_sample.jsonl")
    assert fmt == "bailian"
    assert [r.t_s for r in reqs] == [0.0, 0.5, 2.25, 4.0]  # seconds
    assert [r.session for r in reqs] == ["101", "102", "101", "101"]
    tok = load_tokenizer("qwen3")
    prompts = trace_prompts(reqs, fmt, tok)
    # chat 101 and its two follow-ups are one conversation; 102 stands alone
    assert [p.session for p in prompts] == ["101", None, "101", "101"]
    # the trace's input length holds the history, which the replay supplies (the model's own
    # answers): a follow-up's own text is the new part, 70 - (40 + 12) and 100 - (70 + 10)
    assert [tok.count(p.text) for p in prompts] == [40, 20, 18, 20]
    assert not _common([prompts[0].text, prompts[1].text]).strip()


def test_azure_timestamps_with_seven_fraction_digits() -> None:
    fmt, reqs = _load("azure_llm_conv_2023_first40.csv")
    assert fmt == "azure" and len(reqs) == 40
    # 18:15:46.6805900 then 18:15:50.9951690
    assert reqs[1].t_s == pytest.approx(4.314579, abs=1e-6)
    assert reqs[0].input_tokens == 374 and reqs[0].output_tokens == 44


def test_burstgpt_zero_response_tokens_is_a_failed_request() -> None:
    fmt, reqs = _load("burstgpt_sample.csv")
    assert fmt == "burstgpt"
    assert [r.failed for r in reqs] == [False, True, False]
    assert [r.t_s for r in reqs] == [0.0, 1.5, 4.0]
    prompts = trace_prompts(reqs, fmt, load_tokenizer(""))
    assert prompts[1].id == "1-failed" and prompts[1].max_tokens == 1
    assert prompts[2].max_tokens == 200


@pytest.mark.parametrize(
    "value,expected",
    [
        ("2023-11-16 18:15:46.6805900", 1700158546.68059),
        ("2023-11-16T18:15:46Z", 1700158546.0),
        ("2023-11-16 18:15:46,5+00:00", 1700158546.5),
        ("2023-11-16 18:15:46", 1700158546.0),
        (1700158546.25, 1700158546.25),
        ("1700158546250", 1700158546.25),  # milliseconds
    ],
)
def test_timestamps_are_parsed_tolerantly(value: object, expected: float) -> None:
    assert parse_time(value) == pytest.approx(expected, abs=1e-6)


def test_a_row_missing_a_column_names_the_row() -> None:
    rows = read_rows(b'{"timestamp": 0, "input_length": 5, "output_length": 1}\n{"timestamp": 3}\n')
    with pytest.raises(TraceError, match=r"row 2: not a mooncake row .*input_length"):
        read_trace(rows, "mooncake")


def test_a_broken_json_line_names_the_line() -> None:
    with pytest.raises(TraceError, match="line 2: not JSON"):
        read_rows(b'{"timestamp": 0}\n{"timestamp": \n')


def test_block_prompts_are_exact_in_a_real_tokenizer() -> None:
    tok = load_tokenizer("qwen3")
    texts = block_prompts(tok, [([1, 2], 1100), ([1, 3], 600), ([], 7), ([9], 1)], block_tokens=512, seed=3)
    assert [tok.count(t) for t in texts] == [1100, 600, 7, 1]
    assert texts == block_prompts(
        tok, [([1, 2], 1100), ([1, 3], 600), ([], 7), ([9], 1)], block_tokens=512, seed=3
    )


def test_a_json_line_too_deep_or_too_long_is_refused_with_its_line():
    from runner.datasets import Bounds
    from runner.traces import TraceError, read_rows

    good = b'{"timestamp": 1, "input_length": 3, "output_length": 2}\n'
    deep = b'{"timestamp": 2, "x": ' + b"[" * 5000 + b"]" * 5000 + b"}\n"
    with pytest.raises(TraceError, match=r"^line 2: nested more than 64 levels deep"):
        read_rows(good + deep)
    with pytest.raises(TraceError, match=r"^line 2: nested more than 3 levels deep"):
        read_rows(good + b'{"x": [[[1]]]}\n', Bounds(max_depth=3))
    with pytest.raises(TraceError, match=r"^line 2: the line is 2,0\d\d bytes; the limit is 1,024 bytes"):
        read_rows(good + b'{"x": "' + b"y" * 2000 + b'"}\n', Bounds(max_line_bytes=1024))
    assert len(read_rows(good * 3)) == 3
