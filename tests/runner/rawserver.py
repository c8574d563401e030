"""A tiny in-process HTTP server that sends exactly the bytes a test scripts, with exact pauses.

The simulator speaks the protocols correctly; this one lets a test break them on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

Script = list[bytes | float | str]  # bytes are written, floats are pauses (s), "reset"/"close" end it


def _handler(
    script: Script, status: int, content_type: str
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        if status >= 400:
            body = b"".join(s for s in script if isinstance(s, bytes))
            return web.Response(status=status, body=body, content_type="application/json")
        resp = web.StreamResponse(status=status, headers={"content-type": content_type})
        await resp.prepare(request)
        for step in script:
            if isinstance(step, float):
                await asyncio.sleep(step)
            elif step == "reset":
                assert request.transport is not None
                request.transport.abort()
                return resp
            elif isinstance(step, bytes):
                await resp.write(step)
        await resp.write_eof()
        return resp

    return handle


@contextlib.asynccontextmanager
async def raw_server(
    script: Script, status: int = 200, content_type: str = "text/event-stream", ws: bool = False
) -> AsyncIterator[str]:
    app = web.Application()
    if ws:

        async def ws_handle(request: web.Request) -> web.WebSocketResponse:
            sock = web.WebSocketResponse()
            await sock.prepare(request)
            await sock.receive()
            for step in script:
                if isinstance(step, float):
                    await asyncio.sleep(step)
                elif step == "close":
                    await sock.close()
                    return sock
                elif isinstance(step, bytes):
                    await sock.send_str(step.decode())
            await sock.close()
            return sock

        app.router.add_get("/v1/ws", ws_handle)
    handler = _handler(script, status, content_type)
    app.router.add_route("*", "/v1/{tail:.*}", handler)
    async with serve_app(app) as url:
        yield url


@contextlib.asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Any aiohttp app on a free loopback port; yields its base URL ending in ``/v1``."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


def chat_chunk(
    content: str | None = None, reasoning: str | None = None, finish: str | None = None, role: bool = False
) -> bytes:
    import json

    delta: dict[str, str] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta["reasoning_content"] = reasoning
    obj = {
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def usage_chunk(prompt: int, completion: int) -> bytes:
    import json

    obj = {"choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion}}
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"
