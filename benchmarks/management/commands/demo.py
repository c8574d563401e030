"""``manage.py demo``: the embedded dashboard with demo data that shows the product, and a live run.

Migrates; starts two simulators as child processes for the life of the server — a reasoning model
(thinking packets, heartbeats) and a faster "quantized" variant that answers more MATH-500 items
wrongly, both counting tokens in Qwen3 like the client; seeds the demo login, team, endpoints,
three datasets (MATH-500, conversations, a synthetic 1k–48k set), profiles and plans
(``benchmarks.services.demo``); runs the two variants' short plans for real and saves their
comparison; starts the live demo run; then serves the ASGI app with daphne. Without REDIS_URL,
tasks run on the in-process worker pool.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from benchmarks.services.demo import COMPARE_REQUESTS, QUANTIZED, REASONING, demo_compare, demo_seed
from benchmarks.services.runs.start import run_start


class Command(BaseCommand):
    help = "Set up demo data and two simulator endpoints, run and compare them, start a live run, serve."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--no-run", action="store_true", help="start no run: neither the compared pair nor the live one"
        )
        parser.add_argument(
            "--duration", type=float, default=60.0, help="live demo run's duration in seconds"
        )
        parser.add_argument(
            "--compare-requests",
            type=int,
            default=COMPARE_REQUESTS,
            help="MATH-500 items each compared variant sends (the same items, in order)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        from runner import SimulatorProcess

        started = time.monotonic()
        call_command("migrate", interactive=False, verbosity=0)
        password = secrets.token_urlsafe(9)
        with SimulatorProcess(**REASONING) as reasoning, SimulatorProcess(**QUANTIZED) as quantized:
            demo = demo_seed(
                reasoning_url=reasoning.base_url,
                quantized_url=quantized.base_url,
                password=password,
                duration_s=opts["duration"],
                compare_requests=opts["compare_requests"],
            )
            url = f"http://{opts['host']}:{opts['port']}/"
            comparison = run = None
            if not opts["no_run"]:
                self.stdout.write("running the two variants for the saved comparison…")
                self.stdout.flush()
                comparison = demo_compare(demo=demo)
                run = run_start(plan=demo.live_plan, by=demo.user)
            self.stdout.write(
                self.style.SUCCESS(f"llmperf demo at {url}  (ready in {time.monotonic() - started:.0f} s)")
            )
            self.stdout.write(f"  login: {demo.user.username}   password: {password}")
            self.stdout.write(
                f"  reasoning simulator: {reasoning.base_url}   quantized: {quantized.base_url}"
            )
            if comparison is not None:
                self.stdout.write(f"  saved comparison: {url}comparisons/{comparison.pk}/")
            if run is not None:
                self.stdout.write(f"  live demo run: {url}runs/{run.pk}/")
            self.stdout.flush()
            serve(opts["host"], opts["port"])


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
