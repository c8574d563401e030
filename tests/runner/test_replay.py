"""Replaying captures, access logs and llmperf logs: arrival pattern, own parameters, comparison."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.engine import run
from runner.replay import ReplayError, compare_with_recorded, detect_format, load_replay
from runner.simulator import SimulatorProcess
from runner.spec import EndpointSpec, ProfileSpec, RunSpec
from tests.runner.test_mirror import chat, mirror, post

pytestmark = pytest.mark.timeout(180)
ROOT = Path(__file__).resolve().parents[2]
GAP_S = 0.06  # between captured arrivals: 40 requests over 2.34 s
TOLERANCE_S = 0.25  # a replayed arrival may drift this far from its recorded offset on a busy machine


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(ttft_ms=15, itl_ms=1, output_tokens=10, body_seeded=True) as proc:
        yield proc


def _body(i: int) -> dict[str, Any]:
    body = chat(f"question number {i} about trains", max_tokens=4 + i % 5)
    body["temperature"] = round(0.1 * (i % 4), 1)
    if i % 10 == 0:
        body["tools"] = [{"type": "function", "function": {"name": f"tool{i}", "parameters": {}}}]
    return body


async def _capture(url: str, path: Path, n: int) -> None:
    async with mirror(upstream=url, capture=str(path)) as (proxy, _):
        loop = asyncio.get_running_loop()
        t0, tasks = loop.time(), []
        for i in range(n):
            await asyncio.sleep(max(0.0, t0 + i * GAP_S - loop.time()))
            tasks.append(asyncio.create_task(post(proxy + "/v1/chat/completions", _body(i))))
        assert [status for status, _, _ in await asyncio.gather(*tasks)] == [200] * n


@pytest.fixture(scope="module")
def capture(sim: SimulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("capture") / "capture.jsonl"
    asyncio.run(_capture(sim.url, path, 40))
    return path


def test_a_capture_line_per_request_in_arrival_order(capture: Path) -> None:
    lines = [json.loads(x) for x in capture.read_text().splitlines()]
    assert len(lines) == 40
    assert [ln["body"]["messages"][0]["content"] for ln in lines] == [
        f"question number {i} about trains" for i in range(40)
    ]
    assert all(a["t_s"] < b["t_s"] for a, b in itertools.pairwise(lines))


def test_replayed_requests_keep_their_own_parameters(capture: Path) -> None:
    replay = load_replay(capture)
    assert replay.format == "capture" and replay.detected
    for i, prompt in enumerate(replay.prompts):
        assert prompt.max_tokens == 4 + i % 5
        assert prompt.params is not None and prompt.params["temperature"] == round(0.1 * (i % 4), 1)
        assert prompt.params["model"] == "m" and ("tools" in prompt.params) == (i % 10 == 0)
        assert "stream" not in prompt.params and "messages" not in prompt.params


@pytest.mark.parametrize("speed", [1.0, 5.0])
async def test_a_capture_of_40_requests_replays_in_order_keeping_its_arrival_times(
    sim: SimulatorProcess, capture: Path, speed: float
) -> None:
    replay = load_replay(capture, "capture")
    httpx.get(sim.url + "/sim/log?clear=1")
    spec = RunSpec(
        endpoint=EndpointSpec("openai-chat", sim.base_url),
        prompts=replay.prompts,
        profile=ProfileSpec(kind="replay", replay=replay.entries, speed=speed),
        duration_s=None,
    )
    result = await run(spec)
    assert len(result.records) == 40 and all(r.ok for r in result.records)
    prompt_of = {r.request_id: int(r.prompt_id) for r in result.records}
    served = sorted(httpx.get(sim.url + "/sim/log").json(), key=lambda x: x["received_ns"])
    assert [prompt_of[x["request_id"]] for x in served] == list(range(40))  # in order
    first = served[0]["received_ns"]
    for x in served:
        expected = replay.entries[prompt_of[x["request_id"]]]["t_s"] / speed
        assert abs((x["received_ns"] - first) / 1e9 - expected) < TOLERANCE_S
    versus = compare_with_recorded(replay, [r.to_dict() for r in result.records])
    assert versus is not None and versus["pairs"] == 40
    assert versus["success"]["both"] == 40 and versus["answers_identical"] == 40


def test_access_log_lines_are_importable(tmp_path: Path) -> None:
    path = tmp_path / "access.jsonl"
    rows = [
        {"timestamp": "2024-05-01T10:00:00.250Z", "body": chat("first", max_tokens=5)},
        {
            "ts": 1714557601750,
            "model": "m",
            "messages": [{"role": "user", "content": "second"}],
            "top_p": 0.5,
        },
        {"time": "2024-05-01 10:00:03", "request": {"model": "m", "prompt": "third", "max_tokens": 9}},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    replay = load_replay(path)
    assert replay.format == "access-log" and replay.detected
    assert [e["t_s"] for e in replay.entries] == pytest.approx([0.0, 1.5, 2.75])
    assert replay.prompts[0].max_tokens == 5 and replay.prompts[1].params == {"model": "m", "top_p": 0.5}
    assert replay.prompts[2].text == "third" and replay.prompts[2].max_tokens == 9
    assert replay.recorded == {}


def test_a_capture_appended_by_two_mirror_sessions_replays_them_one_after_the_other(
    capture: Path, tmp_path: Path
) -> None:
    lines = [json.loads(x) for x in capture.read_text().splitlines()][:3]
    later = [{**ln, "ts": ln["ts"] + 100.0} for ln in lines]  # a second session: t_s from 0 again
    path = tmp_path / "two.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines + later))
    replay = load_replay(path)
    offsets = [e["t_s"] for e in replay.entries]
    assert offsets[:3] == pytest.approx([ln["ts"] - lines[0]["ts"] for ln in lines])
    assert offsets[3:] == pytest.approx([100.0 + o for o in offsets[:3]])


def test_a_malformed_capture_line_is_a_clear_error(capture: Path, tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text(capture.read_text().splitlines()[0] + '\n{"t_s": 1, "body": {"messa\n')
    with pytest.raises(ReplayError, match="line 2: not JSON"):
        load_replay(path)


def test_lines_without_a_usable_body_are_all_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps({"format": "llmperf-capture/1", "t_s": 0, "body": {"model": "m"}, "production": {}})
        + "\n"
        + json.dumps({"format": "llmperf-capture/1", "body": chat("x"), "production": {}})
        + "\n"
    )
    with pytest.raises(ReplayError) as err:
        load_replay(path)
    assert "line 1: the body has neither messages nor prompt" in str(err.value)
    assert "line 2: no timestamp" in str(err.value)


def test_a_capture_line_with_a_non_json_body_is_skipped_and_said(capture: Path, tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    odd = {"format": "llmperf-capture/1", "t_s": 9.0, "body": None, "body_text": "junk", "production": {}}
    path.write_text(capture.read_text() + json.dumps(odd) + "\n")
    replay = load_replay(path)
    assert len(replay.prompts) == 40
    assert any("no JSON body" in note for note in replay.notes)


def test_a_redacted_capture_replays_synthetic_prompts_of_the_recorded_length(tmp_path: Path) -> None:
    from runner.tokenizers import load_tokenizer

    path = tmp_path / "hashed.jsonl"
    line = {
        "format": "llmperf-capture/1",
        "t_s": 0.0,
        "redacted": "hash",
        "body": {"model": "m", "messages": [{"role": "user", "content": "sha256:abc"}], "max_tokens": 3},
        "production": {"outcome": "success", "input_tokens": 57, "answer_text": "sha256:def"},
    }
    path.write_text(json.dumps(line) + "\n")
    replay = load_replay(path)
    prompt = replay.prompts[0]
    assert prompt.messages is None and load_tokenizer("").count(prompt.text) == 57
    assert "answer_text" not in replay.recorded["0"]  # a hash is not an answer to compare with


def test_llmperf_logs_still_replay(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"t_s": 0, "prompt": 2}\n{"t_s": 1.5, "prompt": 0}\n')
    replay = load_replay(path)
    assert replay.format == "llmperf" and replay.prompts == []
    assert replay.entries == [{"t_s": 0.0, "prompt": 2.0}, {"t_s": 1.5, "prompt": 0.0}]


@pytest.mark.parametrize(
    "content,message",
    [(b"", "holds no requests"), (b"\n\n", "holds no requests"), (b"\xff\xfe\x00junk", "not UTF-8")],
)
def test_empty_or_binary_files_are_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_bytes(content)
    for fmt in (None, "azure", "capture"):
        with pytest.raises(ReplayError, match=message):
            load_replay(path, fmt)


def test_an_unknown_shape_asks_for_the_format() -> None:
    with pytest.raises(ReplayError, match="pass --replay-format"):
        detect_format([{"foo": 1}])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "runner", "run", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_the_command_prints_the_detected_format_and_the_replay_report(
    sim: SimulatorProcess, capture: Path, tmp_path: Path
) -> None:
    short = tmp_path / "short.jsonl"
    short.write_text("".join(capture.read_text().splitlines(keepends=True)[:5]))
    out = tmp_path / "summary.json"
    done = _cli("--url", sim.base_url, "--replay", str(short), "--speed", "4", "--quiet", "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert "read as capture (detected)" in done.stderr
    assert "replay (capture): 5 of 5 sent; schedule lag" in done.stdout
    report = json.loads(out.read_text())["replay"]
    assert report["format"] == "capture" and report["sent"] == 5 and report["kept_up"] is True
    assert report["versus_recorded"]["answers_identical"] == 5


def test_the_command_refuses_a_bad_replay_file_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"t_s": 0, "prompt": "x"}\nnot json\n')
    done = _cli("--url", "http://127.0.0.1:9/v1", "--replay", str(path), "--quiet")
    assert done.returncode != 0
    assert "line 2: not JSON" in done.stderr and "Traceback" not in done.stderr
    trace = _cli("--url", "http://127.0.0.1:9/v1", "--replay", str(path), "--replay-format", "azure")
    assert "not a azure row" in trace.stderr or "not JSON" in trace.stderr
    assert "Traceback" not in trace.stderr


@pytest.mark.parametrize(
    "name,fmt,rows",
    [
        ("mooncake_conversation_first40.jsonl", "mooncake", 4),
        ("azure_llm_conv_2023_first40.csv", "azure", 4),
        ("bailian_sample.jsonl", "bailian", 4),
        ("burstgpt_sample.csv", "burstgpt", 3),  # one of them a failure in the trace
    ],
)
def test_public_traces_replay_through_the_command(
    sim: SimulatorProcess, tmp_path: Path, name: str, fmt: str, rows: int
) -> None:
    trace = Path(__file__).parent / "fixtures" / "traces" / name
    out = tmp_path / "summary.json"
    done = _cli(
        "--url",
        sim.base_url,
        "--replay",
        str(trace),
        "--replay-limit",
        "4",
        "--speed",
        "50",
        "--quiet",
        "--json",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert f"read as {fmt} (detected)" in done.stderr
    summary = json.loads(out.read_text())
    assert summary["replay"]["format"] == fmt and summary["replay"]["sent"] == rows
    assert summary["requests"]["succeeded"] == rows


def test_a_replay_that_fell_behind_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    from runner.replay import Replay, print_replay, replay_report

    replay = Replay("capture", False, [], [{"t_s": 0.0, "prompt": 0.0}, {"t_s": 0.1, "prompt": 1.0}])
    late = {"schedule_lag_ms": {"p50": 80.0, "p99": 240.0, "max": 250.0}, "engine": {"late_sends": 2}}
    report = replay_report(replay, late, [{"prompt_id": "0"}, {"prompt_id": "1"}])
    assert report["kept_up"] is False and report["late_sends"] == 2
    print_replay(report)
    assert "DID NOT KEEP UP" in capsys.readouterr().out
    on_time = replay_report(replay, {"schedule_lag_ms": {"p50": 0.2, "p99": 3.0, "max": 4.0}}, [])
    assert on_time["kept_up"] is True


def test_an_uploaded_access_log_keeps_no_credential_and_can_drop_prompt_text() -> None:
    from runner.replay import parse_replay

    lines = [
        {"timestamp": 1700000000.0 + i, "body": {**chat(f"secret plan {i}"), "api_key": "sk-LEAK", "seed": i}}
        for i in range(3)
    ]
    data = "\n".join(json.dumps(line) for line in lines).encode()
    kept = parse_replay(data)
    assert [e["t_s"] for e in kept.entries] == [0.0, 1.0, 2.0]
    assert "sk-LEAK" not in repr(kept.prompts) and kept.prompts[1].params["seed"] == 1
    dropped = parse_replay(data, privacy="drop")
    assert "secret plan" not in repr(dropped.prompts) and "sk-LEAK" not in repr(dropped.prompts)
    assert all(p.text for p in dropped.prompts)  # synthetic text of the recorded length
    assert dropped.prompts[2].params["seed"] == 2  # the request's own parameters survive


def test_the_command_says_how_captured_websocket_sessions_are_sent(
    sim: SimulatorProcess, tmp_path: Path
) -> None:
    line = {
        "format": "llmperf-capture/1",
        "t_s": 0.0,
        "ts": 1_700_000_000.0,
        "transport": "websocket",
        "path": "/v1/ws",
        "frames": [{"t_ms": 0.0, "json": {"prompt": "one ask", "max_tokens": 4}}],
        "frames_sent": 1,
        "body": {"prompt": "one ask", "max_tokens": 4},
        "production": {"outcome": "success", "status": 101},
    }
    path = tmp_path / "ws.jsonl"
    path.write_text(json.dumps(line) + "\n")
    done = _cli("--url", sim.base_url, "--replay", str(path), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "1 WebSocket sessions sent as their ask" in done.stderr
    assert "go as openai-chat requests; --protocol generic-ws sends them over WebSocket again" in done.stderr
