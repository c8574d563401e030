"""Test-wide defaults: the real Postgres and Redis (never SQLite or a fake Redis)."""

from __future__ import annotations

import importlib
import os

DEFAULTS = {
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/llmperf",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}
_missing = {name: value for name, value in DEFAULTS.items() if not os.environ.get(name)}
os.environ.update(_missing)

if _missing:
    # pytest-django read the settings before this file ran, so they saw the embedded defaults
    # (SQLite, in-memory layer). Read them again now that the variables are set; nothing has
    # opened a connection yet.
    from django.conf import Settings, settings
    from django.db import connections

    import llmperf_site.settings

    importlib.reload(llmperf_site.settings)
    settings._wrapped = Settings("llmperf_site.settings")
    import sys

    if "axes.conf" in sys.modules:  # django-axes writes its defaults into the settings it imported with
        importlib.reload(sys.modules["axes.conf"])
    from asgiref.local import Local

    connections.__dict__.pop("settings", None)
    connections._settings = None
    connections._connections = Local(connections.thread_critical)
