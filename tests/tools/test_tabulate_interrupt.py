"""Ctrl-C during `genetic-cnn tabulate` says, once, the command that continues the build, and that command does."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from conftest import count_trainings
from table_helpers import TINY_SPACE

from genetic_cnn.cli import main
from genetic_cnn.space.enumerate import architectures
from genetic_cnn.tables.table import read_table

COUNT = len(architectures((2, 3)))


@pytest.mark.slow
def test_ctrl_c_names_the_tabulate_command_that_continues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    overrides = [word for setting in TINY_SPACE for word in ("--set", setting)]
    trainings = count_trainings(monkeypatch, stop_at=COUNT + 2)  # Ctrl-C during the second seed's third training
    assert main(["tabulate", *overrides, "--set", "run.executor=serial", "--seeds", "2", "--out", "my table",
                 "--name", "tiny", "--quiet"]) == 130  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].count("interrupted") == 1, err
    found = re.fullmatch(r"genetic-cnn: interrupted; continue with `(.+)`", err[0])
    assert found, err
    words = shlex.split(found.group(1))  # a shell reads it back as it was given, the space in "my table" too
    assert words[:2] == ["genetic-cnn", "tabulate"] and "resume" not in words
    trainings.stop_at = None
    assert main(words[1:]) == 0
    assert trainings.count == 2 * COUNT  # the interrupted build went on where it stopped; nothing trained twice
    table = read_table(tmp_path / "my table.json.gz")
    assert table.name == "tiny" and table.seeds == (0, 1) and len(table.architectures) == COUNT
