"""The token audit of a finished run: server-reported usage against the client's own count, per
request and in total, and what the run cost by each count (a billing check).

Output tokens decide whether a request disagrees (the summary's rule: off by more than the threshold
share of the client count). Input tokens are compared too but only reported: the client's input
count is the dataset's, which leaves out the chat template a chat server wraps plain prompts in.
"""

from __future__ import annotations

from typing import Any

from benchmarks.models import RequestRecord, Run

FIELDS = (
    "pk",
    "request_id",
    "prompt_id",
    "data__usage_input_tokens",
    "data__client_input_tokens",
    "data__usage_output_tokens",
    "data__client_output_tokens",
    "data__tokens_estimated",
)


def run_token_audit(run: Run, *, threshold: float = 0.05, show: int = 200) -> dict[str, Any]:
    rows = [_row(values, threshold) for values in RequestRecord.objects.filter(run=run).values_list(*FIELDS)]
    paired_out = [r for r in rows if r["usage_out"] is not None and r["client_out"] is not None]
    paired_in = [r for r in rows if r["usage_in"] is not None and r["client_in"] is not None]
    totals = {
        "usage_out": sum(r["usage_out"] for r in paired_out),
        "client_out": sum(r["client_out"] for r in paired_out),
        "usage_in": sum(r["usage_in"] for r in paired_in),
        "client_in": sum(r["client_in"] for r in paired_in),
    }
    off = [r for r in paired_out if r["off"]]
    return {
        "threshold_pct": threshold * 100,
        "requests": len(rows),
        "compared": len(paired_out),
        "totals": totals,
        "discrepancy_out_pct": _pct(totals["usage_out"], totals["client_out"]),
        "discrepancy_in_pct": _pct(totals["usage_in"], totals["client_in"]),
        "disagreeing": len(off),
        "disagreeing_rows": off[:show],
        "rows": rows[:show],
        "estimated": any(r["estimated"] for r in rows),
        "cost": _costs(run, rows),
    }


def _row(values: tuple[Any, ...], threshold: float) -> dict[str, Any]:
    pk, request_id, prompt_id, usage_in, client_in, usage_out, client_out, estimated = values
    off = (
        usage_out is not None
        and client_out is not None
        and abs(usage_out - client_out) > threshold * max(1, client_out)
    )
    return {
        "pk": pk,
        "request_id": request_id,
        "prompt_id": prompt_id,
        "usage_in": usage_in,
        "client_in": client_in,
        "usage_out": usage_out,
        "client_out": client_out,
        "diff_out_pct": _pct(usage_out, client_out)
        if usage_out is not None and client_out is not None
        else None,
        "off": off,
        "estimated": bool(estimated),
    }


def _pct(usage: int | None, client: int | None) -> float | None:
    return (usage - client) * 100.0 / client if usage is not None and client else None


def _costs(run: Run, rows: list[dict[str, Any]]) -> dict[str, Any]:
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

    usage_in = sum(r["usage_in"] or 0 for r in rows)
    usage_out = sum(r["usage_out"] or 0 for r in rows)
    client_in = sum(r["client_in"] or 0 for r in rows)
    client_out = sum(r["client_out"] or 0 for r in rows)
    billed, counted = cost(usage_in, usage_out), cost(client_in, client_out)
    return {
        "currency": str(endpoint.get("currency") or "USD"),
        "price_in_per_1k": price_in,
        "price_out_per_1k": price_out,
        "by_usage": billed | {"input_tokens": usage_in, "output_tokens": usage_out},
        "by_client": counted | {"input_tokens": client_in, "output_tokens": client_out},
        "overbilled_pct": _pct(round(billed["total"] * 1e6), round(counted["total"] * 1e6)),
    }
