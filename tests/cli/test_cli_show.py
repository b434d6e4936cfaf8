"""`genetic-cnn show`, run as a user runs it."""

import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genetic_cnn.cli", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_show_prints_and_draws(tmp_path: Path) -> None:
    out = tmp_path / "genome.png"
    result = run_cli("show", "1-01|0-01-100-0111", "--preset", "mnist", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "architecture key  1-01|0-10-010-0111" in result.stdout
    assert "convolutions      12" in result.stdout
    assert "parameters        581,310" in result.stdout
    assert "in->v1, in->v2" in result.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_show_other_preset() -> None:
    result = run_cli("show", "1-01|0-01-100|0-11-101-0001", "--preset", "cifar10")
    assert result.returncode == 0, result.stderr
    assert "nodes (3, 4, 5)" in result.stdout


def test_invalid_genome_is_one_line_and_status_2() -> None:
    for genome in ("1-01|0-01-100-011x", "1-01|0-01-100", "", "1-0|0"):
        result = run_cli("show", genome)
        assert result.returncode == 2
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_unknown_preset_is_one_line() -> None:
    result = run_cli("show", "1-01", "--preset", "imagenet")
    assert result.returncode == 2
    assert "unknown preset 'imagenet'" in result.stderr
