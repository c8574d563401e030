"""Endpoints: the API key is encrypted at rest and never leaves the server; forms explain mistakes."""

from __future__ import annotations

import pytest
from django.urls import reverse

from benchmarks.models import Endpoint
from tests.benchmarks.factories import API_KEY

VALID = {
    "name": "vllm-a100",
    "protocol": "openai-chat",
    "base_url": "http://10.0.0.5:8000/v1",
    "model": "qwen",
    "headers": '{"X-Team": "perf"}',
    "timeout_connect_s": 10,
    "timeout_first_byte_s": 120,
    "timeout_idle_s": 60,
    "timeout_total_s": 600,
    "max_input_tokens": 32768,
    "max_output_tokens": 16384,
    "tokenizer": "",
    "max_event_bytes": 1048576,
    "price_in_per_1k": "0.001",
    "price_out_per_1k": "0.002",
    "currency": "usd",
    "generic": "",
}


def test_key_is_encrypted_at_rest(cast):
    stored = Endpoint.objects.values_list("api_key_encrypted", flat=True).get(pk=cast.endpoint.pk)
    assert API_KEY not in stored
    assert cast.endpoint.reveal_api_key() == API_KEY


def test_create_keeps_key_secret_and_edit_keeps_it_unless_replaced(cast, client_for):
    client = client_for(cast.alice)
    response = client.post(reverse("endpoint_create"), {**VALID, "api_key": "sk-new-OTHER-99"})
    assert response.status_code == 302
    endpoint = Endpoint.objects.get(name="vllm-a100")
    assert endpoint.reveal_api_key() == "sk-new-OTHER-99"
    assert endpoint.currency == "USD"
    edit_page = client.get(reverse("endpoint_edit", args=[endpoint.pk])).content.decode()
    assert "•••• saved" in edit_page and "sk-new-OTHER-99" not in edit_page
    client.post(reverse("endpoint_edit", args=[endpoint.pk]), {**VALID, "model": "qwen2", "api_key": ""})
    endpoint.refresh_from_db()
    assert endpoint.model == "qwen2" and endpoint.reveal_api_key() == "sk-new-OTHER-99"
    client.post(reverse("endpoint_edit", args=[endpoint.pk]), {**VALID, "clear_api_key": "on"})
    endpoint.refresh_from_db()
    assert not endpoint.has_api_key


@pytest.mark.parametrize(
    ("change", "dropped"),
    [
        ({"base_url": "http://10.0.0.9:8000/v1"}, True),  # another host
        ({"base_url": "http://10.0.0.5:9000/v1"}, True),  # another port
        ({"headers": '{"X-Team": "other"}'}, True),
        ({"protocol": "openai-completions"}, True),
        ({"base_url": "http://10.0.0.5:8000/v2"}, False),  # same place, another path
        ({"model": "qwen2"}, False),
    ],
)
def test_an_edit_that_would_send_the_key_elsewhere_drops_it(cast, client_for, change, dropped):
    client = client_for(cast.alice)
    client.post(reverse("endpoint_create"), {**VALID, "api_key": "sk-kept-or-not-42"})
    endpoint = Endpoint.objects.get(name="vllm-a100")
    client.post(reverse("endpoint_edit", args=[endpoint.pk]), {**VALID, **change, "api_key": ""})
    endpoint.refresh_from_db()
    assert endpoint.has_api_key is not dropped
    client.post(
        reverse("endpoint_edit", args=[endpoint.pk]), {**VALID, **change, "api_key": "sk-typed-again"}
    )
    endpoint.refresh_from_db()
    assert endpoint.reveal_api_key() == "sk-typed-again"


