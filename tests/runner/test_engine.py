"""The engine against the simulator's known delays: the metrics are the truth, within a few ms."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.engine import Engine, run
from runner.simulator import SimulatorProcess
from runner.spec import EndpointSpec, ProfileSpec, Prompt, RunSpec, Timeouts

pytestmark = pytest.mark.timeout(120)


def spec_for(
    url: str,
    protocol: str = "openai-chat",
    *,
    profile: ProfileSpec | None = None,
    prompts: list[Prompt] | None = None,
    headers: dict[str, str] | None = None,
    timeouts: Timeouts | None = None,
    **kw: Any,
) -> RunSpec:
    ep = EndpointSpec(
        protocol=protocol, base_url=url, model="sim", headers=headers or {}, timeouts=timeouts or Timeouts()
    )
    return RunSpec(
        endpoint=ep,
        prompts=prompts or [Prompt(id="p", text="tell me a story about cats")],
        profile=profile or ProfileSpec(kind="users", users=1),
        **kw,
    )


async def test_100_concurrent_streams_match_the_simulators_delays(sim: Any) -> None:
    # a gradual ramp (200 users/s) as a real test would use, so a burst of 100 simultaneous
    # requests does not queue inside the simulator and fake a TTFT spike
    spec = spec_for(sim.base_url, profile=ProfileSpec(kind="users", users=100, spawn_rate=200), duration_s=4)
    httpx.get(sim.url + "/sim/log?clear=1")
    engine = Engine(spec)
    result = await engine.run()
    s = result.summary
    assert s["requests"]["failed"] == 0 and s["requests"]["succeeded"] >= 300
    assert abs(s["ttft_ms"]["p50"] - 200) <= 5, s["ttft_ms"]
    assert abs(s["itl_ms"]["p50"] - 20) <= 2, s["itl_ms"]
    assert abs(s["tpot_ms"]["p50"] - 20) <= 2
    assert abs(s["tokens_per_s"]["p50"] - 50) <= 5
    assert "lag_ms_p99" in s["engine"] and "saturated" in s["engine"]
    # the stricter truth: the server's own stamp of writing each first chunk (same monotonic clock)
    served = {x["request_id"]: x["first_chunk_ns"] for x in httpx.get(sim.url + "/sim/log").json()}
    errors = sorted(
        (engine.t0 + r.scheduled_s * 1e9 + r.ttft_ms * 1e6 - served[r.request_id]) / 1e6
        for r in result.records
        if r.ok and r.ttft_ms is not None and r.request_id in served
    )
    assert len(errors) >= 300
    assert 0 <= errors[len(errors) // 2] < 1.5, errors[len(errors) // 2]


async def test_every_protocol_measures_the_same_ttft(sim: Any) -> None:
    for protocol in ("openai-chat", "openai-completions", "anthropic", "openai-sdk"):
        result = await run(spec_for(sim.base_url, protocol, duration_s=None, max_requests=3))
        s = result.summary
        assert s["requests"]["succeeded"] == 3, (protocol, [r.error for r in result.records])
        assert abs(s["ttft_ms"]["p50"] - 200) <= 10, (protocol, s["ttft_ms"])
        assert s["tokens"]["output"] == 60, protocol


async def test_generic_ws_against_the_simulator(sim: Any) -> None:
    from runner.spec import GenericFormat

    spec = spec_for(sim.base_url, "generic-ws", duration_s=None, max_requests=2)
    spec.endpoint.generic = GenericFormat(
        body_template='{"prompt": {{prompt}}, "max_tokens": {{max_tokens}}}',
        path="ws",
        kind_path="type",
        answer_path="text",
        usage_path="usage",
        finish_path="finish_reason",
        error_path="error",
        kind_map={"text": "answer", "ping": "heartbeat"},
    )
    result = await run(spec)
    assert result.summary["requests"]["succeeded"] == 2, [r.error for r in result.records]
    assert abs(result.summary["ttft_ms"]["p50"] - 200) <= 10


async def test_reasoning_ttft_at_first_thinking_then_first_answer_later() -> None:
    async with SimulatorProcess(ttft_ms=100, itl_ms=10, output_tokens=5, thinking_tokens=10) as s:
        result = await run(spec_for(s.base_url, duration_s=None, max_requests=4))
    r = result.records[0]
    assert r.ok, r.error
    assert abs(r.ttft_ms - 100) <= 5  # type: ignore[operator]
    assert abs(r.ttft_answer_ms - (100 + 10 * 10)) <= 6  # type: ignore[operator]
    assert abs(r.thinking_ms - 100) <= 6  # type: ignore[operator]
    assert r.thinking_tokens == 10 and r.output_tokens == 15


async def test_heartbeats_never_move_ttft() -> None:
    async with SimulatorProcess(ttft_ms=300, itl_ms=10, output_tokens=5, heartbeat_ms=40) as s:
        result = await run(spec_for(s.base_url, duration_s=None, max_requests=3))
    for r in result.records:
        assert r.ok and r.heartbeats >= 5
        assert abs(r.ttft_ms - 300) <= 6  # type: ignore[operator]


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        ("http_500", "http_error"),
        ("http_429", "rate_limited"),
        ("context_overflow", "context_overflow"),
        ("cut_json", "protocol_error"),
        ("no_done", "protocol_error"),
        ("reset", "connection_error"),
        ("garbage", "protocol_error"),
        ("stall", "timeout"),
        ("slow_first_byte", "timeout"),
        ("empty", "empty_answer"),
        ("truncated", "truncated_thinking"),
        ("stream_error", "http_error"),
    ],
)
async def test_simulator_faults_are_classified(sim: Any, fault: str, outcome: str) -> None:
    spec = spec_for(
        sim.base_url,
        headers={"x-sim-fault": fault},
        duration_s=None,
        max_requests=1,
        timeouts=Timeouts(first_byte=1.0, idle=1.0, total=20),
    )
    rec = (await run(spec)).records[0]
    assert rec.outcome == outcome, (fault, rec.error)
    if fault == "stall":
        assert rec.timeout_kind == "first_byte"  # no content ever, no heartbeats: a silent stall
    if fault == "slow_first_byte":
        assert rec.timeout_kind == "first_byte"


async def test_stall_with_heartbeats_is_alive_but_stalled() -> None:
    async with SimulatorProcess(ttft_ms=10, itl_ms=5, output_tokens=3, heartbeat_ms=100) as s:
        spec = spec_for(
            s.base_url,
            headers={"x-sim-fault": "stall"},
            duration_s=None,
            max_requests=1,
            timeouts=Timeouts(first_byte=1.0, idle=1.0, total=20),
        )
        rec = (await run(spec)).records[0]
    assert rec.outcome == "timeout" and rec.stalled and rec.heartbeats >= 5
    assert "alive but stalled" in rec.error


async def test_context_overflow_from_max_context() -> None:
    async with SimulatorProcess(ttft_ms=10, itl_ms=1, output_tokens=3, max_context=50) as s:
        long = Prompt(id="long", text="word " * 80)
        result = await run(spec_for(s.base_url, prompts=[long], duration_s=None, max_requests=1))
    assert result.records[0].outcome == "context_overflow"


async def test_open_loop_against_a_slow_server_reports_schedule_lag() -> None:
    async with SimulatorProcess(ttft_ms=50, itl_ms=50, output_tokens=10) as s:
        profile = ProfileSpec(kind="rate", rate=20, arrival="constant", max_concurrency=4)
        result = await run(spec_for(s.base_url, profile=profile, duration_s=2, drain_s=10))
    e = result.engine
    recs = result.records
    assert e["late_sends"] >= 8 and e["schedule_lag_ms_p99"] > 300
    # the schedule is kept at 20/s: what could not go out is counted, not silently dropped
    assert e["target_sends"] == pytest.approx(40, abs=1)
    assert e["missed_sends"] == e["target_sends"] - len(recs) and e["missed_sends"] > 10
    assert any("never went out" in r for r in e["reasons"])
    scheduled = sorted(r.scheduled_s for r in recs)
    assert all(abs(b - a - 0.05) < 1e-6 for a, b in itertools.pairwise(scheduled))
    late = [r for r in recs if r.schedule_lag_ms > 100]
    assert late and all(
        r.ttft_ms >= r.schedule_lag_ms for r in late if r.ttft_ms
    )  # latency counts from schedule


async def test_open_loop_rate_is_held_when_the_server_keeps_up(sim: Any) -> None:
    profile = ProfileSpec(kind="rate", rate=50, arrival="constant")
    result = await run(spec_for(sim.base_url, profile=profile, duration_s=2))
    assert 95 <= len(result.records) <= 101
    assert result.engine["late_sends"] <= 3  # a shared CI core may delay a send or two
    assert result.engine.get("missed_sends", 0) <= 1


async def test_cancel_keeps_every_record_measured_so_far(sim: Any) -> None:
    cancel = asyncio.Event()
    spec = spec_for(sim.base_url, profile=ProfileSpec(kind="users", users=10, spawn_rate=100), duration_s=60)
    task = asyncio.create_task(run(spec, cancel=cancel))
    await asyncio.sleep(1.5)
    cancel.set()
    result = await asyncio.wait_for(task, 10)
    assert result.ended_by == "cancel"
    done = [r for r in result.records if r.ok]
    cancelled = [r for r in result.records if r.outcome == "cancelled"]
    assert len(done) >= 10 and len(cancelled) >= 1
    assert all(r.ttft_ms is not None for r in cancelled if r.content_chunks)


async def test_queueing_beyond_max_batch_raises_ttft() -> None:
    async with SimulatorProcess(ttft_ms=50, itl_ms=10, output_tokens=10, max_batch=2) as s:
        result = await run(
            spec_for(
                s.base_url,
                profile=ProfileSpec(kind="users", users=6, spawn_rate=1000),
                duration_s=None,
                max_requests=12,
            )
        )
    assert result.summary["ttft_ms"]["p50"] > 100 and result.summary["ttft_ms"]["min"] < 60


async def test_prefix_cache_makes_repeated_prefix_cheaper() -> None:
    shared = "alpha beta gamma delta " * 100
    prompts = [Prompt(id=str(i), text=shared + f"question {i}") for i in range(4)]
    async with SimulatorProcess(
        ttft_ms=10, prefill_us_per_token=500, itl_ms=1, output_tokens=3, prefix_cache=True
    ) as s:
        result = await run(spec_for(s.base_url, prompts=prompts, duration_s=None, max_requests=4))
    first, *rest = sorted(result.records, key=lambda r: r.scheduled_s)
    assert first.ttft_ms > 150 and all(r.ttft_ms < 60 for r in rest)  # type: ignore[operator]


async def test_sweep_yields_a_throughput_latency_curve(sim: Any) -> None:
    profile = ProfileSpec(kind="sweep", sweep_levels=[1, 8], level_duration_s=1.5)
    result = await run(spec_for(sim.base_url, profile=profile, duration_s=None))
    curve = result.summary["sweep"]
    assert [p["level"] for p in curve] == [0, 1]
    assert curve[1]["throughput"]["requests_per_s"] > 3 * curve[0]["throughput"]["requests_per_s"]


async def test_input_token_buckets_follow_the_dataset_count(sim: Any) -> None:
    prompts = [
        Prompt(id="s", text="hi", input_tokens=100),
        Prompt(id="l", text="long " * 50, input_tokens=20000),
    ]
    result = await run(
        spec_for(
            sim.base_url,
            prompts=prompts,
            duration_s=None,
            max_requests=4,
            bucket_edges=[0, 1024, 16384, 32768],
        )
    )
    labels = {b["label"]: b["requests"]["total"] for b in result.summary["buckets"]}
    # the simulator's usage counts words (2 and 50), yet each request reports in its dataset bucket
    assert labels == {"0–1k": 2, "16k–32k": 2}


async def test_token_audit_flags_a_misreporting_server() -> None:
    async with SimulatorProcess(ttft_ms=10, itl_ms=1, output_tokens=20, misreport_usage=1.5) as s:
        result = await run(spec_for(s.base_url, duration_s=None, max_requests=3))
    audit = result.summary["token_audit"]
    assert audit["disagreeing"] == 3 and audit["discrepancy_pct"] > 20


def test_cli_writes_summary_and_records(sim: Any, tmp_path: Path) -> None:
    out, recs = tmp_path / "s.json", tmp_path / "r.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "runner",
        "run",
        "--url",
        sim.base_url,
        "--model",
        "sim",
        "--users",
        "4",
        "--spawn-rate",
        "100",
        "--requests",
        "8",
        "--max-tokens",
        "5",
        "--json",
        str(out),
        "--records",
        str(recs),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(out.read_text())
    for key in (
        "requests",
        "ttft_ms",
        "ttft_answer_ms",
        "itl_ms",
        "tpot_ms",
        "e2e_ms",
        "tokens_per_s",
        "throughput",
        "buckets",
        "engine",
    ):
        assert key in summary
    assert summary["requests"]["total"] == 8 and summary["requests"]["succeeded"] == 8
    assert set(summary["ttft_ms"]) >= {"p50", "p90", "p95", "p99", "mean", "max"}
    assert {"requests_per_s", "qpm", "output_tokens_per_s"} <= set(summary["throughput"])
    assert {"lag_ms_p99", "saturated", "verdict"} <= set(summary["engine"])
    lines = recs.read_text().splitlines()
    assert len(lines) == 8 and all(json.loads(line)["ttft_ms"] > 0 for line in lines)
    assert "TTFT" in proc.stderr or "ttft_ms" in proc.stdout
    # the verdict line shows the worst loop stall beside the p99, since a stall lands in TTFT
    engine_line = next(line for line in proc.stdout.splitlines() if line.startswith("engine:"))
    assert "loop lag p99" in engine_line and " max " in engine_line and "schedule lag p99" in engine_line
    assert httpx.get(sim.base_url + "/models").status_code == 200


async def test_connection_setup_is_reported_apart_from_ttft(sim: Any) -> None:
    cold = await run(spec_for(sim.base_url, duration_s=None, max_requests=1, warm_connections=0))
    warm = await run(spec_for(sim.base_url, duration_s=None, max_requests=1, warm_connections=1))
    assert cold.records[0].connect_ms is not None and cold.records[0].connect_ms > 0
    assert warm.records[0].connect_ms is None  # the pre-opened connection was reused


def test_cli_replays_a_traffic_log_at_its_own_pace(sim: Any, tmp_path: Path) -> None:
    log = tmp_path / "traffic.jsonl"
    log.write_text(
        "\n".join(json.dumps({"t_s": t, "prompt": f"question {i}"}) for i, t in enumerate([0, 0.5, 1.0]))
    )
    out = tmp_path / "s.json"
    recs = tmp_path / "r.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "runner",
        "run",
        "--url",
        sim.base_url,
        "--replay",
        str(log),
        "--speed",
        "2",
        "--max-tokens",
        "3",
        "--json",
        str(out),
        "--records",
        str(recs),
        "--quiet",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = sorted(
        (json.loads(line) for line in recs.read_text().splitlines()), key=lambda r: r["scheduled_s"]
    )
    assert [r["prompt_id"] for r in rows] == ["0", "1", "2"]
    assert [round(r["scheduled_s"], 2) for r in rows] == [0.0, 0.25, 0.5]
    assert json.loads(out.read_text())["requests"]["succeeded"] == 3


class _SlowSink:
    """A sink as slow as a loaded database: the final flush must still deliver everything."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.completed = 0

    async def on_records(self, batch: list[dict[str, Any]]) -> None:
        await asyncio.sleep(0.3)
        self.records.extend(batch)

    async def on_tick(self, delta: dict[str, Any]) -> None:
        await asyncio.sleep(0.3)
        self.completed += sum(w["completed"] + w["failed"] for w in delta["windows"].values())


