"""How shards hand per-second stats deltas to their run's aggregator.

Redis lists when ``REDIS_URL`` is set (shards may be on other machines); an in-process queue in
embedded mode, where shards and the aggregator are threads of one process.
"""

from __future__ import annotations

import json
import queue
import threading
from functools import cache
from typing import Any, Protocol

import redis
from django.conf import settings

KEY_TTL_S = 24 * 3600


class DeltaBus(Protocol):
    def publish(self, run_id: int, message: dict[str, Any]) -> None: ...

    def drain(self, run_id: int, timeout: float) -> list[dict[str, Any]]: ...

    def discard(self, run_id: int) -> None: ...


class RedisBus:
    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url)

    @staticmethod
    def key(run_id: int) -> str:
        return f"llmperf:run:{run_id}:deltas"

    def publish(self, run_id: int, message: dict[str, Any]) -> None:
        pipe = self.redis.pipeline()
        pipe.rpush(self.key(run_id), json.dumps(message))
        pipe.expire(self.key(run_id), KEY_TTL_S)
        pipe.execute()

    def drain(self, run_id: int, timeout: float) -> list[dict[str, Any]]:
        """Wait up to ``timeout`` for one message, then take whatever else is waiting."""
        first = self.redis.blpop([self.key(run_id)], timeout=timeout)
        if first is None:
            return []
        rest = self.redis.lpop(self.key(run_id), 10_000) or []
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

    def discard(self, run_id: int) -> None:
        with self._lock:
            self._queues.pop(run_id, None)


@cache
def get_bus() -> DeltaBus:
    return RedisBus(settings.REDIS_URL) if settings.REDIS_URL else LocalBus()
