"""The run page's websocket: full history on connect, then one update per second."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from benchmarks.models import Run
from benchmarks.selectors.runs import can_see_run, live_payload, run_live_get, run_series

POLL_EVERY_S = 1.0
RECHECK_EVERY_S = 5.0  # how soon a viewer removed from the team stops receiving the run


class RunConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        run_id = int(self.scope["url_route"]["kwargs"]["pk"])
        run = await database_sync_to_async(can_see_run)(user=self.scope["user"], run_id=run_id)
        if run is None:
            await self.close(code=4404)  # not found for this user: same answer as the pages' 404
            return
        self.run_id, self.group, self.last_t = run.pk, run.ws_group, -1
        self.checked_at = time.monotonic()
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "history", **await self._payload(full=True)})
        self.poller = asyncio.create_task(self._poll()) if settings.EMBEDDED_WORKER else None

    async def disconnect(self, code: int) -> None:
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if getattr(self, "poller", None):
            self.poller.cancel()

    async def run_update(self, event: dict[str, Any]) -> None:
        if await self._still_allowed():
            await self.send_json({**event, "type": "tick"})

    async def run_final(self, event: dict[str, Any]) -> None:
        if await self._still_allowed():
            await self.send_json({**event, "type": "final"})

    async def _still_allowed(self) -> bool:
        """Membership is re-checked every few seconds: someone removed from the team is cut off."""
        if time.monotonic() - self.checked_at < RECHECK_EVERY_S:
            return True
        self.checked_at = time.monotonic()
        run = await database_sync_to_async(can_see_run)(user=self.scope["user"], run_id=self.run_id)
        if run is None:
            await self.close(code=4403)
            return False
        return True

    async def _poll(self) -> None:
        """Embedded mode: the aggregator is a thread of this process, so read its row each second."""
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                await asyncio.sleep(POLL_EVERY_S)
                if not await self._still_allowed():
                    return
                payload = await self._payload(full=False)
                await self.send_json({"type": "tick", **payload})
                if payload["status"] not in Run.ACTIVE:
                    await self.send_json(
                        {"type": "final", "status": payload["status"], "reason": payload["reason"]}
                    )
                    return

    @database_sync_to_async
    def _payload(self, *, full: bool) -> dict[str, Any]:
        run = run_live_get(run_id=self.run_id)
        # After the history, re-read the last few seconds too: late deltas still change them.
        rows = run_series(run=run, since_t=None if full else self.last_t - 10)
        self.last_t = max([self.last_t, *(row["t"] for row in rows)])
        return live_payload(run, rows=rows)
