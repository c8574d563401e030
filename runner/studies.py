"""Studies in a worker process: the capacity search as one blocking call, for a dashboard shard.

Like :func:`runner.blocking.run_blocking`, but the search runs level after level on one (uv)loop.
Records and per-second deltas of every level go to the one synchronous sink, so a capacity run
is stored and watched live like any run: each level's clock continues the run's seconds
(``start_offset_s``), its request ids carry the level (``L3-0-17``), and delta sequence numbers
keep rising across levels (the aggregator drops a sequence number it has seen).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from runner.blocking import SyncSink, cancel_poll, loop_factory, short_gil_slices
from runner.capacity import CapacityConfig, find_capacity, find_capacity_per_bucket
from runner.engine import RunResult, run
from runner.kv_reuse import compare as kv_compare
from runner.spec import RunSpec

__all__ = ["CAPACITY_KEYS", "capacity_blocking", "kv_reuse_blocking"]

# the capacity settings a dashboard profile stores, with the CLI's defaults
CAPACITY_KEYS: dict[str, Any] = {
    "mode": "rate",
    "load_min": 1.0,
    "load_max": 256.0,
    "attainment": 0.99,
    "level_min_requests": 200,
    "min_level_s": 10.0,
    "warmup_s": 3.0,
    "tolerance": 0.05,
}


class _LevelSink:
    """One level's (or pass's) records and deltas, relabelled, to the shared sink (in its own thread):
    request ids get ``prefix`` (``L3-``, ``cold-``), records the ``tag`` key (``capacity_level``,
    ``kv_pass``)."""

    def __init__(
        self,
        sink: SyncSink,
        pool: ThreadPoolExecutor,
        level: int | str,
        seq: itertools.count[int],
        *,
        prefix: str = "L",
        tag: str = "capacity_level",
    ):
        self.sink, self.pool, self.level, self.seq = sink, pool, level, seq
        self.prefix, self.tag = prefix, tag
        self.sent: set[str] = set()

    def relabel(self, record: dict[str, Any]) -> dict[str, Any]:
        return {
            **record,
            "request_id": f"{self.prefix}{self.level}-{record['request_id']}",
            self.tag: self.level,
        }

    async def on_records(self, batch: list[dict[str, Any]]) -> None:
        self.sent.update(str(r["request_id"]) for r in batch)
        rows = [self.relabel(r) for r in batch]
        await asyncio.get_running_loop().run_in_executor(self.pool, self.sink.on_records, rows)

    async def on_tick(self, delta: dict[str, Any]) -> None:
        # never "final": only the shard's end ends its part of the live view
        out = {**delta, "seq": next(self.seq), "final": False}
        await asyncio.get_running_loop().run_in_executor(self.pool, self.sink.on_tick, out)

    async def rest(self, result: RunResult) -> None:
        """Records the engine returned but never streamed (its last partial second)."""
        missing = [r.to_dict() for r in result.records if r.request_id not in self.sent]
        if missing:
            await self.on_records(missing)


class _Both:
    def __init__(self, *sinks: Any) -> None:
        self.sinks = sinks

    async def on_records(self, batch: list[dict[str, Any]]) -> None:
        for s in self.sinks:
            await s.on_records(batch)

    async def on_tick(self, delta: dict[str, Any]) -> None:
        for s in self.sinks:
            await s.on_tick(delta)


def capacity_config(settings: dict[str, Any]) -> CapacityConfig:
    """Raises ValueError naming what is wrong."""
    values = {k: settings.get(k, default) for k, default in CAPACITY_KEYS.items()}
    return CapacityConfig(**{k: v for k, v in values.items() if v is not None})


class _Study:
    """What a blocking study (a capacity search, a KV-cache reuse pair of passes) shares while it
    runs: the run's origin, the cancel event, the sink's thread and each engine run's report."""

    def __init__(self, sink: SyncSink, pool: ThreadPoolExecutor) -> None:
        self.sink, self.pool = sink, pool
        self.cancel = asyncio.Event()
        self.origin = time.perf_counter_ns()
        self.seq = itertools.count(1)
        self.engines: list[dict[str, Any]] = []


