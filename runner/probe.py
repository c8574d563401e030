"""One request with its whole packet timeline: the dashboard's "test connection"."""

from __future__ import annotations

from runner.engine import run
from runner.records import Outcome, RequestRecord
from runner.spec import EndpointSpec, Prompt, RunSpec


async def single_request(
    endpoint: EndpointSpec, prompt: str, *, target_policy: dict[str, list[str]] | None = None
) -> RequestRecord:
    spec = RunSpec(
        target_policy=target_policy or {},
        endpoint=endpoint,
        prompts=[Prompt(id="probe", text=prompt)],
        duration_s=None,
        max_requests=1,
        keep_packet_text=True,
        warm_connections=0,
    )
    result = await run(spec)
    if result.records:
        return result.records[0]
    rec = RequestRecord(request_id="probe", prompt_id="probe", outcome=Outcome.PROTOCOL_ERROR.value)
    rec.error = "; ".join(result.errors) or "no request was made"
    return rec
