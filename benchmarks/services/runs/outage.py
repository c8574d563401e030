"""Remembering that the database was unreachable, so a reaper does not take the silence every shard
kept during an outage for death: heartbeats resume within a second of its return, the reaper waits
SHARD_HEARTBEAT_TIMEOUT_S after the last failure anyone saw before it trusts a stale heartbeat again.

The last failure is kept in this process and, best effort, in Redis (a key that expires that long
after the last failure any process noted), so a reaper in another process sees it too.
"""

from __future__ import annotations

import contextlib
import logging
import time

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError

log = logging.getLogger(__name__)
DATABASE_DOWN = (OperationalError, InterfaceError)  # no connection, or it broke: retry, never crash
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)
KEY = "llmperf:database-unreachable"
_last_failure = -1e18  # time.monotonic() of the last failure this process saw


def _redis() -> redis.Redis | None:
    from benchmarks.live.bus import RedisBus, get_bus

    bus = get_bus()
    return bus.redis if isinstance(bus, RedisBus) else None


def database_unreachable() -> None:
    """Note a failed query or connection (called where ``DATABASE_DOWN`` is caught)."""
    global _last_failure
    _last_failure = time.monotonic()
    grace = settings.SHARD_HEARTBEAT_TIMEOUT_S
    client = _redis()
    if client is not None:
        with contextlib.suppress(redis.RedisError):
            client.set(KEY, "1", px=max(1, int(grace * 1000)))


def database_recently_unreachable() -> bool:
    """Within SHARD_HEARTBEAT_TIMEOUT_S of a failure noted here or by any process sharing Redis."""
    if time.monotonic() - _last_failure < settings.SHARD_HEARTBEAT_TIMEOUT_S:
        return True
    client = _redis()
    if client is None:
        return False
    try:
        return bool(client.exists(KEY))
    except redis.RedisError:
        return False


def close_broken_connection() -> None:
    """Drop this thread's connection after a failure, so the next query opens a fresh one."""
    from django.db import connection

    with contextlib.suppress(Exception):
        connection.close()


def transient(exc: BaseException) -> bool:
    """Whether a ``DATABASE_DOWN`` error is an outage to wait out: SQLite's lock (the embedded mode's
    writers taking turns), or a database that does not answer a plain query right now. Otherwise the
    failing statement itself is wrong (a bug, not an outage), and retrying it forever would hide it."""
    from django.db import connection

    if "database is locked" in str(exc):
        return True
    for attempt in range(2):  # on this thread's connection, then on a fresh one
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return False
        except DATABASE_DOWN:
            if attempt == 0:
                close_broken_connection()
    return True
