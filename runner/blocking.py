"""The engine for code that is not asyncio (Celery workers): its own uvloop, a cancel poll, and a
sink for records and stats deltas.

Two kinds of sink. A :class:`SyncSink` object is called from one helper thread in order; a *sink
command* is a child process fed JSON lines on its stdin (:class:`PipeSink`, read back by
:func:`serve_sink`), so a database writer's Python work never competes with the measuring loop for
the GIL at all — the loop pays only for encoding each batch with orjson.

While the engine runs, the interpreter's thread switch interval is lowered to 0.5 ms: any thread
that runs Python code (a thread sink, the cancel poll) then holds the GIL for at most that long
before the measuring loop gets it back, instead of the default 5 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, Protocol

import orjson

from runner.engine import Engine, RunResult
from runner.limits import Limits
from runner.spec import RunSpec

SWITCH_INTERVAL_S = 0.0005
LINE_RECORDS = 32  # records per JSON line: each encode stays well under a millisecond
WRITE_BATCH = 2000  # records per sink call at most, when lines have queued up in the writer
READ_BYTES = 1 << 20  # the writer reads up to this much of its pipe at once
PIPE_BYTES = 1 << 20  # the pipe to the writer (Linux's default most): a second of records fits


class SyncSink(Protocol):
    """``on_records`` is called in order from one thread; behind :func:`serve_sink`, ``on_tick`` is
    called from another (its reader), as soon as the tick is read."""

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


class PipeSink:
    """Streams records and deltas to a child process as JSON lines; the child does the writing."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.argv, self.env = argv, env
        self.proc: asyncio.subprocess.Process | None = None
        self.errors: list[str] = []

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.PIPE, env=self.env
        )
        pipe = self.proc.stdin.get_extra_info("pipe") if self.proc.stdin is not None else None
        with contextlib.suppress(OSError, AttributeError, ValueError):  # not Linux, or a lower cap
            fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_BYTES)  # type: ignore[union-attr]

    async def _send(self, obj: dict[str, Any]) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        if self.proc.returncode is not None:
            raise RuntimeError(f"the sink process exited with code {self.proc.returncode}")
        self.proc.stdin.write(orjson.dumps(obj) + b"\n")
        await self.proc.stdin.drain()  # back-pressure waits here, in the flusher, never in a stream

    async def on_records(self, batch: list[dict[str, Any]]) -> None:
        for i in range(0, len(batch), LINE_RECORDS):
            if i:
                await asyncio.sleep(0)
            await self._send({"records": batch[i : i + LINE_RECORDS]})

    async def on_tick(self, delta: dict[str, Any]) -> None:
        await self._send({"tick": delta})

    async def close(self, timeout_s: float = 60.0) -> None:
        """End of input; waits until the child has written everything and exited."""
        if self.proc is None:
            return
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()
            with contextlib.suppress(ConnectionError):
                await self.proc.stdin.wait_closed()
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout_s)
        except TimeoutError:
            self.proc.kill()
            code = await self.proc.wait()
        if code != 0:
            self.errors.append(f"the sink process exited with code {code}")


def serve_sink(sink: SyncSink, stream: IO[bytes], max_batch: int = WRITE_BATCH) -> int:
    """The child's side of :class:`PipeSink`: reads JSON lines until EOF. Returns how many records it
    handed over.

    A reader thread takes every line as it comes: a tick goes to ``sink.on_tick`` at once (from that
    thread), so the live view never waits behind database writes; records queue for this thread,
    which hands whatever has queued up (up to ``max_batch`` records) to ``sink.on_records`` in one
    call, in order. A pipe that is always read never pushes back on the engine's flusher, and a
    writer slower than the load catches up with bigger inserts rather than a growing delay.
    """
    lines: queue.Queue[list[dict[str, Any]] | None] = queue.Queue()
    failed: list[BaseException] = []

    def take(line: bytes) -> None:
        if not line.strip():
            return
        message = orjson.loads(line)
        if "records" in message:
            lines.put(message["records"])
        elif "tick" in message:
            sink.on_tick(message["tick"])

    def read() -> None:
        # whatever the pipe holds in one read (not line by line): each read gives the GIL away, and
        # getting it back from a thread busy writing costs up to a switch interval, so small reads
        # would cap what the writer can take in
        rest = b""
        try:
            while chunk := stream.read1(READ_BYTES):  # type: ignore[attr-defined]
                *whole, rest = (rest + chunk).split(b"\n")
                for line in whole:
                    take(line)
            take(rest)
        except BaseException as exc:  # raised again in the caller's thread, once the records are in
            failed.append(exc)
        finally:
            lines.put(None)

    reader = threading.Thread(target=read, name="sink-reader", daemon=True)
    reader.start()
    handed, ended = 0, False
    while not ended:
        batch = lines.get()
        if batch is None:
            break
        while len(batch) < max_batch:
            try:
                more = lines.get_nowait()
            except queue.Empty:
                break
            if more is None:
                ended = True
                break
            batch.extend(more)
        sink.on_records(batch)
        handed += len(batch)
    reader.join()
    if failed:
        raise failed[0]
    return handed


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


async def cancel_poll(
    should_cancel: Callable[[], bool], cancel: asyncio.Event, pool: ThreadPoolExecutor, poll_s: float
) -> None:
    """Asks ``should_cancel`` (a database read, say) in the helper thread every ``poll_s`` and sets
    ``cancel`` once it says yes; a failing check is asked again next time."""
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(poll_s)
        with contextlib.suppress(Exception):
            if await loop.run_in_executor(pool, should_cancel):
                cancel.set()
                return


def run_blocking(
    spec: RunSpec,
    *,
    sink: SyncSink | None = None,
    sink_command: list[str] | None = None,
    sink_env: dict[str, str] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    poll_s: float = 0.5,
    limits: Limits | None = None,
) -> RunResult:
    """For Celery workers: own (uv)loop; ``limits`` as for :func:`runner.engine.run`; ``should_cancel`` runs in a helper thread. Records and
    deltas go to ``sink_command`` (a child process reading :func:`serve_sink`'s JSON lines) when
    given, else to ``sink`` in the helper thread. Returns once the child has written everything."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmperf-sink")

    async def main() -> RunResult:
        cancel = asyncio.Event()
        poller = (
            asyncio.create_task(cancel_poll(should_cancel, cancel, pool, poll_s)) if should_cancel else None
        )
        pipe = PipeSink(sink_command, sink_env) if sink_command else None
        try:
            if pipe is not None:
                await pipe.start()
            result = await Engine(spec, pipe or _ThreadSink(sink, pool), cancel, limits).run()
        finally:
            if poller is not None:
                poller.cancel()
            if pipe is not None:
                await pipe.close()
        if pipe is not None:
            result.errors.extend(pipe.errors)
        return result

    try:
        with short_gil_slices(), asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(main())
    finally:
        pool.shutdown(wait=True)
