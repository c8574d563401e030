"""A crowded event loop for tests: tasks that each hold the loop for a slice, then yield."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator


@contextlib.asynccontextmanager
async def crowded_loop(tasks: int = 40, slice_s: float = 0.002, after_s: float = 0.0) -> AsyncIterator[None]:
    """``tasks`` tasks, each busy for ``slice_s`` per turn (a turn then takes ``tasks * slice_s``),
    starting ``after_s`` from now, until the block ends."""
    stop = asyncio.Event()

    async def busy() -> None:
        while not stop.is_set():
            until = time.perf_counter() + slice_s
            while time.perf_counter() < until:
                pass
            await asyncio.sleep(0)

    async def crowd() -> None:
        if after_s:
            await asyncio.sleep(after_s)
        await asyncio.gather(*(busy() for _ in range(tasks)))

    crowding = asyncio.create_task(crowd())
    try:
        yield
    finally:
        stop.set()
        await crowding
