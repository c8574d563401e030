"""Real Celery worker processes for tests, pointed at the test database, and cleaned up after."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))


def database_url_under_test() -> str:
    d = connection.settings_dict
    auth = d["USER"] + (f":{d['PASSWORD']}" if d.get("PASSWORD") else "")
    return f"postgres://{auth}@{d['HOST'] or '127.0.0.1'}:{d['PORT'] or 5432}/{d['NAME']}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url_under_test(),
        "REDIS_URL": os.environ["REDIS_URL"],
        "DEBUG": "true",
        "PYTHONPATH": str(ROOT),
        "SHARD_HEARTBEAT_TIMEOUT_S": "4",
        "SHARD_START_TIMEOUT_S": "30",
        **extra,
    }


def clear_queues() -> None:
    """Drop messages left by an earlier, interrupted session so they cannot run against this one."""
    import redis

    r = redis.Redis.from_url(os.environ["REDIS_URL"])
    stale = [k for k in r.scan_iter("*") if k in (b"celery", b"load") or b"dq2" in k or b"llmperf:run:" in k]
    if stale:
        r.delete(*stale)


class Worker:
    def __init__(
        self, name: str, queues: str = "load,celery", concurrency: int = 2, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.hostname = f"{name}@{socket.gethostname()}"
        self.log = tempfile.NamedTemporaryFile(prefix=f"celery-{name}-", suffix=".log", delete=False)  # noqa: SIM115
        argv = [
            CELERY,
            "-A",
            "llmperf_site",
            "worker",
            "-Q",
            queues,
            "-c",
            str(concurrency),
            "-n",
            self.hostname,
            "--without-gossip",
            "--without-mingle",
            "-l",
            "info",
        ]
        # Own session, so the whole process group (pool children too) can be killed at once.
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=service_env(**(env or {})),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 40.0) -> None:
        from llmperf_site.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.output()}")
            if app.control.ping(destination=[self.hostname], timeout=0.5):
                return
        raise TimeoutError(f"worker {self.name} did not answer:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-5000:]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.proc.wait()
        self.kill(signal.SIGKILL)  # pool children left behind by a warm shutdown
        self.log.close()
        os.unlink(self.log.name)


@contextlib.contextmanager
def workers(*specs: tuple[str, str], env: dict[str, str] | None = None) -> Iterator[list[Worker]]:
    """Workers named and subscribed as ``specs`` say; ``env`` overrides their environment (a
    fault test points DATABASE_URL or REDIS_URL at its proxy)."""
    clear_queues()
    started = [Worker(name, queues, env=env) for name, queues in specs]
    try:
        for w in started:
            w.wait_ready()
        yield started
    finally:
        for w in started:
            w.stop()


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise TimeoutError(f"timed out waiting for {what}")
