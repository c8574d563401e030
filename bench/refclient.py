"""The plain reference client the engine bench compares llmperf with: aiohttp on uvloop, nothing else.

It sends the same schedule as llmperf (open loop at a constant rate, or N closed-loop streams),
stamps ``perf_counter_ns()`` when the first content chunk arrives and parses nothing. TTFT counts
from the scheduled send, as llmperf's glossary defines it, so the two columns are comparable.

    python bench/refclient.py URL '{"kind": "rate", "rate": 400, "seconds": 10}' OUT.json
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from time import perf_counter_ns
from typing import Any

import aiohttp
import uvloop

BODY = json.dumps(
    {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True, "max_tokens": 64}
).encode()
CONTENT = b'"content":" tok"'


async def one(session: aiohttp.ClientSession, url: str, rid: str, sched: int, out: list[list[Any]]) -> None:
    first = 0
    ok = False
    try:
        async with session.post(url, data=BODY, headers={"x-request-id": rid}) as resp:
            async for chunk in resp.content.iter_any():
                if not first and CONTENT in chunk:
                    first = perf_counter_ns()
            ok = resp.status == 200
    except (aiohttp.ClientError, OSError):
        ok = False
    out.append([rid, sched, first, perf_counter_ns(), ok])


async def main(url: str, scenario: dict[str, Any]) -> dict[str, Any]:
    out: list[list[Any]] = []
    seconds = float(scenario["seconds"])
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=75)
    async with aiohttp.ClientSession(connector=connector) as session:
        warm = int(scenario.get("users") or 64)
        await asyncio.gather(*(_warm(session, url) for _ in range(min(warm, 1024))))
        cpu0 = time.process_time()
        t0 = perf_counter_ns()
        stop = t0 + int(seconds * 1e9)
        if scenario["kind"] == "rate":
            period = int(1e9 / float(scenario["rate"]))
            tasks = []
            k = 0
            while True:
                sched = t0 + k * period
                if sched >= stop:
                    break
                delay = (sched - perf_counter_ns()) / 1e9
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(
                    asyncio.create_task(one(session, url + "/chat/completions", f"p-{k}", sched, out))
                )
                k += 1
            await asyncio.gather(*tasks)
        else:

            async def user(u: int) -> None:
                n = 0
                while perf_counter_ns() < stop:
                    await one(session, url + "/chat/completions", f"p-{u}-{n}", perf_counter_ns(), out)
                    n += 1

            await asyncio.gather(*(user(u) for u in range(int(scenario["users"]))))
        cpu = time.process_time() - cpu0
    return {"t0": t0, "stop": stop, "cpu_s": cpu, "requests": out}


async def _warm(session: aiohttp.ClientSession, url: str) -> None:
    try:
        async with session.get(url + "/models") as resp:
            await resp.read()
    except (aiohttp.ClientError, OSError):
        pass


if __name__ == "__main__":
    result = uvloop.run(main(sys.argv[1], json.loads(sys.argv[2])))
    with open(sys.argv[3], "w") as out:
        json.dump(result, out)
