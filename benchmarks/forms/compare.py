"""Saving a comparison: a title and notes."""

from __future__ import annotations

from django import forms


class ComparisonForm(forms.Form):
    title = forms.CharField(max_length=200)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