def test_key_never_appears_in_any_page_or_download(cast, client_for, simulator):
    cast.endpoint.base_url = simulator.base_url
    cast.endpoint.save()
    client = client_for(cast.alice)
    urls = [reverse(n) for n in ("run_list", "plan_list", "endpoint_list", "dataset_list", "profile_list")]
    urls += [
        reverse(f"{k}_{v}", args=[o.pk])
        for k, o in cast.objects.items()
        if k != "run"
        for v in ("detail", "edit")
    ]
    urls += [
        reverse(n, args=[cast.run.pk])
        for n in ("run_detail", "run_requests_csv", "run_summary_json", "run_api")
    ]
    urls += [reverse("run_request_detail", args=[cast.run.pk, cast.run.records.get().pk])]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert API_KEY not in body.decode(), url
    probe = client.post(reverse("endpoint_test", args=[cast.endpoint.pk]), {"prompt": f"echo {API_KEY[:6]}"})
    assert API_KEY not in probe.content.decode()
    clone = client.post(reverse("endpoint_clone", args=[cast.endpoint.pk]))
    assert API_KEY not in client.get(clone["Location"]).content.decode()


def test_test_connection_shows_packets_and_ttft(cast, client_for, simulator):
    cast.endpoint.base_url = simulator.base_url
    cast.endpoint.save()
    response = client_for(cast.bob).post(
        reverse("endpoint_test", args=[cast.endpoint.pk]), {"prompt": "Hello"}
    )
    page = response.content.decode()
    assert "Connected" in page
    assert response.context["probe"]["ttft_ms"] == pytest.approx(50, abs=40)
    assert len(response.context["probe"]["packets"]) >= 16
    assert "<td>answer</td>" in page


def test_test_connection_reports_a_dead_endpoint(cast, client_for):
    response = client_for(cast.alice).post(
        reverse("endpoint_test", args=[cast.endpoint.pk]), {"prompt": "Hi"}
    )
    assert response.status_code == 200
    assert "Failed" in response.content.decode()


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"headers": "{not json"}, "headers", "Not valid JSON"),
        ({"headers": '["a"]'}, "headers", "Must be a JSON object"),
        ({"headers": '{"Authorization": "Bearer x"}'}, "headers", "API key field"),
        ({"base_url": "not a url"}, "base_url", "Enter a valid URL"),
        ({"timeout_total_s": 0}, "timeout_total_s", "more than 0"),
        ({"currency": "US1"}, "currency", "three-letter"),
        ({"price_in_per_1k": "-1"}, "price_in_per_1k", "cannot be negative"),
        ({"protocol": "carrier-pigeon"}, "protocol", "Select a valid choice"),
        ({"tokenizer": "no-such-tokenizer"}, "tokenizer", "no-such-tokenizer"),
        ({"max_event_bytes": 100}, "max_event_bytes", "greater than or equal to 1024"),
    ],
)
def test_endpoint_form_rejects_bad_input(cast, client_for, change, field, message):
    response = client_for(cast.alice).post(reverse("endpoint_create"), {**VALID, **change})
    assert response.status_code == 400
    assert any(message in e for e in response.context["form"].errors[field])
    assert not Endpoint.objects.filter(name="vllm-a100").exists()


def test_endpoint_in_use_cannot_be_deleted(cast, client_for):
    response = client_for(cast.alice).post(reverse("endpoint_delete", args=[cast.endpoint.pk]), follow=True)
    assert "still used by" in response.content.decode()
    assert Endpoint.objects.filter(pk=cast.endpoint.pk).exists()


def test_the_event_size_limit_is_set_per_endpoint_and_reaches_the_engine(cast, client_for):
    from benchmarks import bridge

    response = client_for(cast.alice).post(reverse("endpoint_create"), {**VALID, "max_event_bytes": 65536})
    assert response.status_code == 302
    endpoint = Endpoint.objects.get(name="vllm-a100")
    assert endpoint.max_event_bytes == 65536
    assert bridge.endpoint_spec(endpoint).max_event_bytes == 65536


