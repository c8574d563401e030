"""``SimulatorProcess``: the simulator in a child process, so the engine under test never shares its
event loop (or its GIL) with the server it measures."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import selectors
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from runner.simulator.config import SimConfig, config_to_argv

LISTENING = re.compile(r"llmperf-simulator listening on (http://\S+)")
# The directory holding the ``runner`` package, so the child imports this very copy.
_IMPORT_ROOT = str(Path(__file__).resolve().parents[2])


class SimulatorProcess:
    """``with SimulatorProcess(ttft_ms=50, itl_ms=5) as sim: ... sim.base_url`` (or ``async with``).

    Keyword arguments override ``SimConfig`` fields; ``port`` defaults to 0 (a free port). The child
    exits when its stdin closes too, so even a killed parent leaves no orphan behind.
    """

    def __init__(self, config: SimConfig | None = None, *, startup_timeout_s: float = 20.0, **overrides: Any):
        self.config = dataclasses.replace(config or SimConfig(), **{"port": 0, **overrides})
        self.startup_timeout_s = startup_timeout_s
        self.url = ""  # http://HOST:PORT
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ``http://HOST:PORT/v1``."""
        return self.url + "/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> SimulatorProcess:
        if self._proc is not None:
            raise RuntimeError("simulator already started")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [_IMPORT_ROOT, os.environ.get("PYTHONPATH")])),
        }
        argv = [sys.executable, "-m", "runner.simulator", *config_to_argv(self.config), "--exit-on-stdin-eof"]
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        try:
            line = _first_line(self._proc, self.startup_timeout_s)
            match = LISTENING.search(line)
            if match is None:
                raise RuntimeError(f"unexpected first line from simulator: {line!r}")
        except BaseException:
            self.stop()
            raise
        self.url = match.group(1)
        return self

    def stop(self) -> None:
        """Terminate and reap the child (SIGKILL if SIGTERM is not enough within 5 s)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> SimulatorProcess:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)


def _first_line(proc: subprocess.Popen[bytes], timeout_s: float) -> str:
    """The child's first stdout line, without blocking past ``timeout_s``."""
    assert proc.stdout is not None
    fd, buffer = proc.stdout.fileno(), b""
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                raise TimeoutError(f"simulator did not start listening within {timeout_s} s")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"simulator exited with code {proc.wait()} before listening")
            buffer += chunk
    return buffer.split(b"\n", 1)[0].decode(errors="replace")
