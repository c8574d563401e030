"""runner's public API is its ``__init__``: ``__all__`` lists exactly the public names (as httpx checks
its own), and the dashboard imports runner only through them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import runner

ROOT = Path(__file__).resolve().parents[2]


def public_names() -> set[str]:
    """Every name ``runner`` binds that is not private and not a submodule, the lazy ones included."""
    bound = {n for n, v in vars(runner).items() if not n.startswith("_") and not isinstance(v, ModuleType)}
    return bound | set(runner._LAZY)


def test_all_is_exactly_the_public_surface() -> None:
    assert len(runner.__all__) == len(set(runner.__all__))
    assert set(runner.__all__) == public_names()
    assert dir(runner) == sorted(runner.__all__)


def test_every_public_name_resolves_lazy_ones_included() -> None:
    for name in runner.__all__:
        assert getattr(runner, name) is not None, name


def test_import_runner_loads_neither_django_nor_scipy() -> None:
    code = "import sys, runner; print(sorted(m for m in ('django', 'scipy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def runner_imports(path: Path) -> list[tuple[str, list[str]]]:
    """``(module, names)`` of every import of runner in a file, function-level ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "runner":
            found.append((node.module or "", [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names if a.name.split(".")[0] == "runner"]
    return found


def test_the_dashboard_uses_runner_only_through_its_public_names() -> None:
    used: set[str] = set()
    for path in sorted((ROOT / "benchmarks").rglob("*.py")):
        for module, names in runner_imports(path):
            assert module == "runner" and names, f"{path.relative_to(ROOT)} imports {module}"
            used.update(names)
    assert used <= set(runner.__all__)
    assert used, "the dashboard should use the engine"
