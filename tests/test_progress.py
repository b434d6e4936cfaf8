"""Progress in a log (standard error not a terminal): plain lines, and the last one printed once."""

from __future__ import annotations

import pytest

from genetic_cnn import progress


def test_a_bar_ending_right_after_a_line_does_not_print_that_line_again(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(progress, "PLAIN_EVERY", 0.0)  # every update prints, as the last one does after 30 s
    bar = progress.bar(total=3, desc="generations", unit="gen")
    assert isinstance(bar, progress.PlainProgress)  # captured standard error is no terminal
    for _ in range(3):
        bar.update(1)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines] == ["generations: 1/3 gen", "generations: 2/3 gen", "generations: 3/3 gen"]


def test_closing_still_prints_the_count_no_line_showed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bar = progress.bar(total=5, desc="tabulating", unit="net")  # PLAIN_EVERY (30 s) never passes here
    bar.update(2)
    assert capsys.readouterr().err == ""
    bar.close()
    bar.close()  # a second close (error paths close bars again) prints nothing more
    assert [line.split(" (")[0] for line in capsys.readouterr().err.splitlines()] == ["tabulating: 2/5 net"]
