"""A real browser (Debian's Chromium, headless) through a comparison: tick runs on the runs list, read
the table and the overlaid charts, save it, reopen its URL as another member; an outsider gets 404."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

from benchmarks.models import Run
from tests.benchmarks.browser import MARKS, chromium, daphne
from tests.benchmarks.compare_runs import finished_run
from tests.benchmarks.factories import Cast, make_cast
from tests.benchmarks.workers import ROOT

SCREENSHOT = ROOT / "docs" / "compare.png"
pytestmark = MARKS


@pytest.fixture
def server(transactional_db, tmp_path):
    """daphne serving the ASGI app against the test database (no worker: the runs are already done)."""
    with daphne(tmp_path) as url:
        yield url


@pytest.fixture
def browser():
    with chromium() as b:
        yield b


@dataclass
class Scene:
    cast: Cast
    base: Run
    slow: Run
    sessions: dict[str, str]  # username -> session id
    report: bytes  # the HTML export of base vs slow


@pytest.fixture
def scene(transactional_db) -> Scene:
    """Everything the database holds, made before the browser starts: Playwright runs an event loop in
    this thread, and a connection opened under it would outlive the test."""
    cast = make_cast()
    base = finished_run(cast.plan, seed=1, variant={"quantization": "bf16", "tp": "4"})
    slow = finished_run(cast.plan, seed=2, ttft_ms=150, variant={"quantization": "int4", "tp": "4"})
    sessions = {}
    for user in (cast.alice, cast.bob, cast.carol):
        client = Client()
        client.force_login(user)  # daphne's settings cannot check the tests' fast password hashes
        sessions[user.username] = client.cookies["sessionid"].value
    client = Client()  # logging another user in on carol's client would end her session
    client.force_login(cast.alice)
    report = client.get(reverse("compare_export", args=["html"]), {"runs": f"{base.pk},{slow.pk}"}).content
    yield Scene(cast, base, slow, sessions, report)
    connections.close_all()


def logged_in(browser, server: str, scene: Scene, username: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1400})
    context.add_cookies([{"name": "sessionid", "value": scene.sessions[username], "url": server}])
    page = context.new_page()
    page.goto(f"{server}/runs/")
    return page


def test_compare_save_share_and_hide_from_outsiders(scene, server, browser):
    base, slow = scene.base, scene.slow
    alice = logged_in(browser, server, scene, "alice")
    alice.check(f"input[name=runs][value='{base.pk}']")  # ticked first: the baseline
    alice.check(f"input[name=runs][value='{slow.pk}']")
    alice.click("#compare-selected")
    alice.wait_for_selector("#compare-table")
    assert f"runs={base.pk},{slow.pk}" in alice.url
    headers = alice.locator("#compare-table thead th.run-col")
    assert headers.count() == 2
    assert "baseline" in headers.nth(0).inner_text() and "quantization=int4" in headers.nth(1).inner_text()
    ttft = alice.locator('tbody[data-section="overall"] tr[data-path="ttft_ms.p50"] td.cell').nth(1)
    assert ttft.get_attribute("data-verdict") == "worse" and "worse" in ttft.inner_text()
    alice.wait_for_selector("#chart-ttft_cdf .main-svg")
    traces = alice.evaluate("() => document.getElementById('chart-ttft_cdf').data.map(t => t.name)")
    assert traces == [f"#{base.pk} quantization=bf16 tp=4", f"#{slow.pk} quantization=int4 tp=4"]
    for chart in ("tps_dist", "ttft_time", "qpm_time", "bucket_ttft_ms"):
        alice.wait_for_selector(f"#chart-{chart} .main-svg")

    alice.fill("#save-comparison input[name=title]", "INT4 vs BF16 at TP=4")
    alice.fill("#save-comparison textarea[name=notes]", "TTFT regressed; decode unchanged.")
    alice.click("#save-button")
    alice.wait_for_url(re.compile(r"/comparisons/\d+/$"))
    shared = alice.url
    assert "INT4 vs BF16 at TP=4" in alice.text_content("h1")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    alice.screenshot(path=str(SCREENSHOT), full_page=False)

    bob = logged_in(browser, server, scene, "bob")
    bob.goto(shared)
    bob.wait_for_selector("#compare-table")
    assert "INT4 vs BF16 at TP=4" in bob.text_content("h1")
    assert "TTFT regressed" in bob.text_content("#comparison-notes")
    bob.wait_for_selector("#chart-ttft_cdf .main-svg")

    carol = logged_in(browser, server, scene, "carol")
    response = carol.goto(shared)
    assert response.status == 404
    assert "INT4 vs BF16" not in carol.content()


def test_html_report_renders_offline(scene, browser, tmp_path):
    report = tmp_path / "report.html"
    report.write_bytes(scene.report)
    page = browser.new_context(offline=True).new_page()
    page.goto(report.as_uri())
    page.wait_for_selector("#chart-ttft_cdf .main-svg")
    assert page.evaluate("() => document.getElementById('chart-ttft_cdf').data.length") == 2
    overall = page.locator(
        '#compare-table tbody[data-section="overall"] tr[data-path="ttft_ms.p50"] td.cell.worse'
    )
    assert overall.count() == 1
