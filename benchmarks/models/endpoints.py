from __future__ import annotations

import json

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from benchmarks import crypto
from benchmarks.models.teams import TeamOwned
from runner import PROTOCOLS

KEEP_SECRET = "••••"  # a secret header's value in a form: keep the stored one


class Endpoint(TeamOwned):
    name = models.CharField(max_length=100)
    protocol = models.CharField(max_length=30, choices=[(p, p) for p in PROTOCOLS], default="openai-chat")
    base_url = models.CharField(
        max_length=500
    )  # checked by the form: http(s) and a host, single-label names too
    model = models.CharField(max_length=200, blank=True)
    # Fernet token; the plain key is only ever read by the bridge and the connection test.
    api_key_encrypted = models.TextField(blank=True, default="")
    headers = models.JSONField(default=dict, blank=True)  # plain ones only: never an auth-bearing header
    # Auth-bearing headers (X-Api-Key, Cookie, anything naming a key, token or secret), Fernet-encrypted
    # as one JSON object; their names are kept apart so pages can say which exist.
    secret_headers_encrypted = models.TextField(blank=True, default="")
    secret_header_names_list = models.JSONField(default=list, blank=True)
    timeout_connect_s = models.FloatField(default=10.0)
    timeout_first_byte_s = models.FloatField(default=120.0)
    timeout_idle_s = models.FloatField(default=60.0)
    timeout_total_s = models.FloatField(default=600.0)
    max_input_tokens = models.PositiveIntegerField(default=32768)
    max_output_tokens = models.PositiveIntegerField(default=16384)
    tokenizer = models.CharField(max_length=200, blank=True)
    # one SSE event / WebSocket message larger than this ends the request as a protocol error
    max_event_bytes = models.PositiveIntegerField(
        default=1 << 20,
        validators=[MinValueValidator(1024), MaxValueValidator(256 << 20)],
        help_text="One streamed event or WebSocket message larger than this ends the request as a "
        "protocol error (bytes; default 1 MiB).",
    )
    price_in_per_1k = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    price_out_per_1k = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    currency = models.CharField(max_length=3, default="USD")
    generic = models.JSONField(default=dict, blank=True)  # runner.spec.GenericFormat fields
    # Prometheus endpoints scraped during its runs (e.g. prefill and decode workers), summed
    metrics_urls = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_encrypted)

    def set_api_key(self, plain: str) -> None:
        self.api_key_encrypted = crypto.encrypt(plain)

    def reveal_api_key(self) -> str:
        return crypto.decrypt(self.api_key_encrypted)

    def set_secret_headers(self, headers: dict[str, str]) -> None:
        self.secret_headers_encrypted = crypto.encrypt(json.dumps(headers)) if headers else ""

    def reveal_secret_headers(self) -> dict[str, str]:
        plain = crypto.decrypt(self.secret_headers_encrypted)
        return {str(k): str(v) for k, v in json.loads(plain).items()} if plain else {}

    @property
    def secret_header_names(self) -> list[str]:
        return list(self.secret_header_names_list or [])
