"""Shared helpers: running the CLI as a user does, and a tiny synthetic experiment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# A run of a few seconds: synthetic 8x8 images, the digits search space with few channels.
TINY = [
    "data.dataset=synthetic",
    "space.preset=digits",
    "space.channels=[4, 8]",
    "evolution.population=4",
    "evolution.generations=2",
    "train.schedule=[[1, 0.003]]",
    "train.batch_size=64",
    "run.device=cpu",
    "run.threads=1",
]


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "genetic_cnn.cli", *args]


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(cli_command(*args), capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def set_args(overrides: list[str]) -> list[str]:
    return [item for override in overrides for item in ("--set", override)]


@pytest.fixture
def tiny_overrides() -> list[str]:
    return list(TINY)
