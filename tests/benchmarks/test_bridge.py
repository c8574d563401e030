"""The bridge's target policy: no plan, test connection or webhook reaches the app's own services."""

from __future__ import annotations

import logging

import pytest

from benchmarks import bridge
from benchmarks.services.endpoints import endpoint_test_connection
from benchmarks.services.schedules import _post
from runner import TargetDenied, TargetPolicy


def test_the_apps_own_database_and_broker_are_denied(settings) -> None:
    policy = TargetPolicy.from_dict(bridge.target_policy())
    with pytest.raises(TargetDenied):
        policy.check("localhost", "127.0.0.1", 5432)  # PostgreSQL, as the tests run it
    with pytest.raises(TargetDenied):
        policy.check("localhost", "127.0.0.1", 6379)  # Redis
    policy.check("localhost", "127.0.0.1", 8000)  # a simulator on loopback is fine
    with pytest.raises(TargetDenied):
        policy.check("metadata", "169.254.169.254", 80)


def test_settings_lists_narrow_and_extend_the_policy(settings) -> None:
    settings.TARGET_ALLOW = ["127.0.0.0/8"]
    settings.TARGET_DENY = ["127.0.0.1:9000"]
    policy = TargetPolicy.from_dict(bridge.target_policy())
    policy.check("sim", "127.0.0.1", 8000)
    for address, port in (("127.0.0.1", 9000), ("10.1.2.3", 8000)):
        with pytest.raises(TargetDenied):
            policy.check("x", address, port)


@pytest.mark.django_db
def test_a_test_connection_aimed_at_the_database_is_refused(cast) -> None:
    cast.endpoint.base_url = "http://127.0.0.1:5432/v1"
    result = endpoint_test_connection(endpoint=cast.endpoint, prompt="hello")
    assert result["ok"] is False and "target policy" in result["error"]


def test_a_webhook_to_a_denied_address_is_not_sent_and_its_token_not_logged(caplog) -> None:
    caplog.set_level(logging.WARNING)
    assert (
        _post("http://169.254.169.254/hooks/SECRET-TOKEN-123?key=abc", {"x": 1})
        == "refused by the target policy"
    )
    assert "169.254.169.254" in caplog.text and "SECRET-TOKEN-123" not in caplog.text
