"""runner.datasets: upload parsing with row errors, exact-length synthetic prompts, length buckets."""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything loads transformers

from runner.datasets import (
    DEFAULT_EDGES,
    Bounds,
    bucket_index,
    bucket_label,
    bucket_labels,
    histogram,
    parse_dataset,
    parse_label,
    select,
    synthesize,
)
from runner.datasets.parse import MAX_ROW_ERRORS
from runner.datasets.synthetic import corpus_paragraphs
from runner.spec import Prompt
from runner.tokenizers import EstimateTokenizer, Tokenizer, load_tokenizer

BUILTIN = Path(__file__).resolve().parents[2] / "runner" / "datasets" / "builtin"


@pytest.fixture(scope="module")
def qwen() -> Tokenizer:
    return load_tokenizer("qwen3")


# --- parse: real files ---------------------------------------------------------------------------


def test_math500_parses_fully_with_problem_as_prompt_and_answer_as_expected() -> None:
    result = parse_dataset((BUILTIN / "math500.jsonl").read_bytes(), filename="math500.jsonl")
    assert result.ok and result.errors == [] and result.format == "jsonl"
    assert len(result.items) == 500
    first = json.loads((BUILTIN / "math500.jsonl").read_text().split("\n", 1)[0])
    assert result.items[0].prompt == first["problem"]
    assert result.items[0].expected == first["answer"]
    assert result.items[0].metadata["level"] == first["level"]
    assert all(item.messages is None for item in result.items)


def test_sharegpt_jsonl_parses_fully_with_first_human_turn_as_prompt() -> None:
    data = (BUILTIN / "conversations.jsonl").read_bytes()
    result = parse_dataset(data, filename="sharegpt_oasst_en.jsonl")
    assert result.ok and result.format == "sharegpt"
    assert len(result.items) == 383
    first = json.loads(data.split(b"\n", 1)[0])["conversations"]
    assert result.items[0].prompt == first[0]["value"]
    assert result.items[0].expected == first[1]["value"]
    assert "id" in result.items[0].metadata


def test_sharegpt_multi_turn_keeps_the_conversation_up_to_the_last_human_turn() -> None:
    data = (BUILTIN / "conversations.jsonl").read_bytes()
    result = parse_dataset(data, filename="sharegpt_oasst_en.jsonl", multi_turn=True)
    assert result.ok and len(result.items) == 383
    for item, line in zip(result.items, data.decode().strip().split("\n"), strict=True):
        turns = json.loads(line)["conversations"]
        assert item.prompt is None and item.messages is not None
        assert item.messages[-1]["role"] == "user"
        assert len(item.messages) == max(i for i, t in enumerate(turns) if t["from"] == "human") + 1
    assert max(len(item.messages or []) for item in result.items) == 5


def test_sharegpt_as_a_json_array_parses_the_same() -> None:
    rows = [json.loads(line) for line in (BUILTIN / "conversations.jsonl").read_text().strip().split("\n")]
    result = parse_dataset(json.dumps(rows, indent=2).encode(), filename="conversations.json")
    assert result.ok and result.format == "sharegpt" and len(result.items) == 383


# --- parse: accepted shapes ----------------------------------------------------------------------


def test_jsonl_with_messages_expected_max_tokens_and_metadata() -> None:
    rows: list[dict[str, Any]] = [
        {"prompt": "p1", "expected": "e1", "max_tokens": 64, "metadata": {"k": 1}, "topic": "x"},
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "parts"}]}], "answer": 42},
    ]
    data = ("\r\n".join(json.dumps(r) for r in rows) + "\r\n\r\n").encode()
    result = parse_dataset(data, filename="rows.jsonl")
    assert result.ok, result.errors
    a, b, c = result.items
    assert (a.prompt, a.expected, a.max_tokens, a.metadata) == ("p1", "e1", 64, {"topic": "x", "k": 1})
    assert b.prompt is None and b.messages == rows[1]["messages"]
    assert c.expected == "42"


def test_csv_header_is_case_insensitive_and_quoted_fields_may_span_lines() -> None:
    data = b'Prompt,Expected,MAX_TOKENS,source\n"line one\nline two",yes,128,web\nplain,,,\n'
    result = parse_dataset(data, filename="set.CSV")
    assert result.ok and result.format == "csv"
    assert [i.prompt for i in result.items] == ["line one\nline two", "plain"]
    assert result.items[0].expected == "yes" and result.items[0].max_tokens == 128
    assert result.items[0].metadata == {"source": "web"}
    assert result.items[1].expected is None and result.items[1].max_tokens is None


