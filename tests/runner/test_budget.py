"""Thinking-budget sweeps: one run per budget level, accuracy and quality against the budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.budget import budget_report, budget_specs, parse_budget
from runner.cli import main
from runner.simulator import SimConfig, SimulatorProcess
from runner.spec import EndpointSpec, Prompt, RunSpec


def test_budget_levels_parse_and_junk_is_rejected() -> None:
    assert parse_budget("max_tokens=256, 1024") == ("max_tokens", [256, 1024])
    assert parse_budget("reasoning_effort=low,high") == ("reasoning_effort", ["low", "high"])
    for junk, message in [
        ("temperature=0.1", "write max_tokens="),
        ("max_tokens=", "no levels"),
        ("max_tokens=0,12", "positive integers"),
        ("reasoning_effort=extreme", "one of"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_budget(junk)


def test_each_level_sets_its_parameter_on_every_endpoint_and_overrides_prompt_budgets() -> None:
    ep = EndpointSpec(protocol="openai-chat", base_url="http://x/v1", params={"temperature": 0.0})
    spec = RunSpec(endpoint=ep, prompts=[Prompt(id="a", text="q", max_tokens=99)], variants=[ep, ep])
    low, high = budget_specs(spec, "max_tokens", [128, 4096])
    assert low.endpoint.params == {"temperature": 0.0, "max_tokens": 128}
    assert [v.params["max_tokens"] for v in high.variants] == [4096, 4096]
    assert low.prompts[0].max_tokens is None and spec.prompts[0].max_tokens == 99  # the original is untouched
    (effort,) = budget_specs(spec, "reasoning_effort", ["high"])
    assert effort.prompts[0].max_tokens == 99 and effort.endpoint.params["reasoning_effort"] == "high"


def test_report_lines_up_levels_and_rates() -> None:
    summaries = [
        {
            "accuracy": {"rate": 0.5},
            "quality": {"empty_answer": {"rate": 0.1}, "truncated_thinking": {"rate": 0.4}},
        },
        {"quality": {}},
    ]
    report = budget_report("max_tokens", [64, 128], summaries)
    first, second = report["points"]
    assert first["budget"] == 64 and first["accuracy"] == {"rate": 0.5}
    assert (first["empty_answer_rate"], first["truncated_thinking_rate"]) == (0.1, 0.4)
    assert second["accuracy"] is None and second["truncated_thinking_rate"] is None


def test_a_reasoning_effort_sweep_on_the_simulator_shows_the_budget_effect(tmp_path: Path) -> None:
    """Thinking 30/60/120 tokens (low/medium/high) against max_tokens 100: high never reaches an answer."""
    config = SimConfig(ttft_ms=2, itl_ms=0, thinking_tokens=60, answer_key="builtin:math500")
    out = tmp_path / "budget.json"
    with SimulatorProcess(config) as sim:
        argv = [
            "run",
            "--url",
            sim.base_url,
            "--dataset",
            "builtin:math500",
            "--requests",
            "30",
            "--users",
            "4",
        ]
        argv += ["--spawn-rate", "1000", "--max-tokens", "100", "--quiet", "--json", str(out)]
        assert main([*argv, "--budget-sweep", "reasoning_effort=low,medium,high"]) == 0
    report = json.loads(out.read_text())["budget_sweep"]
    low, medium, high = report["points"]
    assert [p["budget"] for p in report["points"]] == ["low", "medium", "high"]
    assert low["accuracy"]["rate"] == 1.0 and low["truncated_thinking_rate"] == 0.0
    assert high["accuracy"]["rate"] == 0.0 and high["truncated_thinking_rate"] == 1.0
    assert high["accuracy"]["failed"] == 30  # truncated thinking is a failed request, graded wrong
    assert low["output_tokens"] < medium["output_tokens"] < high["output_tokens"] == 30 * 100
