"""KV-cache reuse: cold prefixes, then the same prefixes warm; the simulator's prefix cache shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.kv_reuse import TAIL, marked
from runner.spec import Prompt


def test_marked_prompts_start_unseen_and_warm_ones_share_the_whole_cold_prompt() -> None:
    cold = marked(Prompt(id="1", text="some long context", input_tokens=3), "t", 7)
    warm = marked(Prompt(id="1", text="some long context", input_tokens=3), "t", 7, TAIL)
    assert cold.text.startswith("[kv-t-7] ") and warm.text.startswith(cold.text)
    chat = marked(Prompt(id="2", messages=[{"role": "user", "content": "hi"}]), "t", 1, TAIL)
    assert chat.messages == [{"role": "user", "content": "[kv-t-1] hi" + TAIL}]


@pytest.mark.slow
def test_cli_reports_the_ttft_the_prefix_cache_saves(tmp_path: Path) -> None:
    from runner.cli import main
    from runner.simulator import SimulatorProcess

    out = tmp_path / "kv.json"
    # 800 words at 250 µs each: 200 ms of prefill when cold, nearly none when warm
    with SimulatorProcess(
        prefix_cache=True, prefill_us_per_token=250, ttft_ms=20, itl_ms=2, output_tokens=4
    ) as sim:
        argv = ["run", "--url", sim.base_url, "--kv-cache-reuse", "--synthetic", "6", "--input-tokens", "800"]
        assert main([*argv, "--users", "2", "--quiet", "--buckets", "0,1024", "--json", str(out)]) == 0
    block = json.loads(out.read_text())["kv_cache_reuse"]
    row = block["all"]
    assert row["requests"] == [6, 6]
    assert row["cold_ttft_p50_ms"] == pytest.approx(220, abs=40)
    assert row["warm_ttft_p50_ms"] < 80
    assert row["ttft_saved_ms"] > 150
    assert len(block["buckets"]) == 1 and block["buckets"][0]["ttft_saved_ms"] > 150