def test_tsv_and_plain_text_formats() -> None:
    tsv = parse_dataset(b"prompt\tanswer\na, b\t1\n", filename="x.tsv")
    assert tsv.ok and tsv.items[0].prompt == "a, b" and tsv.items[0].expected == "1"
    text = parse_dataset(b"first prompt\n\n   \nsecond prompt\r\n", filename="prompts.txt")
    assert text.ok and text.format == "text"
    assert [i.prompt for i in text.items] == ["first prompt", "second prompt"]


@pytest.mark.parametrize(
    ("data", "filename"),
    [(b'\xef\xbb\xbf{"prompt": "a"}\n', "bom.jsonl"), (b"\xef\xbb\xbfPrompt\na\n", "bom.csv")],
)
def test_a_utf8_bom_is_accepted(data: bytes, filename: str) -> None:
    result = parse_dataset(data, filename=filename)
    assert result.ok and [i.prompt for i in result.items] == ["a"]


@pytest.mark.parametrize(
    ("data", "fmt", "expected"),
    [
        (b'{"prompt": "a"}\n{"prompt": "b"}\n', None, "jsonl"),
        (b'[{"prompt": "a"}]', None, "json"),
        (b"id,prompt\n1,a\n", None, "csv"),
        (b"anything at all\n", "text", "text"),
        (b'{"conversations": [{"from": "human", "value": "a"}]}\n', "sharegpt", "sharegpt"),
    ],
)
def test_format_is_sniffed_or_taken_from_fmt(data: bytes, fmt: str | None, expected: str) -> None:
    result = parse_dataset(data, filename="upload.dat", fmt=fmt)
    assert result.ok and result.format == expected and len(result.items) >= 1


# --- parse: rejected files -----------------------------------------------------------------------

