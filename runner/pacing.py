"""Sending on time: wake the open-loop driver at a scheduled instant with sub-millisecond precision.

Event-loop timers round to whole milliseconds (libuv keeps time in ms), so a send scheduled at
12.3 ms goes out at 13 ms and that lateness lands inside its TTFT. On Linux a ``timerfd`` armed
with the absolute ``CLOCK_MONOTONIC`` instant (the clock ``perf_counter_ns`` reads) becomes
readable at that instant; the loop sees it like any socket, so nothing spins and no other stream
waits. Elsewhere the loop's timer brings us within a millisecond and cooperative yields (each one a
full loop iteration, so I/O keeps flowing) cover the rest.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
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
    """One waiter at a time (the open-loop driver). ``close()`` releases the timer."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._libc = _libc()
        self._fd = -1
        if self._libc is not None:
            fd = self._libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK | _TFD_CLOEXEC)
            self._fd = fd if fd >= 0 else -1
        self.kind = "timerfd" if self._fd >= 0 else "loop timer + yield"

    async def sleep_until(self, t_ns: int) -> None:
        if t_ns <= perf_counter_ns():
            return
        if self._fd >= 0:
            await self._timerfd(t_ns)
        else:
            await self._yielding(t_ns)

    async def _timerfd(self, t_ns: int) -> None:
        assert self._libc is not None
        spec = _Itimerspec()
        spec.it_value.tv_sec, spec.it_value.tv_nsec = divmod(t_ns, 1_000_000_000)
        if self._libc.timerfd_settime(self._fd, _TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
            await self._yielding(t_ns)
            return
        fired = self._loop.create_future()

        def ready() -> None:
            try:
                os.read(self._fd, 8)
            except BlockingIOError:
                return  # spurious wake-up: keep waiting
            if not fired.done():
                fired.set_result(None)

        self._loop.add_reader(self._fd, ready)
        try:
            await fired
        finally:
            self._loop.remove_reader(self._fd)

    @staticmethod
    async def _yielding(t_ns: int) -> None:
        early = (t_ns - perf_counter_ns() - _SPIN_NS) / 1e9
        if early > 0:
            await asyncio.sleep(early)
        while perf_counter_ns() < t_ns:
            await asyncio.sleep(0)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
