"""The capacity search: bracket, bisect, confirm; attainment and a steady queue decide a level."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from runner.capacity import CapacityConfig, find_capacity, find_capacity_per_bucket, judge_level, sentence
from runner.engine import RunResult
from runner.records import RequestRecord
from runner.spec import EndpointSpec, ProfileSpec, Prompt, RunSpec, Slo


def _spec(prompts: list[Prompt] | None = None) -> RunSpec:
    return RunSpec(
        endpoint=EndpointSpec(protocol="openai-chat", base_url="http://127.0.0.1:9/v1"),
        prompts=prompts or [Prompt(id="0", text="hello world")],
        profile=ProfileSpec(kind="rate", rate=1.0),
        slo=Slo(ttft_ms=1000.0, tokens_per_s=None),
    )


def _queue_server(capacity_rps: float, service_s: float = 0.5) -> Any:
    """A fake level runner: a deterministic queue that serves ``capacity_rps``; past it, every
    request waits behind the backlog, so TTFT and in-flight grow through the level."""
    calls: list[float] = []

    async def run_level(spec: RunSpec, sink: Any, stop: asyncio.Event) -> RunResult:
        rate, duration = spec.profile.rate, spec.duration_s or 0.0
        calls.append(rate)
        records, free_at = [], 0.0
        n = int(rate * duration)
        for i in range(n):
            t = i / rate
            start = max(t, free_at)
            free_at = start + 1.0 / capacity_rps
            ttft = (start - t) * 1000 + 100
            records.append(
                RequestRecord(
                    request_id=str(i),
                    prompt_id="0",
                    scheduled_s=t,
                    ttft_ms=ttft,
                    e2e_ms=ttft + service_s * 1000,
                    tokens_per_s=50.0,
                )
            )
        summary = {"load_duration_s": duration}
        return RunResult(records, summary, "duration", {"verdict": "ok"}, duration)

    run_level.calls = calls  # type: ignore[attr-defined]
    return run_level


CONFIG = CapacityConfig(load_min=2, load_max=64, level_min_requests=50, min_level_s=10, warmup_s=2)


async def test_search_brackets_then_bisects_to_the_queue_capacity() -> None:
    runner = _queue_server(capacity_rps=10.0)
    cap = await find_capacity(_spec(), CONFIG, run_level=runner)
    # 5 % over capacity, a 12 s window ends with TTFT still under 1 s: within one bisection step
    assert 9.0 <= cap["max_rate_rps"] <= 10.5
    assert cap["max_qpm"] == pytest.approx(cap["max_rate_rps"] * 60, rel=0.1)
    assert cap["confirmed"] is True
    assert cap["limiting_slo"] in ("ttft", "queue")
    assert runner.calls[:4] == [2, 4, 8, 16]  # doubling until the first failing level
    assert runner.calls[-1] == cap["max_rate_rps"]  # held once more to confirm
    loads = [lv["load"] for lv in cap["levels"]]
    assert loads == sorted(loads)
    assert all(k in cap["levels"][0] for k in ("sent_rps", "succeeded_qpm", "attainment", "engine_verdict"))


async def test_no_passing_level_reports_none_and_says_so() -> None:
    cap = await find_capacity(_spec(), CONFIG, run_level=_queue_server(capacity_rps=1.0))
    assert cap["max_qpm"] is None and cap["max_rate_rps"] is None
    assert "holds no tested load" in sentence(cap)


def _rec(i: int, **kw: Any) -> RequestRecord:
    base: dict[str, Any] = {"request_id": str(i), "prompt_id": "0", "scheduled_s": 3 + i * 0.05}
    base.update(ttft_ms=100.0, e2e_ms=500.0, tokens_per_s=50.0)
    base.update(kw)
    return RequestRecord(**base)


def test_failed_requests_and_429_count_against_attainment() -> None:
    recs = [_rec(i) for i in range(196)]
    recs += [_rec(196 + i, outcome="http_error", http_status=429, ttft_ms=None) for i in range(4)]
    cfg = CapacityConfig(level_min_requests=100, warmup_s=2)
    level = judge_level(recs, load=20, load_s=15, slo=Slo(ttft_ms=1000, tokens_per_s=20), config=cfg)
    assert level["attainment"] == pytest.approx(0.98)
    assert level["rate_limited"] == 4
    assert not level["slo_pass"]
    assert level["misses"]["errors"] == pytest.approx(0.02)


def test_warmup_is_trimmed_and_too_few_requests_fail() -> None:
    early = [_rec(100 + i, scheduled_s=0.5, ttft_ms=5000.0) for i in range(50)]  # inside the warm-up
    recs = [_rec(i) for i in range(150)] + early
    cfg = CapacityConfig(level_min_requests=100, warmup_s=2)
    level = judge_level(recs, load=20, load_s=15, slo=Slo(ttft_ms=1000, tokens_per_s=20), config=cfg)
    assert level["requests"] == 150 and level["attainment"] == 1.0 and level["slo_pass"]
    few = judge_level(recs[:80], load=20, load_s=15, slo=Slo(), config=cfg)
    assert not few["slo_pass"] and "80 requests" in few["reasons"][-1]


async def test_client_bound_level_marks_the_result_untrusted() -> None:
    inner = _queue_server(capacity_rps=10.0)

    async def client_bound(spec: RunSpec, sink: Any, stop: asyncio.Event) -> RunResult:
        result = await inner(spec, sink, stop)
        result.engine = {"verdict": "client-bound" if spec.profile.rate >= 8 else "ok"}
        return result

    cap = await find_capacity(_spec(), CONFIG, run_level=client_bound)
    assert cap["trusted"] is False and 8 in cap["client_bound_at"]
    assert "NOT TRUSTED" in sentence(cap)


async def test_per_bucket_search_runs_once_per_bucket_with_its_prompts() -> None:
    short = Prompt(id="s", text="word " * 100, input_tokens=100)
    long = Prompt(id="l", text="word " * 2000, input_tokens=2000)
    seen: list[set[str]] = []
    inner = _queue_server(capacity_rps=10.0)

    async def run_level(spec: RunSpec, sink: Any, stop: asyncio.Event) -> RunResult:
        seen.append({p.id for p in spec.prompts})
        return await inner(spec, sink, stop)

    out = await find_capacity_per_bucket(_spec([short, long]), CONFIG, run_level=run_level)
    assert [b["label"] for b in out["buckets"]] == ["0–1k", "1k–4k"]
    assert {"s"} in seen and {"l"} in seen and {"s", "l"} not in seen
    assert "at 1k–4k input tokens" in sentence(out["buckets"][1])


@pytest.mark.slow
def test_cli_finds_the_simulators_capacity_and_the_server_shows_why(tmp_path: Any) -> None:
    """Max batch 8, TTFT 100 ms, ITL 10 ms, 64 tokens: 8 streams of 0.73 s serve about 11 req/s."""
    from runner.cli import main
    from runner.simulator import SimulatorProcess

    out = tmp_path / "summary.json"
    with SimulatorProcess(max_batch=8, ttft_ms=100, itl_ms=10, output_tokens=64) as sim:
        argv = ["run", "--url", sim.base_url, "--find-capacity", "--slo-ttft-ms", "1000"]
        argv += [
            "--rate-min",
            "8",
            "--rate-max",
            "32",
            "--arrival",
            "constant",
            "--capacity-tolerance",
            "0.1",
        ]
        argv += ["--level-min-requests", "80", "--level-min-s", "8", "--level-warmup", "2", "--quiet"]
        argv += ["--server-metrics", sim.url + "/metrics", "--json", str(out)]
        assert main(argv) == 0
    summary = json.loads(out.read_text())
    cap = summary["capacity"]
    assert 8 <= cap["max_rate_rps"] <= 12
    assert cap["max_qpm"] == pytest.approx(cap["max_rate_rps"] * 60, rel=0.15)
    assert cap["limiting_slo"] == "ttft"
    assert cap["warmup_trimmed_s"] == 2
    series = summary["server_metrics"]["series"]
    assert max(v for _, v in series["requests_running"]) == 8
    assert summary["server_metrics"]["summary"]["requests_running"]["max"] == 8
    over = [lv for lv in cap["levels"] if lv["load"] > 12]
    assert over and all(lv["server"]["requests_waiting"] > 8 for lv in over)  # the queue past capacity
    under = [lv for lv in cap["levels"] if lv["load"] <= 8]
    assert under and all(lv["server"]["requests_waiting"] <= 2 for lv in under)


async def test_users_mode_bisects_whole_users_and_reports_the_measured_rate() -> None:
    """Closed loop on 5 slots of 0.5 s: past 5 users each waits 0.1 s per extra user."""
    calls: list[int] = []

    async def run_level(spec: RunSpec, sink: Any, stop: asyncio.Event) -> RunResult:
        users, duration = spec.profile.users, spec.duration_s or 0.0
        calls.append(users)
        wait = max(0, users - 5) * 0.1
        rate = users / (0.5 + wait)
        records = [
            RequestRecord(
                request_id=str(i),
                prompt_id="0",
                scheduled_s=i / rate,
                ttft_ms=100 + wait * 1000,
                e2e_ms=(0.5 + wait) * 1000,
                tokens_per_s=50.0,
            )
            for i in range(int(rate * duration))
        ]
        return RunResult(records, {"load_duration_s": duration}, "duration", {"verdict": "ok"}, duration)

    config = CapacityConfig(mode="users", load_min=1, load_max=64, level_min_requests=30, min_level_s=5)
    spec = _spec()
    spec.slo = Slo(ttft_ms=300.0, tokens_per_s=None)
    cap = await find_capacity(spec, config, run_level=run_level)
    assert calls == [1, 1, 2, 4, 8, 6, 7, 7]  # the first level again once its rate is known
    assert (
        cap["levels"][0]["superseded"] and "requests in the steady window" in cap["levels"][0]["reasons"][0]
    )
    assert cap["max_load"] == 7 and cap["mode"] == "users"
    assert cap["max_rate_rps"] == pytest.approx(10.0, rel=0.05)  # 7 users / 0.7 s


async def _feed(watch: Any, ticks: list[tuple[float, int]]) -> None:
    for ttft, in_flight in ticks:
        await watch.on_records([{"ttft_ms": ttft, "outcome": "success"}])
        await watch.on_tick({"final": False, "engine": {"in_flight": in_flight}})


async def test_a_level_stops_early_once_ttft_and_in_flight_keep_rising() -> None:
    from runner.capacity import SaturationWatch

    stop = asyncio.Event()
    watch = SaturationWatch(stop, Slo(ttft_ms=1000), warmup_s=2)
    await _feed(watch, [(100, 8)] * 2 + [(800, 10), (1100, 14), (1500, 18), (1900, 22), (2300, 27)])
    assert stop.is_set() and watch.tripped


async def test_a_busy_but_steady_level_is_not_stopped() -> None:
    from runner.capacity import SaturationWatch

    stop = asyncio.Event()
    watch = SaturationWatch(stop, Slo(ttft_ms=1000), warmup_s=2)
    steady = [(1200, 20), (1300, 22), (1150, 19), (1250, 21), (1200, 23), (1300, 20), (1180, 22)]
    await _feed(watch, [(100, 8)] * 2 + steady)  # over the SLO, but not climbing: judged, not cut
    assert not stop.is_set()


async def test_every_level_and_the_confirmation_draw_their_own_arrivals() -> None:
    inner = _queue_server(capacity_rps=10.0)
    seeds: list[tuple[float, int]] = []

    async def run_level(spec: RunSpec, sink: Any, stop: asyncio.Event) -> RunResult:
        seeds.append((spec.profile.rate, spec.profile.seed))
        return await inner(spec, sink, stop)

    await find_capacity(_spec(), CONFIG, run_level=run_level)
    assert len({seed for _, seed in seeds}) == len(seeds)
    assert seeds[-1][0] in [rate for rate, _ in seeds[:-1]]  # the confirmation: same load, new draw
