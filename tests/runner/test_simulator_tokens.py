"""With ``--tokenizer qwen3`` the simulator's usage is the client's Qwen3 count: prompts are counted
through the chat template as a chat server does, and scripted text (reasoning preamble, boxed answer)
is streamed one Qwen3 token per piece, so the token audit is clean unless a fault is configured."""

from __future__ import annotations

import pytest

from runner.datasets.shipped import MATH_TEMPLATE, apply_template, load_builtin
from runner.engine import run
from runner.simulator import SimulatorProcess
from runner.simulator.tokens import VOCAB, load_sim_tokenizer, token_pieces
from runner.spec import EndpointSpec, ProfileSpec, Prompt, RunSpec
from runner.tokenizers import load_tokenizer

pytestmark = pytest.mark.timeout(120)
MATH = load_builtin("builtin:math500")[:12]
REASONING = {"ttft_ms": 5, "itl_ms": 0.2, "thinking_tokens": 48, "answer_key": "builtin:math500"}


def _spec(url: str) -> RunSpec:
    prompts = [
        Prompt(
            id=str(item.metadata["unique_id"]),
            messages=[{"role": "user", "content": apply_template(MATH_TEMPLATE, item.prompt or "")}],
            expected=item.expected,
        )
        for item in MATH
    ]
    endpoint = EndpointSpec(protocol="openai-chat", base_url=url, model="sim", tokenizer="qwen3")
    return RunSpec(
        endpoint=endpoint,
        prompts=prompts,
        profile=ProfileSpec(kind="users", users=4),
        duration_s=None,
        max_requests=len(prompts),
    )


def test_pieces_join_to_the_text_and_number_its_tokens() -> None:
    qwen = load_tokenizer("qwen3")
    for text in ["The final answer is $\\boxed{\\frac{14}{3}}$.", "Okay, 30° — ünïcode ✓ step by step."]:
        pieces = token_pieces(qwen, text)
        assert "".join(pieces) == " " + text
        assert len(pieces) == qwen.count(" " + text)
    assert token_pieces(None, "a b  c") == [" a", " b", " c"]
    assert load_sim_tokenizer("qwen3") is not None and all(qwen.count(w) == 1 for w in VOCAB)
    with pytest.raises(ValueError, match="tokenizer"):
        load_sim_tokenizer("/no/such/tokenizer.json")


async def test_usage_equals_the_qwen3_count_and_the_audit_is_clean() -> None:
    qwen = load_tokenizer("qwen3")
    async with SimulatorProcess(**REASONING, tokenizer="qwen3") as sim:
        result = await run(_spec(sim.base_url))
    ok = [r for r in result.records if r.ok]
    assert len(ok) == len(MATH)
    for rec in ok:
        assert rec.usage_output_tokens == rec.client_output_tokens
        assert rec.correct  # the boxed answer survived being cut into Qwen3 pieces
    messages = {p.id: p.messages for p in _spec("http://x/v1").prompts}
    assert [r.usage_input_tokens for r in ok] == [
        qwen.count_messages(messages[r.prompt_id] or []) for r in ok
    ]
    audit = result.summary["token_audit"]
    assert audit["compared"] == len(MATH) and audit["disagreeing"] == 0 and audit["discrepancy_pct"] == 0


async def test_without_the_tokenizer_words_disagree_and_a_fault_is_still_flagged() -> None:
    """The control: one word per token is not Qwen3's count, and a misreporting server is caught."""
    async with SimulatorProcess(**REASONING) as sim:
        words = (await run(_spec(sim.base_url))).summary["token_audit"]
    async with SimulatorProcess(**REASONING, tokenizer="qwen3", misreport_usage=1.2) as sim:
        faulty = (await run(_spec(sim.base_url))).summary["token_audit"]
    assert words["disagreeing"] > 0
    assert faulty["disagreeing"] == len(MATH) and faulty["discrepancy_pct"] > 15
