"""The capacity search as one blocking call (a dashboard shard's): every level's records and deltas
reach the one sink, relabelled so levels never collide, on the run's continuing clock; and the
scraper in its own thread keeps to the run's target policy."""

from __future__ import annotations

import time
from typing import Any

from runner import (
    EndpointSpec,
    ProfileSpec,
    Prompt,
    RunSpec,
    ScraperThread,
    SimulatorProcess,
    Slo,
    capacity_blocking,
)


class ListSink:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.deltas: list[dict[str, Any]] = []

    def on_records(self, batch: list[dict[str, Any]]) -> None:
        self.records.extend(batch)

    def on_tick(self, delta: dict[str, Any]) -> None:
        self.deltas.append(delta)


SETTINGS = {"load_min": 4.0, "load_max": 4.0, "level_min_requests": 4, "min_level_s": 1.5, "warmup_s": 0.5}


def test_every_level_reaches_the_one_sink_relabelled_on_the_runs_clock() -> None:
    sink = ListSink()
    with SimulatorProcess(ttft_ms=20, itl_ms=2, output_tokens=8) as sim:
        spec = RunSpec(
            endpoint=EndpointSpec(protocol="openai-chat", base_url=sim.base_url, model="sim"),
            prompts=[Prompt(id="0", text="hello")],
            profile=ProfileSpec(kind="rate", rate=1.0),
            slo=Slo(ttft_ms=1000.0, tokens_per_s=None),
        )
        result = capacity_blocking(spec, SETTINGS, sink=sink)
    block = result.summary["capacity"]
    assert block["max_qpm"] and [lv.get("confirmation", False) for lv in block["levels"]] == [False, True]
    assert result.records == [] and result.t0_ns > 0
    ids = [r["request_id"] for r in sink.records]
    assert len(ids) == len(set(ids)) and {i.split("-")[0] for i in ids} == {"L0", "L1"}
    assert {r["capacity_level"] for r in sink.records} == {0, 1}
    assert sum(lv["requests"] for lv in block["levels"]) <= len(sink.records)
    seqs = [d["seq"] for d in sink.deltas]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) and not any(d["final"] for d in sink.deltas)
    # the second level's seconds continue after the first's, where its t_s says it began
    second = block["levels"][1]["t_s"][0]
    late = [int(s) for d in sink.deltas[len(sink.deltas) // 2 :] for s in d["windows"]]
    assert late and min(late) >= int(second) - 1


def test_scraper_thread_keeps_to_the_target_policy_and_reports_denials() -> None:
    with SimulatorProcess(ttft_ms=20, itl_ms=2, output_tokens=8) as sim:
        allowed = ScraperThread([sim.url + "/metrics"], interval_s=0.1)
        denied = ScraperThread(
            [sim.url + "/metrics"], interval_s=0.1, target_policy={"deny": ["127.0.0.0/8"]}
        )
        t0 = time.perf_counter_ns()
        allowed.start()
        denied.start()
        time.sleep(0.45)
        marks: list[int] = []
        live = allowed.gauges_since(marks)
        allowed.stop()
        denied.stop()
    ok, no = allowed.report(t0), denied.report(t0)
    assert ok["endpoints"][0]["scrapes"] >= 3 and "requests_running" in ok["series"]
    assert len(live) >= 3 and "requests_running" in live[0][1] and marks == [len(live)]
    assert abs(live[-1][0] - time.time()) < 2  # wall-clock stamped, for the live view's seconds
    assert no["endpoints"][0]["scrapes"] == 0 and "denied by the target policy" in no["errors"][0]
