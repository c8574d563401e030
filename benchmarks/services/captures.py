"""Timed datasets from captured traffic: the mirror's capture, an access log of OpenAI request bodies,
an llmperf replay log or a public trace (Mooncake, Bailian, Azure, BurstGPT).

Each item keeps its arrival offset, its own request parameters and, from a capture, what production
measured for it, so a ``replay`` profile sends it at its original timing (or faster) and compares.
Parsing happens in the request: a bad file says which lines and why, and saves nothing. Credential
fields never survive a body; with privacy ``hash`` or ``drop`` prompt text is not stored at all (a
synthetic text of the recorded length is sent instead).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from benchmarks.models import Dataset, Team
from benchmarks.services.datasets import NewItems, dataset_create, row_bounds, upload_limits
from runner import DatasetItem as ParsedItem
from runner import ReplayError, parse_replay

# production fields a replay is compared with (never headers, never the request)
RECORDED = ("outcome", "ttft_ms", "e2e_ms", "tokens_per_s", "input_tokens", "output_tokens", "answer_text")


class CaptureError(ValueError):
    """A capture that cannot become a dataset; the message says why (lines included)."""


def capture_parse(*, data: bytes, fmt: str | None, privacy: str) -> NewItems:
    max_bytes, max_items = upload_limits()
    if len(data) > max_bytes:
        raise CaptureError(f"The file is larger than {max_bytes // (1024 * 1024)} MiB.")
    try:
        replay = parse_replay(data, fmt or None, privacy=privacy, limit=max_items + 1, bounds=row_bounds())
    except ReplayError as exc:
        raise CaptureError(str(exc)) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise CaptureError(f"The file could not be read: {exc}") from None
    if not replay.prompts:
        raise CaptureError("An llmperf log of prompt indices needs its dataset; upload one with prompt text.")
    if len(replay.entries) > max_items:
        raise CaptureError(f"More than {max_items} requests; split the file.")
    order = sorted(range(len(replay.entries)), key=lambda i: replay.entries[i]["t_s"])  # stable: file order
    items, timed = [], []
    for i in order:
        entry = replay.entries[i]
        prompt = replay.prompts[int(entry["prompt"])]
        items.append(
            ParsedItem(
                prompt=prompt.text or None,
                messages=prompt.messages,
                max_tokens=prompt.max_tokens,
                # a conversation's turns (Mooncake, Bailian) stay linked: the engine sends each after
                # the previous answer, with the model's own answers as history
                metadata={"id": prompt.id, **({"session": prompt.session} if prompt.session else {})},
            )
        )
        recorded = replay.recorded.get(prompt.id)
        kept = {k: recorded[k] for k in RECORDED if k in recorded} if recorded else None
        timed.append((float(entry["t_s"]), dict(prompt.params or {}) or None, kept))
    note = f"{replay.format}{' (detected)' if replay.detected else ''}, privacy {privacy}"
    if replay.notes:
        note += "; " + "; ".join(replay.notes)
    return NewItems(items=items, timed=timed, source="upload", note=note, format=replay.format[:10])


def capture_dataset_create(
    *,
    team: Team,
    name: str,
    data: bytes,
    filename: str,
    fmt: str | None,
    privacy: str,
    by: AbstractBaseUser | None,
    description: str = "",
) -> Dataset:
    new = capture_parse(data=data, fmt=fmt, privacy=privacy)
    new.filename = filename
    return dataset_create(team=team, name=name, description=description, tokenizer="", new=new, by=by)


def replay_entries(timed: list[tuple[float | None, Any]]) -> list[dict[str, float]]:
    """The profile's ``{t_s, prompt}`` entries of a timed version's items, offsets from the first."""
    offsets = [t for t, _ in timed if t is not None]
    t0 = min(offsets, default=0.0)
    return [{"t_s": float(t) - t0, "prompt": float(i)} for i, (t, _) in enumerate(timed) if t is not None]
