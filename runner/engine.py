"""The load engine: drives a profile against an endpoint and measures every stream.

``run()`` is the asyncio entry point (CLI, tests); ``run_blocking()`` wraps it for Celery workers
with uvloop, a cancel poll and a sink called from its own thread so database writes never stall the
event loop. Records reach the sink about every second, so a crash loses at most that second.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any, Protocol

import aiohttp

from runner import profiles
from runner.analysis import StreamAnalyzer
from runner.metrics import estimate_tokens, fill_tokens
from runner.monitor import EngineMonitor
from runner.protocols import adapter_for, make_parser
from runner.protocols.base import prompt_text
from runner.records import Outcome, PacketKind, RequestRecord
from runner.spec import EndpointSpec, Prompt, RunSpec
from runner.stats import ShardStats
from runner.summary import summarize
from runner.transport import connection_timing, exchange, sdk_client, sdk_exchange

LATE_NS = 10_000_000  # a send more than 10 ms behind its schedule counts as late
FLUSH_S = 1.0


class Sink(Protocol):
    async def on_records(self, batch: list[dict[str, Any]]) -> None: ...
    async def on_tick(self, delta: dict[str, Any]) -> None: ...


class SyncSink(Protocol):
    def on_records(self, batch: list[dict[str, Any]]) -> None: ...
    def on_tick(self, delta: dict[str, Any]) -> None: ...


@dataclass
class RunResult:
    records: list[RequestRecord]
    summary: dict[str, Any]
    ended_by: str
    engine: dict[str, Any]
    duration_s: float
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Done:
    rec: RequestRecord
    prompt: Prompt
    thinking_text: str
    end_ns: int


class Engine:
    def __init__(self, spec: RunSpec, sink: Sink | None = None, cancel: asyncio.Event | None = None) -> None:
        if not spec.prompts:
            raise ValueError("a run needs at least one prompt")
        self.spec, self.sink = spec, sink
        self.cancel = cancel or asyncio.Event()
        self.ep = spec.endpoint
        # A/B: the same schedule and prompts go to every variant; otherwise the one endpoint
        self.endpoints = spec.variants or [spec.endpoint]
        self.adapters = [adapter_for(e.protocol) for e in self.endpoints]
        self.profile = spec.profile
        self.stats = ShardStats(spec.shard_index)
        self.monitor = EngineMonitor()
        self.stop = asyncio.Event()
        self.flusher_stop = asyncio.Event()
        self.records: list[RequestRecord] = []
        self.pending: list[_Done] = []
        self.in_flight: set[asyncio.Task[None]] = set()
        self.active_users = 0
        self.sent = self.late = self.capped = 0  # requests made (all variants)
        self.taken = 0  # prompts taken from the schedule (one per variant group)
        self.seq = itertools.count()
        self.schedule_lags: list[float] = []
        self.errors: list[str] = []
        self.tokenizer: Any = None
        self._order = self._prompt_order()
        self._input_counts: dict[str, int] = {}
        self.t0 = 0
        self.second0 = 0
        self.stop_elapsed = 0.0
        self.drain_expired = False
        self.session: aiohttp.ClientSession | None = None
        self.sdks: dict[int, Any] = {}

    # -- public --------------------------------------------------------------------------------
    async def run(self) -> RunResult:
        # The collector would stop the loop for tens of ms at random moments while thousands of
        # records are alive, which shows up as TTFT. While measuring, the flusher collects the young
        # generations once a second (short, and visible to the lag monitor); the full collection
        # waits until the end. Reference counting frees all acyclic data meanwhile.
        was_enabled = gc.isenabled()
        gc.freeze()
        gc.disable()
        try:
            return await self._run()
        finally:
            gc.unfreeze()
            if was_enabled:
                gc.enable()

    async def _run(self) -> RunResult:
        await self._setup()
        self.monitor.start()
        flusher = asyncio.create_task(self._flusher())
        self.t0 = perf_counter_ns()
        epoch0 = self.spec.run_started_epoch or time.time()
        self.second0 = max(0, int(time.time() - epoch0))
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
                    ),
                }
                for v, vep in enumerate(self.endpoints)
            ]
        return RunResult(self.records, summary, ended_by, engine, duration_s, self.errors)

    # -- setup ---------------------------------------------------------------------------------
    async def _setup(self) -> None:
        self.tokenizer = await asyncio.to_thread(_load_tokenizer, self.ep.tokenizer)
        peak = profiles.peak_concurrency(self.profile) or 64
        for v, ep in enumerate(self.endpoints):
            if ep.protocol == "openai-sdk":
                self.sdks[v] = sdk_client(ep)
        if len(self.sdks) == len(self.endpoints):
            return
        t = self.ep.timeouts
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=75, enable_cleanup_closed=True),
            timeout=aiohttp.ClientTimeout(total=None, connect=t.connect, sock_connect=t.connect),
            auto_decompress=True,
            trace_configs=[connection_timing()],
        )
        warm = self.spec.warm_connections if self.spec.warm_connections >= 0 else min(max(peak, 16), 1024)
        for ep in self.endpoints:
            if warm and ep.protocol not in ("generic-ws", "openai-sdk"):
                await self._warm(ep, warm)

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
        if self.session is not None:
            await self.session.close()
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
        try:
            while not self.stop.is_set() and not leave.is_set():
                level = profiles.level_at(self.profile, self._elapsed())
                prompt = self._next_prompt()
                if prompt is None:
                    return
                now = perf_counter_ns()
                task = asyncio.current_task()
                assert task is not None
                self.in_flight.add(task)
                try:
                    await self._to_variants(prompt, now, index, level)
                finally:
                    self.in_flight.discard(task)
        finally:
            self.active_users -= 1

    async def _open_loop(self) -> None:
        cap = self.profile.max_concurrency
        sem = asyncio.Semaphore(cap) if cap else None
        for t_s, index in profiles.arrivals(self.profile, self.spec.shard_index):
            sched = self.t0 + int(t_s * 1e9)
            delay = (sched - perf_counter_ns()) / 1e9
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), delay)
            if self.stop.is_set():
                return
            capped = False
            if sem is not None:
                if sem.locked():
                    capped = True
                await sem.acquire()
            prompt = self._next_prompt(index)
            if prompt is None:
                if sem is not None:
                    sem.release()
                return
            level = profiles.level_at(self.profile, t_s)
            task = asyncio.create_task(self._scheduled(prompt, sched, level, sem, capped))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

    async def _scheduled(
        self, prompt: Prompt, sched: int, level: int | None, sem: asyncio.Semaphore | None, capped: bool
    ) -> None:
        try:
            await self._to_variants(prompt, sched, -1, level, capped)
        finally:
            if sem is not None:
                sem.release()

    async def _to_variants(
        self, prompt: Prompt, sched_ns: int, user: int, level: int | None, capped: bool = False
    ) -> None:
        """One scheduled prompt: to the endpoint, or to every A/B variant under identical conditions —
        all at the scheduled instant (simultaneous) or one right after another (interleaved, the
        order rotating so no variant always goes first)."""
        n = len(self.endpoints)
        if n == 1:
            await self._request(prompt, sched_ns, user, level, 0, capped)
        elif self.spec.ab_mode == "simultaneous":
            await asyncio.gather(*(self._request(prompt, sched_ns, user, level, v, capped) for v in range(n)))
        else:
            first = self.taken % n
            for k in range(n):
                start = sched_ns if k == 0 else perf_counter_ns()
                await self._request(prompt, start, user, level, (first + k) % n, capped)

    # -- one request ---------------------------------------------------------------------------
    async def _request(
        self,
        prompt: Prompt,
        sched_ns: int,
        user: int,
        level: int | None,
        variant: int = 0,
        capped: bool = False,
    ) -> None:
        sent = perf_counter_ns()
        self.sent += 1
        ep, sdk = self.endpoints[variant], self.sdks.get(variant)
        rid = f"{self.spec.shard_index}-{next(self.seq)}"
        late = sent - sched_ns > LATE_NS
        self.late += late
        self.capped += late and capped  # held back by max_concurrency, not by the client itself
        self.stats.started(self._second(sent), late)
        a = StreamAnalyzer(sched_ns, sent)
        try:
            try:
                req = self.adapters[variant].build(ep, prompt)
                parser = make_parser(ep.protocol, a, ep)
            except Exception as exc:  # e.g. a prompt the endpoint's template cannot take
                a.fail(Outcome.PROTOCOL_ERROR, f"could not build the request: {exc!r}")
                return
            if sdk is not None:
                await sdk_exchange(sdk, req, a, parser, ep.timeouts, rid)
            else:
                assert self.session is not None
                await exchange(self.session, req, a, parser, ep.timeouts, rid)
        finally:
            end = perf_counter_ns()
            rec = a.record(rid, prompt.id, end, self.spec.keep_packet_text)
            if self.drain_expired and rec.outcome == Outcome.CANCELLED.value:
                rec.outcome, rec.timeout_kind = Outcome.TIMEOUT.value, "drain"
                rec.error = f"still running {self.spec.drain_s:.0f} s (drain_s) after the run ended"
            rec.shard, rec.user, rec.level, rec.variant = self.spec.shard_index, user, level, variant
            rec.scheduled_s = (sched_ns - self.t0) / 1e9
            rec.started_epoch = time.time() - (end - sent) / 1e9
            thinking = "".join(p.text for p in a.packets if p.kind is PacketKind.THINKING)
            self.schedule_lags.append(rec.schedule_lag_ms)
            self.pending.append(_Done(rec, prompt, thinking, end))

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
        gc.collect(1)
        batch, self.pending = self.pending, []
        if batch and self.tokenizer is None:
            self._count_tokens(batch)  # the character estimate is cheaper than a thread hop
        elif batch:
            await asyncio.to_thread(self._count_tokens, batch)
        # from here on the records are kept whatever the sink does
        for d in batch:
            self.stats.finished(self._second(d.end_ns), d.rec)
            self.records.append(d.rec)
        now = perf_counter_ns()
        self.stats.gauge(self._second(now), self.active_users if not final else 0)
        extra = {
            "engine": engine
            or {
                **self.monitor.last_second(),
                "in_flight": len(self.in_flight),
                "token_mismatch_pct": _mismatch_pct(d.rec for d in batch),
            }
        }
        delta = self.stats.delta(final=final, extra=extra)
        if self.sink is not None:
            if batch:
                await self.sink.on_records([d.rec.to_dict() for d in batch])
            await self.sink.on_tick(delta)

    def _count_tokens(self, batch: list[_Done]) -> None:
        """Client-side token counts, in a worker thread (tokenizers must not block the loop)."""
        tok = self.tokenizer
        count: Callable[[str], int] = tok.count if tok is not None else estimate_tokens
        for d in batch:
            try:
                self._count_one(tok, count, d)
            except Exception as exc:  # a tokenizer or grader failure loses no record
                self.errors.append(f"counting tokens for {d.rec.request_id} failed: {exc!r}")

    def _count_one(self, tok: Any, count: Callable[[str], int], d: _Done) -> None:
        rec, prompt = d.rec, d.prompt
        if prompt.input_tokens:
            client_in: int | None = prompt.input_tokens
        else:
            if prompt.id not in self._input_counts:
                self._input_counts[prompt.id] = _count_prompt(tok, prompt)
            client_in = self._input_counts[prompt.id]
        thinking = count(d.thinking_text) if d.thinking_text else 0
        answer = count(rec.answer_text) if rec.answer_text else 0
        fill_tokens(
            rec,
            client_input=client_in,
            client_output=thinking + answer,
            client_thinking=thinking or None,
            estimated=tok is None,
        )
        if prompt.expected is not None:
            rec.correct = rec.ok and _grade(rec.answer_text, prompt.expected)

    def _engine_report(self) -> dict[str, Any]:
        mismatch = _mismatch_pct(self.records) if self.tokenizer is not None else None
        report = self.monitor.report(
            schedule_lags_ms=self.schedule_lags,
            late_sends=self.late,
            capped_sends=self.capped,
            total_sends=self.sent,
            token_mismatch_pct=mismatch,
        )
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


def _mismatch_pct(records: Any) -> float | None:
    """Server usage vs client count over records that have both (the billing check, live)."""
    usage = client = 0
    for r in records:
        if r.usage_output_tokens is not None and r.client_output_tokens:
            usage += r.usage_output_tokens
            client += r.client_output_tokens
    return (usage - client) * 100.0 / client if client else None


def _grade(answer: str, expected: str) -> bool:
    from runner.accuracy import grade

    return bool(grade(answer, expected))


def _load_tokenizer(ref: str) -> Any:
    if not ref or ref == "estimate":
        return None
    from runner.tokenizers import load_tokenizer

    return load_tokenizer(ref)


def _count_prompt(tok: Any, prompt: Prompt) -> int:
    if tok is None:
        return estimate_tokens(prompt_text(prompt))
    if prompt.messages:
        return int(tok.count_messages(prompt.messages))
    return int(tok.count(prompt.text))


# -- entry points ----------------------------------------------------------------------------------
async def run(spec: RunSpec, *, sink: Sink | None = None, cancel: asyncio.Event | None = None) -> RunResult:
    return await Engine(spec, sink, cancel).run()


class _ThreadSink:
    """Calls a synchronous sink (Django ORM, Redis) in one dedicated thread, in order."""

    def __init__(self, sink: SyncSink | None, pool: ThreadPoolExecutor) -> None:
        self.sink, self.pool = sink, pool

    async def on_records(self, batch: list[dict[str, Any]]) -> None:
        if self.sink is not None:
            await asyncio.get_running_loop().run_in_executor(self.pool, self.sink.on_records, batch)

    async def on_tick(self, delta: dict[str, Any]) -> None:
        if self.sink is not None:
            await asyncio.get_running_loop().run_in_executor(self.pool, self.sink.on_tick, delta)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in requirements on Linux
        return None
    return uvloop.new_event_loop


def run_blocking(
    spec: RunSpec,
    *,
    sink: SyncSink | None = None,
    should_cancel: Callable[[], bool] | None = None,
    poll_s: float = 0.5,
) -> RunResult:
    """For Celery workers: own (uv)loop; ``sink`` and ``should_cancel`` run in one helper thread."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmperf-sink")

    async def main() -> RunResult:
        cancel = asyncio.Event()
        loop = asyncio.get_running_loop()

        async def poll() -> None:
            assert should_cancel is not None
            while True:
                await asyncio.sleep(poll_s)
                with contextlib.suppress(Exception):
                    if await loop.run_in_executor(pool, should_cancel):
                        cancel.set()
                        return

        poller = asyncio.create_task(poll()) if should_cancel else None
        try:
            return await Engine(spec, _ThreadSink(sink, pool), cancel).run()
        finally:
            if poller is not None:
                poller.cancel()

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(main())
    finally:
        pool.shutdown(wait=True)


async def single_request(endpoint: EndpointSpec, prompt: str) -> RequestRecord:
    """One request with its packet timeline (the dashboard's "test connection")."""
    spec = RunSpec(
        endpoint=endpoint,
        prompts=[Prompt(id="probe", text=prompt)],
        duration_s=None,
        max_requests=1,
        keep_packet_text=True,
        warm_connections=0,
    )
    result = await run(spec)
    if result.records:
        return result.records[0]
    rec = RequestRecord(request_id="probe", prompt_id="probe", outcome=Outcome.PROTOCOL_ERROR.value)
    rec.error = "; ".join(result.errors) or "no request was made"
    return rec
