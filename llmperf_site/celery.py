"""The Celery app. Shards go to the ``load`` queue (or straight to a chosen worker's own queue);
coordination, aggregation and reaping stay on the default ``celery`` queue."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "llmperf_site.settings")

app = Celery("llmperf_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_routes = {"benchmarks.tasks.run_shard": {"queue": "load"}}
app.autodiscover_tasks()
