"""The configuration reference (docs/configuration.md) lists exactly the keys genetic_cnn/config.py declares,
each with the default a config without that key gets, for every preset where the default follows the preset.
Every other table row in README.md and docs/ that names a ``section.key`` with a literal default agrees too."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from genetic_cnn.config import PRESETS, Config, load_config, parse_override

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "configuration.md"
ROW = re.compile(r"^\| `([a-z_]+\.[a-z_]+)` \| (.*?) \| .*\|$")
LITERAL = re.compile(r"^`([^`]*)`$")
PER_PRESET = re.compile(r"^([a-z0-9-]+(?:, [a-z0-9-]+)*): `([^`]*)`$")


def declared_keys() -> list[str]:
    """``section.key`` for every field of every section dataclass of ``Config``."""
    return [
        f"{section.name}.{key.name}"
        for section in dataclasses.fields(Config)
        for key in dataclasses.fields(section.default_factory)  # type: ignore[misc]
    ]


def _preset_names() -> list[str]:
    """The presets ``space.preset`` accepts, as config.py sees them."""
    return sorted(PRESETS)


def effective_default(key: str, preset: str) -> Any:
    """What a config that sets nothing but ``space.preset`` gets for ``key`` (lists for tuples, as in TOML)."""
    section, name = key.split(".")
    overrides = [] if key == "space.preset" else [f"space.preset={preset}"]
    return load_config(None, overrides).to_dict()[section][name]


def read_value(text: str) -> Any:
    """A default as the table writes it, read the way ``--set`` reads a value (TOML; a bare word is a string)."""
    return parse_override(f"x.y={text}")[2]


def same(shown: Any, value: Any) -> bool:
    if isinstance(value, bool) or isinstance(shown, bool):
        return shown is value
    if isinstance(value, str) or isinstance(shown, str):
        return shown == value and type(shown) is type(value)
    return shown == value


def table_rows(path: Path) -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            rows.append((match.group(1), match.group(2).strip()))
    return rows


def shown_defaults(cell: str) -> dict[str, Any]:
    """preset -> default from one cell: a single literal (every preset), or ``p1, p2: `v`; p3: `w```."""
    literal = LITERAL.match(cell)
    if literal:
        return {preset: read_value(literal.group(1)) for preset in _preset_names()}
    shown: dict[str, Any] = {}
    for part in cell.split("; "):
        match = PER_PRESET.match(part)
        assert match, f"default cell {cell!r}: write `value` or 'preset, preset: `value`; ...'"
        for preset in match.group(1).split(", "):
            assert preset not in shown, f"{cell!r} names {preset} twice"
            shown[preset] = read_value(match.group(2))
    assert sorted(shown) == _preset_names(), f"{cell!r} must name every preset once: {_preset_names()}"
    return shown


def test_the_reference_lists_every_declared_key_once() -> None:
    keys = [key for key, _ in table_rows(REFERENCE)]
    assert len(keys) == len(set(keys)), sorted(key for key in keys if keys.count(key) > 1)
    declared = declared_keys()
    assert len(declared) > 40  # the dataclasses were read
    assert set(declared) - set(keys) == set(), "keys config.py declares without a row in docs/configuration.md"
    assert set(keys) - set(declared) == set(), "rows in docs/configuration.md for keys config.py does not declare"


@pytest.mark.parametrize("key", declared_keys())
def test_the_reference_shows_the_default_of_every_preset(key: str) -> None:
    (cell,) = [cell for name, cell in table_rows(REFERENCE) if name == key]
    shown = shown_defaults(cell)
    actual = {preset: effective_default(key, preset) for preset in _preset_names()}
    for preset in _preset_names():
        assert same(shown[preset], actual[preset]), f"docs say {key} = {cell} ({preset}), load_config gives {actual[preset]!r}"
    if len({repr(value) for value in actual.values()}) == 1:
        assert LITERAL.match(cell), f"{key}: the same default for every preset is written once, not per preset"


@pytest.mark.parametrize(
    "page", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda path: path.name
)
def test_every_other_table_row_with_a_literal_default_agrees(page: Path) -> None:
    """A key's row elsewhere (docs/executors.md's run keys, docs/multi_objective.md's) says what the reference says."""
    declared = set(declared_keys())
    for key, cell in table_rows(page):
        literal = LITERAL.match(cell)
        if page == REFERENCE or not literal:
            continue
        assert key in declared, f"{page.name} has a row for {key}, which config.py does not declare"
        value = effective_default(key, "digits")
        assert same(read_value(literal.group(1)), value), f"{page.name} says {key} = {cell}, load_config gives {value!r}"


def test_the_check_fails_on_a_drifted_default() -> None:
    """The comparison itself: a wrong literal, a string for a boolean, or a missing preset is caught."""
    assert not same(read_value("true"), False)
    assert not same(read_value('"false"'), False)
    assert not same(read_value("0.3"), 0.2)
    assert same(read_value('""'), "") and same(read_value("digits"), "digits")
    assert same(read_value("[[20, 1e-3], [4, 1e-4]]"), [[20, 0.001], [4, 0.0001]])
    with pytest.raises(AssertionError):
        shown_defaults("mnist: `0.3`; cifar10: `0.2`")  # digits and cifar10-large missing
