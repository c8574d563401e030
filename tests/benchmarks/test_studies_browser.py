"""A real browser (Debian's Chromium, headless) on a finished capacity run's page: the one sentence,
the capacity curve with its SLO lines, and the server's batch beside the client's TTFT."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test import Client

from tests.benchmarks.browser import MARKS, chromium, daphne
from tests.benchmarks.factories import make_cast
from tests.benchmarks.presenters.test_studies import capacity_block, server_report, with_summary
from tests.benchmarks.workers import ROOT

SCREENSHOT = ROOT / "docs" / "capacity.png"
pytestmark = MARKS


@pytest.fixture
def scene(transactional_db):
    """The database is filled before the browser starts (Playwright runs an event loop here)."""
    cast = make_cast()
    run = with_summary(
        cast.run, capacity=capacity_block(trusted=False), server_metrics=server_report(accept=0.7)
    )
    client = Client()
    client.force_login(cast.alice)
    yield run, client.cookies["sessionid"].value
    connections.close_all()


def test_run_page_shows_the_capacity_sentence_and_curve(scene, tmp_path):
    run, session = scene
    with daphne(tmp_path) as server, chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1600})
        context.add_cookies([{"name": "sessionid", "value": session, "url": server}])
        page = context.new_page()
        page.goto(f"{server}/runs/{run.pk}/")
        sentence = page.locator("#capacity-sentence").inner_text()
        assert sentence.startswith(
            "Holds 480 QPM at 16k–32k input tokens with 99% of requests within TTFT ≤ 2 s"
        )
        assert "(limited by TTFT)" in sentence and page.locator("#capacity-untrusted").is_visible()
        page.wait_for_selector("#chart-capacity_curve_0 .main-svg")
        names = page.evaluate("() => document.getElementById('chart-capacity_curve_0').data.map(t => t.name)")
        assert names == ["attainment %", "TTFT p99 (ms)"]
        shapes = page.evaluate("() => document.getElementById('chart-capacity_curve_0').layout.shapes.length")
        assert shapes == 2  # the attainment target and the TTFT objective
        page.wait_for_selector("#chart-server_ttft .main-svg")
        page.locator("#capacity").screenshot(path=str(SCREENSHOT))
