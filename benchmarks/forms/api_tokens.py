"""Creating an API token: what uses it."""

from __future__ import annotations

from django import forms


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="what uses it, e.g. “deploy pipeline”")
