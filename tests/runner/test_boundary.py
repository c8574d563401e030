"""runner/ stays a Django-free library with a curated public API."""

from __future__ import annotations

import subprocess
import sys

import runner


def test_importing_runner_loads_no_django_celery_or_app_code() -> None:
    code = (
        "import sys, runner, runner.cli, runner.engine; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('django', 'celery', 'channels', 'psycopg', 'plotly', 'benchmarks', 'llmperf_site')]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_api_names_exist() -> None:
    for name in runner.__all__:
        assert hasattr(runner, name), name
