"""The README stays true: its commands exist and its glossary names every metric the engine defines."""

from __future__ import annotations

import os
import re
from pathlib import Path

from runner.metrics import METRICS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_glossary_defines_every_metric() -> None:
    for key in METRICS:
        assert f"`{key}`" in README, key


def test_the_two_commands_exist_and_are_executable() -> None:
    for script in ("scripts/demo", "scripts/test"):
        assert f"./{script}" in README.split("## Production")[0]
        assert os.access(ROOT / script, os.X_OK), script
    assert "scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_no_placeholder_left() -> None:
    assert "BENCH_" not in README


def test_where_things_are_names_files_that_exist() -> None:
    table = README.split("**Where things are**")[1].split("\n## ")[0]
    paths = re.findall(r"`([\w./-]+/[\w./-]*)`", table)
    assert len(paths) > 15
    for path in paths:
        assert (ROOT / path).exists(), path
