"""Start a coroutine at once, in the caller's turn, and hand the rest of it to a task.

aiohttp writes a request's body (and its buffered headers with it) from a task of its own. From
Python 3.12 it starts that task eagerly, so the bytes leave in the turn that made the request; on
3.11 the task waits for the next loop turn: behind every callback already ready, which under load
is the client's own queue inside every TTFT. :func:`started` gives 3.11 the same start: it runs the
coroutine up to its first real suspension now and returns an equivalent coroutine for the rest
(results, exceptions and cancellation pass through unchanged).
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def started(coro: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
    """Runs ``coro`` until it first suspends (or ends) and returns a coroutine that finishes it."""
    try:
        first = coro.send(None)
    except StopIteration as stop:
        return _value(stop.value)
    except BaseException as exc:  # re-raised where the task is awaited, as before
        return _raise(exc)
    return _rest(_Resumed(coro, first))


async def _value(value: T) -> T:
    return value


async def _raise(exc: BaseException) -> Any:
    raise exc


async def _rest(resumed: _Resumed[T]) -> T:
    return await resumed


class _Resumed(Generic[T]):
    """``yield from`` a coroutine that has already yielded ``first``: the running task waits on what
    the coroutine waits on, and every value or exception the task sends in goes on to it."""

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, T], first: Any) -> None:
        self._coro, self._first = coro, first

    def __await__(self) -> Generator[Any, Any, T]:
        coro, pending = self._coro, self._first
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # cancellation and the like go on to the coroutine
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
