"""Pacing: absolute-deadline sleeps with heartbeats, and the FIFO batch that limits concurrent streams.

Every chunk is due at ``start + ttft + k * itl`` on ``time.perf_counter_ns()``; sleeping towards an
absolute deadline means a late wake-up never pushes later chunks back (no drift).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from runner.simulator.wire import Frames

# uvloop rounds timers to whole milliseconds and wakes ~0.5 ms late on average, so sleeps aim 0.5 ms
# short and a wake-up within 0.5 ms of the deadline writes at once (sleeping again would only add a
# turn of the loop). Measured with 100 streams: p50 error ~0 ms, never more than 0.5 ms early.
SLEEP_LEAD_NS = 500_000
EARLY_OK_NS = 500_000
NEVER = 1 << 62


class Channel:
    """One response's outgoing packets: timed sends, and a heartbeat whenever ``heartbeat_ns`` passed
    without any packet (while queued, during TTFT, between slow tokens)."""

    def __init__(
        self, send: Callable[[Frames], Awaitable[None]], heartbeat: Frames, heartbeat_ns: int
    ) -> None:
        self._send = send
        self._heartbeat = heartbeat
        self._heartbeat_ns = heartbeat_ns
        self.last_send_ns = time.perf_counter_ns()

    async def send(self, frames: Frames) -> None:
        if frames:
            await self._send(frames)
            self.last_send_ns = time.perf_counter_ns()

    def _heartbeat_due_ns(self) -> int:
        return self.last_send_ns + self._heartbeat_ns if self._heartbeat_ns > 0 else NEVER

    async def sleep_until(self, deadline_ns: int) -> None:
        while True:
            due = self._heartbeat_due_ns()
            target = min(deadline_ns, due)
            remaining = target - time.perf_counter_ns()
            if remaining > EARLY_OK_NS:
                await asyncio.sleep((remaining - SLEEP_LEAD_NS) / 1e9)
            elif target == deadline_ns:
                return
            else:
                await self.send(self._heartbeat)

    async def wait(self, future: asyncio.Future[Any]) -> None:
        """Until ``future`` is done, heartbeating meanwhile; never cancels ``future`` itself."""
        while not future.done():
            timeout = max(0.0, (self._heartbeat_due_ns() - time.perf_counter_ns()) / 1e9)
            await asyncio.wait([future], timeout=timeout if self._heartbeat_ns > 0 else None)
            if not future.done():
                await self.send(self._heartbeat)

    async def idle_forever(self) -> None:
        """Heartbeats only, until the client goes away (writes fail or the handler is cancelled)."""
        while True:
            await self.sleep_until(time.perf_counter_ns() + 3600 * 1_000_000_000)


class Batch:
    """At most ``limit()`` streams generating at once; the rest wait first come, first served.
    ``limit()`` is read on every change so a runtime config patch takes effect; 0 = unlimited."""

    def __init__(self, limit: Callable[[], int]) -> None:
        self._limit = limit
        self._running = 0
        self._waiting: deque[asyncio.Future[int]] = deque()

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiting if not f.done())

    def _has_room(self) -> bool:
        limit = self._limit()
        return limit <= 0 or self._running < limit

    async def acquire(self, channel: Channel) -> int | None:
        """Take a slot. Returns when it was granted (``perf_counter_ns``), or None if there was no wait."""
        if not self._waiting and self._has_room():
            self._running += 1
            return None
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        try:
            await channel.wait(future)
        except BaseException:
            if future.done() and not future.cancelled():
                self.release()  # granted just as we were cancelled: hand the slot on
            else:
                future.cancel()
            raise
        return future.result()

    def release(self) -> None:
        self._running -= 1
        self.wake()

    def wake(self) -> None:
        """Grant slots to waiters while there is room (after a release, or when the limit was raised)."""
        while self._waiting and self._has_room():
            future = self._waiting.popleft()
            if not future.done():
                self._running += 1
                future.set_result(time.perf_counter_ns())
