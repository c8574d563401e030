"""Project package: settings, URL and ASGI routing, and the Celery app."""

from llmperf_site.celery import app as celery_app

__all__ = ["celery_app"]
