"""Starting a mirror session, and uploading captured traffic as a timed dataset."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django import forms

from benchmarks.forms.fields import JSONObjectField
from benchmarks.models import Endpoint, Team
from benchmarks.selectors.objects import in_team
from runner import CAPTURE_PRIVACY, REPLAY_FORMATS, generic_format

PRIVACY_CHOICES = [
    ("keep", "keep prompt text"),
    ("hash", "hash prompt text (a replay sends synthetic text of the same length)"),
    ("drop", "drop prompt text (likewise)"),
]
assert [c for c, _ in PRIVACY_CHOICES] == list(CAPTURE_PRIVACY)


class MirrorForm(forms.Form):
    shadow = forms.ModelChoiceField(
        queryset=Endpoint.objects.none(),
        help_text="The endpoint under test: each sampled request is copied to it with its own key, "
        "never the caller's. The caller's path goes to the endpoint's origin unchanged.",
    )
    upstream = forms.CharField(
        max_length=500, help_text="Production origin, e.g. http://10.0.0.5:8000; callers get its answers."
    )
    listen = forms.CharField(
        max_length=100,
        initial="0.0.0.0:8089",
        help_text="HOST:PORT the worker listens on for the session's life; point callers there.",
    )
    sample = forms.FloatField(
        min_value=0.0, max_value=1.0, initial=1.0, help_text="share copied to the shadow"
    )
    capture_dataset = forms.BooleanField(
        required=False, help_text="also keep the traffic as a timed dataset for replays when stopped"
    )
    capture_prompts = forms.ChoiceField(choices=PRIVACY_CHOICES, initial="keep")
    ws_format = JSONObjectField(
        label="WebSocket frame format (JSON)",
        help_text="How WebSocket sessions' frames are read, both sides: the stream-format fields of a "
        'generic-ws endpoint, e.g. {"kind_path": "event", "kind_map": {"delta": "answer"}, '
        '"answer_path": "content"}. Blank: the simulator\'s {"type": "text", "text": …} frames. '
        "HTTP traffic is read by its own protocol whatever this says.",
    )

    def __init__(self, *args: Any, team: Team, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["shadow"].queryset = in_team(Endpoint, team=team)  # type: ignore[attr-defined]

    def clean_upstream(self) -> str:
        url = self.cleaned_data["upstream"].strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise forms.ValidationError("An http(s) origin such as http://10.0.0.5:8000.")
        from benchmarks.services.mirrors import upstream_problem

        problem = upstream_problem(url)
        if problem:
            raise forms.ValidationError(problem)
        return url

    def clean_ws_format(self) -> dict[str, Any]:
        """Checked as a generic-ws endpoint's format is (unknown keys, kind map values)."""
        values = self.cleaned_data["ws_format"]
        if not values:
            return {}
        try:
            generic_format(values)
        except (TypeError, ValueError) as exc:
            raise forms.ValidationError(f"{str(exc)[:1].upper()}{str(exc)[1:]}.") from None
        return dict(values)

    def clean_listen(self) -> str:
        text = self.cleaned_data["listen"].strip()
        host, _, port = text.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise forms.ValidationError("HOST:PORT, e.g. 0.0.0.0:8089.")
        return text


class CaptureForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    file = forms.FileField(
        help_text="JSONL: the mirror's capture, an access log of OpenAI request bodies with timestamps, "
        "an llmperf replay log with prompt text, or a public trace (Mooncake, Bailian, Azure, BurstGPT)."
    )
    format = forms.ChoiceField(
        choices=[("", "detect from the first line"), *[(f, f) for f in REPLAY_FORMATS]], required=False
    )
    privacy = forms.ChoiceField(choices=PRIVACY_CHOICES, initial="keep")

    def clean(self) -> dict[str, Any]:
        """Parse here: a bad file says which lines are wrong and nothing is saved."""
        from benchmarks.services.captures import CaptureError, capture_parse

        data = super().clean()
        upload = data.get("file")
        if upload is None:
            return data
        try:
            data["parsed"] = capture_parse(
                data=upload.read(), fmt=data.get("format") or None, privacy=data.get("privacy") or "keep"
            )
        except CaptureError as exc:
            self.add_error("file", str(exc))
        return data
