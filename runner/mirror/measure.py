"""Measuring after the response, off the path of the next request.

A response's record (its SSE parse, analysis and capture line) costs about 0.1 ms. Done in the
handler, a burst of responses ending together — a hundred closed-loop callers in step — holds the
event loop for ten milliseconds or more while new requests wait to be forwarded, which the caller
sees as added TTFT. :class:`Measurer` queues that work instead and does one item per turn of the
loop, so a request arriving meanwhile waits for one record at most. Nothing is dropped: the queue
is emptied when the mirror stops, before its summary is built.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable


class Measurer:
    def __init__(self, on_error: Callable[[Exception], None] | None = None) -> None:
        self._queue: deque[Callable[[], None]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.on_error = on_error
        self.done = 0  # items measured, for tests and the curious

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def defer(self, item: Callable[[], None]) -> None:
        """Called on the production path: never waits, never raises (once closed: done at once)."""
        if self._closed or self._task is None:
            self._do(item)
            return
        self._queue.append(item)
        self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def close(self) -> None:
        """Everything still queued is measured now; later items are measured as they come."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._queue:
            self._do(self._queue.popleft())

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                self._do(self._queue.popleft())
                await asyncio.sleep(0)  # whatever the loop has ready (a new request) goes first

    def _do(self, item: Callable[[], None]) -> None:
        try:
            item()
        except Exception as exc:  # measuring must never end the mirror
            if self.on_error is not None:
                self.on_error(exc)
        self.done += 1