async def test_a_slow_sink_loses_no_record_and_no_second(sim: Any) -> None:
    sink = _SlowSink()
    spec = spec_for(sim.base_url, profile=ProfileSpec(kind="users", users=8, spawn_rate=100), duration_s=2.5)
    result = await run(spec, sink=sink)
    assert len(result.records) > 20
    assert len(sink.records) == len(result.records)
    assert sink.completed == len(result.records)


@pytest.mark.parametrize("mode", ["simultaneous", "interleaved"])
async def test_paired_ab_sends_identical_prompts_to_every_variant(mode: str) -> None:
    from runner.compare import paired_stats

    prompts = [Prompt(id=f"q{i}", text=f"question number {i}") for i in range(6)]
    async with (
        SimulatorProcess(ttft_ms=40, itl_ms=2, output_tokens=5) as fast,
        SimulatorProcess(ttft_ms=120, itl_ms=2, output_tokens=5) as slow,
    ):
        spec = spec_for(
            fast.base_url,
            prompts=prompts,
            profile=ProfileSpec(kind="users", users=3, spawn_rate=100),
            duration_s=None,
            max_requests=6,
        )
        spec.variants = [
            EndpointSpec(protocol="openai-chat", base_url=u, model="sim")
            for u in (fast.base_url, slow.base_url)
        ]
        spec.ab_mode = mode  # type: ignore[assignment]
        result = await run(spec)
    a = [r for r in result.records if r.variant == 0]
    b = [r for r in result.records if r.variant == 1]
    assert len(a) == len(b) == 6 and all(r.ok for r in result.records)
    assert sorted(r.prompt_id for r in a) == sorted(r.prompt_id for r in b) == [p.id for p in prompts]
    v = result.summary["variants"]
    assert abs(v[0]["ttft_ms"]["p50"] - 40) <= 8 and abs(v[1]["ttft_ms"]["p50"] - 120) <= 8
    paired = paired_stats([r.to_dict() for r in a], [r.to_dict() for r in b], key="ttft_ms")
    assert paired["n_pairs"] == 6 and paired["verdict"] == "b_worse"
    if mode == "simultaneous":  # each pair left together: written to the sockets within a few ms
        by_prompt = {r.prompt_id: r.scheduled_s for r in a}  # closed loop: each request's write
        assert all(abs(by_prompt[r.prompt_id] - r.scheduled_s) < 0.005 for r in b)


