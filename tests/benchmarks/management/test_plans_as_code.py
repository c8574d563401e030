"""Plans as code: ``manage.py apply`` creates and updates by name; ``export`` writes what apply reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from benchmarks.models import Dataset, Endpoint, LoadProfile, Plan

PLAN_FILE = """
endpoints:
  - name: vllm-a100
    protocol: openai-chat
    base_url: http://gpu-box:8000/v1
    model: qwen3-32b
    api_key_env: LLMPERF_TEST_KEY
    headers: {X-Team: perf}
    timeout_total_s: 300
    tokenizer: qwen3
datasets:
  - name: math subset
    path: prompts.jsonl
profiles:
  - name: ramp to 32
    kind: users
    spec: {users: 32, spawn_rate: 2}
plans:
  - name: nightly
    endpoint: vllm-a100
    dataset: math subset
    profile: ramp to 32
    max_tokens: 512
    duration_s: 120
    slo_ttft_ms: 1500
    quantization: int4
    extra_params: {top_p: 0.9}
"""

PROMPTS = '{"prompt": "What is 1+1?", "expected": "2"}\n{"prompt": "What is 2+3?", "expected": "5"}\n'


@pytest.fixture
def plan_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LLMPERF_TEST_KEY", "sk-from-env-0123456789")
    (tmp_path / "plan.yaml").write_text(PLAN_FILE)
    (tmp_path / "prompts.jsonl").write_text(PROMPTS)
    return tmp_path


def test_apply_creates_then_updates_by_name(cast, plan_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("apply", str(plan_dir / "plan.yaml"), "--team", cast.team_a.name)
    plan = Plan.objects.get(team=cast.team_a, name="nightly")
    assert plan.max_tokens == 512 and plan.slo_ttft_ms == 1500 and plan.quantization == "int4"
    assert plan.extra_params == {"top_p": 0.9} and plan.profile.spec["users"] == 32
    endpoint = plan.endpoint
    assert endpoint.reveal_api_key() == "sk-from-env-0123456789" and endpoint.headers == {"X-Team": "perf"}
    assert plan.dataset.current_version().items.count() == 2
    assert "created: plan 'nightly'" in capsys.readouterr().out
    # again, unchanged; then one field changed in the file
    call_command("apply", str(plan_dir / "plan.yaml"), "--team", cast.team_a.name)
    assert "unchanged: plan 'nightly'" in capsys.readouterr().out
    (plan_dir / "plan.yaml").write_text(PLAN_FILE.replace("max_tokens: 512", "max_tokens: 1024"))
    call_command("apply", str(plan_dir / "plan.yaml"), "--team", cast.team_a.name)
    assert "updated: plan 'nightly'" in capsys.readouterr().out
    assert Plan.objects.get(pk=plan.pk).max_tokens == 1024
    assert Plan.objects.filter(team=cast.team_a, name="nightly").count() == 1


def test_export_writes_what_apply_reads_back_into_another_team(
    cast, plan_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    call_command("apply", str(plan_dir / "plan.yaml"), "--team", cast.team_a.name)
    out = tmp_path / "exported"
    call_command("export", "nightly", "--team", cast.team_a.name, "--out", str(out))
    document = yaml.safe_load((out / "nightly.yaml").read_text())
    assert "sk-from-env" not in (out / "nightly.yaml").read_text()
    assert document["endpoints"][0]["api_key_env"] == "VLLM_A100_API_KEY"
    monkeypatch.setenv("VLLM_A100_API_KEY", "sk-team-b-key-987654")
    call_command("apply", str(out / "nightly.yaml"), "--team", cast.team_b.name)
    a = Plan.objects.get(team=cast.team_a, name="nightly")
    b = Plan.objects.get(team=cast.team_b, name="nightly")
    fields = ("max_tokens", "duration_s", "slo_ttft_ms", "extra_params", "quantization", "bucket_edges")
    assert {f: getattr(b, f) for f in fields} == {f: getattr(a, f) for f in fields}
    assert b.endpoint.base_url == a.endpoint.base_url and b.endpoint.team == cast.team_b
    assert b.endpoint.reveal_api_key() == "sk-team-b-key-987654"
    assert b.profile.spec == a.profile.spec
    items = [(i.prompt, i.expected) for i in b.dataset.current_version().items.order_by("index")]
    assert items == [("What is 1+1?", "2"), ("What is 2+3?", "5")]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("max_tokens: 512", "max_tokenz: 512"), "unknown field(s) max_tokenz"),
        (("api_key_env: LLMPERF_TEST_KEY", "api_key: sk-inline"), "keys never go in the file"),
        (("dataset: math subset", "dataset: no such"), "no dataset named 'no such'"),
        (("duration_s: 120", "duration_s: -5"), "Duration must be more than 0"),
        (("kind: users", "kind: teleport"), "profile 'ramp to 32': kind"),
    ],
)
def test_a_bad_file_changes_nothing_and_says_why(
    cast, plan_dir: Path, change: tuple[str, str], message: str
) -> None:
    (plan_dir / "plan.yaml").write_text(PLAN_FILE.replace(*change))
    before = (
        Endpoint.objects.count(),
        Dataset.objects.count(),
        LoadProfile.objects.count(),
        Plan.objects.count(),
    )
    with pytest.raises(CommandError) as failed:
        call_command("apply", str(plan_dir / "plan.yaml"), "--team", cast.team_a.name)
    assert message in str(failed.value) and "nothing was changed" in str(failed.value)
    after = (
        Endpoint.objects.count(),
        Dataset.objects.count(),
        LoadProfile.objects.count(),
        Plan.objects.count(),
    )
    assert after == before
