"""A custom stream schema (generic-sse / generic-ws) as fields instead of a JSON blob: a body template
and the JSON paths of thinking, answer, usage, finish, done and error — or one field naming each
event's kind, with a map. The whole is checked by ``runner.generic_format`` on save (the template
must be JSON once filled; a kind map must name packet kinds), so nothing a typo breaks is dropped
silently; ``runner.classify_sample`` shows how a pasted sample stream reads, before saving."""

from __future__ import annotations

from typing import Any

from django import forms

from benchmarks.forms.fields import JSONObjectField
from runner import GENERIC_KEYS, GenericFormat, classify_sample, generic_format

DEFAULTS = GenericFormat()
PACKET_KINDS = "thinking, answer, usage, heartbeat, done, error, role, tool_call"
# GenericFormat key -> (label, help text); the form field is "generic_<key>".
TEXT: dict[str, tuple[str, str]] = {
    "body_template": (
        "Request body template (JSON)",
        "The JSON body sent, with placeholders {{prompt}}, {{messages}}, {{model}} and {{max_tokens}}; "
        "they are filled as JSON values, so put no quotes around them. Blank = the default shown.",
    ),
    "path": ("URL path", "Appended to the base URL, e.g. /generate_stream; blank = the base URL itself."),
    "thinking_path": ("Thinking text at", "Dotted JSON path of reasoning text in an event, e.g. delta.reasoning; blank = none."),
    "answer_path": ("Answer text at", "Dotted JSON path of answer text, e.g. choices.0.delta.content or token.text; blank = text."),
    "usage_path": ("Usage at", "An object with prompt_tokens and completion_tokens (or input_tokens and output_tokens); blank = usage."),
    "finish_path": ("Finish reason at", "e.g. choices.0.finish_reason (“length” marks an answer cut by max_tokens); blank = finish_reason."),
    "done_path": ("Done flag at", "A true value here marks the stream's last event; blank = done."),
    "error_path": ("Error at", "Any value here makes the request an error, with that message; blank = error."),
    "done_sentinel": ("End marker", "An event whose data is exactly this ends the stream; blank = [DONE]."),
    "kind_path": (
        "Packet kind at (instead of the paths)",
        "One field naming each event's kind, e.g. type; text then comes from “Answer text at”. Blank: use the paths.",
    ),
    "kind_map": (
        "Kind map (JSON)",
        f'Each kind value → a packet kind ({PACKET_KINDS}), e.g. {{"reasoning": "thinking", "text": "answer", '
        '"ping": "heartbeat"}.',
    ),
}  # fmt: skip
assert set(TEXT) == GENERIC_KEYS, "every GenericFormat key has a field"
FIELD_NAMES = tuple(f"generic_{key}" for key in TEXT)


class StreamFormatForm(forms.Form):
    """The schema's fields; ``cleaned_data["generic"]`` is the checked format (only what differs
    from the defaults is stored)."""

    def __init__(self, *args: Any, stored: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        add_stream_fields(self, stored)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        clean_stream_format(self, data)
        return data

    def classify(self, sample: str) -> list[dict[str, Any]]:
        """Each line of ``sample`` as a run with this (valid) format would read it."""
        return classify_sample(generic_format(self.cleaned_data["generic"]), sample)


def add_stream_fields(form: forms.BaseForm, stored: dict[str, Any] | None) -> None:
    current = {**{k: getattr(DEFAULTS, k) for k in TEXT}, **(stored or {})}
    for key, (label, help_text) in TEXT.items():
        name = f"generic_{key}"
        if key == "kind_map":
            field: forms.Field = JSONObjectField(label=label, help_text=help_text, string_values=True)
        elif key == "body_template":
            field = forms.CharField(
                label=label, help_text=help_text, required=False, widget=forms.Textarea(attrs={"rows": 3})
            )
        else:
            field = forms.CharField(label=label, help_text=help_text, required=False, max_length=300)
        field.initial = current.get(key)
        form.fields[name] = field


def clean_stream_format(form: forms.BaseForm, data: dict[str, Any]) -> None:
    if any(name in form.errors for name in FIELD_NAMES):
        return
    values = {key: data.get(f"generic_{key}") for key in TEXT}
    values = {k: (v if k == "kind_map" else (v or "").strip()) for k, v in values.items()}
    # a blank field means the default (the form shows the defaults filled in)
    values = {k: v if v not in ("", {}, None) else getattr(DEFAULTS, k) for k, v in values.items()}
    try:
        generic_format(values)
    except ValueError as exc:
        message = str(exc)
        field = "generic_kind_map" if "kind map" in message else "generic_body_template"
        form.add_error(
            field, f"{message[:1].upper()}{message[1:]}. Fix it, then paste a sample stream to check."
        )
        return
    data["generic"] = {k: v for k, v in values.items() if v != getattr(DEFAULTS, k)}
