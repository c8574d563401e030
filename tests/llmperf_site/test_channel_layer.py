"""The Redis channel layer outlives its own blocking reads: redis-py 8's default 5 s socket timeout
cut channels_redis' BZPOPMIN (up to 5 s) and closed idle viewers' websockets with 1011."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer
from django.conf import settings


def test_the_socket_timeout_is_longer_than_the_layers_blocking_read():
    host = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
    assert host["address"] == settings.REDIS_URL
    layer = get_channel_layer()
    assert host["socket_timeout"] > layer.brpop_timeout


@pytest.mark.timeout(60)
def test_an_idle_receive_waits_past_five_seconds_then_gets_its_message():
    async def idle_then_message() -> dict:
        layer = get_channel_layer()
        channel = await layer.new_channel()

        async def later() -> None:
            await asyncio.sleep(7)  # longer than redis-py 8's default socket timeout
            await layer.send(channel, {"type": "x.ping"})

        sender = asyncio.create_task(later())
        try:
            return await layer.receive(channel)
        finally:
            await sender

    assert asyncio.run(idle_then_message()) == {"type": "x.ping"}
