"""``manage.py demo``: the embedded dashboard with a simulator endpoint, a demo plan, a live run.

Migrates, creates (or refreshes) the demo login, team, endpoint, dataset, profile and plan, starts the
simulator as a child process for the life of the server, starts one demo run, then serves the ASGI
app with daphne. Without REDIS_URL, tasks run on the in-process worker pool.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from benchmarks.models import Dataset, Endpoint, LoadProfile, Membership, Plan, Team
from benchmarks.services.datasets import NewItems, dataset_create, dataset_parse
from benchmarks.services.runs.start import run_start

DEMO_FILE = "sharegpt_oasst_en.jsonl"


class Command(BaseCommand):
    help = "Set up demo data and a simulator endpoint, start a demo run, and serve the dashboard."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-run", action="store_true", help="do not start the demo run")
        parser.add_argument("--duration", type=float, default=60.0, help="demo plan duration in seconds")

    def handle(self, *args: Any, **opts: Any) -> None:
        from runner import SimulatorProcess

        call_command("migrate", interactive=False, verbosity=0)
        password = secrets.token_urlsafe(9)
        with SimulatorProcess(ttft_ms=150, itl_ms=12, output_tokens=80, prefill_us_per_token=20) as sim:
            user, plan = demo_objects(base_url=sim.base_url, password=password, duration_s=opts["duration"])
            run = None if opts["no_run"] else run_start(plan=plan, by=user)
            url = f"http://{opts['host']}:{opts['port']}/"
            self.stdout.write(self.style.SUCCESS(f"llmperf demo at {url}"))
            self.stdout.write(f"  login: {user.username}   password: {password}")
            self.stdout.write(f"  simulator endpoint: {sim.base_url}")
            if run is not None:
                self.stdout.write(f"  live demo run: {url}runs/{run.pk}/")
            self.stdout.flush()
            serve(opts["host"], opts["port"])


@transaction.atomic
def demo_objects(*, base_url: str, password: str, duration_s: float) -> tuple[Any, Plan]:
    user, _ = get_user_model().objects.get_or_create(username="demo", defaults={"email": "demo@example.com"})
    user.set_password(password)
    user.save()
    team, _ = Team.objects.get_or_create(name="Demo team")
    Membership.objects.get_or_create(team=team, user=user, defaults={"role": Membership.Role.OWNER})
    endpoint, _ = Endpoint.objects.update_or_create(
        team=team,
        name="Simulator",
        defaults={
            "protocol": "openai-chat",
            "base_url": base_url,
            "model": "llmperf-sim",
            "max_output_tokens": 4096,
        },
    )
    dataset = Dataset.objects.filter(team=team, name="Demo prompts").first() or dataset_create(
        team=team,
        name="Demo prompts",
        description="OASST conversations",
        tokenizer="estimate",
        new=demo_items(),
        by=user,
    )
    profile, _ = LoadProfile.objects.get_or_create(
        team=team, name="Ramp to 8 users", defaults={"kind": "users", "spec": {"users": 8, "spawn_rate": 1.0}}
    )
    plan, _ = Plan.objects.update_or_create(
        team=team,
        name="Demo: 8 users against the simulator",
        defaults={
            "endpoint": endpoint,
            "dataset": dataset,
            "profile": profile,
            "max_tokens": 80,
            "duration_s": duration_s,
            "engine_name": "llmperf-sim",
            "hardware": "cpu",
        },
    )
    return user, plan


def demo_items() -> NewItems:
    """The first 200 ShareGPT conversations when the shared datasets are there, else 100 short asks."""
    path = Path(settings.DEMO_DATASETS_DIR) / DEMO_FILE
    if path.is_file():
        data = "\n".join(path.read_text(encoding="utf-8").splitlines()[:200]).encode()
        filename = DEMO_FILE
    else:
        topics = ["the ocean", "compilers", "bread", "jazz", "volcanoes", "chess", "bees", "trains", "tea"]
        data = "\n".join(
            f"Write a short paragraph about {topics[i % 9]}, variation {i}." for i in range(100)
        ).encode()
        filename = "demo.txt"
    parsed = dataset_parse(data=data, filename=filename, fmt=None, multi_turn=False)
    return NewItems(
        items=parsed.items, source="upload", note=f"demo: {filename}", filename=filename, format=parsed.format
    )


def serve(host: str, port: int) -> None:
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(
        [
            "-b",
            host,
            "-p",
            str(port),
            "--proxy-headers",
            settings.ASGI_APPLICATION.replace(".application", ":application"),
        ]
    )
