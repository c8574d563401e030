"""Multi-turn conversations: each turn carries the model's own previous answers as history.

Two ways in. A replayed capture or trace whose prompts name a ``session`` sends each conversation's
turns in order: a turn goes out when the previous answer has ended plus the trace's gap between the
two turns, never before (:class:`Conversation` keeps that state per session). A closed-loop profile
with ``turns`` > 1 has each user hold a conversation from a dataset item's user turns, waiting
``think_s`` between turns (:func:`user_turns`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

from runner.protocols.base import prompt_text
from runner.records import RequestRecord
from runner.spec import Prompt


@dataclass(slots=True)
class Conversation:
    """One session's state while it is replayed."""

    history: list[dict[str, Any]] = field(default_factory=list)
    last_sched_ns: int | None = None  # the previous turn's place in the trace
    last_end_ns: int | None = None  # when the previous answer ended
    tail: asyncio.Task[Any] | None = None  # the previous turn, still running

    def gap_ns(self, sched_ns: int) -> int:
        """The trace's gap before this turn (0 for the first), and remember this turn's place."""
        gap = 0 if self.last_sched_ns is None else max(0, sched_ns - self.last_sched_ns)
        self.last_sched_ns = sched_ns
        return gap


def user_turns(prompt: Prompt) -> list[str]:
    """The user's side of a dataset conversation (assistant turns are replaced by the model's)."""
    if prompt.messages:
        turns = [str(m.get("content", "")) for m in prompt.messages if m.get("role") == "user"]
        if turns:
            return turns
    return [prompt_text(prompt)]


def turn_prompt(base: Prompt, history: list[dict[str, Any]], user_text: str, turn: int) -> Prompt:
    """The request for one turn: the history so far, then this turn's user message. Its input tokens
    are counted afresh (the history grows), and its id says which turn it is."""
    messages = [*history, {"role": "user", "content": user_text}]
    return replace(base, id=f"{base.id}#t{turn}", messages=messages, text="", input_tokens=0)


def remember(history: list[dict[str, Any]], user_text: str, rec: RequestRecord) -> None:
    """After a turn: the user's message, and the model's own answer when there was one."""
    history.append({"role": "user", "content": user_text})
    if rec.ok and rec.answer_text:
        history.append({"role": "assistant", "content": rec.answer_text})
