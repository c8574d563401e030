"""The load engine: drives a profile against an endpoint and measures every stream.

``run()`` is the asyncio entry point (CLI, tests; :mod:`runner.blocking` wraps it for Celery).
The event loop only measures: sends go out on a precise clock (:mod:`runner.pacing`), bytes are
stamped as they arrive, and everything the engine does for itself — token counts, records for the
sink, stats deltas — is cut into slices short enough (well under a millisecond each) that no send
and no stamp waits behind them. The garbage collector is off while measuring (records hold no
cycles; reference counting frees them) and runs once at the end. Records reach the sink about every
second, so a crash loses at most that second.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import ipaddress
import itertools
import random
import time
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any, Protocol

import aiohttp
from yarl import URL

from runner import profiles
from runner.accuracy import grade_records
from runner.analysis import StreamAnalyzer
from runner.conversations import Conversation, remember, turn_prompt, user_turns
from runner.limits import LimitExceeded, Limits, run_problems
from runner.monitor import EngineMonitor
from runner.pacing import Pacer
from runner.policy import PolicyResolver, TargetPolicy
from runner.postprocess import Finished, PostProcessor, load_tokenizer, mismatch_pct
from runner.protocols import adapter_for, make_parser
from runner.protocols.base import prompt_text
from runner.records import Outcome, PacketKind, RequestRecord
from runner.spec import EndpointSpec, Prompt, RunSpec, endpoint_secrets, scrub
from runner.stats import ShardStats
from runner.summary import percentile, summarize
from runner.transport import (
    REQUEST_CLASS,
    connection_timing,
    exchange,
    sdk_client,
    sdk_exchange,
    stamping,
)

LATE_NS = 10_000_000  # a send more than 10 ms behind its schedule counts as late
FLUSH_S = 1.0
PREPARE_NS = 2_000_000  # an open-loop send is prepared this long before its instant
SLICE = 16  # records handled per loop turn while flushing (about half a millisecond)


class Sink(Protocol):
    async def on_records(self, batch: list[dict[str, Any]]) -> None: ...
    async def on_tick(self, delta: dict[str, Any]) -> None: ...


@dataclass
class RunResult:
    records: list[RequestRecord]
    summary: dict[str, Any]
    ended_by: str
    engine: dict[str, Any]
    duration_s: float
    errors: list[str] = field(default_factory=list)
    t0_ns: int = 0  # perf_counter_ns() at the run's start: records' scheduled_s count from here


class Engine:
    def __init__(
        self,
        spec: RunSpec,
        sink: Sink | None = None,
        cancel: asyncio.Event | None = None,
        limits: Limits | None = None,
    ) -> None:
        if not spec.prompts:
            raise ValueError("a run needs at least one prompt")
        if limits is not None and (problems := run_problems(spec, limits)):
            raise LimitExceeded(problems)  # before anything is sent
        self.spec, self.sink = spec, sink
        self.cancel = cancel or asyncio.Event()
        self.ep = spec.endpoint
        # A/B: the same schedule and prompts go to every variant; otherwise the one endpoint
        self.endpoints = spec.variants or [spec.endpoint]
        self.adapters = [adapter_for(e.protocol) for e in self.endpoints]
        self.secrets = [endpoint_secrets(e) for e in self.endpoints]
        # a replayed session's state per A/B variant: each variant holds its own copy of the
        # conversation, its history made of that variant's answers only
        self.conversations: dict[tuple[str, int], Conversation] = {}
        self.policy = TargetPolicy.from_dict(spec.target_policy)
        self.profile = spec.profile
        self.stats = ShardStats(spec.shard_index)
        self.monitor = EngineMonitor()
        self.stop = asyncio.Event()
        self.flusher_stop = asyncio.Event()
        self.records: list[RequestRecord] = []
        self.pending: list[Finished] = []
        self.in_flight: set[asyncio.Task[None]] = set()
        self.active_users = 0
        self.sent = self.late = self.capped = 0  # requests made (all variants)
        self.backoffs = self.retry_after_waits = 0  # closed-loop pauses, and their total length
        self.paused_s = 0.0
        self.taken = 0  # prompts taken from the schedule (one per variant group)
        self.seq = itertools.count()
        self.schedule_lags: list[float] = []
        self.read_queue_ms: list[float] = []  # per request: its longest read-to-task wait
        self.errors: list[str] = []
        self.post = PostProcessor(None)
        self._order = self._prompt_order()
        self.t0 = 0
        self.second0 = 0
        self.stop_elapsed = 0.0
        self.drain_expired = False
        self.session: aiohttp.ClientSession | None = None
        self.fresh: aiohttp.ClientSession | None = None
        self.sdks: dict[int, Any] = {}

    # -- public --------------------------------------------------------------------------------
    async def run(self) -> RunResult:
        # The collector would stop the loop for tens of ms at random moments while thousands of
        # records are alive (a pass over every tracked object), which shows up as TTFT. Records are
        # tuples and lists of numbers without cycles, so reference counting frees what the run no
        # longer needs; the few cycles aiohttp leaves behind wait for one collection at the end.
        was_enabled = gc.isenabled()
        gc.freeze()
        gc.disable()
        try:
            return await self._run()
        finally:
            gc.unfreeze()
            if was_enabled:
                gc.enable()
            gc.collect()

    async def _run(self) -> RunResult:
        await self._setup()
        self.monitor.start()
        flusher = asyncio.create_task(self._flusher())
        self.t0 = perf_counter_ns()
        self.second0 = max(0, int(self.spec.start_offset_s))
        self.stats.second0 = self.second0
        driver = asyncio.create_task(
            self._open_loop() if profiles.is_open_loop(self.profile) else self._closed_loop()
        )
        ended_by = await self._wait_for_end(driver)
        self.stop.set()
        self.stop_elapsed = self._elapsed()
        await self._drain(cancelled=ended_by == "cancel")
        driver.cancel()
        await asyncio.gather(driver, return_exceptions=True)
        end_ns = perf_counter_ns()
        self.flusher_stop.set()  # never cancel a flush half-way: a taken batch would be lost
        await flusher
        await self.monitor.stop()
        engine = self._engine_report()
        try:
            await self._flush(final=True, engine=engine)
        except Exception as exc:  # the result is returned even when the sink's last call fails
            self.errors.append(f"sink failed on the final flush: {exc!r}")
        await self._teardown()
        duration_s = (end_ns - self.t0) / 1e9
        await self._grade()
        ep = self.ep
        summary = summarize(
            self.records,
            duration_s=duration_s,
            bucket_edges=self.spec.bucket_edges,
            slo=self.spec.slo,
            price_in_per_1k=ep.price_in_per_1k,
            price_out_per_1k=ep.price_out_per_1k,
            currency=ep.currency,
            length_is_failure=self.spec.length_is_failure,
            engine=engine,
            level_duration_s=self.profile.level_duration_s if self.profile.kind == "sweep" else None,
            prompts=self.spec.prompts,
        )
        # the run's duration includes the drain (the last answers); the load phase is shorter
        summary["load_duration_s"] = self.stop_elapsed
        summary["throughput"]["sent_per_s"] = self.sent / self.stop_elapsed if self.stop_elapsed > 0 else None
        if self.spec.variants:
            summary["variants"] = [
                {
                    "variant": v,
                    "model": vep.model,
                    "base_url": vep.base_url,
                    **summarize(
                        [r for r in self.records if r.variant == v],
                        duration_s=duration_s,
                        bucket_edges=self.spec.bucket_edges,
                        slo=self.spec.slo,
                        price_in_per_1k=vep.price_in_per_1k,
                        price_out_per_1k=vep.price_out_per_1k,
                        currency=vep.currency,
                        length_is_failure=self.spec.length_is_failure,
                        prompts=self.spec.prompts,
                    ),
                }
                for v, vep in enumerate(self.endpoints)
            ]
        return RunResult(self.records, summary, ended_by, engine, duration_s, self.errors, self.t0)

    async def _grade(self) -> None:
        """Answers against expected ones, after the measuring is over: symbolically, in worker
        processes with a time limit per item (sympy can hold the GIL for long). While the run went
        on, a textual pass gave the live view its running accuracy."""
        if not any(p.expected is not None for p in self.spec.prompts):
            return
        prompts = {p.id: p for p in self.spec.prompts}
        try:
            await asyncio.to_thread(grade_records, self.records, prompts)
        except Exception as exc:  # the textual verdicts stay; the records are kept
            self.errors.append(f"grading failed: {exc!r}")

    # -- setup ---------------------------------------------------------------------------------
    async def _setup(self) -> None:
        self.post = PostProcessor(await asyncio.to_thread(load_tokenizer, self.ep.tokenizer))
        peak = profiles.peak_concurrency(self.profile) or 64
        for v, ep in enumerate(self.endpoints):
            if ep.protocol == "openai-sdk":
                self.sdks[v] = sdk_client(ep)
        self._check_targets()
        if len(self.sdks) == len(self.endpoints):
            return
        self.session = self._session(force_close=False)
        self.fresh = self._session(force_close=True)  # retries of requests whose pooled connection died
        warm = self.spec.warm_connections if self.spec.warm_connections >= 0 else min(max(peak, 16), 1024)
        for ep in self.endpoints:
            if warm and ep.protocol not in ("generic-ws", "openai-sdk"):
                await self._warm(ep, warm)

    def _check_targets(self) -> None:
        """Addresses written as IP literals never reach a resolver: checked here, once."""
        for ep in self.endpoints:
            url = URL(ep.base_url)
            host = (url.host or "").strip("[]")
            try:
                ipaddress.ip_address(host)
            except ValueError:
                continue  # a name: checked by the resolver on every connection
            self.policy.check(host, host, url.port or 0)

    def _session(self, *, force_close: bool) -> aiohttp.ClientSession:
        t = self.ep.timeouts
        resolver = PolicyResolver(self.policy)
        if force_close:
            connector = aiohttp.TCPConnector(
                limit=0, force_close=True, enable_cleanup_closed=True, resolver=resolver
            )
        else:
            connector = aiohttp.TCPConnector(
                limit=0, keepalive_timeout=75, enable_cleanup_closed=True, resolver=resolver
            )
        return aiohttp.ClientSession(
            connector=stamping(connector),
            timeout=aiohttp.ClientTimeout(total=None, connect=t.connect, sock_connect=t.connect),
            auto_decompress=True,
            trace_configs=[connection_timing()],
            request_class=REQUEST_CLASS,
        )

    async def _warm(self, ep: EndpointSpec, n: int) -> None:
        """Open connections before the clock starts, so no TTFT pays for TCP setup."""
        assert self.session is not None
        url = ep.base_url.rstrip("/") + "/models"

        async def one() -> None:
            with contextlib.suppress(Exception):
                async with self.session.get(url, headers=ep.headers or None) as resp:  # type: ignore[union-attr]
                    await resp.read()

        await asyncio.gather(*(one() for _ in range(n)))

    async def _teardown(self) -> None:
        for session in (self.session, self.fresh):
            if session is not None:
                await session.close()
        for client in self.sdks.values():
            await client.close()

    # -- ending --------------------------------------------------------------------------------
    def _end_after(self) -> float | None:
        limits = [d for d in (self.spec.duration_s, profiles.duration(self.profile)) if d]
        return min(limits) if limits else None

    async def _wait_for_end(self, driver: asyncio.Task[None]) -> str:
        cancel = asyncio.create_task(self.cancel.wait())
        waiters: set[asyncio.Task[Any]] = {cancel, driver}
        limit = self._end_after()
        timer = asyncio.create_task(asyncio.sleep(limit)) if limit else None
        if timer:
            waiters.add(timer)
        done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for t in (cancel, timer):
            if t is not None and t not in done:
                t.cancel()
        if cancel in done:
            return "cancel"
        if timer is not None and timer in done:
            return "duration"
        if driver.exception() is not None:
            self.errors.append(f"driver failed: {driver.exception()!r}")
            return "error"
        return "requests" if self._exhausted() else "profile"

    async def _drain(self, cancelled: bool) -> None:
        if self.in_flight and not cancelled:
            cancel = asyncio.create_task(self.cancel.wait())
            all_done = asyncio.create_task(asyncio.wait(set(self.in_flight)))
            await asyncio.wait(
                {all_done, cancel}, timeout=self.spec.drain_s, return_when=asyncio.FIRST_COMPLETED
            )
            cancel.cancel()
            all_done.cancel()
            if self.in_flight and not self.cancel.is_set():
                # still running drain_s after the end: slow requests, counted as timeouts so the
                # tail is not hidden (a user's cancel, by contrast, marks them cancelled)
                self.drain_expired = True
        for task in list(self.in_flight):
            task.cancel()
        if self.in_flight:
            await asyncio.gather(*self.in_flight, return_exceptions=True)

    # -- prompts -------------------------------------------------------------------------------
    def _prompt_order(self) -> Any:
        n = len(self.spec.prompts)
        idx = list(range(n))
        if self.spec.sample_order == "shuffled":
            random.Random(self.profile.seed * 31).shuffle(idx)  # one order for all shards, then strided
        # shards interleave: shard i takes i, i+count, ... so together they walk the dataset once
        start, step = self.spec.shard_index % n, max(1, self.spec.shard_count)
        return (idx[(start + k * step) % n] for k in itertools.count())

    def _next_prompt(self, index: int | None = None) -> Prompt | None:
        limit = self.spec.max_requests
        if self.stop.is_set() or (limit is not None and self.taken >= limit):
            return None
        self.taken += 1
        prompts = self.spec.prompts
        return (
            prompts[index % len(prompts)] if index is not None and index >= 0 else prompts[next(self._order)]
        )

    # -- drivers -------------------------------------------------------------------------------
    def _elapsed(self) -> float:
        return (perf_counter_ns() - self.t0) / 1e9

    def _second(self, t_ns: int) -> int:
        return self.second0 + (t_ns - self.t0) // 1_000_000_000

    async def _closed_loop(self) -> None:
        users: list[tuple[asyncio.Task[None], asyncio.Event]] = []
        shape_end = profiles.duration(self.profile)
        while not self.stop.is_set():
            users = [(t, f) for t, f in users if not t.done()]
            if self._exhausted() or (shape_end is not None and self._elapsed() > shape_end):
                if not users:
                    return  # every request sent and answered, or the shape has ended
            else:
                target = profiles.users_at(self.profile, self._elapsed())
                live = [(t, f) for t, f in users if not f.is_set()]
                for _ in range(target - len(live)):
                    flag = asyncio.Event()
                    users.append((asyncio.create_task(self._user(len(users), flag)), flag))
                for _, flag in live[target:]:
                    flag.set()  # ramp down: this user stops after its current request
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), 0.05)

    def _exhausted(self) -> bool:
        limit = self.spec.max_requests
        return limit is not None and self.taken >= limit

    async def _user(self, index: int, leave: asyncio.Event) -> None:
        self.active_users += 1
        failures_in_a_row = 0
        try:
            while not self.stop.is_set() and not leave.is_set():
                level = profiles.level_at(self.profile, self._elapsed())
                prompt = self._next_prompt()
                if prompt is None:
                    return
                prompt = with_budget(prompt, profiles.budget_at(self.profile, level))
                task = asyncio.current_task()
                assert task is not None
                self.in_flight.add(task)
                try:
                    if self.profile.turns > 1:
                        recs = await self._conversation(prompt, index, level, leave)
                    else:
                        recs = await self._to_variants(prompt, perf_counter_ns(), index, level)
                finally:
                    self.in_flight.discard(task)
                pause, failures_in_a_row = self._pause_after(recs, failures_in_a_row)
                if pause > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stop.wait(), pause)
        finally:
            self.active_users -= 1

    async def _conversation(
        self, prompt: Prompt, user: int, level: int | None, leave: asyncio.Event
    ) -> list[RequestRecord]:
        """A closed-loop user's conversation: up to ``turns`` of the item's user turns, each with the
        model's own earlier answers as history, ``think_s`` apart. With A/B variants every variant
        holds its own copy of the conversation, all of its turns to that variant (its history is that
        variant's answers), each turn sent to the variants as :meth:`_to_variants` sends a prompt.
        Returns the last turn's records."""
        histories: list[list[dict[str, Any]]] = [[] for _ in self.endpoints]
        live = list(range(len(self.endpoints)))
        recs: list[RequestRecord] = []
        for turn, text in enumerate(user_turns(prompt)[: self.profile.turns], start=1):
            if turn > 1:
                if self.profile.think_s > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stop.wait(), self.profile.think_s)
                if self.stop.is_set() or leave.is_set():
                    break
            turns = {v: turn_prompt(prompt, histories[v], text, turn) for v in live}
            recs = await self._turn_to_variants(turns, perf_counter_ns(), user, level, turn)
            for rec in recs:
                remember(histories[rec.variant], text, rec)
            # a failed turn ends that variant's copy of the conversation; the user starts a new one
            # once every copy has ended
            live = [rec.variant for rec in recs if rec.ok]
            if not live:
                break
        return recs

    async def _turn_to_variants(
        self, turns: dict[int, Prompt], sched_ns: int, user: int, level: int | None, turn: int
    ) -> list[RequestRecord]:
        """One turn of a conversation to each variant still holding it: all at once (simultaneous) or
        one after another, the order rotating by turn (interleaved). Records in variant order."""
        if len(turns) == 1 or self.spec.ab_mode == "simultaneous":
            return list(
                await asyncio.gather(*(self._request(p, sched_ns, user, level, v) for v, p in turns.items()))
            )
        order = sorted(turns)
        first = turn % len(order)
        recs = []
        for k in range(len(order)):
            v = order[(first + k) % len(order)]
            start = sched_ns if k == 0 else perf_counter_ns()
            recs.append(await self._request(turns[v], start, user, level, v))
        return sorted(recs, key=lambda r: r.variant)

    def _pause_after(self, recs: list[RequestRecord], failures_in_a_row: int) -> tuple[float, int]:
        """How long a closed-loop user waits before its next request: a 429's Retry-After, or an
        exponential back-off after connection-level failures (a dead target is not hammered)."""
        spec = self.spec
        retry_after = max((r.retry_after_s or 0.0 for r in recs), default=0.0)
        if retry_after > 0:
            self.retry_after_waits += 1
            wait = min(retry_after, spec.retry_after_max_s)
            self.paused_s += wait
            return wait, failures_in_a_row
        if not any(_connection_level(r) for r in recs):
            return 0.0, 0
        failures_in_a_row += 1
        if spec.backoff_max_s <= 0:
            return 0.0, failures_in_a_row
        wait = min(spec.backoff_max_s, spec.backoff_base_s * 2 ** (failures_in_a_row - 1))
        self.backoffs += 1
        self.paused_s += wait
        return wait, failures_in_a_row

    async def _open_loop(self) -> None:
        cap = self.profile.max_concurrency
        sem = asyncio.Semaphore(cap) if cap else None
        pacer = Pacer()
        try:
            last = await self._send_on_schedule(pacer, sem)
            await pacer.sleep_until(last)  # the last prepared sends are through their gates
        finally:
            pacer.close()  # on cancel: the sends still waiting at their gates end unsent

    async def _send_on_schedule(self, pacer: Pacer, sem: asyncio.Semaphore | None) -> int:
        """Each send is prepared up to ``PREPARE_NS`` before its instant (prompt, level, a
        concurrency slot, its task) and waits at a gate the pacer's timer opens: the request runs
        in the loop turn right after the instant. Returns the last instant prepared."""
        last = 0
        for t_s, index in profiles.arrivals(self.profile, self.spec.shard_index):
            sched = self.t0 + int(t_s * 1e9)
            await pacer.sleep_until(sched - PREPARE_NS)
            if self.stop.is_set():
                return last
            capped = False
            if sem is not None:
                if sem.locked():
                    capped = True
                await sem.acquire()
            prompt = self._next_prompt(index)
            if prompt is None:
                if sem is not None:
                    sem.release()
                return last
            level = profiles.level_at(self.profile, t_s)
            last = sched
            if prompt.session is not None:
                await pacer.sleep_until(sched)  # a turn keeps its own order and gaps
                if self.stop.is_set():
                    self.taken -= 1  # prepared, never sent
                    if sem is not None:
                        sem.release()
                    return last
                task = self._next_turn(prompt, sched, level, sem)
            else:
                gate = pacer.gate(sched)
                order = self.taken  # the A/B order is the prepared one, not the one at the gate
                task = asyncio.create_task(self._scheduled(prompt, sched, level, sem, capped, gate, order))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
        return last

    def _next_turn(
        self, prompt: Prompt, sched: int, level: int | None, sem: asyncio.Semaphore | None
    ) -> asyncio.Task[None]:
        """A replayed session's next turn, to each A/B variant's own copy of the conversation (its
        turns all to that variant, in the trace's order, side by side with the other copies)."""
        assert prompt.session is not None
        tasks = []
        for variant in range(len(self.endpoints)):
            talk = self.conversations.setdefault((prompt.session, variant), Conversation())
            gap = talk.gap_ns(sched)
            task = asyncio.create_task(self._turn(talk, talk.tail, prompt, sched, gap, level, variant))
            talk.tail = task
            tasks.append(task)
        return asyncio.create_task(self._turns_done(tasks, sem))

    async def _turns_done(self, tasks: list[asyncio.Task[None]], sem: asyncio.Semaphore | None) -> None:
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            if sem is not None:
                sem.release()

    async def _turn(
        self,
        talk: Conversation,
        previous: asyncio.Task[Any] | None,
        prompt: Prompt,
        sched: int,
        gap_ns: int,
        level: int | None,
        variant: int,
    ) -> None:
        """One replayed turn: after the previous answer ended plus the trace's gap, never before."""
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
            if talk.last_end_ns is not None:
                sched = max(sched, talk.last_end_ns + gap_ns)
                delay = (sched - perf_counter_ns()) / 1e9
                if delay > 0:
                    await asyncio.sleep(delay)
        if self.cancel.is_set():
            return  # a turn waiting for its predecessor still goes after the schedule's end
        text = prompt_text(prompt)
        turn = turn_prompt(prompt, talk.history, text, len(talk.history) // 2 + 1)
        rec = await self._request(turn, sched, -1, level, variant)
        remember(talk.history, text, rec)
        talk.last_end_ns = perf_counter_ns()

    async def _scheduled(
        self,
        prompt: Prompt,
        sched: int,
        level: int | None,
        sem: asyncio.Semaphore | None,
        capped: bool,
        gate: asyncio.Future[None],
        order: int,
    ) -> None:
        try:
            try:
                await gate
            except asyncio.CancelledError:
                self.taken -= 1  # the run was cancelled before this send's instant: never sent
                return
            if self.stop.is_set() and sched - self.t0 >= self.stop_elapsed * 1e9:
                self.taken -= 1  # its instant came after the run ended: never sent
                return
            await self._to_variants(prompt, sched, -1, level, capped, order)
        finally:
            if sem is not None:
                sem.release()

    async def _to_variants(
        self,
        prompt: Prompt,
        sched_ns: int,
        user: int,
        level: int | None,
        capped: bool = False,
        order: int | None = None,
    ) -> list[RequestRecord]:
        """One scheduled prompt: to the endpoint, or to every A/B variant under identical conditions —
        all at the scheduled instant (simultaneous) or one right after another (interleaved, the
        order rotating so no variant always goes first)."""
        n = len(self.endpoints)
        if n == 1:
            return [await self._request(prompt, sched_ns, user, level, 0, capped)]
        if self.spec.ab_mode == "simultaneous":
            return list(
                await asyncio.gather(
                    *(self._request(prompt, sched_ns, user, level, v, capped) for v in range(n))
                )
            )
        first = (self.taken if order is None else order) % n
        recs = []
        for k in range(n):
            start = sched_ns if k == 0 else perf_counter_ns()
            recs.append(await self._request(prompt, start, user, level, (first + k) % n, capped))
        return recs

    # -- one request ---------------------------------------------------------------------------
    async def _request(
        self,
        prompt: Prompt,
        sched_ns: int,
        user: int,
        level: int | None,
        variant: int = 0,
        capped: bool = False,
    ) -> RequestRecord:
        sent = perf_counter_ns()
        self.sent += 1
        ep, sdk = self.endpoints[variant], self.sdks.get(variant)
        rid = f"{self.spec.shard_index}-{next(self.seq)}"
        late = sent - sched_ns > LATE_NS
        self.late += late
        self.capped += late and capped  # held back by max_concurrency, not by the client itself
        self.stats.started(self._second(sent), late)
        a = StreamAnalyzer(sched_ns, sent)
        a.from_write = user >= 0  # a closed-loop user's request: from its actual send
        try:
            await self._exchange(a, ep, sdk, prompt, variant, rid)
        finally:
            end = perf_counter_ns()
            rec = a.record(rid, prompt.id, end, self.spec.keep_packet_text)
            if self.drain_expired and rec.outcome == Outcome.CANCELLED.value:
                rec.outcome, rec.timeout_kind = Outcome.TIMEOUT.value, "drain"
                rec.error = f"still running {self.spec.drain_s:.0f} s (drain_s) after the run ended"
            if rec.error and self.secrets[variant]:
                rec.error = scrub(rec.error, self.secrets[variant])  # servers echo keys in 401 bodies
            rec.shard, rec.user, rec.level, rec.variant = self.spec.shard_index, user, level, variant
            rec.scheduled_s = (a.origin_ns - self.t0) / 1e9  # where the record's times count from
            rec.started_epoch = time.time() - (end - sent) / 1e9
            thinking = "".join(p.text for p in a.packets if p.kind is PacketKind.THINKING)
            self.schedule_lags.append(rec.schedule_lag_ms)
            self.read_queue_ms.append(a.queued_ns / 1e6)
            self.pending.append(Finished(rec, prompt, thinking, end))
        return rec

    async def _exchange(
        self, a: StreamAnalyzer, ep: EndpointSpec, sdk: Any, prompt: Prompt, variant: int, rid: str
    ) -> None:
        try:
            req = self.adapters[variant].build(ep, prompt)
            parser = make_parser(ep.protocol, a, ep)
        except Exception as exc:  # e.g. a prompt the endpoint's template cannot take
            a.fail(Outcome.PROTOCOL_ERROR, f"could not build the request: {exc!r}")
            return
        if sdk is not None:
            await sdk_exchange(sdk, req, a, parser, ep.timeouts, rid)
            return
        assert self.session is not None
        await exchange(
            self.session,
            req,
            a,
            parser,
            ep.timeouts,
            rid,
            fresh=self.fresh,
            max_event_bytes=ep.max_event_bytes,
        )

    # -- flushing ------------------------------------------------------------------------------
    async def _flusher(self) -> None:
        while not self.flusher_stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.flusher_stop.wait(), FLUSH_S)
            if self.flusher_stop.is_set():
                return  # the final flush follows in run()
            try:
                await self._flush()
            except Exception as exc:
                self.errors.append(f"sink failed: {exc!r}")

    async def _flush(self, final: bool = False, engine: dict[str, Any] | None = None) -> None:
        batch, self.pending = self.pending, []
        if batch and self.post.needs_thread:
            self.errors.extend(await asyncio.to_thread(self.post.count, batch))
        rows: list[dict[str, Any]] = []
        for i in range(0, len(batch), SLICE):
            if i:
                await asyncio.sleep(0)  # let sends and stamps through between slices
            part = batch[i : i + SLICE]
            if not self.post.needs_thread:
                self.errors.extend(self.post.count(part))  # the character estimate: cheaper inline
            # from here on the records are kept whatever the sink does
            for d in part:
                self.stats.finished(self._second(d.end_ns), d.rec)
                self.records.append(d.rec)
                if self.sink is not None:
                    rows.append(d.rec.to_dict())
        now = perf_counter_ns()
        self.stats.gauge(self._second(now), self.active_users if not final else 0)
        extra = {
            "engine": engine
            or {
                **self.monitor.last_second(),
                "in_flight": len(self.in_flight),
                "token_mismatch_pct": mismatch_pct(d.rec for d in batch),
            }
        }
        delta = self.stats.delta(final=final, extra=extra)
        if self.sink is not None:
            if rows:
                await self.sink.on_records(rows)
            await self.sink.on_tick(delta)

    def _engine_report(self) -> dict[str, Any]:
        mismatch = mismatch_pct(self.records) if self.post.needs_thread else None
        report = self.monitor.report(
            schedule_lags_ms=self.schedule_lags,
            late_sends=self.late,
            capped_sends=self.capped,
            total_sends=self.sent,
            token_mismatch_pct=mismatch,
        )
        report["backoffs"], report["retry_after_waits"] = self.backoffs, self.retry_after_waits
        report["paused_s"] = self.paused_s
        # how long socket reads waited for their request's task: queueing the stamps leave out
        queued = sorted(self.read_queue_ms)
        report["read_queue_ms_p99"] = percentile(queued, 99) if queued else None
        report["read_queue_ms_max"] = queued[-1] if queued else None
        if profiles.is_open_loop(self.profile) and not self._exhausted():
            # sends the schedule asked for before the end but that never went out: the rate was
            # not silently lowered, it was missed, and the summary says so
            # an arrival in the last few ms before the end races the end timer: not counted as missed
            cutoff = min(self.stop_elapsed, self._end_after() or self.stop_elapsed) - LATE_NS / 2e9
            arrivals = profiles.arrivals(self.profile, self.spec.shard_index)
            due = sum(1 for _ in itertools.takewhile(lambda a: a[0] < cutoff, arrivals))
            report["target_sends"], report["missed_sends"] = due, max(0, due - self.taken)
            if report["missed_sends"]:
                capped = bool(self.profile.max_concurrency)
                why = "max_concurrency cap reached" if capped else "client fell behind"
                report["reasons"].append(
                    f"{report['missed_sends']} of {due} scheduled sends never went out ({why})"
                )
                if not capped and report["missed_sends"] > 0.01 * due:
                    report["verdict"], report["saturated"] = "client-bound", True
        return report


def with_budget(prompt: Prompt, budget: tuple[str, str] | None) -> Prompt:
    """The prompt as a budget-sweep level sends it: its max_tokens, or a body parameter such as
    reasoning_effort, set to the level's value."""
    if budget is None:
        return prompt
    name, value = budget
    if name == "max_tokens":
        return dataclasses.replace(prompt, max_tokens=int(float(value)))
    return dataclasses.replace(prompt, params={**(prompt.params or {}), name: value})


def _connection_level(rec: RequestRecord) -> bool:
    return rec.outcome == Outcome.CONNECTION_ERROR.value or (
        rec.outcome == Outcome.TIMEOUT.value and rec.timeout_kind == "connect"
    )


# -- entry point ----------------------------------------------------------------------------------
async def run(
    spec: RunSpec,
    *,
    sink: Sink | None = None,
    cancel: asyncio.Event | None = None,
    limits: Limits | None = None,
) -> RunResult:
    """Run ``spec``; with ``limits``, a spec past any of them raises :class:`LimitExceeded` first."""
    return await Engine(spec, sink, cancel, limits).run()
