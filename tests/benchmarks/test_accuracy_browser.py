"""MATH-500 through the whole dashboard in a real browser: one click adds it, a plan sends its first
items (the default reasoning template applied) to a simulator answering from the key with 10% wrong,
the run is graded on a real Celery worker, and the finished page shows the accuracy block, the wrong
items and the quality monitors."""

from __future__ import annotations

import pytest
from django.db import connections

from benchmarks.models import RequestRecord
from runner import SimulatorProcess
from tests.benchmarks.browser import MARKS, chromium, daphne, sign_up
from tests.benchmarks.workers import workers

pytestmark = MARKS
ITEMS = 30  # the first 30 MATH-500 items; the simulator's key (seed 0) answers items 2, 23, 24, 26 wrong


@pytest.fixture
def server(transactional_db, tmp_path):
    with workers(("browser", "load,celery")), daphne(tmp_path) as url:
        yield url


@pytest.fixture
def page():
    with chromium() as browser:
        yield browser.new_page(viewport={"width": 1400, "height": 1500})


@pytest.fixture(scope="module")
def answering_simulator():
    with SimulatorProcess(
        answer_key="builtin:math500",
        wrong_rate=0.1,
        ttft_ms=20,
        itl_ms=1,
        thinking_tokens=16,
        output_tokens=24,
    ) as sim:
        yield sim


def test_add_math500_run_it_and_read_the_accuracy(server, page, answering_simulator):
    sign_up(page, server, "alice")
    page.goto(f"{server}/datasets/")
    page.click("#add-builtin-math500")
    page.wait_for_selector("text=500 prompts")

    page.goto(f"{server}/endpoints/new/")
    page.fill("#id_name", "Math sim")
    page.fill("#id_base_url", answering_simulator.base_url)
    page.fill("#id_model", "llmperf-sim")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Endpoint “Math sim”")

    page.goto(f"{server}/profiles/new/")
    page.fill("#id_name", "Three users")
    page.select_option("#id_kind", "users")
    page.fill("#id_users", "3")
    page.fill("#id_spawn_rate", "100")
    page.click("button[type=submit]")
    page.wait_for_selector("#chart-preview .main-svg")

    page.goto(f"{server}/plans/new/")
    page.fill("#id_name", "Math plan")
    page.select_option("#id_endpoint", label="Math sim")
    page.select_option("#id_dataset", label="MATH-500")
    page.select_option("#id_profile", label="Three users")
    page.fill("#id_max_tokens", "512")
    page.fill("#id_duration_s", "60")
    page.fill("#id_max_requests", str(ITEMS))
    page.click("button[type=submit]")
    assert "within \\boxed{}" in page.text_content("#plan-template")
    page.click("#start-run")

    page.wait_for_selector("#summary-table", timeout=90_000)  # the page reloads when the run ends
    assert page.text_content("#run-status") == "finished"
    assert page.text_content("#accuracy-counts").startswith(f"{ITEMS - 4} right of {ITEMS}")
    assert page.text_content("#accuracy-rate") == f"{(ITEMS - 4) / ITEMS:.3f}"
    assert "95% Wilson interval" in page.text_content("#accuracy-ci")
    assert page.locator("#accuracy-by-subject tbody tr").count() >= 2
    assert page.locator("#accuracy-by-level tbody tr").count() >= 2

    wrong = page.locator("#wrong-answers tbody tr")
    assert wrong.count() == 4
    first = wrong.first
    assert first.locator(".question").text_content().strip()
    assert first.locator(".reference").text_content().strip()
    assert (
        first.locator(".extracted").text_content().strip()
        != first.locator(".reference").text_content().strip()
    )
    assert first.locator(".why").text_content().strip()
    assert page.locator("#quality-table tbody tr").count() == 4
    # the live charts keep the per-second quality rates and the running accuracy
    assert page.evaluate("() => document.getElementById('chart-quality').data.length") == 4
    assert page.evaluate("() => !document.getElementById('chart-accuracy').hidden")

    # every stored record carries its final verdict (the shard graded after streaming them)
    stored = list(RequestRecord.objects.values_list("data__correct", "data__grade_reason"))
    connections.close_all()  # this thread's connection, before the test database is dropped
    assert len(stored) == ITEMS and all(c is not None and reason for c, reason in stored)
    assert sum(1 for c, _ in stored if not c) == 4