def test_auth_bearing_headers_are_encrypted_never_shown_and_kept_on_edit(cast, client_for):
    from benchmarks import bridge

    client = client_for(cast.alice)
    headers = '{"X-Team": "perf", "X-Api-Key": "hdr-secret-7788", "Cookie": "session=cookie-secret-99"}'
    assert client.post(reverse("endpoint_create"), {**VALID, "headers": headers}).status_code == 302
    endpoint = Endpoint.objects.get(name="vllm-a100")
    assert endpoint.headers == {"X-Team": "perf"}  # only the plain one in the clear
    assert "hdr-secret-7788" not in endpoint.secret_headers_encrypted
    assert endpoint.reveal_secret_headers() == {
        "X-Api-Key": "hdr-secret-7788",
        "Cookie": "session=cookie-secret-99",
    }
    for url in (reverse("endpoint_detail", args=[endpoint.pk]), reverse("endpoint_edit", args=[endpoint.pk])):
        page = client.get(url).content.decode()
        assert "hdr-secret-7788" not in page and "cookie-secret-99" not in page and "X-Api-Key" in page
    # the edit form shows ••••; sending it back unchanged keeps the stored values
    shown = client.get(reverse("endpoint_edit", args=[endpoint.pk])).context["form"]["headers"].value()
    client.post(reverse("endpoint_edit", args=[endpoint.pk]), {**VALID, "headers": shown, "model": "other"})
    endpoint.refresh_from_db()
    assert endpoint.model == "other" and endpoint.reveal_secret_headers()["X-Api-Key"] == "hdr-secret-7788"
    spec = bridge.endpoint_spec(endpoint)
    assert spec.headers["X-Api-Key"] == "hdr-secret-7788" and spec.headers["X-Team"] == "perf"
    assert "X-Api-Key" not in bridge.endpoint_spec(endpoint, with_key=False).headers  # what a run stores


def test_a_key_that_no_longer_decrypts_fails_the_run_with_the_reason(cast, settings, simulator):
    from cryptography.fernet import Fernet

    from benchmarks.models import Run, Shard
    from benchmarks.services.endpoints import endpoint_test_connection
    from benchmarks.services.runs.shard import shard_execute

    cast.endpoint.base_url = simulator.base_url
    cast.endpoint.save()
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()  # the key was rotated
    probe = endpoint_test_connection(endpoint=cast.endpoint, prompt="hi")
    assert probe["ok"] is False and "cannot be decrypted" in probe["error"]
    run = Run.objects.create(
        team=cast.team_a, plan=cast.plan, endpoint=cast.endpoint, status=Run.Status.RUNNING,
        spec={"endpoint": {"protocol": "openai-chat", "base_url": simulator.base_url}, "prompts": [{"id": "p"}]},
        shard_count=1,
    )  # fmt: skip
    shard = Shard.objects.create(run=run, index=0)
    shard_execute(shard_id=shard.pk, hostname="w")
    shard.refresh_from_db()
    assert shard.status == Shard.Status.FAILED and "cannot be decrypted" in shard.error


def test_metrics_urls_are_one_per_line_and_reach_the_runs_study(cast, client_for):
    from benchmarks import bridge

    client = client_for(cast.alice)
    urls = "http://10.0.0.5:8000/metrics\n\n  http://10.0.0.6:8000/metrics  \n"
    assert client.post(reverse("endpoint_create"), {**VALID, "metrics_urls": urls}).status_code == 302
    endpoint = Endpoint.objects.get(name="vllm-a100")
    assert endpoint.metrics_urls == ["http://10.0.0.5:8000/metrics", "http://10.0.0.6:8000/metrics"]
    page = client.get(reverse("endpoint_edit", args=[endpoint.pk])).content.decode()
    assert "http://10.0.0.5:8000/metrics\nhttp://10.0.0.6:8000/metrics" in page
    cast.plan.endpoint = endpoint
    assert bridge.study(cast.plan)["server_metrics"] == endpoint.metrics_urls
    bad = client.post(reverse("endpoint_create"), {**VALID, "name": "x", "metrics_urls": "nope nope"})
    assert (
        bad.status_code == 400 and "One http(s) URL per line" in bad.context["form"].errors["metrics_urls"][0]
    )
