"""A small TCP proxy for fault tests: the app reaches Postgres or Redis through it, and the test can
cut the link (existing connections reset, new ones refused with a reset) and restore it.

It runs its own asyncio loop on a thread of the test process, so nothing shared (the machine's
Postgres and Redis) is ever stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time

_LINGER_RESET = struct.pack("ii", 1, 0)  # close() then sends RST instead of FIN


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    writer.transport.abort()


class TcpProxy:
    """``with TcpProxy(5432) as proxy:`` listens on ``proxy.port`` (loopback) and forwards to
    ``upstream_host:upstream_port``; ``proxy.cut()`` / ``proxy.restore()``."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.is_cut = False
        self.cut_at: float | None = None  # time.monotonic() of the last cut
        self.refused = 0  # connections reset while cut
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._server: asyncio.Server | None = None

    # -- test side ------------------------------------------------------------------------------
    def start(self) -> TcpProxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def cut(self) -> None:
        """Reset every open connection and every new one until :meth:`restore`."""
        self.cut_at = time.monotonic()
        self._call(self._cut())

    def restore(self) -> None:
        self.is_cut = False

    def close(self) -> None:
        if self._server is not None:
            self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    # -- loop side ------------------------------------------------------------------------------
    async def _cut(self) -> None:
        self.is_cut = True
        for client, upstream in list(self._links):
            _reset(client)
            _reset(upstream)
        self._links.clear()

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._cut()
        self.is_cut = False
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_cut:
            self.refused += 1
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _reset(writer)
            return
        link = (writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._links.discard(link)
            for w in link:
                w.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()
