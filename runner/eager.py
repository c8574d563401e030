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
from typing import Any, TypeVar

T = TypeVar("T")


def started(coro: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
    """Runs ``coro`` until it first suspends (or ends) and returns a coroutine that finishes it."""
    try:
        first = coro.send(None)
    except StopIteration as stop:
        return _value(stop.value)
    except BaseException as exc:  # re-raised where the task is awaited, as before
        return _raise(exc)
    return _Resumed(coro, first)


async def _value(value: T) -> T:
    return value


async def _raise(exc: BaseException) -> Any:
    raise exc


class _Resumed(Coroutine[Any, Any, T]):
    """A coroutine that has already run to its first suspension: its first step hands the task what
    it waits on (``first``), every later value or exception goes on to it, so a task cancelled
    before its first step still cancels the coroutine itself (its own cleanup runs)."""

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, T], first: Any) -> None:
        self._coro, self._first = coro, first

    def send(self, value: Any) -> Any:
        if self._first is not _SENT:
            first, self._first = self._first, _SENT
            return first
        return self._coro.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        self._first = _SENT
        if val is None and tb is None:
            return self._coro.throw(typ)
        return self._coro.throw(typ, val, tb)  # pragma: no cover - the old three-argument form

    def close(self) -> None:
        self._first = _SENT
        self._coro.close()

    def __await__(self) -> Generator[Any, Any, T]:
        return self

    def __iter__(self) -> _Resumed[T]:
        return self

    def __next__(self) -> Any:
        return self.send(None)


_SENT: Any = object()
