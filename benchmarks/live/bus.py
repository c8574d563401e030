"""How shards hand per-second stats deltas to their run's aggregator.

Redis lists when ``REDIS_URL`` is set (shards may be on other machines); an in-process queue in
embedded mode, where shards and the aggregator are threads of one process.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from functools import cache
from typing import Any, Protocol

import redis
from django.conf import settings

log = logging.getLogger(__name__)
KEY_TTL_S = 24 * 3600
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)


class DeltaBus(Protocol):
    def publish(self, run_id: int, message: dict[str, Any]) -> None: ...

    def drain(self, run_id: int, timeout: float) -> list[dict[str, Any]]: ...

    def flush(self) -> bool: ...

    def discard(self, run_id: int) -> None: ...


class RedisBus:
    """Deltas a Redis outage holds back wait in this process (in order, up to ``MAX_PENDING``) and
    go out with the next publish or :meth:`flush` that finds Redis back; a drain that loses Redis
    returns what it already took and tries again on the next call."""

    MAX_PENDING = 100_000  # about a day of one shard's seconds

    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url)
        self.pending: list[tuple[int, str]] = []
        self.lock = threading.Lock()
        self.down_since: float | None = None

    @staticmethod
    def key(run_id: int) -> str:
        return f"llmperf:run:{run_id}:deltas"

    def publish(self, run_id: int, message: dict[str, Any]) -> None:
        with self.lock:
            if len(self.pending) >= self.MAX_PENDING:
                log.error("run %s: %d deltas held back; dropping the oldest", run_id, len(self.pending))
                del self.pending[0]
            self.pending.append((run_id, json.dumps(message)))
        self.flush()

    def flush(self) -> bool:
        """Send what is held back, in one transaction; False while Redis is unreachable."""
        with self.lock:
            if not self.pending:
                return True
            pipe = self.redis.pipeline()
            for run_id in dict.fromkeys(r for r, _ in self.pending):
                pipe.rpush(self.key(run_id), *[m for r, m in self.pending if r == run_id])
                pipe.expire(self.key(run_id), KEY_TTL_S)
            try:
                pipe.execute()
            except REDIS_DOWN as exc:
                if self.down_since is None:
                    self.down_since = time.monotonic()
                    log.warning("Redis unreachable (%s); holding live deltas back", exc)
                return False
            if self.down_since is not None:
                log.warning(
                    "Redis back after %.1f s; %d held-back deltas sent",
                    time.monotonic() - self.down_since,
                    len(self.pending),
                )
                self.down_since = None
            self.pending.clear()
            return True

    def drain(self, run_id: int, timeout: float) -> list[dict[str, Any]]:
        """Wait up to ``timeout`` for one message, then take whatever else is waiting. Raises
        ``redis.ConnectionError`` only when nothing was taken."""
        first = self.redis.blpop([self.key(run_id)], timeout=timeout)
        if first is None:
            return []
        try:
            rest = self.redis.lpop(self.key(run_id), 10_000) or []
        except REDIS_DOWN:
            rest = []  # the first one is taken: return it, the rest waits in Redis
        return [json.loads(raw) for raw in [first[1], *rest]]

    def discard(self, run_id: int) -> None:
        self.redis.delete(self.key(run_id))


class LocalBus:
    def __init__(self) -> None:
        self._queues: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def _queue(self, run_id: int) -> queue.Queue[dict[str, Any]]:
        with self._lock:
            return self._queues.setdefault(run_id, queue.Queue())

    def publish(self, run_id: int, message: dict[str, Any]) -> None:
        self._queue(run_id).put(message)

    def drain(self, run_id: int, timeout: float) -> list[dict[str, Any]]:
        q = self._queue(run_id)
        try:
            out = [q.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                out.append(q.get_nowait())
            except queue.Empty:
                return out

    def flush(self) -> bool:
        return True

    def discard(self, run_id: int) -> None:
        with self._lock:
            self._queues.pop(run_id, None)


@cache
def get_bus() -> DeltaBus:
    return RedisBus(settings.REDIS_URL) if settings.REDIS_URL else LocalBus()
