"""The run page's own form: the team's notes on a run."""

from __future__ import annotations

from django import forms

from benchmarks.services.runs.delete import NOTES_MAX


class RunNotesForm(forms.Form):
    notes = forms.CharField(
        label="Notes",
        required=False,
        max_length=NOTES_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What this run was for, what changed on the server, what you concluded. "
        f"Up to {NOTES_MAX:,} characters; anyone in the team can read them.",
    )
