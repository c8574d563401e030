"""``manage.py apply FILE.yaml [--team T]``: create or update, by name, the endpoints, datasets,
profiles and plans a file describes (plans as code; see ``benchmarks.forms.plans_as_code``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from benchmarks.forms.plans_as_code import PlanFileError, plans_apply
from benchmarks.selectors.teams import team_by_name


class Command(BaseCommand):
    help = "Create or update endpoints, datasets, profiles and plans from a YAML file (keys from env)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the YAML file")
        parser.add_argument("--team", help="team name (default: the file's 'team')")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        try:
            document = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise CommandError(f"{path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise CommandError(f"{path}: not YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(document, dict):
            raise CommandError(f"{path}: must be a mapping with endpoints, datasets, profiles, plans")
        name = options["team"] or document.get("team")
        team = team_by_name(name) if name else None
        if team is None:
            raise CommandError(f"no team named {name!r}" if name else "give --team or a 'team' in the file")
        try:
            done = plans_apply(team=team, document=document, base_dir=path.resolve().parent)
        except PlanFileError as exc:
            raise CommandError(f"{path}: {exc} (nothing was changed)") from None
        for verb, names in (
            ("created", done.created),
            ("updated", done.updated),
            ("unchanged", done.unchanged),
        ):
            for what in names:
                self.stdout.write(f"{verb}: {what}")
        for warning in done.warnings:
            self.stderr.write(f"warning: {warning}")