Case = tuple[str, bytes, dict[str, Any], str, int]
MALFORMED: list[Case] = [
    ("truncated.jsonl", b'{"prompt": "a"}\n{"prompt": "b', {}, "invalid JSON: Unterminated string", 2),
    ("array_line.jsonl", b'{"prompt": "a"}\n["a", "b"]\n', {}, "expected a JSON object, got array", 2),
    ("number.jsonl", b'{"prompt": 42}\n', {}, "prompt must be a string, got number", 1),
    ("blank_prompt.jsonl", b'{"prompt": "  "}\n', {}, "prompt is empty", 1),
    ("msg_str.jsonl", b'{"messages": "hi"}\n', {}, "messages must be a list of {role, content}", 1),
    ("no_content.jsonl", b'{"messages": [{"role": "user"}]}\n', {}, 'messages[0] has no "content"', 1),
    ("bad_role.jsonl", b'{"messages": [{"role": "robot", "content": "x"}]}', {}, "has role 'robot'", 1),
    (
        "no_prompt.jsonl",
        b'{"question": "x"}\n',
        {},
        'missing "prompt" (or "messages"); keys found: question',
        1,
    ),
    (
        "neg.jsonl",
        b'{"prompt": "a", "max_tokens": -5}\n',
        {},
        "max_tokens must be a positive integer, got -5",
        1,
    ),
    (
        "str_max.jsonl",
        b'{"prompt": "a", "max_tokens": "lots"}',
        {},
        "max_tokens must be a positive integer",
        1,
    ),
    ("float_max.jsonl", b'{"prompt": "a", "max_tokens": 1.5}\n', {}, "positive integer, got 1.5", 1),
    ("meta.jsonl", b'{"prompt": "a", "metadata": [1]}\n', {}, "metadata must be an object, got array", 1),
    ("nohuman.jsonl", b'{"conversations": [{"from": "gpt", "value": "hi"}]}', {}, "has no human turn", 1),
    ("conv_str.jsonl", b'{"conversations": "hi"}\n', {}, "conversations must be a list", 1),
    ("alien.jsonl", b'{"conversations": [{"from": "alien", "value": "x"}]}', {}, "from='alien'", 1),
    ("object.json", b'{"prompt": "a"}', {}, "a single JSON object; expected an array", 1),
    ("syntax.json", b'[{"prompt": "a"},\n {"prompt": }]', {}, "invalid JSON: Expecting value (line 2", 2),
    ("strings.json", b'["just a string"]', {}, "expected a JSON object, got string", 1),
    ("trailing.json", b'[{"prompt": "a"}] extra', {}, "extra data after the array", 1),
    ("columns.csv", b"question,answer\nx,y\n", {}, 'no "prompt" column; the header has: question, answer', 1),
    ("quote.csv", b'prompt,expected\nok,1\n"unclosed,x\n', {}, "malformed CSV", 3),
    ("ragged.csv", b"prompt,expected\na,b,c\n", {}, "row has 3 fields; the header has 2", 2),
    ("max.csv", b"prompt,max_tokens\na,ten\n", {}, "max_tokens must be a positive integer, got 'ten'", 2),
    ("latin1.csv", b"prompt\ncaf\xe9\n", {}, "not UTF-8 text (byte 0xe9 at offset 10)", 2),
    ("bom_latin1.txt", b"\xef\xbb\xbfcaf\xe9\n", {}, "not UTF-8 text (byte 0xe9 at offset 6)", 1),
    ("image.jsonl", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", {}, "looks like a PNG image", 0),
    ("utf16.csv", "prompt\nhi\n".encode("utf-16"), {}, "looks like UTF-16 text", 0),
    ("nul.jsonl", b'{"prompt": "a"}\n\x00\n', {}, "binary data, not text (NUL byte at offset 16)", 2),
    ("empty.jsonl", b"", {}, "the file is empty", 0),
    ("blank.txt", b"\n\n  \r\n\t\n", {}, "no content (only blank lines)", 0),
    ("many.txt", b"a\nb\nc\nd\ne\n", {"max_items": 3}, "5 items; the limit is 3", 0),
    ("big.txt", b"x" * 100, {"max_bytes": 50}, "the file is 100 bytes; the limit is 50 bytes", 0),
    ("notes.xyz", b"hello world\n", {}, "cannot tell the format of 'notes.xyz'", 0),
    ("data.jsonl", b'{"prompt": "a"}', {"fmt": "xml"}, "unknown format 'xml'", 0),
    ("empty_array.json", b"[]", {}, "the file holds no prompts", 0),
]


@pytest.mark.parametrize(
    ("filename", "data", "kwargs", "reason", "line"), MALFORMED, ids=[c[0] for c in MALFORMED]
)
def test_malformed_file_is_rejected_whole_with_a_clear_reason(
    filename: str, data: bytes, kwargs: dict[str, Any], reason: str, line: int
) -> None:
    result = parse_dataset(data, filename=filename, **kwargs)
    assert not result.ok
    assert result.items == []
    assert len(result.errors) == 1, result.errors
    assert reason in result.errors[0].reason
    assert result.errors[0].line == line


def test_one_bad_row_among_good_ones_saves_nothing_and_names_each_bad_line() -> None:
    lines = ['{"prompt": "ok"}', '{"prompt": 1}', '{"prompt": "ok"}', "{oops", '{"prompt": "ok"}']
    result = parse_dataset("\n".join(lines).encode(), filename="mixed.jsonl")
    assert not result.ok and result.items == []
    assert [e.line for e in result.errors] == [2, 4]


def test_row_errors_stop_after_the_cap() -> None:
    data = b"\n".join(b'{"prompt": 1}' for _ in range(500))
    result = parse_dataset(data, filename="bad.jsonl")
    assert len(result.errors) == MAX_ROW_ERRORS + 1
    assert result.errors[-1].reason == f"stopped after {MAX_ROW_ERRORS} errors"
    assert [e.line for e in result.errors[:3]] == [1, 2, 3]


def test_json_array_errors_carry_the_line_of_the_element() -> None:
    data = b'[\n  {"prompt": "a"},\n  {"prompt": "b"},\n  {"prompt": false}\n]'
    result = parse_dataset(data, filename="rows.json")
    assert [(e.line, e.reason) for e in result.errors] == [(4, "prompt must be a string, got boolean")]


# --- parse: bounds per row ----------------------------------------------------------------------


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [950, 5000, 200_000])
def test_a_deeply_nested_jsonl_row_is_refused_by_line_without_a_recursion_error(depth: int) -> None:
    lines = [
        '{"prompt": "ok"}',
        f'{{"prompt": "deep", "metadata": {{"x": {_nested(depth)}}}}}',
        '{"prompt": "ok"}',
    ]
    result = parse_dataset("\n".join(lines).encode(), filename="deep.jsonl")
    assert not result.ok and result.items == []
    assert [(e.line, e.reason) for e in result.errors] == [
        (2, "nested more than 64 levels deep (the limit, DATASET_MAX_DEPTH)")
    ]


