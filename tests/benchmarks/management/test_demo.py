"""The README's first command: embedded mode (SQLite, in-process worker, in-memory layer) seeds demo
data that shows the product — two reasoning-simulator variants run for real and saved as a
comparison, three datasets counted in Qwen3, a clean token audit — and runs a live demo run in the
background while the server answers pages and websockets; a browser walk of it meets no error."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets.sync.client

from tests.benchmarks.browser import chromium
from tests.benchmarks.workers import free_port

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("demo")
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
        deadline = time.monotonic() + 150  # the product within 90 s of starting, with room for a busy CI
        while "Listening on TCP" not in text and time.monotonic() < deadline:
            assert proc.poll() is None, text
            time.sleep(0.3)
            text = (tmp_path / "demo.log").read_text()
        password = re.search(r"password: (\S+)", text).group(1)
        run_url = re.search(r"live demo run: (\S+)", text).group(1)
        yield port, password, run_url, text, tmp_path / "db.sqlite3"
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
    port, password, run_url, _, _ = demo
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


def _rows(db, sql: str, *args):
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def test_demo_data_shows_the_product(demo):
    port, password, _, text, db = demo
    comparison_url = re.search(r"saved comparison: (\S+)", text).group(1)
    ready_s = float(re.search(r"ready in (\d+) s", text).group(1))
    assert ready_s < 90, text
    assert "Traceback" not in text and "failed" not in text, text  # verdicts stored on SQLite too

    # two variants, each run for real against its simulator, finished, compared
    (run_ids,) = _rows(db, "SELECT run_ids FROM benchmarks_comparison")[0]
    runs = {
        quantization: json.loads(summary)
        for quantization, summary in _rows(
            db,
            "SELECT p.quantization, r.summary FROM benchmarks_run r JOIN benchmarks_plan p ON p.id = r.plan_id "
            f"WHERE r.id IN ({','.join(map(str, json.loads(run_ids)))}) AND r.status = 'finished'",
        )
    }
    assert set(runs) == {"bf16", "int4"}
    bf16, int4 = runs["bf16"], runs["int4"]
    for summary in (bf16, int4):
        assert summary["requests"]["succeeded"] >= 8
        audit = summary["token_audit"]  # the simulators count in Qwen3 like the client
        assert audit["compared"] == summary["requests"]["succeeded"] and audit["disagreeing"] == 0
        assert summary["thinking_ms"]["p50"] > 0  # reasoning: thinking packets before the answer
    assert int4["ttft_ms"]["p50"] < bf16["ttft_ms"]["p50"]  # the quantized variant is faster …
    assert int4["accuracy"]["rate"] < bf16["accuracy"]["rate"]  # … and answers more items wrongly

    # three datasets, each counted in Qwen3; the synthetic one spans 1k–48k
    counted = _rows(
        db,
        "SELECT d.name, c.status, c.counts FROM benchmarks_tokencount c "
        "JOIN benchmarks_datasetversion v ON v.id = c.version_id JOIN benchmarks_dataset d ON d.id = v.dataset_id "
        "WHERE c.tokenizer = 'qwen3'",
    )
    names = {name: json.loads(counts) for name, status, counts in counted if status == "done"}
    assert len(names) >= 3 and "MATH-500" in names
    synthetic = next(counts for name, counts in names.items() if name.startswith("Synthetic"))
    assert min(synthetic) < 4096 and 32768 <= max(synthetic) < 49152

    client = login(port, password)
    page = client.get(comparison_url)
    assert page.status_code == 200 and "int4" in page.text.lower()


def test_a_browser_walk_of_the_demo_meets_no_error(demo):
    """Every list and every object page the demo links to: no console error, failed request or error status."""
    port, password, _, _, _ = demo
    base = f"http://127.0.0.1:{port}"
    problems: list[str] = []
    with chromium() as browser:
        page = browser.new_page()
        page.on(
            "console", lambda m: m.type == "error" and problems.append(f"console: {m.text} at {page.url}")
        )
        page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and problems.append(f"status {r.status}: {r.url}"))
        page.goto(base + "/login/")
        page.fill("#id_username", "demo")
        page.fill("#id_password", password)
        page.click("button[type=submit]")
        page.wait_for_selector("text=Log out")
        links: set[str] = set()
        for start in ["/", "/runs/", "/comparisons/", "/datasets/", "/endpoints/", "/plans/", "/profiles/"]:
            page.goto(base + start)
            page.wait_for_load_state("networkidle")
            hrefs = page.eval_on_selector_all("a[href^='/']", "els => els.map(e => e.getAttribute('href'))")
            links |= {
                h
                for h in hrefs
                if re.match(r"^/(runs|comparisons|datasets|endpoints|plans|profiles)/\d+/$", h)
            }
        for href in sorted(links):
            page.goto(base + href)
            page.wait_for_load_state("networkidle")
    assert len(links) >= 10  # 3 runs, a comparison, 3 datasets, 2 endpoints, 3 plans, a profile
    assert problems == []