GENERIC_CHAT = {
    "body_template": '{"model": {{model}}, "messages": {{messages}}, "max_tokens": {{max_tokens}}, "stream": true}',
    "path": "chat/completions",
    "thinking_path": "choices.0.delta.reasoning_content",
    "answer_path": "choices.0.delta.content",
    "usage_path": "usage",
    "finish_path": "choices.0.finish_reason",
}
GENERIC_WS = {
    "body_template": '{"prompt": {{prompt}}, "max_tokens": {{max_tokens}}}',
    "path": "ws",
    "kind_path": "type",
    "answer_path": "text",
    "usage_path": "usage",
    "finish_path": "finish_reason",
    "error_path": "error",
    "kind_map": {"text": "answer", "ping": "heartbeat"},
}
MALFORMED = {
    "cut_json": "protocol_error",
    "no_done": "protocol_error",
    "reset": "connection_error",
    "garbage": "protocol_error",
}


@pytest.mark.parametrize("fault", sorted(MALFORMED))
@pytest.mark.parametrize(
    "protocol", ["openai-chat", "openai-completions", "anthropic", "generic-sse", "generic-ws", "openai-sdk"]
)
async def test_every_adapter_classifies_every_malformed_stream(sim: Any, protocol: str, fault: str) -> None:
    from runner.spec import GenericFormat

    spec = spec_for(
        sim.base_url,
        protocol,
        headers={"x-sim-fault": fault},
        duration_s=None,
        max_requests=1,
        timeouts=Timeouts(first_byte=5, idle=5, total=10),
    )
    if protocol.startswith("generic"):
        spec.endpoint.generic = GenericFormat(**(GENERIC_WS if protocol == "generic-ws" else GENERIC_CHAT))
    result = await asyncio.wait_for(run(spec), 30)
    rec = result.records[0]
    assert rec.outcome == MALFORMED[fault], (protocol, fault, rec.outcome, rec.error)
    assert rec.error


