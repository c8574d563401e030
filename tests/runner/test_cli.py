"""The CLI at par with the dashboard: endpoint files, prices, extra params, tags, the extra tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runner.cli import build_parser, build_spec


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runner", "run", *args],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, **(env or {})},
    )


def test_help_reads_like_a_manual() -> None:
    text = build_parser().parse_args.__self__.format_help()  # type: ignore[attr-defined]
    run_help = subprocess.run(
        [sys.executable, "-m", "runner", "run", "--help"], capture_output=True, text=True, timeout=30
    ).stdout
    assert "run" in text
    for heading in ("target:", "prompts:", "load:", "stop conditions and timeouts:", "output:", "examples:"):
        assert heading in run_help, heading


def test_an_endpoint_file_with_prices_tags_and_the_extra_tables(sim: Any, tmp_path: Path) -> None:
    endpoint = tmp_path / "endpoint.yaml"
    endpoint.write_text(
        f"protocol: openai-chat\nbase_url: {sim.base_url}\nmodel: sim\napi_key_env: SIM_KEY\n"
        "headers: {X-Team: perf}\nprice_in_per_1k: 0.5\nprice_out_per_1k: 1.5\ncurrency: EUR\n"
        "timeouts: {total: 30}\n"
    )
    out = tmp_path / "s.json"
    done = cli(
        "--endpoint", str(endpoint), "--users", "2", "--spawn-rate", "100", "--requests", "6",
        "--max-tokens", "5", "--extra-params", '{"top_p": 0.9}', "--tag", "quantization=int4",
        "--json", str(out), "--quiet",
        env={"SIM_KEY": "sk-from-env-123456"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text())
    assert summary["schema_version"] >= 2 and summary["tags"] == {"quantization": "int4"}
    assert summary["requests"]["succeeded"] == 6
    assert summary["cost"]["currency"] == "EUR" and summary["cost"]["total"] > 0
    assert "how other tools would report this run" in done.stdout and "vLLM bench serve" in done.stdout
    assert "token audit:" in done.stdout


def test_flags_win_over_the_file_and_generic_paths_come_from_flags(tmp_path: Path) -> None:
    endpoint = tmp_path / "e.json"
    endpoint.write_text(json.dumps({"base_url": "http://a/v1", "model": "m1", "protocol": "generic-sse"}))
    args = build_parser().parse_args(
        ["run", "--endpoint", str(endpoint), "--model", "m2", "--answer-path", "out.text",
         "--body-template", '{"q": {{prompt}}}', "--requests", "1"]
    )  # fmt: skip
    spec = build_spec(args)
    assert spec.endpoint.base_url == "http://a/v1" and spec.endpoint.model == "m2"
    assert spec.endpoint.generic.answer_path == "out.text"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("base_url: http://a/v1\nmodle: x\n", "unknown field(s) modle"),
        ("base_url: http://a/v1\napi_key: sk-secret\n", "keys never go in a file"),
        ("base_url: http://a/v1\ngeneric: {answer_pth: x}\n", "unknown generic field(s) answer_pth"),
        ("base_url: http://a/v1\nprotocol: carrier-pigeon\n", "is not one of"),
    ],
)
def test_a_bad_endpoint_file_is_refused_with_the_reason(tmp_path: Path, content: str, message: str) -> None:
    endpoint = tmp_path / "e.yaml"
    endpoint.write_text(content)
    done = cli("--endpoint", str(endpoint), "--requests", "1")
    assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--extra-params", "{nope"], "--extra-params: not JSON"),
        (["--tag", "int4"], "use key=value"),
        (["--api-key-env", "LLMPERF_NO_SUCH_VAR"], "LLMPERF_NO_SUCH_VAR is not set"),
        ([], "give --url"),
    ],
)
def test_bad_flags_get_a_clear_error(flags: list[str], message: str) -> None:
    done = cli(*(["--url", "http://127.0.0.1:9/v1"] if flags else []), *flags, "--requests", "1")
    assert done.returncode != 0 and message in done.stderr and "Traceback" not in done.stderr
