"""The README's first hour, as a newcomer follows it literally: every command it shows exists and does
what the README says (make targets and variables, the installed command, the demo's folder name);
the preset sizes docs/own-data.md states agree with what the tool warns, and the loading snippet of
docs/notebooks-and-tools.md prints no warning."""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
import warnings
from dataclasses import asdict
from pathlib import Path

import pytest

from genetic_cnn.cli.app import build_parser
from genetic_cnn.config import load_config
from genetic_cnn.evolution import default_run_folder
from genetic_cnn.nn.network import build_network
from genetic_cnn.nn.saved import load_trained, save_trained
from genetic_cnn.space.presets import PRESETS, fit_to_data, size_warning

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
OWN_DATA = (ROOT / "docs" / "own-data.md").read_text(encoding="utf-8")
TOOLS = (ROOT / "docs" / "notebooks-and-tools.md").read_text(encoding="utf-8")
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def commands(block: str) -> list[list[str]]:
    """Each line of a shell block as words, comments dropped."""
    return [shlex.split(line, comments=True) for line in block.splitlines() if shlex.split(line, comments=True)]


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):", MAKEFILE, re.M))


def make_variables() -> set[str]:
    return set(re.findall(r"^([A-Z_]+) \??:?=", MAKEFILE, re.M))


def dry_run(*args: str) -> str:
    """What ``make`` would run to create .venv with ``args`` (nothing is run)."""
    return subprocess.run(["make", "-n", "-B", "venv", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout


QUICKSTART = commands(code_blocks(section("First hour"), "bash")[0])


def test_the_quickstart_activates_the_venv_before_the_first_genetic_cnn_command() -> None:
    first = next(i for i, words in enumerate(QUICKSTART) if words[0] == "genetic-cnn")
    assert ["source", ".venv/bin/activate"] in QUICKSTART[:first], QUICKSTART
    assert re.search(r"^VENV := \.venv$", MAKEFILE, re.M)
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert "genetic-cnn" in scripts  # what `pip install -e .` puts in .venv/bin, found once activated


def test_every_quickstart_command_exists() -> None:
    subcommands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    for words in QUICKSTART:
        if words[0] == "make":
            assert words[1] in make_targets(), words
            assert {word.split("=")[0] for word in words[2:]} <= make_variables(), words
        elif words[0] == "genetic-cnn":
            assert words[1] in subcommands, words
        else:
            assert words[0] == "source", words


def test_the_report_command_finds_the_demos_run_folder() -> None:
    (report,) = [words for words in QUICKSTART if words[:2] == ["genetic-cnn", "report"]]
    demo = re.search(r"^demo:.*\n\t(.+)$", MAKEFILE, re.M)
    assert demo and "--out" not in demo.group(1)  # the demo's folder is the default one
    config_file = shlex.split(demo.group(1))[shlex.split(demo.group(1)).index("--config") + 1]
    folder = default_run_folder(load_config(ROOT / config_file))
    assert Path(folder).match(report[2]), (folder, report)


def test_the_install_variants_the_readme_shows_are_what_make_runs() -> None:
    first_hour = section("First hour")
    index = re.search(r"pip install torch torchvision --index-url ([^\s`]+)", first_hour)
    assert index and f"TORCH_INDEX ?= {index.group(1)}" in MAKEFILE
    default = dry_run()
    assert "-e '.[dev]'" in default and "torch torchvision" not in default
    lean = dry_run("CPU=1", "EXTRAS=")
    torch_line = lean.index(f"pip install --quiet torch torchvision --index-url {index.group(1)}")
    assert torch_line < lean.index("pip install --quiet -e '.'")  # torch first, so pip keeps the CPU build
    for command in ("make demo CPU=1 EXTRAS=", "make demo CPU=1"):
        assert command in first_hour


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_docs_state_the_image_sizes_each_preset_takes_without_a_warning(name: str) -> None:
    text = " ".join(OWN_DATA.split())
    found = re.search(rf"`{re.escape(name)}`(?: and `[\w-]+`)? (\d+) to (\d+)(?: pixels)? \(", text)
    if found is None:  # "`cifar10` and `cifar10-large` 15 to 63": the second name shares the first's sizes
        found = re.search(rf"`[\w-]+` and `{re.escape(name)}` (\d+) to (\d+)", text)
    assert found, name
    smallest, largest = int(found.group(1)), int(found.group(2))
    preset = PRESETS[name]
    channels = preset.input_shape[0]

    def takes(side: int) -> bool:
        try:
            fit_to_data(preset, "data", (channels, side, side), 10)
        except Exception:
            return False
        return size_warning(preset, "data", (channels, side, side)) is None

    assert takes(smallest) and takes(largest)
    assert not takes(smallest - 1) and not takes(largest + 1)


@pytest.mark.slow
def test_the_docs_torch_only_loading_prints_no_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    (snippet,) = [block for block in code_blocks(TOOLS, "python") if "torch.jit.load" in block]
    preset = PRESETS["digits"]
    metadata = {"genome": "1-01|0-01-100-0111", "preset": preset.name, "network": asdict(preset)}
    (tmp_path / "final").mkdir()
    save_trained(build_network(metadata["genome"], preset), tmp_path / "final" / "seed0", metadata)
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(snippet, "docs/notebooks-and-tools.md", "exec"), {})
        load_trained("final/seed0.torchscript.pt")
    assert [str(w.message) for w in caught] == []
    assert capsys.readouterr().out.split() == ["1-01|0-01-100-0111", "digits"]