def test_nesting_up_to_the_bound_is_kept_and_one_level_more_is_refused() -> None:
    # the row object is level 1, "metadata" level 2, the arrays in "x" levels 3 to 64
    ok = f'{{"prompt": "p", "metadata": {{"x": {_nested(62)}}}}}'
    over = f'{{"prompt": "p", "metadata": {{"x": {_nested(63)}}}}}'
    assert parse_dataset(ok.encode(), filename="a.jsonl").ok
    refused = parse_dataset(over.encode(), filename="a.jsonl")
    assert "nested more than 64 levels" in refused.errors[0].reason
    lower = parse_dataset(ok.encode(), filename="a.jsonl", bounds=Bounds(max_depth=8))
    assert "nested more than 8 levels" in lower.errors[0].reason


@pytest.mark.parametrize("depth", [950, 200_000])
def test_a_deeply_nested_json_array_element_is_refused_with_its_line(depth: int) -> None:
    data = f'[\n  {{"prompt": "a"}},\n  {{"prompt": "b", "metadata": {_nested(depth)}}}\n]'.encode()
    result = parse_dataset(data, filename="deep.json")
    assert not result.ok and result.items == []
    assert result.errors[0].line == 3
    assert "DATASET_MAX_DEPTH" in result.errors[0].reason


def test_a_line_over_the_line_limit_is_refused_by_line_before_parsing() -> None:
    bounds = Bounds(max_line_bytes=1024, max_prompt_chars=10_000)
    long_json = json.dumps({"prompt": "x" * 2000})
    result = parse_dataset(f'{{"prompt": "ok"}}\n{long_json}'.encode(), filename="a.jsonl", bounds=bounds)
    assert [e.line for e in result.errors] == [2]
    assert result.errors[0].reason.startswith("the line is 2,")
    assert "the limit is 1,024 bytes per line (DATASET_MAX_LINE_KB)" in result.errors[0].reason
    text = parse_dataset(b"short\n" + b"y" * 1025 + b"\nshort", filename="a.txt", bounds=bounds)
    assert [e.line for e in text.errors] == [2]
    # the limit is in UTF-8 bytes: 400 three-byte characters are 1,200 bytes
    wide = parse_dataset(("\u20ac" * 400).encode(), filename="a.txt", bounds=bounds)
    assert "1,200 bytes" in wide.errors[0].reason


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("a.jsonl", json.dumps({"prompt": "z" * 101}).encode()),
        ("a.json", json.dumps([{"prompt": "ok"}, {"prompt": "z" * 101}]).encode()),
        ("a.csv", b"prompt\nok\n" + b"z" * 101 + b"\n"),
        ("a.txt", b"ok\n" + b"z" * 101),
        (
            "a.jsonl",
            json.dumps(
                {"messages": [{"role": "system", "content": "s" * 60}, {"role": "user", "content": "u" * 41}]}
            ).encode(),
        ),
    ],
    ids=["jsonl", "json", "csv", "text", "messages-summed"],
)
def test_a_prompt_over_the_size_limit_is_refused_per_row_in_every_format(filename: str, data: bytes) -> None:
    result = parse_dataset(data, filename=filename, bounds=Bounds(max_prompt_chars=100))
    assert not result.ok and result.items == []
    assert len(result.errors) == 1
    assert (
        result.errors[0].reason == "the prompt is 101 characters; the limit is 100 (DATASET_MAX_PROMPT_CHARS)"
    )
    fits = data.replace(b"z" * 101, b"z" * 100).replace(b"u" * 41, b"u" * 40)
    assert parse_dataset(fits, filename=filename, bounds=Bounds(max_prompt_chars=100)).ok


