"""``manage.py mirror --team T --upstream ORIGIN --shadow ENDPOINT [--listen HOST:PORT]``: a mirror
session recorded like a run.

By default it runs here, in the foreground, until Ctrl-C or SIGTERM, then records both sides and prints
the paired verdict; ``--detach`` hands it to a load worker instead and prints the run's id (stop it
from its page). The shadow is a team endpoint and gets that endpoint's key, never the caller's.
Exit 2: bad arguments.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from benchmarks.models import Endpoint, Run, Team
from benchmarks.services.mirrors import mirror_execute, mirror_start, upstream_problem
from runner import CAPTURE_PRIVACY, generic_format


class Command(BaseCommand):
    help = "Mirror live traffic to a team endpoint, recorded as a run with both sides and a paired verdict."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--team", required=True, help="team id or exact name")
        parser.add_argument("--upstream", required=True, help="production origin, e.g. http://10.0.0.5:8000")
        parser.add_argument("--shadow", required=True, help="the team's endpoint under test (id or name)")
        parser.add_argument("--listen", default="0.0.0.0:8089", help="HOST:PORT callers send to")
        parser.add_argument(
            "--sample", type=float, default=1.0, help="share of requests copied to the shadow"
        )
        parser.add_argument(
            "--capture-dataset", action="store_true", help="keep the traffic as a timed dataset"
        )
        parser.add_argument("--capture-prompts", choices=CAPTURE_PRIVACY, default="keep")
        parser.add_argument(
            "--ws-format",
            default="",
            help="JSON object of generic-ws stream-format fields to read WebSocket sessions' frames by "
            "(as the mirror page's field); default: the simulator's frames",
        )
        parser.add_argument("--user", help="username the session is recorded as (a member of the team)")
        parser.add_argument("--detach", action="store_true", help="run it on a load worker; print the run id")

    def handle(self, *args: Any, **opts: Any) -> None:
        team = _one(Team, opts["team"], "team")
        shadow = _one(Endpoint, opts["shadow"], "endpoint", team=team)
        if not 0.0 <= opts["sample"] <= 1.0:
            raise CommandError("--sample must be between 0 and 1", returncode=2)
        ws_format = _ws_format(opts["ws_format"])
        problem = upstream_problem(opts["upstream"])
        if problem:
            raise CommandError(problem, returncode=2)
        run = mirror_start(
            team=team,
            shadow=shadow,
            upstream=opts["upstream"],
            listen=opts["listen"],
            sample=opts["sample"],
            capture_prompts=opts["capture_prompts"],
            capture_dataset=opts["capture_dataset"],
            ws_format=ws_format,
            by=_user(opts["user"], team),
            enqueue=opts["detach"],
        )
        if opts["detach"]:
            self.stdout.write(f"Mirror session {run.pk} queued for a load worker; stop it from its page.")
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: threading.Thread(target=_stop, args=(run.pk,)).start())
        self.stdout.write(f"Mirror session {run.pk} listening on {opts['listen']}; Ctrl-C stops it.")
        mirror_execute(run_id=run.pk, hostname=f"manage.py@{socket.gethostname()}")
        run.refresh_from_db()
        verdict = ((run.summary or {}).get("mirror") or {}).get("verdict") or {}
        self.stdout.write(f"Session {run.pk} {run.status}: {run.reason}")
        if verdict:
            self.stdout.write(verdict["text"])
        if run.status != Run.Status.FINISHED:
            raise CommandError(run.reason or run.status, returncode=1)


def _ws_format(text: str) -> dict[str, Any]:
    """The --ws-format JSON, checked as the page's field checks it."""
    if not text.strip():
        return {}
    try:
        values = json.loads(text)
        if not isinstance(values, dict):
            raise ValueError("--ws-format must be a JSON object")
        generic_format(values)
    except (TypeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise CommandError(f"--ws-format: {exc}", returncode=2) from None
    return values


def _stop(run_id: int) -> None:
    """From a signal, on its own thread (the event loop's thread must not query the database)."""
    try:
        Run.objects.filter(pk=run_id, status=Run.Status.RUNNING).update(
            status=Run.Status.CANCELLING, reason="Stopped by a signal."
        )
    finally:
        connection.close()


def _one(model: Any, ref: str, what: str, **scope: Any) -> Any:
    rows = (
        model.objects.filter(pk=int(ref), **scope)
        if ref.isdigit()
        else model.objects.filter(name=ref, **scope)
    )
    found = list(rows[:2])
    if len(found) != 1:
        where = f" in team “{scope['team']}”" if scope else ""
        raise CommandError(f"{'no' if not found else 'more than one'} {what} {ref!r}{where}", returncode=2)
    return found[0]


def _user(username: str | None, team: Team) -> Any:
    if not username:
        return None
    user = get_user_model().objects.filter(username=username, memberships__team=team).first()
    if user is None:
        raise CommandError(f"no user {username!r} in team “{team}”", returncode=2)
    return user
