"""The Content-Security-Policy: on every response of every route in the URL resolver, with a nonce
that each inline script of the page carries, and templates without inline event handlers or inline
scripts lacking that nonce. The browser tests (tests/benchmarks/browser.py) fail on any CSP
violation Chromium reports, so the pages are also checked to work under the policy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import reverse

from tests.benchmarks.test_access_every_route import fill, routes

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
# A downloaded comparison report: a standalone file opened from disk, never served as a page.
STANDALONE = {"benchmarks/compare/report.html"}
HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE | re.DOTALL)
SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.IGNORECASE)


def _policy(header: str) -> dict[str, list[str]]:
    parts = (d.strip().split() for d in header.split(";") if d.strip())
    return {p[0]: p[1:] for p in parts}


def _inline_scripts(attrs: list[str]) -> list[str]:
    """Attributes of script tags that run inline code (no src, not a JSON data block)."""
    return [a for a in attrs if "src=" not in a and "application/json" not in a]


def test_every_route_answers_with_the_policy_and_its_inline_scripts_carry_the_nonce(
    cast, client_for, team_a_objects
):
    alice = client_for(cast.alice)
    checked = 0
    for name, route, pattern in routes():
        url = fill(name, route, pattern, team_a_objects, cast)
        response = alice.get(url)
        header = response.headers.get("Content-Security-Policy")
        assert header, f"GET {url} ({name}) answered {response.status_code} without a CSP"
        policy = _policy(header)
        assert policy["default-src"] == ["'self'"], (name, header)
        assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
        if response.get("Content-Type", "").startswith("text/html") and not response.streaming:
            page = response.content.decode()
            inline = _inline_scripts(SCRIPT_TAG.findall(page))
            nonces = [t for t in policy["script-src"] if t.startswith("'nonce-")]
            for attrs in inline:
                assert nonces, f"{name}: an inline script but no nonce in the policy"
                assert f'nonce="{nonces[0][7:-1]}"' in attrs, (
                    f"{name}: inline <script{attrs}> without the nonce"
                )
            assert not HANDLER.search(page), (
                f"{name}: an inline event handler: {HANDLER.search(page)[0][:120]}"
            )
        checked += 1
    assert checked >= 60  # the resolver really was walked


def test_the_nonce_changes_per_response_and_the_login_page_has_the_policy_too(cast, client, client_for):
    login = client.get(reverse("login"))
    assert _policy(login.headers["Content-Security-Policy"])["default-src"] == ["'self'"]
    alice = client_for(cast.alice)
    url = reverse("plan_detail", args=[cast.plan.pk])
    first, second = (_policy(alice.get(url).headers["Content-Security-Policy"]) for _ in range(2))
    nonce = [t for t in first["script-src"] if t.startswith("'nonce-")]
    assert nonce and nonce != [t for t in second["script-src"] if t.startswith("'nonce-")]


def test_no_template_has_an_inline_event_handler_or_an_inline_script_without_the_nonce():
    found = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        name = str(path.relative_to(TEMPLATES))
        text = path.read_text()
        for match in HANDLER.finditer(text):
            found.append(f"{name}: event handler in {match[0][-60:]!r}")
        if name in STANDALONE:
            continue
        for attrs in _inline_scripts(SCRIPT_TAG.findall(text)):
            if 'nonce="{{ CSP_NONCE }}"' not in attrs:
                found.append(f"{name}: <script{attrs}> without nonce")
    assert found == [], "\n".join(found)
    assert len(list(TEMPLATES.rglob("*.html"))) > 20  # the templates really were read


def test_the_scan_itself_catches_a_handler_and_a_bare_inline_script():
    assert HANDLER.search('<select name="t" onchange="this.form.submit()">')
    assert HANDLER.search('<a\n href="#" onClick = "x()">')
    assert not HANDLER.search('<p>one=1, done="yes"</p>')
    assert _inline_scripts(SCRIPT_TAG.findall("<script>alert(1)</script>")) == [""]
    assert _inline_scripts(SCRIPT_TAG.findall('<script src="/static/a.js"></script>')) == []
    assert _inline_scripts(SCRIPT_TAG.findall('<script id="d" type="application/json">{}</script>')) == []


@pytest.mark.browser
def test_the_browser_fixture_collects_csp_violations():
    """The watch the browser tests rely on: Chromium's report of a blocked inline script and of an
    inline handler reaches ``violations`` (cleared here, so this test itself passes)."""
    from tests.benchmarks.browser import chromium

    body = "<script>document.title = 'ran'</script><img src=x onerror=\"document.title='handler'\">"
    with chromium() as browser:
        page = browser.new_page()
        page.route(
            "http://csp.test/",
            lambda route: route.fulfill(
                status=200,
                content_type="text/html",
                headers={"Content-Security-Policy": "default-src 'self'; script-src 'self'"},
                body=body,
            ),
        )
        page.goto("http://csp.test/")
        page.wait_for_timeout(300)
        title = page.title()
        caught = list(browser.violations)
        browser.violations.clear()
    assert title == ""  # neither ran
    assert len(caught) >= 2, caught
    assert any("inline script" in v for v in caught), caught
