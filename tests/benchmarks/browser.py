"""What the browser tests share: daphne serving the test database, Debian's Chromium, signing up."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections

from tests.benchmarks.workers import ROOT, free_port, service_env, wait_for

CHROMIUM = "/usr/bin/chromium"
MARKS = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def listening(port: int) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/login/", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def daphne(tmp_path: Path) -> Iterator[str]:
    """The ASGI app in its own process against the test database; its base URL."""
    port = free_port()
    log = (tmp_path / "daphne.log").open("w")
    exe = str(Path(sys.executable).with_name("daphne"))
    proc = subprocess.Popen(
        [exe, "-b", "127.0.0.1", "-p", str(port), "llmperf_site.asgi:application"],
        cwd=ROOT,
        env=service_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(lambda: listening(port), 30, "daphne to listen")
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
        log.close()
        connections.close_all()


def is_csp_violation(text: str) -> bool:
    """Chromium's console message when the Content-Security-Policy blocked something."""
    return "Content Security Policy" in text or "Content-Security-Policy" in text


class WatchedBrowser:
    """The browser, whose pages report every console error naming the Content-Security-Policy into
    ``violations``; :func:`chromium` fails the test with them at the end."""

    def __init__(self, browser: Any) -> None:
        self._browser = browser
        self.violations: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._browser, name)

    def _watch(self, target: Any) -> Any:
        def on_console(message: Any) -> None:
            if message.type == "error" and is_csp_violation(message.text):
                self.violations.append(message.text)

        target.on("console", on_console)
        return target

    def new_page(self, **kwargs: Any) -> Any:
        return self._watch(self._browser.new_page(**kwargs))

    def new_context(self, **kwargs: Any) -> Any:
        return self._watch(self._browser.new_context(**kwargs))


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, never a downloaded browser. Missing, it is a failure, not a skip:
    ``scripts/setup-services`` installs it (CI runs that). A page that breaks the
    Content-Security-Policy (an inline script without the nonce, an inline handler) fails the test."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/setup-services as root (apt-get install chromium)")

    # Playwright's sync API runs an event loop in this thread; the tests never touch the ORM under it.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            watched = WatchedBrowser(browser)
            try:
                yield watched
            finally:
                browser.close()
            if watched.violations:
                pytest.fail("Content-Security-Policy violations:\n" + "\n".join(watched.violations))
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def sign_up(page: Any, server: str, username: str) -> None:
    page.goto(f"{server}/signup/")
    page.fill("#id_username", username)
    page.fill("#id_email", f"{username}@example.com")
    page.fill("#id_password1", "a long browser passphrase")
    page.fill("#id_password2", "a long browser passphrase")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Your team is ready")
