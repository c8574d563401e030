"""The CLI's studies: repeats with intervals and server metrics beside a plain run."""

from __future__ import annotations

import json
from pathlib import Path

from runner.cli import main
from runner.simulator import SimulatorProcess


def test_repeat_with_server_metrics_gives_intervals_and_aligned_series(tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    with SimulatorProcess(max_batch=2, ttft_ms=150, itl_ms=5, output_tokens=10) as sim:
        argv = [
            "run",
            "--url",
            sim.base_url,
            "--users",
            "4",
            "--spawn-rate",
            "100",
            "--requests",
            "12",
            "--repeat",
            "2",
            "--quiet",
        ]
        argv += ["--server-metrics", sim.url + "/metrics", "--server-metrics", "http://127.0.0.1:9/metrics"]
        argv += ["--records", str(tmp_path / "records.jsonl")]
        assert main([*argv, "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    ttft = summary["repeat"]["metrics"]["ttft_ms_p50"]
    assert summary["repeat"]["runs"] == 2 and ttft["n"] == 2 and ttft["ci95"][0] <= ttft["mean"]
    sm = summary["server_metrics"]
    assert sm["errors"] and "127.0.0.1:9" in sm["errors"][0]  # reported; the run went on
    assert summary["requests"]["succeeded"] == 12
    # series in seconds since the first repetition's start: four users on a batch of two fill it
    first, second = summary["repeat"]["starts_s"]
    assert first == 0 and second > 0
    busy = [t for t, v in sm["series"]["requests_running"] if v == 2]
    assert busy and 0 <= min(busy) < 1.0 and any(t > second for t in busy)
    assert sm["summary"]["requests_running"]["max"] == 2
    assert sm["summary"]["requests_waiting"]["max"] >= 1
    first_records = (tmp_path / "records.jsonl").read_text().splitlines()
    assert len(first_records) == 12 and len((tmp_path / "records.2.jsonl").read_text().splitlines()) == 12
