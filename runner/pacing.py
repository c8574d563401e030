"""Sending on time: release the open-loop sends at their scheduled instants with sub-millisecond
precision.

Event-loop timers round to whole milliseconds (libuv keeps time in ms), so a send scheduled at
12.3 ms goes out at 13 ms and that lateness lands inside its TTFT. On Linux a ``timerfd`` armed
with the absolute ``CLOCK_MONOTONIC`` instant (the clock ``perf_counter_ns`` reads) becomes
readable at that instant; the loop sees it like any socket, so nothing spins and no other stream
waits. Elsewhere the loop's timer brings us within a millisecond and cooperative yields (each one a
full loop iteration, so I/O keeps flowing) cover the rest.

A send is prepared ahead of its instant and waits on a *gate* (:meth:`Pacer.gate`): the timer's
own callback opens every gate that is due, so the waiting request runs in the very next loop turn.
Waking a driver that then starts a task would cost one more turn, and under load each turn is the
time every other ready callback takes.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import heapq
import itertools
import os
import sys
from time import perf_counter_ns

_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK = os.O_NONBLOCK
_TFD_CLOEXEC = 0o2000000
_TFD_TIMER_ABSTIME = 1
_SPIN_NS = 1_500_000  # how close the loop's own timer is trusted to bring us


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.timerfd_settime.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(_Itimerspec),
            ctypes.c_void_p,
        ]
        return libc
    except (OSError, AttributeError):
        return None


class Pacer:
    """Gates that open at absolute ``perf_counter_ns`` instants, never before them. ``close()``
    releases the timer and cancels the gates still shut."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._libc = _libc()
        self._fd = -1
        self._due: list[tuple[int, int, asyncio.Future[None]]] = []  # heap of (instant, seq, gate)
        self._seq = itertools.count()
        self._armed = 0  # the instant the timer is set for, 0 when unset
        self._yielders: set[asyncio.Task[None]] = set()
        if self._libc is not None:
            fd = self._libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
            self._fd = fd if fd >= 0 else -1
        if self._fd >= 0:
            self._loop.add_reader(self._fd, self._fired)
        self.kind = "timerfd" if self._fd >= 0 else "loop timer + yield"

    def gate(self, t_ns: int) -> asyncio.Future[None]:
        """A future that is done at ``t_ns`` (at once if that has passed)."""
        fut: asyncio.Future[None] = self._loop.create_future()
        now = perf_counter_ns()
        if t_ns <= now:
            self._release_due(now)  # earlier gates whose timer callback has not run yet go first
            fut.set_result(None)
            return fut
        if self._fd >= 0:
            heapq.heappush(self._due, (t_ns, next(self._seq), fut))
            if not self._armed or t_ns < self._armed:
                self._arm(t_ns)
        else:
            task = self._loop.create_task(self._yielding(t_ns, fut))
            self._yielders.add(task)
            task.add_done_callback(self._yielders.discard)
        return fut

    async def sleep_until(self, t_ns: int) -> None:
        now = perf_counter_ns()
        if t_ns > now:
            await self.gate(t_ns)
        else:
            self._release_due(now)

    def _arm(self, t_ns: int) -> None:
        assert self._libc is not None
        spec = _Itimerspec()
        spec.it_value.tv_sec, spec.it_value.tv_nsec = divmod(t_ns, 1_000_000_000)
        if self._libc.timerfd_settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
            self._armed = 0
            self._fallback()
            return
        self._armed = t_ns

    def _fired(self) -> None:
        try:
            os.read(self._fd, 8)
        except BlockingIOError:
            return  # spurious wake-up: the timer is still armed
        self._armed = 0
        self._release_due(perf_counter_ns())
        if self._due:
            self._arm(self._due[0][0])

    def _release_due(self, now: int) -> None:
        """Opens every gate whose instant has come, in order (the timer's callback, or a caller that
        found an instant already past before that callback ran)."""
        due = self._due
        while due and due[0][0] <= now:
            fut = heapq.heappop(due)[2]
            if not fut.done():
                fut.set_result(None)

    def _fallback(self) -> None:
        """The timer could not be set: the gates still shut wait by the loop's timer instead."""
        due, self._due = self._due, []
        for t_ns, _, fut in due:
            task = self._loop.create_task(self._yielding(t_ns, fut))
            self._yielders.add(task)
            task.add_done_callback(self._yielders.discard)

    @staticmethod
    async def _yielding(t_ns: int, fut: asyncio.Future[None]) -> None:
        try:
            early = (t_ns - perf_counter_ns() - _SPIN_NS) / 1e9
            if early > 0:
                await asyncio.sleep(early)
            while perf_counter_ns() < t_ns:
                await asyncio.sleep(0)
            if not fut.done():
                fut.set_result(None)
        finally:
            if not fut.done():  # closed before its instant
                fut.cancel()

    def close(self) -> None:
        """Gates whose instant has come open (their sends are due); the rest are cancelled."""
        self._release_due(perf_counter_ns())
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
        for _, _, fut in self._due:
            fut.cancel()
        self._due = []
        for task in self._yielders:
            task.cancel()
