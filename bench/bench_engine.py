"""Does llmperf report the TTFT the server actually gave, under load, on one core?

Layout: bench/fastserver.js (Node.js, far cheaper per stream than any Python client) pinned to
core 1; the client under test pinned to core 0, in its own process. Each load level runs twice in
the same bench: llmperf's engine (``runner.engine``), then a plain aiohttp+uvloop client
(bench/refclient.py) that parses nothing.

Per request, matched by x-request-id, with both clocks CLOCK_MONOTONIC:
- **TTFT error** (the glossary's definition): client TTFT, counted from the *scheduled* send, minus
  the server's own TTFT (request arrival -> first content chunk written). It holds send lateness,
  both transits and any stall of the client's loop.
- **receive - write**: client stamp of the first content chunk minus the server's write stamp (the
  old bench's only column; it leaves send lateness out).

    .venv/bin/python bench/bench_engine.py            # full table (about 4 minutes)
    .venv/bin/python bench/bench_engine.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cmd: list[str], core: int) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core), *cmd]
    return cmd


def start_server(ttft_ms: float, itl_ms: float, tokens: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    script = str(Path(__file__).with_name("fastserver.js"))
    cmd = pinned(["node", script, str(port), str(ttft_ms), str(itl_ms), str(tokens)], 1)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    proc.stdout.readline()
    return proc, f"http://127.0.0.1:{port}"


def server_log(url: str) -> dict[str, tuple[int, int]]:
    with urllib.request.urlopen(url + "/sim/log") as resp:
        return {rid: (int(a), int(w)) for rid, a, w in json.loads(resp.read())}


# -- the llmperf side (runs in its own pinned process) -----------------------------------------------
async def engine_worker(url: str, sc: dict[str, Any]) -> dict[str, Any]:
    from runner.engine import Engine
    from runner.spec import EndpointSpec, ProfileSpec, Prompt, RunSpec, Timeouts

    if sc["kind"] == "rate":
        profile = ProfileSpec(kind="rate", rate=sc["rate"], arrival="constant")
    else:
        profile = ProfileSpec(kind="users", users=sc["users"], spawn_rate=sc.get("spawn_rate", 100_000))
    spec = RunSpec(
        endpoint=EndpointSpec(
            protocol="openai-chat", base_url=url + "/v1", model="m", timeouts=Timeouts(idle=30, total=60)
        ),
        prompts=[Prompt(id=str(i), text=f"prompt {i}", input_tokens=8) for i in range(100)],
        profile=profile,
        duration_s=sc["seconds"],
        drain_s=10,
        warm_connections=min(max(sc.get("users") or 64, 64), 1024),
    )
    engine = Engine(spec)
    cpu0 = time.process_time()
    result = await engine.run()
    cpu = time.process_time() - cpu0
    rows = []
    for r in result.records:
        sched = engine.t0 + int(r.scheduled_s * 1e9)
        first = sched + int(r.ttft_ms * 1e6) if r.ttft_ms is not None else 0
        rows.append([r.request_id, sched, first, sched + int((r.e2e_ms or 0) * 1e6), r.ok])
    e = result.engine
    return {
        "t0": engine.t0,
        "stop": engine.t0 + int(sc["seconds"] * 1e9),
        # CPU while measuring (schedule, drain and the run's flushes), as the plain client counts
        # its own; the whole call, summary and token counting after the run included, beside it
        "cpu_s": e["cpu_seconds"],
        "cpu_total_s": cpu,
        "requests": rows,
        "engine": {
            k: e.get(k)
            for k in (
                "verdict",
                "reasons",
                "lag_ms_max",
                "schedule_lag_ms_p50",
                "schedule_lag_ms_p99",
                "read_queue_ms_p99",
            )
        },
        # the loop's CPU share in each whole second of the schedule (the measuring window only)
        "cpu_per_s": engine.monitor.cpu_per_s[: int(sc["seconds"])],
    }


def run_client(which: str, url: str, sc: dict[str, Any]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        if which == "llmperf":
            cmd = [sys.executable, __file__, "--worker", url, json.dumps(sc), out.name]
        else:
            script = str(Path(__file__).with_name("refclient.py"))
            cmd = [sys.executable, script, url + "/v1", json.dumps(sc), out.name]
        subprocess.run(pinned(cmd, 0), check=True, cwd=ROOT)
        return dict(json.loads(Path(out.name).read_bytes()))


def score(data: dict[str, Any], served: dict[str, tuple[int, int]], seconds: float) -> dict[str, Any]:
    err, rw = [], []
    ok = failed = done_in_window = 0
    scheds = []
    for rid, sched, first, end, success in data["requests"]:
        scheds.append(sched)
        if not success:
            failed += 1
            continue
        ok += 1
        if end <= data["stop"]:
            done_in_window += 1
        if rid in served and first:
            arrival, write = served[rid]
            err.append((first - sched - (write - arrival)) / 1e6)
            rw.append((first - write) / 1e6)
    scheds.sort()
    span = (scheds[-1] - scheds[0]) / 1e9 if len(scheds) > 1 else seconds
    n = len(data["requests"])
    return {
        "sent_per_s": (len(scheds) - 1) / span if span else 0.0,
        "done_per_s": done_in_window / seconds,
        "ok": ok,
        "failed": failed,
        "cpu_ms_per_req": data["cpu_s"] * 1000 / max(1, n),
        "cpu_total_ms_per_req": data.get("cpu_total_s", data["cpu_s"]) * 1000 / max(1, n),
        "err_p50": percentile(err, 50),
        "err_p99": percentile(err, 99),
        "err_max": max(err, default=float("nan")),
        "rw_p50": percentile(rw, 50),
        "rw_p99": percentile(rw, 99),
        "engine": data.get("engine"),
    }


SCENARIOS: list[tuple[str, dict[str, float], list[dict[str, Any]]]] = [
    (
        "open loop, 64-token streams (server TTFT 20 ms, ITL 2 ms)",
        {"ttft_ms": 20, "itl_ms": 2, "tokens": 64},
        [{"kind": "rate", "rate": r} for r in (100, 200, 400)],
    ),
    (
        "closed loop, 128-token streams (server TTFT 50 ms, ITL 10 ms)",
        {"ttft_ms": 50, "itl_ms": 10, "tokens": 128},
        [{"kind": "users", "users": 64}],
    ),
    (
        "saturation, 64-token streams (server TTFT 20 ms, ITL 2 ms)",
        {"ttft_ms": 20, "itl_ms": 2, "tokens": 64},
        [{"kind": "users", "users": 512}],
    ),
]


def name(sc: dict[str, Any]) -> str:
    return f"open loop {sc['rate']:g} req/s" if sc["kind"] == "rate" else f"{sc['users']} streams"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="3 s per level, fewer levels")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--only", default="", help="run only the loads whose name contains this, e.g. '400'")
    ap.add_argument("--worker", nargs=3, metavar=("URL", "SCENARIO", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        import uvloop

        result = uvloop.run(engine_worker(args.worker[0], json.loads(args.worker[1])))
        Path(args.worker[2]).write_text(json.dumps(result))
        return
    seconds = 3.0 if args.quick else args.seconds
    rows = []
    for title, server, levels in SCENARIOS:
        proc, url = start_server(server["ttft_ms"], server["itl_ms"], int(server["tokens"]))
        try:
            for level in levels:
                sc = {**level, "seconds": seconds}
                if args.only and args.only not in name(sc):
                    continue
                for which in ("llmperf", "plain aiohttp"):
                    server_log(url)  # clear
                    data = run_client(which, url, sc)
                    time.sleep(0.5)
                    rows.append((title, name(sc), which, score(data, server_log(url), seconds)))
        finally:
            proc.terminate()
            proc.wait()
    print(
        f"\nclient on core 0, bench/fastserver.js on core 1; {seconds:.0f} s per level; "
        "TTFT error = client TTFT (from the scheduled send) - server TTFT (arrival -> first write)\n"
    )
    print(
        "| load | client | sent req/s | done req/s | ok | failed | CPU ms/req measuring (whole call) "
        "| TTFT err p50 / p99 / max ms | receive-write p50 / p99 ms | sched lag p50 / p99 ms "
        "| loop lag max ms | read queue p99 ms | verdict |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for _title, load, which, r in rows:
        e = r["engine"] or {}
        sched = (
            f"{e['schedule_lag_ms_p50']:.3f} / {e['schedule_lag_ms_p99']:.3f}"
            if e.get("schedule_lag_ms_p50") is not None
            else "-"
        )
        lag = f"{e['lag_ms_max']:.2f}" if e.get("lag_ms_max") is not None else "-"
        queue = f"{e['read_queue_ms_p99']:.2f}" if e.get("read_queue_ms_p99") is not None else "-"
        cpu = f"{r['cpu_ms_per_req']:.2f}" + (
            f" ({r['cpu_total_ms_per_req']:.2f})" if which == "llmperf" else ""
        )
        verdict = (e.get("verdict", "") + " " + "; ".join(e.get("reasons") or [])).strip() or "-"
        print(
            f"| {load} | {which} | {r['sent_per_s']:.1f} | {r['done_per_s']:.1f} | {r['ok']} | {r['failed']} "
            f"| {cpu} | {r['err_p50']:.2f} / {r['err_p99']:.2f} / {r['err_max']:.2f} "
            f"| {r['rw_p50']:.2f} / {r['rw_p99']:.2f} | {sched} | {lag} | {queue} | {verdict} |"
        )


if __name__ == "__main__":
    main()
