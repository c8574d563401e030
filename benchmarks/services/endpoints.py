from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.forms import ModelForm

from benchmarks import bridge
from benchmarks.crypto import SecretUnreadable
from benchmarks.models import Endpoint, Team
from benchmarks.models.endpoints import KEEP_SECRET
from runner import RequestRecord, is_secret_header, scrub_secrets


@transaction.atomic
def endpoint_save(
    *, form: ModelForm, team: Team | None, api_key: str = "", clear_api_key: bool = False
) -> Endpoint:
    """Save the form; the stored key is kept unless a new one is typed or clearing is asked for — or
    the key would now go somewhere else (another host or port, protocol or headers): then it is
    dropped unless typed again, so an edit can never send a saved key to a new place."""
    moved = endpoint_key_would_move(form)
    stored = form.instance.reveal_secret_headers() if form.instance.pk else {}
    endpoint: Endpoint = form.save(commit=False)
    if endpoint.pk is None and team is not None:
        endpoint.team = team
    if api_key:
        endpoint.set_api_key(api_key)
    elif clear_api_key or moved:
        endpoint.api_key_encrypted = ""
    submitted = {str(k): str(v) for k, v in (form.cleaned_data.get("headers") or {}).items()}
    endpoint.headers = {k: v for k, v in submitted.items() if not is_secret_header(k)}
    secret = {k: v for k, v in submitted.items() if is_secret_header(k)}
    for name, value in list(secret.items()):
        if value == KEEP_SECRET:  # keep the stored value, unless the endpoint now points elsewhere
            if name in stored and not moved:
                secret[name] = stored[name]
            else:
                del secret[name]
    endpoint.set_secret_headers(secret)
    endpoint.secret_header_names_list = sorted(secret)
    endpoint.save()
    return endpoint


def endpoint_key_would_move(form: ModelForm) -> bool:
    """An edit of a saved endpoint that changes where or how its key would be sent."""
    if form.instance.pk is None or not form.instance.api_key_encrypted:
        return False
    if {"protocol", "headers"} & set(form.changed_data):
        return True
    if "base_url" not in form.changed_data:
        return False
    before, after = urlsplit(form.initial.get("base_url") or ""), urlsplit(form.cleaned_data["base_url"])
    return (before.scheme, before.hostname, before.port) != (after.scheme, after.hostname, after.port)


def endpoint_test_connection(*, endpoint: Endpoint, prompt: str) -> dict[str, Any]:
    """Send one real request; returns what the page shows (never the key, never headers)."""
    from runner import single_request

    try:
        spec = bridge.endpoint_spec(endpoint)
    except SecretUnreadable as exc:
        return {"ok": False, "error": str(exc), "packets": []}
    secrets = [spec.api_key, *endpoint.reveal_secret_headers().values()]
    try:
        record: RequestRecord = asyncio.run(
            single_request(spec, prompt, target_policy=bridge.target_policy())
        )
    except Exception as exc:  # a bad URL or protocol bug must show as a message, not a 500
        return {"ok": False, "error": scrub_secrets(f"{type(exc).__name__}: {exc}", secrets), "packets": []}
    return {
        "ok": record.ok,
        "outcome": record.outcome,
        "error": scrub_secrets(record.error, secrets),
        "http_status": record.http_status,
        "ttft_ms": record.ttft_ms,
        "e2e_ms": record.e2e_ms,
        "output_tokens": record.output_tokens,
        "answer_text": scrub_secrets(record.answer_text[:2000], secrets),
        "packets": record.packets,
    }
