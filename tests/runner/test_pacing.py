"""Open-loop sends leave on time: gates open at their instants, never before, and a send's bytes
go out in the loop turn right after its gate opens, however crowded the loop."""

from __future__ import annotations

import asyncio
import time
from time import perf_counter_ns
from typing import Any

import aiohttp
import pytest

from runner import engine as engine_mod
from runner.eager import started
from runner.engine import run
from runner.pacing import Pacer
from runner.simulator import SimulatorProcess
from runner.spec import EndpointSpec, ProfileSpec, Prompt, RunSpec, Timeouts
from tests.runner.crowd import crowded_loop


async def test_gates_open_in_order_at_their_instants_never_before() -> None:
    pacer = Pacer()
    try:
        t0 = perf_counter_ns()
        instants = [t0 + ms * 1_000_000 for ms in (9, 3, 6, 3, 12)]
        opened: list[tuple[int, int]] = []

        async def wait(k: int, t: int) -> None:
            await pacer.gate(t)
            opened.append((k, perf_counter_ns()))

        await asyncio.gather(*(wait(k, t) for k, t in enumerate(instants)))
        assert all(when >= instants[k] for k, when in opened)  # never early
        order = [k for k, _ in opened]
        assert sorted(instants[k] for k in order) == [instants[k] for k in order]
        assert pacer.gate(t0).done()  # an instant that has passed opens at once
    finally:
        pacer.close()


async def test_closing_the_pacer_cancels_the_gates_still_shut() -> None:
    pacer = Pacer()
    gate = pacer.gate(perf_counter_ns() + 10_000_000_000)
    pacer.close()
    with pytest.raises(asyncio.CancelledError):
        await gate


async def test_started_runs_a_coroutine_to_its_first_suspension_and_passes_the_rest_through() -> None:
    steps: list[str] = []

    async def body() -> int:
        steps.append("before")
        await asyncio.sleep(0)
        steps.append("after")
        return 7

    rest = started(body())
    assert steps == ["before"]  # ran in the caller's turn
    assert await asyncio.create_task(rest) == 7 and steps == ["before", "after"]

    async def fails() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await started(fails())

    async def waits() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            steps.append("cancelled")
            raise

    task = asyncio.create_task(started(waits()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert steps[-1] == "cancelled"  # the cancellation reached the coroutine itself


async def test_an_open_loop_send_is_written_in_the_turn_after_its_instant_on_a_crowded_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """40 tasks keep the loop busy (every turn takes about 80 ms). The pacer's timer callback opens
    the gate; the request's bytes must leave in the next turn: no driver wake-up, task start or
    body-writer task in between (each would add a crowded turn)."""
    loop = asyncio.get_running_loop()
    turn = 0
    stop = asyncio.Event()  # ends the turn counter

    def tick() -> None:
        nonlocal turn
        turn += 1
        if not stop.is_set():
            loop.call_soon(tick)

    opened: dict[int, int] = {}  # instant -> the turn its gate opened in
    fired = Pacer._fired

    def spy_fired(self: Pacer) -> None:
        shut = {t for t, _, _ in self._due}
        fired(self)
        for t in shut - {t for t, _, _ in self._due}:
            opened[t] = turn

    writes: list[tuple[int, int]] = []
    timing = engine_mod.connection_timing

    def traced() -> aiohttp.TraceConfig:
        trace = timing()

        async def wrote(_s: Any, _ctx: Any, _p: Any) -> None:
            writes.append((turn, perf_counter_ns()))

        trace.on_request_chunk_sent.append(wrote)
        return trace

    monkeypatch.setattr(Pacer, "_fired", spy_fired)
    # prepared well before its instant, so the gate is still shut when the crowded driver gets there
    monkeypatch.setattr(engine_mod, "PREPARE_NS", 400_000_000)
    monkeypatch.setattr(engine_mod, "connection_timing", traced)
    with SimulatorProcess(ttft_ms=20, itl_ms=2, output_tokens=3) as sim:
        spec = RunSpec(
            endpoint=EndpointSpec(
                protocol="openai-chat", base_url=sim.base_url, model="sim", timeouts=Timeouts(total=30)
            ),
            prompts=[Prompt(id="p", text="hello")],
            profile=ProfileSpec(kind="rate", rate=2, arrival="constant"),
            duration_s=None,
            max_requests=3,
            warm_connections=2,
        )
        loop.call_soon(tick)
        async with crowded_loop():
            result = await run(spec)
        stop.set()
    assert len(result.records) == 3 and all(r.ok for r in result.records)
    assert len(writes) == 3  # warm-up GETs have no body: only the three POSTs write one
    for (write_turn, write_ns), rec in zip(
        writes, sorted(result.records, key=lambda r: r.scheduled_s), strict=True
    ):
        sched = result.t0_ns + round(rec.scheduled_s * 1e9)
        instant = min(opened, key=lambda t: abs(t - sched))
        assert abs(instant - sched) < 2_000  # the gate of this very send
        assert write_turn - opened[instant] <= 1, (write_turn, opened[instant])
        assert write_ns >= sched  # never before its instant


async def test_a_task_cancelled_before_its_first_step_still_cancels_the_started_coroutine() -> None:
    """The eagerly started coroutine's own cleanup runs (aiohttp's body writer closes its connection
    there) even when its task is cancelled before the task ever stepped it."""
    steps: list[str] = []

    async def writer() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            steps.append("cleanup")
            raise

    task = asyncio.create_task(started(writer()))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert steps == ["cleanup"]


async def test_gates_already_due_open_in_order_even_before_the_timer_callback_runs() -> None:
    """A caller that finds an instant past (the loop was busy) opens the earlier gates first, and
    closing the pacer opens the gates that are due instead of cancelling their sends."""
    pacer = Pacer()
    t0 = perf_counter_ns()
    first, second = pacer.gate(t0 + 2_000_000), pacer.gate(t0 + 3_000_000)
    time.sleep(0.004)  # both instants pass while the loop is held: the timer callback has not run
    late = pacer.gate(t0 + 3_500_000)
    assert first.done() and second.done() and late.done()  # opened in the same call, in order
    third = pacer.gate(perf_counter_ns() + 1_000_000)
    later = pacer.gate(perf_counter_ns() + 10_000_000_000)
    time.sleep(0.002)
    pacer.close()
    assert third.done() and not third.cancelled()  # due at close: opened, its send goes out
    assert later.cancelled()