def test_a_30_mb_single_line_upload_is_refused_with_the_default_bounds() -> None:
    data = b"word " * (6 * 1024 * 1024)  # 30 MiB, no newline
    for filename, payload in (("big.txt", data), ("big.jsonl", b'{"prompt": "' + data + b'"}')):
        result = parse_dataset(payload, filename=filename)
        assert not result.ok and result.items == []
        assert [e.line for e in result.errors] == [1]
        assert "30.0 MiB; the limit is 8.0 MiB per line" in result.errors[0].reason
    as_array = parse_dataset(b'[{"prompt": "' + data + b'"}]', filename="big.json")
    assert "the row is 30.0 MiB; the limit is 8.0 MiB" in as_array.errors[0].reason


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("a.csv", b"prompt,notes\nok,short\nok," + b"n" * 2000 + b"\n"),
        ("a.json", b'[{"prompt": "ok"},\n {"prompt": "ok", "metadata": {"n": "' + b"n" * 2000 + b'"}}]'),
    ],
    ids=["csv-column", "json-array-metadata"],
)
def test_a_row_too_large_outside_its_prompt_is_refused_by_line(filename: str, data: bytes) -> None:
    result = parse_dataset(data, filename=filename, bounds=Bounds(max_line_bytes=1024))
    assert not result.ok and [e.line for e in result.errors] == [3 if filename == "a.csv" else 2]
    assert result.errors[0].reason.startswith("the row is 2,0")
    assert "the limit is 1,024 bytes per line (DATASET_MAX_LINE_KB)" in result.errors[0].reason
    assert parse_dataset(data, filename=filename, bounds=Bounds(max_line_bytes=4096)).ok


# --- synthetic -----------------------------------------------------------------------------------

LENGTHS = [1, 2, 3, 7, 16, 100, 511, 1000, 4097, 32000]


@pytest.mark.parametrize("target", LENGTHS)
def test_synthetic_prompts_have_exactly_the_target_length(qwen: Tokenizer, target: int) -> None:
    items = synthesize(
        qwen, n=3 if target > 5000 else 12, distribution={"kind": "fixed", "tokens": target}, seed=7
    )
    for item in items:
        assert item.input_tokens == target
        assert qwen.count(item.prompt) == target


def test_synthetic_lengths_are_exact_over_many_random_targets(qwen: Tokenizer) -> None:
    items = synthesize(qwen, n=300, distribution={"kind": "uniform", "min": 1, "max": 2500}, seed=3)
    assert len({i.input_tokens for i in items}) > 200
    assert all(qwen.count(i.prompt) == i.input_tokens for i in items)


def test_synthetic_is_exact_for_the_estimate_tokenizer_too() -> None:
    tok = load_tokenizer(None)
    items = synthesize(tok, n=50, distribution={"kind": "uniform", "min": 1, "max": 3000}, seed=1)
    assert all(math.ceil(len(i.prompt) / 4) == i.input_tokens for i in items)


class _NewlineTaxTokenizer(EstimateTokenizer):
    """Counts an extra token per newline, so decoded cuts miss their target and must be fixed up."""

    name = "newline tax"

    def count(self, text: str) -> int:
        return super().count(text) + text.count("\n")


def test_fix_up_reaches_the_target_when_cuts_miss() -> None:
    tok = _NewlineTaxTokenizer()
    items = synthesize(tok, n=200, distribution={"kind": "uniform", "min": 1, "max": 600}, seed=5)
    assert all(tok.count(i.prompt) == i.input_tokens for i in items)


class _EvenTokenizer(EstimateTokenizer):
    """Only even counts exist: no prompt can have an odd length."""

    name = "even"

    def count(self, text: str) -> int:
        return 2 * super().count(text)


def test_an_unreachable_length_fails_loudly_instead_of_looping() -> None:
    with pytest.raises(RuntimeError, match="exactly 7 tokens"):
        synthesize(_EvenTokenizer(), n=1, distribution={"kind": "fixed", "tokens": 7}, seed=0)


def test_same_seed_gives_identical_prompts_and_another_seed_does_not(qwen: Tokenizer) -> None:
    spec: dict[str, Any] = {"kind": "normal", "mean": 300, "std": 80, "min": 50, "max": 600}
    first = synthesize(
        qwen, n=20, distribution=spec, seed=11, output_tokens={"kind": "uniform", "min": 5, "max": 9}
    )
    again = synthesize(
        qwen, n=20, distribution=spec, seed=11, output_tokens={"kind": "uniform", "min": 5, "max": 9}
    )
    other = synthesize(
        qwen, n=20, distribution=spec, seed=12, output_tokens={"kind": "uniform", "min": 5, "max": 9}
    )
    assert first == again
    assert [i.prompt for i in first] != [i.prompt for i in other]


