"""``manage.py run_plan PLAN --wait --baseline RUN --fail-on "ttft_ms.p99>+10%"``: a deploy-pipeline gate.

Starts the plan, waits for the run to end, prints the comparison with the baseline, and exits 1 when
the run did not finish cleanly, a ``--fail-on`` rule breaks, or (with ``--regression-pct``) any overall
metric is worse than the baseline by more than that, outside run-to-run noise. Exit 2: bad arguments.

A plan with repeat N: ``--wait`` waits for every repetition, prints each one and the set's mean and
95 % interval per headline metric, and gates on the set: rules read the set's means (the baseline's
set's, when it was repeated too), a regression must lie outside the intervals, and a repetition that
did not finish fails the gate.
"""

from __future__ import annotations

import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from benchmarks.bridge import RunRefused
from benchmarks.models import Plan, Run
from benchmarks.presenters.compare import comparison_build
from benchmarks.selectors.runs import progress, repeat_runs, repeat_set_ended
from benchmarks.services.runs.start import run_start
from benchmarks.services.samples import samples_pair
from runner import (
    Rule,
    check_rules,
    format_table,
    parse_rule,
    regressions,
    repeat_combine,
    repeat_lines,
    repeat_mean_summary,
    repeat_regressions,
)

POLL_S = 1.0


class Command(BaseCommand):
    help = "Start a plan, wait for it, compare with a baseline run and fail on broken rules or regressions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("plan", help="plan id, or its exact name")
        parser.add_argument("--wait", action="store_true", help="wait for the run to end (needed for gates)")
        parser.add_argument("--baseline", type=int, help="run id to compare with (same team)")
        parser.add_argument(
            "--fail-on",
            action="append",
            default=[],
            metavar="RULE",
            help='failing condition, repeatable: "ttft_ms.p99>+10%%" (vs baseline) or "success_rate<0.99"',
        )
        parser.add_argument(
            "--regression-pct",
            type=float,
            help="also fail when any overall metric is this much worse than the baseline, outside noise",
        )
        parser.add_argument("--timeout", type=float, help="seconds to wait (default: plan duration + 10 min)")
        parser.add_argument("--user", help="username the run is started as (must write in the plan's team)")

    def handle(self, *args: Any, **opts: Any) -> None:
        plan = _plan(opts["plan"])
        rules = _rules(opts["fail_on"])
        baseline = _baseline(opts["baseline"], plan)
        gated = bool(rules or baseline or opts["regression_pct"] is not None)
        if gated and not opts["wait"]:
            raise CommandError("--fail-on, --baseline and --regression-pct need --wait", returncode=2)
        if any(r.relative for r in rules) and baseline is None:
            raise CommandError("relative rules (…%) need --baseline RUN", returncode=2)
        if opts["regression_pct"] is not None and baseline is None:
            raise CommandError("--regression-pct needs --baseline RUN", returncode=2)
        try:
            run = run_start(plan=plan, by=_user(opts["user"], plan))  # type: ignore[arg-type]
        except RunRefused as exc:  # nothing to send, or past the deployment's limits
            raise CommandError(str(exc), returncode=2) from None
        total = int(run.spec.get("repeat") or 1)
        self.stdout.write(
            f"Run {run.pk} of plan “{plan.name}” started."
            + (f" It is repetition 1 of {total}." if total > 1 else "")
        )
        if not opts["wait"]:
            return
        runs = self._wait(run, opts["timeout"] or ((plan.duration_s or 0) + plan.drain_s + 600) * total)
        if total > 1:
            failures = self._report_set(runs, total, baseline, rules, opts["regression_pct"])
        else:
            failures = self._report(runs[0], baseline, rules, opts["regression_pct"])
        if failures:
            raise CommandError(f"gate failed: {'; '.join(failures)}", returncode=1)
        self.stdout.write(self.style.SUCCESS("gate passed"))

    def _wait(self, run: Run, timeout_s: float) -> list[Run]:
        """Until the run — a repeated plan: its whole set — has ended; the set's runs, first first."""
        deadline = time.monotonic() + timeout_s
        last_note = 0.0
        while True:
            runs, over = repeat_set_ended(run=run)
            if over:
                return runs
            current = next((r for r in reversed(runs) if r.is_active), runs[-1])
            if time.monotonic() > deadline:
                raise CommandError(
                    f"run {current.pk} still {current.status} after {timeout_s:g} s", returncode=1
                )
            if time.monotonic() - last_note >= 10:
                done, _ = progress(current, current.snapshot or {})
                of = (
                    f" (repetition {current.repeat_index + 1})"
                    if len(runs) > 1 or current.repeat_of_id
                    else ""
                )
                self.stderr.write(f"run {current.pk}{of}: {current.status} {done:.0%}")
                last_note = time.monotonic()
            time.sleep(POLL_S)

    def _report_set(
        self,
        runs: list[Run],
        total: int,
        baseline: Run | None,
        rules: list[Rule],
        regression_pct: float | None,
    ) -> list[str]:
        """A repeated plan: every repetition, the set's intervals, and the gate on the set."""
        failures = []
        for r in runs:
            line = f"Repetition {r.repeat_index + 1} of {total}: run {r.pk} {r.status}. {r.reason}"
            self.stdout.write(line.rstrip())
        done = [r for r in runs if r.status == Run.Status.FINISHED and r.summary]
        if len(done) < total:
            failures.append(f"only {len(done)} of {total} repetitions finished")
        if not done:
            return failures
        mine = [r.summary for r in done]
        for line in repeat_lines(repeat_combine(mine)):
            self.stdout.write(line)
        base: list[dict[str, Any]] = []
        if baseline is not None:
            base_set = [r for r in repeat_runs(run=baseline) if r.status == Run.Status.FINISHED and r.summary]
            base = [r.summary for r in base_set] or [baseline.summary]
            self.stdout.write(
                f"baseline: run {baseline.pk}" + (f" and its set ({len(base)} runs)" if len(base) > 1 else "")
            )
        mean = repeat_mean_summary(mine)
        for result in check_rules(mean, rules, repeat_mean_summary(base) if base else None):
            self.stdout.write(f"{result.message} (mean of {len(mine)} repetitions)")
            if result.broken:
                failures.append(str(result.rule))
        if regression_pct is not None and base:
            found = repeat_regressions(mine, base, threshold_pct=regression_pct, noise_aware=True)
            for r in found:
                ci = f", 95% [{r['ci95'][0]:.4g}, {r['ci95'][1]:.4g}]" if r["ci95"] else ""
                self.stdout.write(
                    f"regression: {r['path']} {r['pct']:+.1f}% ({r['baseline']:g} → {r['value']:g}, "
                    f"mean of {r['runs']} repetitions{ci})"
                )
            if found:
                worst = max(found, key=lambda r: abs(r["pct"]))
                failures.append(
                    f"{len(found)} metrics regressed > {regression_pct:g}% across the repetitions "
                    f"(worst {worst['path']} {worst['pct']:+.1f}%)"
                )
        return failures

    def _report(
        self, run: Run, baseline: Run | None, rules: list[Rule], regression_pct: float | None
    ) -> list[str]:
        failures = []
        self.stdout.write(f"Run {run.pk} {run.status}. {run.reason}".rstrip())
        if run.status != Run.Status.FINISHED or not run.summary:
            failures.append(f"run {run.pk} ended {run.status}")
        if not run.summary:
            return failures
        if baseline is not None:
            comparison = comparison_build(runs=[baseline, run], charts=False)["comparison"]
            self.stdout.write(format_table(comparison))
        for result in check_rules(run.summary, rules, baseline.summary if baseline else None):
            self.stdout.write(result.message)
            if result.broken:
                failures.append(str(result.rule))
        if regression_pct is not None and baseline is not None:
            found = regressions(
                run.summary,
                baseline.summary,
                threshold_pct=regression_pct,
                samples=samples_pair(baseline, run),
            )
            for r in found:
                self.stdout.write(
                    f"regression: {r['path']} {r['pct']:+.1f}% ({r['baseline']:g} → {r['value']:g})"
                )
            if found:
                worst = max(found, key=lambda r: abs(r["pct"]))
                failures.append(
                    f"{len(found)} metrics regressed > {regression_pct:g}% (worst {worst['path']} {worst['pct']:+.1f}%)"
                )
        return failures


