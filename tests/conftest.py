"""Shared helpers: running the CLI as a user does, and a tiny synthetic experiment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from genetic_cnn.search.strategies import GeneticSearch, RandomSearch
from genetic_cnn.space.genome import Genome

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
    "run.executor=serial",  # tiny networks: spawning workers would cost more than it saves
]


def onemax(population: list[Genome]) -> list[float]:
    """A fitness for search tests: the number of ones in each genome."""
    return [float(sum(genome.bits)) for genome in population]


def drive_search(search: GeneticSearch | RandomSearch, fitness: Callable[[list[Genome]], list[float]] = onemax) -> list[list[Genome]]:
    """Every generation a search asks for, told ``fitness`` of each."""
    generations = []
    while not search.done():
        population = search.ask()
        generations.append(population)
        search.tell(fitness(population))
    return generations


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "genetic_cnn.cli", *args]


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(cli_command(*args), capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def run_main(*args: str, cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> subprocess.CompletedProcess[str]:
    """``genetic-cnn ARGS`` in this process, from ``cwd``: what ``run_cli`` gives (status, standard output and
    error) without starting Python and importing torch again. An exception that escapes ``main`` is a
    traceback the user would see: the test fails on it."""
    import signal

    from genetic_cnn.cli import main

    monkeypatch.chdir(cwd)
    handler = signal.getsignal(signal.SIGTERM)  # main() makes SIGTERM interrupt a run; not pytest's
    capsys.readouterr()
    try:
        status = main(list(args))
    except SystemExit as exit:  # argparse's own errors
        status = exit.code if isinstance(exit.code, int) else 1
    finally:
        signal.signal(signal.SIGTERM, handler)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["genetic-cnn", *args], status, out, err)


def set_args(overrides: list[str]) -> list[str]:
    return [item for override in overrides for item in ("--set", override)]


def pytest_runtest_setup(item: pytest.Item) -> None:
    """The test networks are tiny: one thread is fastest, and it avoids the large slowdowns of
    spinning OpenMP threads when other processes share the cores. Only where torch is loaded: the
    search, space and table tests never import it."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


class Trainings:
    """Counts the trainings made in this process (calls of ``Evaluator.evaluate``, which the serial
    executor makes once per evaluation it trains). With ``stop_at``, the call that would start
    training number ``stop_at`` (0-based) raises KeyboardInterrupt instead, as a Ctrl-C would in
    the middle of a generation. Made by ``count_trainings``."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.stop_at = stop_at
        self.tasks: list = []

    @property
    def count(self) -> int:
        return len(self.tasks)


def count_trainings(monkeypatch: pytest.MonkeyPatch, stop_at: int | None = None) -> Trainings:
    """Wrap ``Evaluator.evaluate`` (for the rest of the test) to count, and optionally interrupt, trainings."""
    from genetic_cnn.fitness.standalone import Evaluator

    trainings = Trainings(stop_at)
    real = Evaluator.evaluate

    def evaluate(self, task):  # type: ignore[no-untyped-def]
        if trainings.stop_at is not None and trainings.count == trainings.stop_at:
            raise KeyboardInterrupt
        trainings.tasks.append(task)
        return real(self, task)

    monkeypatch.setattr(Evaluator, "evaluate", evaluate)
    return trainings
