"""The engine for code that is not asyncio (Celery workers): its own uvloop, a cancel poll, and a
synchronous sink called from one helper thread in order.

While the engine runs, the interpreter's thread switch interval is lowered to 0.5 ms: a sink that
runs Python code in its thread (an ORM insert, say) then holds the GIL for at most that long before
the measuring loop gets it back, instead of the default 5 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from runner.engine import Engine, RunResult
from runner.spec import RunSpec

SWITCH_INTERVAL_S = 0.0005


class SyncSink(Protocol):
    def on_records(self, batch: list[dict[str, Any]]) -> None: ...
    def on_tick(self, delta: dict[str, Any]) -> None: ...


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


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in requirements on Linux
        return None
    return uvloop.new_event_loop


@contextlib.contextmanager
def short_gil_slices() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, SWITCH_INTERVAL_S))
    try:
        yield
    finally:
        sys.setswitchinterval(before)


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
        with short_gil_slices(), asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(main())
    finally:
        pool.shutdown(wait=True)
