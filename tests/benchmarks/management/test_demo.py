"""The README's first command: embedded mode (SQLite, in-process worker, in-memory layer) runs a live
demo run in the background while the server answers pages and websockets."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets.sync.client

from tests.benchmarks.workers import free_port

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


@pytest.fixture
def demo(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"SQLITE_PATH": str(tmp_path / "db.sqlite3"), "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "demo.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--port", str(port), "--duration", "6"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        text = ""
        deadline = time.monotonic() + 60
        while "Listening on TCP" not in text and time.monotonic() < deadline:
            assert proc.poll() is None, text
            time.sleep(0.3)
            text = (tmp_path / "demo.log").read_text()
        password = re.search(r"password: (\S+)", text).group(1)
        run_url = re.search(r"live demo run: (\S+)", text).group(1)
        yield port, password, run_url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def login(port: int, password: str) -> httpx.Client:
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=True, timeout=20)
    client.get("/login/")
    response = client.post(
        "/login/",
        data={"username": "demo", "password": password, "csrfmiddlewaretoken": client.cookies["csrftoken"]},
    )
    assert "Log out" in response.text, response.text[3000:9000]
    return client


def test_demo_serves_a_live_run_from_the_in_process_worker(demo):
    port, password, run_url = demo
    client = login(port, password)
    run_id = int(run_url.rstrip("/").rsplit("/", 1)[1])
    page = client.get(f"/runs/{run_id}/")
    assert page.status_code == 200 and "chart-ttft" in page.text
    assert client.get("/static/vendor/plotly/plotly.min.js").status_code == 200

    headers = {"Cookie": f"sessionid={client.cookies['sessionid']}", "Origin": f"http://127.0.0.1:{port}"}
    ticks = 0
    with websockets.sync.client.connect(
        f"ws://127.0.0.1:{port}/ws/runs/{run_id}/", additional_headers=headers
    ) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "history"
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            message = json.loads(ws.recv(timeout=10))
            ticks += message["type"] == "tick" and bool(message["rows"])
            if message["type"] == "final":
                break
    assert ticks >= 2
    assert message == {"type": "final", "status": "finished", "reason": ""}
    state = client.get(f"/api/runs/{run_id}/").json()
    assert state["summary"]["requests"]["total"] > 5
    assert state["summary"]["ttft_ms"]["p50"] == pytest.approx(150, abs=60)  # demo simulator: ttft_ms=150
