"""``manage.py export PLAN [--team T] [--out DIR]``: write a plan, its endpoint (the key as an
environment variable's name), profile and dataset as a YAML file ``manage.py apply`` reads back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from benchmarks.forms.plans_as_code import plan_export
from benchmarks.selectors.teams import plan_by_name_or_id


class Command(BaseCommand):
    help = "Write a plan and what it uses as plans-as-code YAML (plus its dataset as JSONL)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("plan", help="plan id, or its exact name")
        parser.add_argument("--team", help="team name, when several teams have a plan of that name")
        parser.add_argument("--out", default=".", help="folder for PLAN.yaml and its dataset file")

    def handle(self, *args: Any, **options: Any) -> None:
        plan = plan_by_name_or_id(options["plan"], team_name=options["team"])
        if plan is None:
            raise CommandError(f"no single plan {options['plan']!r} (give its id, or --team)")
        out = Path(options["out"])
        out.mkdir(parents=True, exist_ok=True)
        stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in plan.name).strip("-") or "plan"
        data_file = f"{stem}.dataset.jsonl"
        document, rows = plan_export(plan=plan, dataset_file=data_file)
        document = {"team": plan.team.name, **document}
        (out / data_file).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        target = out / f"{stem}.yaml"
        target.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
        self.stdout.write(f"wrote {target} and {out / data_file}")
