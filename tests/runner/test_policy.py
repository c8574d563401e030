"""Where load may go: checked on the resolved address, so a friendly name cannot hide a target."""

from __future__ import annotations

import pytest

from runner.engine import run
from runner.policy import TargetDenied, TargetPolicy, parse_entry
from runner.spec import EndpointSpec, Prompt, RunSpec


def test_metadata_and_link_local_are_denied_by_default() -> None:
    policy = TargetPolicy()
    with pytest.raises(TargetDenied, match="denied"):
        policy.check("metadata.google.internal", "169.254.169.254", 80)
    with pytest.raises(TargetDenied):
        policy.check("x", "fe80::1", 80)
    policy.check("localhost", "127.0.0.1", 8000)  # loopback is allowed unless a list narrows it
    policy.check("api.example.com", "93.184.216.34", 443)


def test_deny_by_cidr_host_and_host_port() -> None:
    policy = TargetPolicy(deny=("10.0.0.0/8", "db.internal", "127.0.0.1:5432", "[::1]:6379"))
    with pytest.raises(TargetDenied):
        policy.check("a", "10.1.2.3", 80)
    with pytest.raises(TargetDenied):
        policy.check("db.internal", "192.0.2.7", 5432)
    with pytest.raises(TargetDenied):
        policy.check("localhost", "127.0.0.1", 5432)  # the dashboard's own database
    with pytest.raises(TargetDenied):
        policy.check("localhost", "::1", 6379)
    policy.check("localhost", "127.0.0.1", 8000)  # same host, another port


def test_an_allow_list_narrows_and_can_name_a_link_local_target_exactly() -> None:
    policy = TargetPolicy(allow=("192.0.2.0/24", "169.254.10.10"))
    policy.check("gpu-box", "192.0.2.5", 8000)
    policy.check("edge", "169.254.10.10", 8000)
    with pytest.raises(TargetDenied, match="allow list"):
        policy.check("other", "198.51.100.1", 8000)
    with pytest.raises(TargetDenied):
        policy.check("meta", "169.254.169.254", 80)


@pytest.mark.parametrize("bad", ["", "10.0.0.0/8/1", "host:99999", "a b"])
def test_bad_entries_are_refused_with_a_message(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_entry(bad)


def spec(url: str, policy: dict[str, list[str]]) -> RunSpec:
    return RunSpec(
        endpoint=EndpointSpec(protocol="openai-chat", base_url=url, model="m"),
        prompts=[Prompt(id="p", text="hi")],
        duration_s=None,
        max_requests=2,
        target_policy=policy,
        backoff_max_s=0,
    )


async def test_a_denied_ip_literal_stops_the_run_before_any_request(sim: object) -> None:
    base = sim.base_url  # type: ignore[attr-defined]
    port = int(base.split(":")[2].split("/")[0])
    with pytest.raises(TargetDenied):
        await run(spec(base, {"deny": [f"127.0.0.1:{port}"]}))


async def test_a_name_resolving_to_a_denied_address_fails_each_connection(sim: object) -> None:
    base = sim.base_url.replace("127.0.0.1", "localhost")  # type: ignore[attr-defined]
    result = await run(spec(base, {"deny": ["127.0.0.0/8", "::1/128"]}))
    assert len(result.records) == 2
    assert all(r.outcome == "connection_error" and "target policy" in r.error for r in result.records)
    allowed = await run(spec(base, {}))
    assert all(r.ok for r in allowed.records)
