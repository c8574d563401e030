"""Deployment config stays honest: compose commands exist, every variable is real and documented,
settings reject junk, and production settings pass ``check --deploy``."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import get_commands

from llmperf_site import settings as settings_module

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
OURS = {name: s for name, s in SERVICES.items() if s.get("build") or s.get("image", "").startswith("llmperf")}
COMPOSE_ONLY = {"POSTGRES_PASSWORD"}  # interpolated by compose for the postgres service, not read by Django


def settings_variables() -> set[str]:
    """Names passed to the env_* helpers in settings.py."""
    tree = ast.parse((ROOT / "llmperf_site" / "settings.py").read_text())
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", "").startswith("env_")
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def example_variables() -> set[str]:
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))


def test_env_example_lists_every_variable():
    assert example_variables() == settings_variables() | COMPOSE_ONLY


def test_every_service_has_a_health_check():
    assert {"web", "worker-load", "worker-default", "postgres", "redis", "simulator"} <= set(SERVICES)
    for name, service in SERVICES.items():
        if name != "migrate":
            assert service.get("healthcheck", {}).get("test"), name


@pytest.mark.parametrize("name", sorted(OURS))
def test_service_commands_exist(name):
    command = OURS[name]["command"]
    program, args = command[0], command[1:]
    if program == "daphne":
        module, attr = args[-1].split(":")
        assert callable(getattr(importlib.import_module(module), attr))
    elif program == "celery":
        assert args[:2] == ["-A", "llmperf_site"] and args[2] == "worker"
        queues = set(args[args.index("-Q") + 1].split(","))
        assert queues <= {settings.CELERY_LOAD_QUEUE, settings.CELERY_TASK_DEFAULT_QUEUE}
    elif args[0] == "-m":
        assert importlib.util.find_spec(args[1]) is not None, args[1]
    else:
        assert args[0] == "manage.py" and args[1] in get_commands()


def test_both_queues_are_consumed():
    queues = set()
    for service in OURS.values():
        cmd = service["command"]
        if "celery" in cmd[:1]:
            queues |= set(cmd[cmd.index("-Q") + 1].split(","))
    assert queues == {"load", "celery"}
    assert sum("-B" in s["command"] for s in OURS.values()) == 1  # exactly one beat


@pytest.mark.parametrize("name", sorted(OURS))
def test_service_variables_are_read_by_settings(name):
    environment = OURS[name].get("environment") or {}
    assert set(environment) <= settings_variables()
    referenced = set(re.findall(r"\$\{([A-Z0-9_]+)", yaml.safe_dump(environment)))
    assert referenced <= settings_variables() | COMPOSE_ONLY


def test_dockerfile_installs_requirements():
    assert "requirements.txt" in (ROOT / "Dockerfile").read_text()


def run_settings(env: dict[str, str], code: str = "") -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in settings_variables()}
    return subprocess.run(
        [sys.executable, "manage.py", *code.split()],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "x7" * 30 + "-production-secret",
    "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "ALLOWED_HOSTS": "llmperf.example.com",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/llmperf",
    "REDIS_URL": "redis://127.0.0.1:6379/15",
}


def test_production_settings_pass_check_deploy():
    result = run_settings(PRODUCTION, "check --deploy --fail-level WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEY"])
def test_production_refuses_to_start_without_secrets(missing):
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = run_settings(env, "check")
    assert result.returncode != 0 and f"{missing} is required" in result.stderr


@pytest.mark.parametrize(
    ("helper", "value"),
    [
        (settings_module.env_bool, "maybe"),
        (settings_module.env_int, "ten"),
        (settings_module.env_float, "1,5"),
    ],
)
def test_env_helpers_reject_junk(monkeypatch, helper, value):
    monkeypatch.setenv("LLMPERF_TEST_VALUE", value)
    with pytest.raises(ImproperlyConfigured, match="LLMPERF_TEST_VALUE"):
        helper("LLMPERF_TEST_VALUE", 1)


def test_env_helpers_parse(monkeypatch):
    monkeypatch.setenv("LLMPERF_TEST_VALUE", " Yes ")
    assert settings_module.env_bool("LLMPERF_TEST_VALUE", False) is True
    monkeypatch.setenv("LLMPERF_TEST_VALUE", "a.example, b.example,")
    assert settings_module.env_list("LLMPERF_TEST_VALUE", []) == ["a.example", "b.example"]
    monkeypatch.delenv("LLMPERF_TEST_VALUE")
    assert settings_module.env_int("LLMPERF_TEST_VALUE", 7) == 7


def test_health_endpoint(client, db):
    assert client.get("/healthz").content == b"ok"


def test_a_deployment_that_sets_nothing_runs_as_production():
    # no DEBUG at all: production is the default, so the missing secrets stop it at once
    env = {k: v for k, v in PRODUCTION.items() if k not in ("DEBUG", "SECRET_KEY")}
    result = run_settings(env, "check")
    assert result.returncode != 0 and "SECRET_KEY is required" in result.stderr


@pytest.mark.parametrize(
    ("env", "signup"),
    [
        (PRODUCTION, "False"),
        ({**PRODUCTION, "ALLOW_SIGNUP": "true"}, "True"),
        ({"DEBUG": "true"}, "True"),  # development, embedded mode
    ],
)
def test_sign_up_is_off_in_production_unless_asked_for(env, signup):
    clean = {k: v for k, v in os.environ.items() if k not in settings_variables()}
    code = "import llmperf_site.settings as s; print(s.ALLOW_SIGNUP)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == signup, result.stderr