def _plan(ref: str) -> Plan:
    plans = list(Plan.objects.filter(pk=int(ref))) if ref.isdigit() else list(Plan.objects.filter(name=ref))
    if not plans:
        raise CommandError(f"no plan {ref!r}", returncode=2)
    if len(plans) > 1:
        ids = ", ".join(str(p.pk) for p in plans)
        raise CommandError(f"several plans are named {ref!r} (ids {ids}); pass the id", returncode=2)
    return plans[0]


def _rules(texts: list[str]) -> list[Rule]:
    try:
        return [parse_rule(t) for t in texts]
    except ValueError as exc:
        raise CommandError(str(exc), returncode=2) from None


def _baseline(run_id: int | None, plan: Plan) -> Run | None:
    if run_id is None:
        return None
    run = Run.objects.filter(pk=run_id, team=plan.team).first()
    if run is None:
        raise CommandError(f"no run {run_id} in the plan's team", returncode=2)
    if not run.summary:
        raise CommandError(f"baseline run {run_id} has no summary ({run.status})", returncode=2)
    return run


def _user(username: str | None, plan: Plan) -> Any:
    if not username:
        return None
    user = get_user_model().objects.filter(username=username, memberships__team=plan.team).first()
    if user is None:
        raise CommandError(f"no user {username!r} in the plan's team", returncode=2)
    return user