def _study_blocking(
    key: str,
    drive: Callable[[_Study], Awaitable[Any]],
    *,
    sink: SyncSink,
    should_cancel: Callable[[], bool] | None,
    poll_s: float,
) -> RunResult:
    """Run ``drive`` on its own loop (the Celery adapter's way: short GIL slices, the sink on a
    thread, cancel polled); the summary is ``{key: its block, "load_duration_s": …}``, the engine
    report the worst of its runs'."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmperf-sink")

    async def main() -> RunResult:
        study = _Study(sink, pool)
        poller = (
            asyncio.create_task(cancel_poll(should_cancel, study.cancel, pool, poll_s))
            if should_cancel
            else None
        )
        try:
            block = await drive(study)
        finally:
            if poller is not None:
                poller.cancel()
        ended_by = "cancel" if study.cancel.is_set() else "complete"
        duration = (time.perf_counter_ns() - study.origin) / 1e9
        worst = max(study.engines, key=lambda e: float(e.get("lag_ms_p99") or 0.0)) if study.engines else {}
        summary = {key: block, "load_duration_s": duration}
        return RunResult([], summary, ended_by, worst, duration, t0_ns=study.origin)

    try:
        with short_gil_slices(), asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(main())
    finally:
        pool.shutdown(wait=True)


def capacity_blocking(
    spec: RunSpec,
    settings: dict[str, Any],
    *,
    sink: SyncSink,
    should_cancel: Callable[[], bool] | None = None,
    poll_s: float = 0.5,
) -> RunResult:
    """The capacity search for ``spec`` (its profile's arrival and seed kept, its load replaced),
    ``settings`` as in :data:`CAPACITY_KEYS` plus ``per_bucket``. The result's summary is
    ``{"capacity": block, ...}``; its records were all given to ``sink``; ``t0_ns`` is the search's
    start, where each level's ``t_s`` and the run's seconds count from."""
    config = capacity_config(settings)

    async def drive(study: _Study) -> Any:
        levels = itertools.count()

        async def run_level(level_spec: RunSpec, watch: Any, stop: asyncio.Event) -> RunResult:
            start = time.perf_counter_ns()
            level_spec.start_offset_s = float(int((start - study.origin) / 1e9))
            level_sink = _LevelSink(study.sink, study.pool, next(levels), study.seq)
            result = await run(level_spec, sink=_Both(watch, level_sink), cancel=stop)
            await level_sink.rest(result)
            study.engines.append(result.engine)
            load_s = result.summary.get("load_duration_s") or 0.0
            began = (start - study.origin) / 1e9
            result.summary["t_s"] = [began, began + load_s]
            return result

        search = find_capacity_per_bucket if settings.get("per_bucket") else find_capacity
        return await search(spec, config, run_level=run_level, cancel=study.cancel)

    return _study_blocking("capacity", drive, sink=sink, should_cancel=should_cancel, poll_s=poll_s)


def kv_reuse_blocking(
    spec: RunSpec,
    *,
    sink: SyncSink,
    should_cancel: Callable[[], bool] | None = None,
    poll_s: float = 0.5,
) -> RunResult:
    """The KV-cache reuse comparison for ``spec`` (:mod:`runner.kv_reuse`: every prompt once behind
    an unseen marker, cold, then the same prompts again, warm), both passes on one loop, streamed to
    ``sink`` like a capacity search's levels: request ids ``cold-…``/``warm-…``, records tagged
    ``kv_pass``, the warm pass's seconds continuing the cold one's. The summary is
    ``{"kv_cache_reuse": block, ...}``."""

    async def drive(study: _Study) -> Any:
        async def run_pass(pass_spec: RunSpec, name: str) -> RunResult:
            start = time.perf_counter_ns()
            pass_spec.start_offset_s = float(int((start - study.origin) / 1e9))
            pass_sink = _LevelSink(study.sink, study.pool, name, study.seq, prefix="", tag="kv_pass")
            result = await run(pass_spec, sink=pass_sink, cancel=study.cancel)
            await pass_sink.rest(result)
            study.engines.append(result.engine)
            return result

        return await kv_compare(spec, cancel=study.cancel, run_pass=run_pass)

    return _study_blocking("kv_cache_reuse", drive, sink=sink, should_cancel=should_cancel, poll_s=poll_s)
