"""The delta bus through a Redis outage (a TCP proxy cut, the shared Redis untouched): a publish
holds deltas back instead of raising, they go out in order once Redis returns, and a drain that
loses Redis raises a connection error the aggregator retries on."""

from __future__ import annotations

import os
import socket

import pytest
import redis

from benchmarks.live.bus import RedisBus
from tests.tcp_proxy import TcpProxy

RUN = 987_654


@pytest.fixture
def proxy():
    with TcpProxy(6379) as p:
        yield p


def _ping(sock: socket.socket) -> bytes:
    sock.sendall(b"PING\r\n")
    reply = sock.recv(64)
    if not reply:
        raise ConnectionResetError("closed by the proxy")
    return reply


def test_the_proxy_resets_open_links_refuses_new_ones_and_restores(proxy):
    link = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    assert _ping(link) == b"+PONG\r\n"
    proxy.cut()
    with pytest.raises(OSError):
        _ping(link)
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as late:
        _ping(late)
    assert proxy.refused >= 1
    proxy.restore()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as again:
        assert _ping(again) == b"+PONG\r\n"
    link.close()


def test_deltas_published_during_an_outage_arrive_in_order_after_it(proxy):
    db = os.environ["REDIS_URL"].rsplit("/", 1)[1]
    through = RedisBus(f"redis://127.0.0.1:{proxy.port}/{db}")
    direct = RedisBus(os.environ["REDIS_URL"])
    direct.discard(RUN)
    try:
        through.publish(RUN, {"seq": 1})
        proxy.cut()
        through.publish(RUN, {"seq": 2})  # no exception: held back
        through.publish(RUN, {"seq": 3})
        assert len(through.pending) == 2 and not through.flush()
        with pytest.raises(redis.ConnectionError):
            through.drain(RUN, timeout=0.1)
        assert [m["seq"] for m in direct.drain(RUN, timeout=1)] == [1]
        proxy.restore()
        through.publish(RUN, {"seq": 4})
        assert through.pending == []
        assert [m["seq"] for m in through.drain(RUN, timeout=1)] == [2, 3, 4]
    finally:
        direct.discard(RUN)
