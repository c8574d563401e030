"""Sending to a run's websocket group from synchronous code (workers)."""

from __future__ import annotations

import logging
from typing import Any

import redis
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from benchmarks.models import Run

log = logging.getLogger(__name__)


def push_to_viewers(run: Run, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(run.ws_group, message)
    except (
        redis.ConnectionError,
        redis.TimeoutError,
    ) as exc:  # an outage: viewers catch up from the database once it is back
        log.warning("push to run %s viewers failed: Redis unreachable (%s)", run.pk, exc)
    except Exception:  # viewers catch up from the database; a push failure must not end the run
        log.exception("push to run %s viewers failed", run.pk)