def test_prompts_of_one_length_are_all_different(qwen: Tokenizer) -> None:
    n = len(corpus_paragraphs()) + 50  # beyond one pass over the corpus's paragraph starts
    items = synthesize(load_tokenizer(None), n=n, distribution={"kind": "fixed", "tokens": 64}, seed=2)
    assert len({i.prompt for i in items}) == n
    qwen_items = synthesize(qwen, n=60, distribution={"kind": "fixed", "tokens": 128}, seed=2)
    assert len({i.prompt for i in qwen_items}) == 60


def test_shared_prefix_is_the_same_k_tokens_at_the_start_of_every_prompt_in_a_group(qwen: Tokenizer) -> None:
    k = 64
    items = synthesize(
        qwen, n=12, distribution={"kind": "uniform", "min": 100, "max": 400}, seed=4,
        shared_prefix_tokens=k, prefix_groups=3,
    )  # fmt: skip
    assert [i.prefix_group for i in items] == [0, 1, 2] * 4
    prefixes: dict[int, list[int]] = {}
    for item in items:
        ids = qwen.encode(item.prompt)
        assert len(ids) == item.input_tokens
        assert item.prefix_group is not None
        prefixes.setdefault(item.prefix_group, ids[:k])
        assert ids[:k] == prefixes[item.prefix_group]
        assert qwen.count(qwen.decode(ids[:k])) == k
    assert len({tuple(p) for p in prefixes.values()}) == 3
    assert len({i.prompt for i in items}) == 12


def test_a_prefix_as_long_as_a_prompt_is_refused(qwen: Tokenizer) -> None:
    with pytest.raises(ValueError, match="longer than the 100-token shared prefix"):
        synthesize(qwen, n=2, distribution={"kind": "fixed", "tokens": 100}, seed=0, shared_prefix_tokens=100)


def test_bucket_distribution_fills_each_bucket_exactly(qwen: Tokenizer) -> None:
    counts = {"0-1k": 5, "1k–4k": 3, "4096-16384": 2}
    items = synthesize(qwen, n=10, distribution={"kind": "buckets", "counts": counts}, seed=9)
    tally = Counter(bucket_label(i.input_tokens) for i in items)
    assert tally == {"0–1k": 5, "1k–4k": 3, "4k–16k": 2}
    assert all(qwen.count(i.prompt) == i.input_tokens for i in items)


