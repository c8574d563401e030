"""End to end through the CLI and the engine: MATH-500 against the simulator's answer key."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.cli import main
from runner.simulator import SimConfig, SimulatorProcess


def _run(sim: SimulatorProcess, tmp_path: Path, *flags: str) -> dict[str, Any]:
    out = tmp_path / "summary.json"
    argv = ["run", "--url", sim.base_url, "--model", "m", "--quiet", "--json", str(out), *flags]
    assert main(argv) == 0
    summary: dict[str, Any] = json.loads(out.read_text())
    return summary


def test_math500_at_32_users_with_a_tenth_wrong_scores_exactly_0_90(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = SimConfig(ttft_ms=5, itl_ms=0, thinking_tokens=16, answer_key="builtin:math500", wrong_rate=0.1)
    with SimulatorProcess(config) as sim:
        summary = _run(
            sim,
            tmp_path,
            "--dataset",
            "builtin:math500",
            "--users",
            "32",
            "--spawn-rate",
            "1000",
            "--requests",
            "500",
        )
    assert summary["requests"]["total"] == 500 and summary["requests"]["failed"] == 0
    acc = summary["accuracy"]
    assert (acc["graded"], acc["correct"], acc["failed"]) == (500, 450, 0)
    assert acc["rate"] == 0.9
    lo, hi = acc["ci95"]
    assert lo < 0.9 < hi
    assert len(acc["by_subject"]) == 7 and sum(v["graded"] for v in acc["by_subject"].values()) == 500
    assert sorted(acc["by_level"]) == ["1", "2", "3", "4", "5"]
    assert {k: v["graded"] for k, v in acc["by_level"].items()} == {
        "1": 43,
        "2": 90,
        "3": 105,
        "4": 128,
        "5": 134,
    }
    assert summary["quality"]["reasoning_leak"]["count"] == 0
    assert "accuracy: 90.0% (450/500 correct" in capsys.readouterr().out


def test_monitors_count_injected_empty_answers_truncations_and_leaks_exactly(tmp_path: Path) -> None:
    config = SimConfig(
        ttft_ms=5,
        itl_ms=0,
        thinking_tokens=8,
        output_tokens=8,
        empty_rate=0.1,
        truncate_rate=0.1,
        leak_rate=0.2,
        seed=3,
    )
    with SimulatorProcess(config) as sim:
        summary = _run(
            sim,
            tmp_path,
            "--synthetic",
            "200",
            "--users",
            "8",
            "--spawn-rate",
            "1000",
            "--requests",
            "200",
            "--max-tokens",
            "12",
        )
        log = httpx.get(sim.base_url.removesuffix("/v1") + "/sim/log").json()
    faults = Counter(r["fault"] for r in log)
    q = summary["quality"]
    assert q["requests"] == 200
    assert faults["empty"] > 0 and faults["truncated"] > 0 and sum(r["leaked"] for r in log) > 0
    assert q["empty_answer"]["count"] == faults["empty"]
    assert q["truncated_thinking"]["count"] == faults["truncated"]
    assert q["reasoning_leak"]["count"] == sum(r["leaked"] for r in log)
    # 8 thinking + 8 answer tokens against a budget of 12: every full answer is cut by length
    assert q["cut_by_length"]["count"] == 200 - faults["empty"] - faults["truncated"]


def test_a_load_sweep_reports_accuracy_per_level(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = SimConfig(ttft_ms=5, itl_ms=0, thinking_tokens=8, answer_key="builtin:math500", wrong_rate=0.2)
    with SimulatorProcess(config) as sim:
        summary = _run(
            sim, tmp_path, "--dataset", "builtin:math500", "--sweep", "1,4", "--level-duration", "1"
        )
    points = summary["sweep"]
    assert [p["level"] for p in points] == [0, 1]
    assert all(p["accuracy"]["graded"] == p["requests"]["total"] > 0 for p in points)
    assert all("ttft_ms" in p and "truncated_thinking" in p["quality"] for p in points)
    assert "  level 1: accuracy " in capsys.readouterr().out
