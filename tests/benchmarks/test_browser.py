"""A real browser (Debian's Chromium, headless) through the whole story: sign up, endpoint, dataset,
profile, plan, start a run, watch the live TTFT chart fill over the websocket, read the summary."""

from __future__ import annotations

import pytest

from tests.benchmarks.browser import MARKS, chromium, daphne, sign_up
from tests.benchmarks.workers import ROOT, workers

SCREENSHOT = ROOT / "docs" / "live-run.png"
pytestmark = MARKS


@pytest.fixture
def server(transactional_db, tmp_path):
    """daphne serving the ASGI app against the test database, with a Celery worker behind it."""
    with workers(("browser", "load,celery")), daphne(tmp_path) as url:
        yield url


@pytest.fixture
def page():
    with chromium() as browser:
        yield browser.new_page(viewport={"width": 1400, "height": 1500})


def test_sign_up_plan_and_watch_a_live_run(server, page, simulator):
    sign_up(page, server, "alice")

    page.goto(f"{server}/endpoints/new/")
    page.fill("#id_name", "Simulator")
    page.fill("#id_base_url", simulator.base_url)
    page.fill("#id_model", "llmperf-sim")
    page.fill("#id_api_key", "sk-browser-SECRET")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Endpoint “Simulator”")
    page.click("#test-connection button")
    page.wait_for_selector("#probe-ttft")
    assert "sk-browser-SECRET" not in page.content()

    page.goto(f"{server}/datasets/new/")
    page.fill("#id_name", "Greetings")
    page.fill("#id_content", "\n".join(f'{{"prompt": "Say hello number {i}."}}' for i in range(20)))
    page.click("button[type=submit]")
    page.wait_for_selector("text=20 prompts")

    page.goto(f"{server}/profiles/new/")
    page.fill("#id_name", "Three users")
    page.select_option("#id_kind", "users")
    page.fill("#id_users", "3")
    page.fill("#id_spawn_rate", "1")
    page.click("button[type=submit]")
    page.wait_for_selector("#chart-preview .main-svg")

    page.goto(f"{server}/plans/new/")
    page.fill("#id_name", "Browser plan")
    page.select_option("#id_endpoint", label="Simulator")
    page.select_option("#id_dataset", label="Greetings")
    page.select_option("#id_profile", label="Three users")
    page.fill("#id_max_tokens", "32")
    page.fill("#id_duration_s", "12")
    page.fill("#id_quantization", "fp8")
    page.click("button[type=submit]")
    page.click("#start-run")

    page.wait_for_selector("#chart-ttft")
    page.wait_for_function("() => llmperf.live.ticks >= 3", timeout=30_000)
    points = page.evaluate("() => document.getElementById('chart-ttft').data[0].x.length")
    assert points >= 2
    assert page.evaluate("() => document.getElementById('run-status').textContent") == "running"

    # A viewer who loses the socket reconnects and catches up from the history sent on connect.
    page.evaluate("() => llmperf.live.socket.close()")
    page.wait_for_function("() => llmperf.live.socket === null")
    before = page.evaluate("() => llmperf.live.messages")
    page.wait_for_function(f"() => llmperf.live.messages > {before} + 1", timeout=15_000)
    assert page.evaluate("() => document.getElementById('chart-ttft').data[0].x.length") >= points
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=False)

    page.wait_for_selector("#summary-table", timeout=60_000)  # the page reloads when the run ends
    assert page.text_content("#run-status") == "finished"
    assert "TTFT (ms)" in page.text_content("#summary-table")
    page.wait_for_selector("#chart-ttft_hist .main-svg")

    # The requests table lists the run's requests worst first; a row opens its packet timeline.
    page.click("#run-requests-link")
    page.wait_for_selector("#requests-table")
    page.locator("#requests-table tbody tr a").first.click()
    page.wait_for_selector("text=Packet timeline")
    assert "/requests/" in page.url
    assert page.locator("#packets tbody tr").count() >= 2

    # Back on the run page: the conventions table opens, and the run starts again from its snapshot.
    page.go_back()
    page.go_back()
    page.wait_for_selector("#headline")
    run_url = page.url
    assert not page.is_visible("#conventions-table")
    page.click("#conventions summary")
    assert page.is_visible("#conventions-table")
    assert "vLLM bench serve" in page.text_content("#conventions-table")
    page.click("#run-again")
    page.wait_for_url(lambda url: url != run_url and "/runs/" in url)
    page.wait_for_selector("#cancel-run")
    page.click("#cancel-run")  # leave no load running behind the test
    page.wait_for_selector("#run-status:not(:text('running'))", timeout=30_000)
