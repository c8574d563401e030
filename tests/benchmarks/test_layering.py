"""Views, the API and template tags parse, call a selector or service, and render: no ORM call in them.
(The import-linter contracts in pyproject.toml keep the layers; this keeps queries out of the top one.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "benchmarks"
TOP = ["views", "api", "templatetags", "live/consumers.py"]
MANAGERS = {"objects", "_default_manager"}
ORM = {  # queryset and model methods, when called
    "filter",
    "exclude",
    "order_by",
    "select_related",
    "prefetch_related",
    "values",
    "values_list",
    "update",
    "delete",
    "bulk_create",
    "get_or_create",
    "update_or_create",
    "exists",
    "count",
    "aggregate",
    "annotate",
    "first",
    "last",
    "all",
    "refresh_from_db",
}


def top_files() -> list[Path]:
    files: list[Path] = []
    for part in TOP:
        path = ROOT / part
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


@pytest.mark.parametrize("path", top_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_orm_call_in_views_api_or_template_tags(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    calls = [
        f"line {node.lineno}: .{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and (node.attr in MANAGERS or (node.attr in ORM and id(node) in called))
    ]
    assert not calls, f"{path.relative_to(ROOT)} queries or writes directly: {calls}"
