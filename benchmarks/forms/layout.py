"""Forms in groups a person can scan: ``FIELDSETS`` names each group, says what it is for, and lists
its fields; a field no group names lands in a last group, so none is ever hidden by a layout."""

from __future__ import annotations

from typing import Any

from django.utils.text import slugify


class Fieldsets:
    FIELDSETS: tuple[tuple[str, str, tuple[str, ...]], ...] = ()
    fields: dict[str, Any]

    def fieldsets(self) -> list[dict[str, Any]]:
        """``[{"legend", "about", "slug", "fields": [BoundField, …]}]`` in the declared order."""
        named = {name for _, _, names in self.FIELDSETS for name in names}
        groups = [
            {
                "legend": legend,
                "about": about,
                "slug": slugify(legend),
                "fields": [self[n] for n in names if n in self.fields],
            }
            for legend, about, names in self.FIELDSETS
        ]
        rest = [self[n] for n in self.fields if n not in named]
        if rest:
            groups.append({"legend": "More", "about": "", "slug": "more", "fields": rest})
        return [g for g in groups if g["fields"]]
