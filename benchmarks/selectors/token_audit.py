"""The token audit of a finished run: server-reported usage against the client's own count, in total,
and what the run cost by each count (a billing check). One SQL aggregation over the run's records —
never a list of them — stored in ``run.summary["token_audit"]`` at finalize; the page reads the stored
one (or computes it once more for a run finalized before it was stored).

Output tokens decide whether a request disagrees (the summary's rule: off by more than the threshold
share of the client count). Input tokens are compared too but only reported: the client's input
count is the dataset's, which leaves out the chat template a chat server wraps plain prompts in.
Which requests disagree is the per-request table's filter (``selectors/requests.py``).
"""

from __future__ import annotations

from typing import Any

from django.db import connection

from benchmarks.models import RequestRecord, Run

THRESHOLD = 0.05  # the summary's rule: a share of the client's output count
STORED_KEYS = ("totals", "cost", "threshold_pct")  # runner's own token_audit lacks these


TABLE = RequestRecord._meta.db_table
# the counts are columns of their own (``RequestRecord.usage_output_tokens`` …): no record's ``data``
# — large and stored compressed — is opened
UO, CO = "usage_output_tokens", "client_output_tokens"
UI, CI = "usage_input_tokens", "client_input_tokens"
PAIRED_OUT = f"{UO} IS NOT NULL AND {CO} IS NOT NULL"
PAIRED_IN = f"{UI} IS NOT NULL AND {CI} IS NOT NULL"
DISAGREES = f"({PAIRED_OUT} AND abs({UO} - {CO}) > %(threshold)s * (CASE WHEN {CO} > 1 THEN {CO} ELSE 1 END))"

AUDIT_SQL = f"""
SELECT count(*),
       count(*) FILTER (WHERE {PAIRED_OUT}),
       coalesce(sum({UO}) FILTER (WHERE {PAIRED_OUT}), 0),
       coalesce(sum({CO}) FILTER (WHERE {PAIRED_OUT}), 0),
       coalesce(sum({UI}) FILTER (WHERE {PAIRED_IN}), 0),
       coalesce(sum({CI}) FILTER (WHERE {PAIRED_IN}), 0),
       count(*) FILTER (WHERE {DISAGREES}),
       coalesce(sum({UI}), 0), coalesce(sum({UO}), 0), coalesce(sum({CI}), 0), coalesce(sum({CO}), 0)
FROM {TABLE} WHERE run_id = %(run)s
"""
IDS_SHOWN = 50  # the engine's own audit names the first 50 disagreeing requests; so does the stored one
IDS_SQL = (
    f"SELECT request_id FROM {TABLE} WHERE run_id = %(run)s AND {DISAGREES} ORDER BY id LIMIT {IDS_SHOWN}"
)


def token_audit_summary(run: Run, *, threshold: float = THRESHOLD) -> dict[str, Any]:
    """Totals, discrepancy %, how many requests disagree (and the first few by id) and the costs by
    each count, from one aggregate query and one short list (constant memory whatever the run's size)."""
    with connection.cursor() as cursor:
        cursor.execute(AUDIT_SQL, {"run": run.pk, "threshold": threshold})
        row = cursor.fetchone()
        cursor.execute(IDS_SQL, {"run": run.pk, "threshold": threshold})
        ids = [request_id for (request_id,) in cursor.fetchall()]
    requests, compared, usage_out, client_out, usage_in, client_in, disagreeing = row[:7]
    all_usage_in, all_usage_out, all_client_in, all_client_out = (int(v) for v in row[7:])
    totals = {
        "usage_out": int(usage_out),
        "client_out": int(client_out),
        "usage_in": int(usage_in),
        "client_in": int(client_in),
    }
    return {
        "threshold_pct": threshold * 100,
        "requests": requests,
        "compared": compared,
        "totals": totals,
        "discrepancy_out_pct": _pct(totals["usage_out"], totals["client_out"]),
        "discrepancy_in_pct": _pct(totals["usage_in"], totals["client_in"]),
        "disagreeing": disagreeing,
        "estimated": bool(((run.summary or {}).get("tokens") or {}).get("estimated")),  # the summary's
        "cost": _costs(run, all_usage_in, all_usage_out, all_client_in, all_client_out),
        # the engine's own keys (runner.summary.token_audit), kept so the stored shape only grows
        "usage_output_tokens": totals["usage_out"],
        "client_output_tokens": totals["client_out"],
        "discrepancy_pct": _pct(totals["usage_out"], totals["client_out"]),
        "disagreeing_ids": ids,
    }


def run_token_audit(run: Run, *, threshold: float = THRESHOLD) -> dict[str, Any]:
    """The audit the page shows: the stored one at the summary's threshold, else one aggregation."""
    stored = (run.summary or {}).get("token_audit") or {}
    if all(k in stored for k in STORED_KEYS) and abs(stored["threshold_pct"] - threshold * 100) < 1e-9:
        return dict(stored)
    return token_audit_summary(run, threshold=threshold)


def _pct(usage: int | None, client: int | None) -> float | None:
    return (usage - client) * 100.0 / client if usage is not None and client else None


def _costs(run: Run, usage_in: int, usage_out: int, client_in: int, client_out: int) -> dict[str, Any]:
    """Cost by server usage (what a provider bills) and by the client's count (what it should)."""
    endpoint = run.spec.get("endpoint") or {}
    price_in = float(endpoint.get("price_in_per_1k") or 0)
    price_out = float(endpoint.get("price_out_per_1k") or 0)

    def cost(tokens_in: int, tokens_out: int) -> dict[str, float]:
        return {
            "input": tokens_in / 1000 * price_in,
            "output": tokens_out / 1000 * price_out,
            "total": tokens_in / 1000 * price_in + tokens_out / 1000 * price_out,
        }

    billed, counted = cost(usage_in, usage_out), cost(client_in, client_out)
    return {
        "currency": str(endpoint.get("currency") or "USD"),
        "price_in_per_1k": price_in,
        "price_out_per_1k": price_out,
        "by_usage": billed | {"input_tokens": usage_in, "output_tokens": usage_out},
        "by_client": counted | {"input_tokens": client_in, "output_tokens": client_out},
        "overbilled_pct": _pct(round(billed["total"] * 1e6), round(counted["total"] * 1e6)),
    }