async def test_requests_outliving_the_drain_are_timeouts_not_hidden(sim: Any) -> None:
    async with SimulatorProcess(ttft_ms=50, itl_ms=200, output_tokens=20) as s:
        spec = spec_for(
            s.base_url,
            profile=ProfileSpec(kind="users", users=3, spawn_rate=100),
            duration_s=0.5,
            drain_s=0.5,
        )
        result = await run(spec)
    assert result.ended_by == "duration"
    cut = [r for r in result.records if r.timeout_kind == "drain"]
    assert len(cut) == 3 and all(r.outcome == "timeout" for r in cut)
    assert result.summary["requests"]["failures"] == {"timeout": 3}


async def test_a_failing_grader_or_sink_loses_no_record(sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import runner.postprocess as engine_mod

    def broken_grade(answer: str, expected: str) -> bool:
        raise ValueError("grader bug")

    class FailingSink:
        async def on_records(self, batch: list[dict[str, Any]]) -> None:
            raise RuntimeError("database down")

        async def on_tick(self, delta: dict[str, Any]) -> None:
            raise RuntimeError("redis down")

    monkeypatch.setattr(engine_mod, "grade", broken_grade)
    prompts = [Prompt(id="a", text="q", expected="1"), Prompt(id="b", text="q")]
    result = await run(
        spec_for(sim.base_url, prompts=prompts, duration_s=None, max_requests=4), sink=FailingSink()
    )
    assert len(result.records) == 4 and all(r.ok for r in result.records)
    assert all(r.output_tokens == 20 for r in result.records)  # counted before the grader failed
    assert any("grader bug" in e for e in result.errors) and any("final flush" in e for e in result.errors)


async def test_a_request_that_cannot_be_built_is_a_classified_record(sim: Any) -> None:
    spec = spec_for(sim.base_url, "generic-sse", duration_s=None, max_requests=2)
    spec.endpoint.generic.body_template = '{"q": {{prompt}}, "broken": }'
    result = await run(spec)
    assert len(result.records) == 2
    assert all(r.outcome == "protocol_error" and "could not build" in r.error for r in result.records)


async def test_a_steady_run_draws_steady_output_tokens_per_second() -> None:
    from runner.stats import LiveAggregate

    agg = LiveAggregate()

    class Deltas:
        async def on_records(self, batch: list[dict[str, Any]]) -> None:
            pass

        async def on_tick(self, delta: dict[str, Any]) -> None:
            agg.merge(json.loads(json.dumps(delta)))

    # 8 users, 80-token answers of 1.6 s each: about 4.9 completions a second, so counting tokens at
    # completion would draw 320/400/480 by turns; counted as they arrive it is ~390 every second
    with SimulatorProcess(ttft_ms=50, itl_ms=20, output_tokens=80) as s:
        spec = spec_for(s.base_url, profile=ProfileSpec(kind="users", users=8, spawn_rate=1000), duration_s=7)
        result = await run(spec, sink=Deltas())
    assert result.summary["requests"]["failed"] == 0
    series = {p["t"]: p["output_tokens_per_s"] for p in agg.series()}
    inner = [series[t] for t in range(min(series) + 2, min(series) + 6)]
    mean = sum(inner) / len(inner)
    assert abs(mean - 8 * 80 / 1.63) < 0.15 * 392, inner
    assert all(abs(v - mean) <= 0.1 * mean for v in inner), inner
    total = sum(w.output_tokens for w in agg.windows.values())
    assert total == sum(r.output_tokens or 0 for r in result.records)


async def test_a_429_is_its_own_class_and_its_retry_after_is_honoured(sim: Any) -> None:
    # every request refused with Retry-After: 1; one closed-loop user for 2.5 s
    spec = spec_for(sim.base_url, headers={"x-sim-fault": "http_429"}, duration_s=2.5, drain_s=1)
    result = await run(spec)
    recs = result.records
    assert recs and all(r.outcome == "rate_limited" and r.http_status == 429 for r in recs)
    assert all(r.retry_after_s == 1.0 for r in recs)
    assert 2 <= len(recs) <= 4  # one request a second, not as fast as the server can refuse
    assert result.engine["retry_after_waits"] >= len(recs) - 1
    assert result.summary["requests"]["failures"] == {"rate_limited": len(recs)}


async def test_closed_loop_users_back_off_from_a_dead_target() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on: every connect is refused at once
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    users = ProfileSpec(kind="users", users=2, spawn_rate=100)
    backed = await run(spec_for(dead, profile=users, duration_s=1.5, warm_connections=0))
    hammered = await run(spec_for(dead, profile=users, duration_s=1.5, warm_connections=0, backoff_max_s=0))
    assert all(r.outcome == "connection_error" for r in backed.records + hammered.records)
    # 0.1 + 0.2 + 0.4 + 0.8 s between tries: about five tries per user in 1.5 s
    assert len(backed.records) <= 12 and backed.engine["backoffs"] >= len(backed.records) - 2
    assert len(hammered.records) > 5 * len(backed.records)


async def test_a_shards_seconds_come_from_its_own_clock_not_the_workers_wall_clock(sim: Any) -> None:
    from runner.stats import LiveAggregate

    agg = LiveAggregate()

    class Deltas:
        async def on_records(self, batch: list[dict[str, Any]]) -> None:
            pass

        async def on_tick(self, delta: dict[str, Any]) -> None:
            agg.merge(delta)

    import time

    # the coordinator's clock says the run began an hour ago (a skewed worker clock would agree)
    skewed = spec_for(sim.base_url, duration_s=None, max_requests=2, run_started_epoch=time.time() - 3600)
    await run(skewed, sink=Deltas())
    assert min(agg.windows) == 0 and max(agg.windows) < 10
    agg2 = LiveAggregate()

    class Deltas2(Deltas):
        async def on_tick(self, delta: dict[str, Any]) -> None:
            agg2.merge(delta)

    late = spec_for(sim.base_url, duration_s=None, max_requests=2, start_offset_s=30)
    await run(late, sink=Deltas2())
    assert min(agg2.windows) == 30


async def test_a_thinking_budget_sweep_sends_each_levels_budget_at_the_same_load() -> None:
    # 40 thinking tokens before the answer: 16 max_tokens stop inside the thinking, 200 do not
    with SimulatorProcess(ttft_ms=10, itl_ms=1, output_tokens=8, thinking_tokens=40) as s:
        profile = ProfileSpec(
            kind="sweep", sweep_mode="budget", users=3, spawn_rate=100, level_duration_s=1.5,
            budget_param="max_tokens", budget_levels=["16", "200"],
        )  # fmt: skip
        result = await run(spec_for(s.base_url, profile=profile, duration_s=None))
    by_level = {lv: [r for r in result.records if r.level == lv] for lv in (0, 1)}
    assert by_level[0] and by_level[1]
    assert all(r.outcome == "truncated_thinking" for r in by_level[0])
    assert all(r.ok for r in by_level[1])
    sweep = result.summary["sweep"]
    assert sweep[0]["quality"]["truncated_thinking"]["rate"] == 1.0
    assert sweep[1]["quality"]["truncated_thinking"]["rate"] == 0.0
    assert profile.sweep_levels == [3.0, 3.0]  # the same three users at both levels
