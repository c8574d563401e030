"""JSON as a reader expects to see it on a page (a spec's dicts are not Python reprs)."""

from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()


@register.filter
def pretty_json(value: Any) -> str:
    """``value`` as indented JSON, key order kept; escaped by the template like any text."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
