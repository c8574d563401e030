from __future__ import annotations

import asyncio
from typing import Any

from django.db import transaction
from django.forms import ModelForm

from benchmarks import bridge
from benchmarks.models import Endpoint, Team
from runner import RequestRecord


@transaction.atomic
def endpoint_save(
    *, form: ModelForm, team: Team | None, api_key: str = "", clear_api_key: bool = False
) -> Endpoint:
    """Save the form; the stored key is kept unless a new one is typed or clearing is asked for."""
    endpoint: Endpoint = form.save(commit=False)
    if endpoint.pk is None and team is not None:
        endpoint.team = team
    if api_key:
        endpoint.set_api_key(api_key)
    elif clear_api_key:
        endpoint.api_key_encrypted = ""
    endpoint.save()
    return endpoint


def endpoint_test_connection(*, endpoint: Endpoint, prompt: str) -> dict[str, Any]:
    """Send one real request; returns what the page shows (never the key, never headers)."""
    from runner import single_request

    spec = bridge.endpoint_spec(endpoint)
    try:
        record: RequestRecord = asyncio.run(single_request(spec, prompt))
    except Exception as exc:  # a bad URL or protocol bug must show as a message, not a 500
        return {"ok": False, "error": _scrub(f"{type(exc).__name__}: {exc}", spec.api_key), "packets": []}
    return {
        "ok": record.ok,
        "outcome": record.outcome,
        "error": _scrub(record.error, spec.api_key),
        "http_status": record.http_status,
        "ttft_ms": record.ttft_ms,
        "e2e_ms": record.e2e_ms,
        "output_tokens": record.output_tokens,
        "answer_text": _scrub(record.answer_text[:2000], spec.api_key),
        "packets": record.packets,
    }


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "••••") if secret and text else text