@pytest.mark.parametrize(
    ("distribution", "n", "message"),
    [
        ({"kind": "buckets", "counts": {"0-1k": 2}}, 3, "add up to 2 but n is 3"),
        ({"kind": "buckets", "counts": {"48k+": 1}}, 1, "open-ended"),
        ({"kind": "uniform", "min": 10, "max": 5}, 1, "min (10) must not exceed max (5)"),
        ({"kind": "fixed", "tokens": 0}, 1, "tokens must be between 1"),
        ({"kind": "fixed", "tokens": "512"}, 1, "needs an integer 'tokens'"),
        ({"kind": "normal", "mean": 10, "std": -1}, 1, "std must not be negative"),
        ({"kind": "zipf"}, 1, "unknown distribution kind 'zipf'"),
    ],
)
def test_bad_distributions_are_refused(
    qwen: Tokenizer, distribution: dict[str, Any], n: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        synthesize(qwen, n=n, distribution=distribution, seed=0)


def test_distributions_stay_in_range_and_output_tokens_are_set() -> None:
    tok = load_tokenizer(None)
    normal = synthesize(
        tok, n=400, distribution={"kind": "normal", "mean": 200, "std": 50, "min": 150, "max": 260}, seed=1,
        output_tokens=32,
    )  # fmt: skip
    lengths = [i.input_tokens for i in normal]
    assert min(lengths) >= 150 and max(lengths) <= 260
    assert 190 < sum(lengths) / len(lengths) < 215
    assert {i.max_tokens for i in normal} == {32}
    none = synthesize(tok, n=3, distribution={"kind": "fixed", "tokens": 5}, seed=1)
    assert {i.max_tokens for i in none} == {None}


def test_synthetic_item_becomes_a_runner_prompt(qwen: Tokenizer) -> None:
    item = synthesize(qwen, n=1, distribution={"kind": "fixed", "tokens": 20}, seed=0, output_tokens=8)[0]
    assert item.to_prompt("s-1") == Prompt(id="s-1", text=item.prompt, input_tokens=20, max_tokens=8)


# --- buckets -------------------------------------------------------------------------------------


def test_default_labels_use_k_for_multiples_of_1024() -> None:
    assert bucket_labels() == ["0–1k", "1k–4k", "4k–16k", "16k–32k", "32k–48k", "48k+"]
    assert bucket_labels([0, 1500, 4096]) == ["0–1500", "1500–4k", "4k+"]


@pytest.mark.parametrize(
    ("tokens", "label"),
    [(0, "0–1k"), (1023, "0–1k"), (1024, "1k–4k"), (4095, "1k–4k"), (4096, "4k–16k"), (32768, "32k–48k"),
     (49151, "32k–48k"), (49152, "48k+"), (1_000_000, "48k+")],
)  # fmt: skip
def test_a_count_at_an_edge_belongs_to_the_bucket_the_edge_opens(tokens: int, label: str) -> None:
    assert bucket_label(tokens, DEFAULT_EDGES) == label
    assert bucket_labels()[bucket_index(tokens)] == label


def test_bad_edges_and_counts_below_the_first_edge_are_refused() -> None:
    with pytest.raises(ValueError, match="ascending"):
        bucket_index(5, [0, 100, 100])
    with pytest.raises(ValueError, match="below the first bucket edge"):
        bucket_index(5, [10, 100])


def test_labels_parse_back_in_every_spelling() -> None:
    for label, lo, hi in zip(bucket_labels(), DEFAULT_EDGES, [*DEFAULT_EDGES[1:], None], strict=True):
        assert parse_label(label) == (lo, hi)
    assert parse_label("1024-4096") == parse_label("1K - 4k") == (1024, 4096)
    with pytest.raises(ValueError, match="bad bucket"):
        parse_label("small")
    with pytest.raises(ValueError, match="upper bound must exceed"):
        parse_label("4k-1k")


def test_histogram_lists_every_bucket_including_empty_ones() -> None:
    rows = histogram([0, 1023, 1024, 60_000])
    assert [r["count"] for r in rows] == [2, 1, 0, 0, 0, 1]
    assert rows[1] == {"label": "1k–4k", "lo": 1024, "hi": 4096, "count": 1}
    assert rows[-1]["hi"] is None


def _prompts(lengths: list[int]) -> list[Prompt]:
    return [Prompt(id=str(i), text="x", input_tokens=n) for i, n in enumerate(lengths)]


def test_select_sends_only_prompts_from_the_chosen_buckets_in_order() -> None:
    prompts = _prompts([10, 2000, 20_000, 50_000, 1024, 1023, 17_000])
    chosen = select(prompts, ["1k–4k", "16k–32k"], "sequential")
    assert [p.input_tokens for p in chosen] == [2000, 20_000, 1024, 17_000]
    assert select(prompts, None, "sequential") == prompts
    assert [p.input_tokens for p in select(prompts, ["48k+"])] == [50_000]


def test_shuffled_select_is_a_seeded_permutation_of_the_chosen_prompts() -> None:
    prompts = _prompts(list(range(0, 4000, 10)))
    first = select(prompts, ["0-1k"], "shuffled", seed=3)
    assert first == select(prompts, ["0-1k"], "shuffled", seed=3)
    assert first != select(prompts, ["0-1k"], "sequential")
    assert sorted(p.input_tokens for p in first) == [p.input_tokens for p in prompts if p.input_tokens < 1024]


def test_weighted_select_draws_buckets_by_weight_and_only_the_chosen_ones() -> None:
    prompts = _prompts([100] * 5 + [2000] * 50 + [20_000] * 5)
    picks = select(
        prompts, ["0–1k", "16k–32k"], "weighted", weights={"0-1k": 3, "16k–32k": 1}, seed=1, n=4000
    )
    tally = Counter(bucket_label(p.input_tokens) for p in picks)
    assert set(tally) == {"0–1k", "16k–32k"}
    assert 2.6 < tally["0–1k"] / tally["16k–32k"] < 3.4
    equal = select(prompts, None, "weighted", seed=1, n=3000)
    assert all(abs(c - 1000) < 120 for c in Counter(bucket_label(p.input_tokens) for p in equal).values())


def test_weighted_select_refuses_weights_for_buckets_not_chosen() -> None:
    with pytest.raises(ValueError, match="not chosen"):
        select(_prompts([10]), ["0–1k"], "weighted", weights={"1k–4k": 1})
    with pytest.raises(ValueError, match="unknown order"):
        select(_prompts([10]), None, "random")  # type: ignore[arg-type]
