"""Built-in datasets ship with their licences, resolve by name, and prompts get their template."""

from __future__ import annotations

import pytest

from runner.cli import build_parser, build_spec
from runner.datasets.parse import DatasetItem
from runner.datasets.shipped import (
    BUILTIN_DIR,
    BUILTINS,
    MATH_TEMPLATE,
    apply_template,
    builtin,
    load_builtin,
    prompts_from_items,
)
from runner.spec import RunSpec


def test_every_builtin_ships_with_its_licence_and_row_count() -> None:
    for entry in BUILTINS.values():
        assert (BUILTIN_DIR / "licenses" / entry.license_file).read_text().strip()
        assert len(load_builtin(f"builtin:{entry.name}")) == entry.rows


def test_math500_prompts_keep_expected_subject_level_and_id() -> None:
    prompts = prompts_from_items(load_builtin("builtin:math500"), template=MATH_TEMPLATE)
    first = prompts[0]
    assert first.id == "test/precalculus/807.json"
    assert first.expected == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert first.meta == {"subject": "Precalculus", "level": 2, "unique_id": "test/precalculus/807.json"}
    assert first.text.startswith("Convert the point $(0,3)$")
    assert first.text.endswith("Please reason step by step, and put your final answer within \\boxed{}.")
    assert len({p.id for p in prompts}) == 500
    assert len({p.meta["subject"] for p in prompts}) == 7
    assert {p.meta["level"] for p in prompts} == {1, 2, 3, 4, 5}


def test_unknown_builtin_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="builtin:math500"):
        builtin("builtin:gsm8k")


def test_a_template_needs_its_placeholder_and_keeps_other_braces() -> None:
    assert apply_template("Q: {prompt} \\boxed{}", "1+1?") == "Q: 1+1? \\boxed{}"
    assert apply_template("", "as is") == "as is"
    with pytest.raises(ValueError, match="placeholder"):
        apply_template("no slot", "x")


def test_a_chat_item_gets_the_template_on_its_last_user_turn() -> None:
    item = DatasetItem(
        prompt=None,
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "2+2?"},
        ],
    )
    (prompt,) = prompts_from_items([item], template="{prompt} Box it.")
    assert prompt.messages is not None
    assert [m["content"] for m in prompt.messages] == ["hi", "hello", "2+2? Box it."]
    assert item.messages is not None and item.messages[2]["content"] == "2+2?"  # the item is untouched


def _spec(*flags: str) -> RunSpec:
    return build_spec(build_parser().parse_args(["run", "--url", "http://127.0.0.1:1/v1", *flags]))


def test_cli_builtin_dataset_uses_its_template_and_stores_it_in_the_spec() -> None:
    spec = _spec("--dataset", "builtin:math500")
    assert len(spec.prompts) == 500
    assert spec.prompt_template == MATH_TEMPLATE
    assert spec.prompts[0].text.endswith("within \\boxed{}.")


def test_cli_prompt_template_overrides_or_disables_the_default() -> None:
    spec = _spec("--dataset", "builtin:math500", "--prompt-template", "Solve: {prompt}")
    assert spec.prompt_template == "Solve: {prompt}"
    assert spec.prompts[0].text.startswith("Solve: Convert the point")
    assert not _spec("--dataset", "builtin:math500", "--prompt-template", "").prompts[0].text.endswith("{}.")


def test_cli_rejects_a_template_without_placeholder_and_an_unknown_builtin() -> None:
    with pytest.raises(SystemExit, match="placeholder"):
        _spec("--dataset", "builtin:math500", "--prompt-template", "nothing")
    with pytest.raises(SystemExit, match="unknown built-in"):
        _spec("--dataset", "builtin:nope")
