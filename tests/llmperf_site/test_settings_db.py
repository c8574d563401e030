import pytest
from django.conf import settings
from django.db import connection


@pytest.mark.django_db
def test_tests_run_on_postgres_and_redis():
    assert connection.vendor == "postgresql"
    assert settings.REDIS_URL.startswith("redis://")
    assert settings.EMBEDDED_WORKER is False
