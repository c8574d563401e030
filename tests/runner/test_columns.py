"""The columnar summary (what finalize runs on big runs) gives exactly today's ``summarize``."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from runner import Prompt, Slo, columns_from, pack_series, summarize, summarize_columns

OUTCOMES = ["success"] * 12 + [
    "http_error",
    "timeout",
    "rate_limited",
    "cancelled",
    "empty_answer",
    "truncated_thinking",
    "length_stopped",
]


def record(i: int, rng: random.Random) -> dict[str, Any]:
    outcome = rng.choice(OUTCOMES)
    ok = outcome == "success"
    chunks = rng.randint(0, 12) if ok or outcome == "empty_answer" else 0
    server_tokens = rng.random() < 0.5
    t, packets = rng.uniform(20, 400), [["role", 5.0, 0, 0]]
    for _ in range(chunks):
        t += rng.expovariate(1 / 12)
        packets.append([rng.choice(["answer", "thinking"]), t, rng.randint(1, 3) if server_tokens else 0, 4])
        if rng.random() < 0.1:
            packets.append(["heartbeat", t, 0, 0])
    content = packets[1:]  # the gaps the engine would give: between any two packets after the role
    gaps = [b[1] - a[1] for a, b in itertools.pairwise(content)]
    maybe = lambda v: v if rng.random() > 0.15 else None  # noqa: E731
    answer = rng.choice(
        ["", "", "42", "  ", "Okay, so I need to add", "<think>hm</think> 7", "The answer is 3"]
    )
    out_tokens = maybe(rng.randint(0, 300))
    return {
        "request_id": f"r{i}",
        "prompt_id": f"p{i % 37}",
        "shard": i % 2,
        "level": (i % 3) if i % 5 else None,
        "variant": i % 2,
        "scheduled_s": i * 0.01 + rng.random() * 0.001,
        "schedule_lag_ms": rng.expovariate(2),
        "outcome": outcome,
        "finish_reason": rng.choice(["stop", "length", None]),
        "length_stopped": rng.random() < 0.2,
        "first_chunk_ms": maybe(rng.uniform(10, 300)),
        "ttft_ms": maybe(rng.uniform(10, 400)) if ok else None,
        "ttft_answer_ms": maybe(rng.uniform(10, 500)),
        "thinking_ms": maybe(rng.uniform(0, 100)),
        "e2e_ms": maybe(rng.choice([0.0, rng.uniform(100, 3000)])),
        "itl_ms": gaps,
        "tpot_ms": maybe(rng.uniform(1, 30)),
        "tokens_per_s": maybe(rng.uniform(5, 200)),
        "input_tokens": maybe(rng.choice([0, 200, 900, 2000, 5000, 20000])),
        "output_tokens": out_tokens,
        "thinking_tokens": maybe(rng.randint(0, 50)),
        "usage_input_tokens": maybe(rng.randint(0, 3000)),
        "usage_output_tokens": maybe(rng.randint(0, 300)),
        "client_input_tokens": maybe(rng.choice([100, 1500, 3000, 9000, 40000])),
        "client_output_tokens": maybe(rng.randint(0, 300)),
        "cached_input_tokens": maybe(rng.choice([0, 0, 128, 512])),
        "tokens_estimated": rng.random() < 0.1,
        "content_chunks": chunks,
        "answer_chars": len(answer) if rng.random() < 0.9 else 5,
        "answer_text": answer,
        "packets": packets,
        "correct": rng.choice([None, True, False]) if i % 4 else None,
    }


PROMPTS = [
    Prompt(id=f"p{i}", expected="42", meta={"subject": f"s{i % 3}", "level": i % 2}) for i in range(0, 37, 2)
]


@pytest.mark.parametrize("length_is_failure", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_columns_give_exactly_the_summary_of_the_records(seed: int, length_is_failure: bool) -> None:
    rng = random.Random(seed)
    records = [record(i, rng) for i in range(400)]
    kwargs: dict[str, Any] = {
        "duration_s": 12.5,
        "bucket_edges": [0, 1024, 4096, 16384],
        "slo": Slo(ttft_ms=250.0, tokens_per_s=20.0, e2e_ms=2500.0),
        "price_in_per_1k": 0.5,
        "price_out_per_1k": 1.5,
        "length_is_failure": length_is_failure,
        "prompts": PROMPTS,
    }
    expected = summarize(records, **kwargs)
    assert expected["requests"]["failures"] and len(expected["sweep"]) == 3 and expected["accuracy"]["graded"]
    assert expected["chunks"]["sources"].keys() >= {"server", "estimated_by_chars", "none"}
    # from whole records, and from lean ones (no packets, no gaps) with their stored series blobs
    assert summarize_columns(columns_from(records), **kwargs) == expected
    lean = [{k: v for k, v in r.items() if k not in ("packets", "itl_ms")} for r in records]
    assert summarize_columns(columns_from(lean, [pack_series(r) for r in records]), **kwargs) == expected


def test_a_mask_gives_the_summary_of_that_subset() -> None:
    rng = random.Random(9)
    records = [record(i, rng) for i in range(300)]
    columns = columns_from(records)
    for variant in (0, 1):
        mine = [r for r in records if r["variant"] == variant]
        mask = columns.f("variant") == variant
        assert summarize_columns(columns, duration_s=3.0, mask=mask, prompts=PROMPTS) == summarize(
            mine, duration_s=3.0, prompts=PROMPTS
        )


def test_no_records() -> None:
    assert summarize_columns(columns_from([]), duration_s=1.0) == summarize([], duration_s=1.0)
