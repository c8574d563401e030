"""Form fields shared by several forms: a JSON object, a list of numbers."""

from __future__ import annotations

import json
from typing import Any

from django import forms


class JSONObjectField(forms.CharField):
    """A textarea holding a JSON object (``{}`` when blank)."""

    widget = forms.Textarea(attrs={"rows": 3})

    def __init__(self, *, string_values: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)
        self.string_values = string_values

    def prepare_value(self, value: Any) -> Any:
        return json.dumps(value, indent=1) if isinstance(value, dict) else value

    def to_python(self, value: Any) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        text = (value or "").strip()
        if not text:
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc.msg} (line {exc.lineno}).") from None
        if not isinstance(data, dict):
            raise forms.ValidationError('Must be a JSON object, like {"X-Team": "perf"}.')
        if self.string_values and not all(isinstance(v, str) for v in data.values()):
            raise forms.ValidationError("Every header value must be a string.")
        return data


class NumberListField(forms.CharField):
    """Comma-separated numbers, e.g. bucket edges or sweep levels."""

    def __init__(self, *, integers: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.integers = integers

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(str(v) for v in value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[float]:
        if isinstance(value, list):
            return value
        parts = [p.strip() for p in (value or "").split(",") if p.strip()]
        try:
            return [int(p) if self.integers else float(p) for p in parts]
        except ValueError:
            kind = "whole numbers" if self.integers else "numbers"
            raise forms.ValidationError(f"Use comma-separated {kind}, like 0, 1024, 4096.") from None
