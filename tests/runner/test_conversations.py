"""Multi-turn conversations: each turn waits for the previous answer and carries it as history."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest

from runner.engine import run
from runner.simulator import SimulatorProcess
from runner.spec import EndpointSpec, ProfileSpec, Prompt, RunSpec

pytestmark = pytest.mark.timeout(120)


def spec(url: str, prompts: list[Prompt], profile: ProfileSpec, **kw: Any) -> RunSpec:
    return RunSpec(
        endpoint=EndpointSpec(protocol="openai-chat", base_url=url, model="sim"),
        prompts=prompts,
        profile=profile,
        duration_s=None,
        **kw,
    )


async def test_a_replayed_conversation_sends_each_turn_after_the_previous_answer_plus_its_gap() -> None:
    prompts = [
        Prompt(id="a1", text="first question", session="A"),
        Prompt(id="b1", text="a lone request"),
        Prompt(id="a2", text="second question", session="A"),
        Prompt(id="a3", text="third question", session="A"),
    ]
    # the trace puts A's turns 20 ms apart, far less than one answer takes (about 0.25 s)
    entries = [
        {"t_s": 0.0, "prompt": 0},
        {"t_s": 0.01, "prompt": 1},
        {"t_s": 0.02, "prompt": 2},
        {"t_s": 0.04, "prompt": 3},
    ]
    with SimulatorProcess(ttft_ms=50, itl_ms=10, output_tokens=20) as sim:
        result = await run(spec(sim.base_url, prompts, ProfileSpec(kind="replay", replay=entries)))
        served = {x["request_id"]: x for x in httpx.get(sim.url + "/sim/log").json()}
    recs = {r.prompt_id: r for r in result.records}
    assert set(recs) == {"a1#t1", "b1", "a2#t2", "a3#t3"} and all(r.ok for r in recs.values())
    for earlier, later in (("a1#t1", "a2#t2"), ("a2#t2", "a3#t3")):
        ended_ms = recs[earlier].scheduled_s * 1000 + recs[earlier].e2e_ms  # type: ignore[operator]
        assert recs[later].scheduled_s * 1000 >= ended_ms + 20 - 1  # never before answer + gap
        assert recs[later].ttft_ms < 100  # type: ignore[operator]  # counted from that instant
    # each turn carries the history: the server saw the earlier questions and answers grow
    tokens = [served[recs[k].request_id]["prompt_tokens"] for k in ("a1#t1", "a2#t2", "a3#t3")]
    assert tokens[0] + 20 < tokens[1] and tokens[1] + 20 < tokens[2]


async def test_closed_loop_users_hold_conversations_with_think_time() -> None:
    convo = Prompt(
        id="c",
        messages=[
            {"role": "user", "content": "hello there"},
            {"role": "assistant", "content": "(the dataset's answer, replaced by the model's)"},
            {"role": "user", "content": "tell me more"},
            {"role": "assistant", "content": "..."},
            {"role": "user", "content": "and finally?"},
        ],
    )
    profile = ProfileSpec(kind="users", users=2, spawn_rate=100, turns=3, think_s=0.2)
    with SimulatorProcess(ttft_ms=20, itl_ms=5, output_tokens=10) as sim:
        result = await run(spec(sim.base_url, [convo], profile, max_requests=2))
        served = {x["request_id"]: x for x in httpx.get(sim.url + "/sim/log").json()}
    by_user: dict[int, list[Any]] = {}
    for r in sorted(result.records, key=lambda r: r.scheduled_s):
        by_user.setdefault(r.user, []).append(r)
    assert len(by_user) == 2
    for turns in by_user.values():
        assert [r.prompt_id for r in turns] == ["c#t1", "c#t2", "c#t3"] and all(r.ok for r in turns)
        tokens = [served[r.request_id]["prompt_tokens"] for r in turns]
        assert tokens[0] < tokens[1] < tokens[2]
        for a, b in itertools.pairwise(turns):
            assert b.scheduled_s * 1000 >= a.scheduled_s * 1000 + a.e2e_ms + 200 - 1  # think time


def _ab(a: str, b: str, prompts: list[Prompt], profile: ProfileSpec, **kw: Any) -> RunSpec:
    out = spec(a, prompts, profile, **kw)
    out.variants = [out.endpoint, EndpointSpec(protocol="openai-chat", base_url=b, model="sim")]
    return out


def _served(*sims: SimulatorProcess) -> dict[str, dict[str, Any]]:
    return {x["request_id"]: x for sim in sims for x in httpx.get(sim.url + "/sim/log").json()}


@pytest.mark.parametrize("mode", ["simultaneous", "interleaved"])
async def test_ab_each_variant_holds_its_own_copy_of_a_users_conversation(mode: str) -> None:
    """Every turn of one copy goes to one variant (recorded on each turn), and its history is made of
    that variant's answers: variant 1 answers 30 tokens, variant 0 answers 5, so variant 1's later
    turns carry 25 more tokens of history per earlier turn."""
    convo = Prompt(
        id="c",
        messages=[
            {"role": "user", "content": "hello there"},
            {"role": "user", "content": "tell me more"},
            {"role": "user", "content": "and finally?"},
        ],
    )
    profile = ProfileSpec(kind="users", users=1, spawn_rate=100, turns=3)
    with (
        SimulatorProcess(ttft_ms=10, itl_ms=2, output_tokens=5) as short,
        SimulatorProcess(ttft_ms=10, itl_ms=2, output_tokens=30) as long,
    ):
        result = await run(_ab(short.base_url, long.base_url, [convo], profile, max_requests=1, ab_mode=mode))
        at_short = {x["request_id"] for x in httpx.get(short.url + "/sim/log").json()}
        served = _served(short, long)
    assert len(result.records) == 6 and all(r.ok for r in result.records)
    by_variant: dict[int, list[Any]] = {}
    for r in sorted(result.records, key=lambda r: r.prompt_id):
        by_variant.setdefault(r.variant, []).append(r)
    assert sorted(by_variant) == [0, 1]
    for variant, turns in by_variant.items():
        assert [r.prompt_id for r in turns] == ["c#t1", "c#t2", "c#t3"]
        # every turn of this copy reached this variant's server, none the other's
        assert all((r.request_id in at_short) == (variant == 0) for r in turns)
    tokens = {v: [served[r.request_id]["prompt_tokens"] for r in turns] for v, turns in by_variant.items()}
    assert tokens[0][0] == tokens[1][0]  # the same first question
    assert tokens[1][1] - tokens[0][1] == 25  # one earlier answer: 30 vs 5 tokens
    assert tokens[1][2] - tokens[0][2] == 50  # two earlier answers


async def test_ab_a_replayed_conversation_is_replayed_to_each_variant_with_its_own_history() -> None:
    prompts = [
        Prompt(id="a1", text="first question", session="A"),
        Prompt(id="a2", text="second question", session="A"),
    ]
    entries = [{"t_s": 0.0, "prompt": 0}, {"t_s": 0.02, "prompt": 1}]
    with (
        SimulatorProcess(ttft_ms=20, itl_ms=5, output_tokens=5) as short,
        SimulatorProcess(ttft_ms=20, itl_ms=5, output_tokens=30) as long,
    ):
        result = await run(
            _ab(short.base_url, long.base_url, prompts, ProfileSpec(kind="replay", replay=entries))
        )
        at_short = {x["request_id"] for x in httpx.get(short.url + "/sim/log").json()}
        served = _served(short, long)
    recs = {(r.variant, r.prompt_id): r for r in result.records}
    assert set(recs) == {(v, p) for v in (0, 1) for p in ("a1#t1", "a2#t2")}
    assert all(r.ok for r in recs.values())
    assert all((r.request_id in at_short) == (v == 0) for (v, _), r in recs.items())
    for v in (0, 1):  # each copy's second turn waits for its own first answer
        first, second = recs[(v, "a1#t1")], recs[(v, "a2#t2")]
        assert second.scheduled_s * 1000 >= first.scheduled_s * 1000 + first.e2e_ms + 20 - 1  # type: ignore[operator]
    second = {v: served[recs[(v, "a2#t2")].request_id]["prompt_tokens"] for v in (0, 1)}
    assert second[1] - second[0] == 25
