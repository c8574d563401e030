"""A real browser uploads a dataset, watches the counting progress bar move, and gets the
histogram and bucket table when counting ends (the page polls the progress endpoint, then reloads)."""

from __future__ import annotations

import random

import pytest

from tests.benchmarks.browser import sign_up
from tests.benchmarks.test_browser import page, server  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_upload_shows_live_progress_then_the_histogram(server, page, tmp_path):  # noqa: F811
    rng = random.Random(1)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(50, 1500))) for _ in range(6000)]
    upload = tmp_path / "prompts.txt"
    upload.write_text("\n".join(lines))

    sign_up(page, server, "dana")

    page.goto(f"{server}/datasets/new/")
    page.fill("#id_name", "Words")
    page.select_option("#id_tokenizer", "qwen3")
    page.set_input_files("#id_file", str(upload))
    page.click("button[type=submit]")
    page.wait_for_selector("text=6000 prompts")
    page.wait_for_selector(".count-progress")  # counting had not finished when the page came back
    page.wait_for_selector("#chart-histogram .main-svg", timeout=120_000)  # reloaded when done
    shown = page.evaluate(
        "() => [...document.querySelectorAll('#bucket-counts tbody tr td:first-of-type')]"
        ".reduce((n, td) => n + parseInt(td.textContent), 0)"
    )
    assert shown == 6000
    assert "100.0%" in page.text_content("#token-counts")
    assert "estimated" not in page.text_content("#counted-with")
    page.screenshot(path=str(tmp_path / "dataset.png"), full_page=True)
