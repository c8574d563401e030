"""A new user's first hour, in a real browser (Debian's Chromium, headless), on the demo's data seeded
the way ``./scripts/demo`` seeds it: two reasoning simulators, the variants' short runs run for real
through a Celery worker and saved as a comparison. Log in, open the comparison, create a plan through
the grouped form, read what it will do before it runs, start it, watch it finish, run it again from
its snapshot; open a run's conventions table; then describe a
custom stream format and see a pasted sample classified before saving. No console error, failed
request or error status on the way."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from benchmarks.services.demo import COMPARISON_TITLE, QUANTIZED, REASONING, demo_compare, demo_seed
from runner import SimulatorProcess
from tests.benchmarks.browser import MARKS, chromium, daphne
from tests.benchmarks.workers import ROOT, workers

DOCS = ROOT / "docs"
PASSWORD = "a long demo passphrase"
pytestmark = [*MARKS, pytest.mark.timeout(600)]
SAMPLE = """data: {"type": "reasoning", "text": "Let me see"}
: keep-alive
data: {"type": "text", "text": "Paris"}
data: {"type": "stats", "usage": {"input_tokens": 9, "output_tokens": 4}}"""


@pytest.fixture
def demo(transactional_db, tmp_path):
    """The demo's objects and its compared pair, run for real; then daphne in front of them."""
    with (
        SimulatorProcess(**REASONING) as reasoning,
        SimulatorProcess(**QUANTIZED) as quantized,
        workers(("newuser", "load,celery")),
    ):
        seeded = demo_seed(
            reasoning_url=reasoning.base_url,
            quantized_url=quantized.base_url,
            password=PASSWORD,
            duration_s=10.0,
            compare_requests=24,
        )
        # daphne runs on the real settings, which cannot check the tests' fast password hashes
        seeded.user.password = PBKDF2PasswordHasher().encode(PASSWORD, "demosalt1234")
        seeded.user.save(update_fields=["password"])
        comparison = demo_compare(demo=seeded, timeout_s=180)
        with daphne(tmp_path) as url:
            yield url, comparison


@pytest.fixture
def page():
    with chromium() as browser:
        yield browser.new_page(viewport={"width": 1400, "height": 1300})


def test_a_new_users_first_hour(demo, page):
    server, comparison = demo
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text} at {page.url}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"status {r.status}: {r.url}"))

    # log in to the demo
    page.goto(f"{server}/login/")
    page.fill("#id_username", "demo")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Log out")

    # the saved comparison: the quantized variant is faster and less accurate, tested on the same items
    page.goto(f"{server}/comparisons/")
    page.click(f"text={COMPARISON_TITLE}")
    page.wait_for_selector("#accuracy-deltas")
    assert page.url.endswith(f"/comparisons/{comparison.pk}/")
    text = page.text_content("main")
    assert "bf16" in text.lower() and "int4" in text.lower()
    assert "McNemar" in page.text_content("#accuracy-deltas")
    page.wait_for_selector(".main-svg")
    page.screenshot(path=str(DOCS / "demo-comparison.png"), full_page=False)

    # one of the compared runs: headline first, and how other tools would report it, folded
    page.goto(f"{server}/runs/{comparison.run_ids[0]}/")
    page.wait_for_selector("#headline")
    assert not page.is_visible("#conventions-table")
    page.click("#conventions summary")
    assert page.is_visible("#conventions-table")
    assert "vLLM bench serve" in page.text_content("#conventions-table")

    # a plan through the grouped form, and what it will do before it runs
    page.goto(f"{server}/plans/new/")
    legends = page.locator("#object-form fieldset legend").all_text_contents()
    assert legends[:7] == ["Target", "Load", "Stop conditions", "SLOs", "Analysis", "Variant tags", "Scale"]
    assert page.text_content("label[for=id_slo_ttft_ms]").startswith("TTFT SLO (ms)")
    page.fill("#id_name", "My first plan: INT4 at 8 users")
    page.select_option("#id_endpoint", label="Reasoning simulator (INT4)")
    page.select_option("#id_dataset", label="MATH-500")
    page.select_option("#id_profile", label="Ramp to 8 users")
    page.fill("#id_max_tokens", "512")
    page.fill("#id_duration_s", "6")
    page.fill("#id_drain_s", "10")
    page.fill("#id_quantization", "int4")
    page.wait_for_function(
        "() => llmperf.planPreview && llmperf.planPreview.cost_max !== undefined"
        " && document.getElementById('preview-duration').textContent.startsWith('6 s')",
        timeout=15_000,
    )
    preview = page.evaluate("() => llmperf.planPreview")
    # a closed loop: requests from the E2E p50 the INT4 endpoint measured in its compared run
    assert preview["requests"] > 0 and any("E2E p50" in n for n in preview["notes"])
    assert preview["input_tokens"] == pytest.approx(preview["mean_input_tokens"] * preview["requests"])
    assert preview["exact_tokenizer"] and not preview["estimated"]  # MATH-500 counted in Qwen3
    assert re.match(r"≈ \d", page.text_content("#preview-requests"))
    assert page.text_content("#preview-cost").endswith("USD")
    page.wait_for_selector("#chart-plan-preview .main-svg")
    page.locator("#plan-preview").scroll_into_view_if_needed()
    page.screenshot(path=str(DOCS / "plan-form.png"), full_page=False)

    # start it and watch it finish
    page.click("#object-form button[type=submit]")
    page.wait_for_selector("#start-run")
    page.click("#start-run")
    page.wait_for_selector("#chart-ttft")
    page.wait_for_selector("#summary-table", timeout=120_000)  # the page reloads when the run ends
    assert page.text_content("#run-status") == "finished"
    assert "TTFT (ms)" in page.text_content("#summary-table")

    # run it again from its snapshot: a new run of the same spec, watched to its end
    first_url = page.url
    page.click("#run-again")
    page.wait_for_url(lambda url: url != first_url and "/runs/" in url)
    page.wait_for_selector("#summary-table", timeout=120_000)
    assert page.text_content("#run-status") == "finished"
    first_id, again_id = (int(u.rstrip("/").rsplit("/", 1)[1]) for u in (first_url, page.url))
    from benchmarks.models import Run

    first, again = Run.objects.get(pk=first_id), Run.objects.get(pk=again_id)

    def snapshot(run: Run) -> dict[str, object]:  # what the run sent, without when it started
        return {k: v for k, v in run.spec.items() if k not in ("run_started_epoch", "repeat")}

    assert snapshot(again) == snapshot(first) and again.plan_id == first.plan_id

    # a provider with its own stream format: a pasted sample is classified before saving
    page.goto(f"{server}/endpoints/new/")
    assert not page.is_visible("#set-stream-format")  # only for generic protocols
    page.select_option("#id_protocol", "generic-sse")
    page.fill("#id_generic_kind_path", "type")
    page.fill("#id_generic_kind_map", '{"reasoning": "thinking", "text": "answer", "stats": "usage"}')
    page.fill("#id_stream_sample", SAMPLE)
    page.wait_for_selector("#stream-check-rows tbody tr:nth-child(4)")
    kinds = page.locator("#stream-check-rows td.kind").all_text_contents()
    assert kinds == ["thinking", "heartbeat", "answer", "usage"]
    page.fill("#id_generic_kind_map", '{"reasoning": "thinkin"}')  # a typo is refused, not dropped
    page.wait_for_function("() => document.getElementById('stream-check').dataset.state === 'error'")
    assert "packet kinds" in page.text_content("#stream-check-status")

    assert problems == []
