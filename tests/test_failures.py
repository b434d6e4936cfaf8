"""Failures are states, not crashes: diverged and failed trainings, a full disk."""

from __future__ import annotations

import inspect
import resource
import signal
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, cli_command, set_args

import genetic_cnn.fitness.standalone
from genetic_cnn.config import load_config
from genetic_cnn.evolution import start_run
from genetic_cnn.fitness.standalone import Evaluator
from genetic_cnn.history.store import load_run
from genetic_cnn.search.operators import roulette_select
from genetic_cnn.search.records import DIVERGED, FAILED, OK, EvaluationTask
from genetic_cnn.space.genome import Genome


def quiet(line: str) -> None:
    pass


def test_diverging_training_is_recorded_with_fitness_zero_and_the_run_goes_on(tmp_path: Path) -> None:
    # SGD at a learning rate of 1e20 overflows the weights: the loss turns inf/NaN within a few steps.
    config = load_config(None, TINY + ["train.optimizer=sgd", "train.schedule=[[1, 1e20]]", "evolution.generations=1"])
    folder = start_run(config, out=tmp_path / "run", progress=False, echo=quiet)
    with load_run(folder) as run:
        evaluations = run.evaluations()
        generations = run.generations()
        assert run.status == "finished"
    assert len(evaluations) == 8
    assert all(e.status == DIVERGED and e.accuracy == 0.0 and "NaN" in e.error for e in evaluations)
    assert all(f == 0.0 for record in generations for f in record.fitness)


def test_training_that_raises_is_recorded_as_failed_with_its_message() -> None:
    config = load_config(None, TINY)
    evaluator = Evaluator.from_config(config)
    # Five outputs for ten classes: cross-entropy raises on the first batch, as a real bug would.
    broken = replace(evaluator, preset=replace(evaluator.preset, num_classes=5))
    genome = str(Genome.ones(broken.preset.nodes))
    result = broken.evaluate(EvaluationTask(0, 3, genome, seed=11))
    assert result.status == FAILED
    assert result.accuracy == 0.0 and result.fitness_input == 0.0
    assert "out of bounds" in result.error and "\n" not in result.error
    assert (result.generation, result.slot, result.seed) == (0, 3, 11)
    assert evaluator.evaluate(EvaluationTask(0, 3, genome, seed=11)).status == OK  # the evaluator is unharmed


def test_selection_treats_failures_as_the_worst() -> None:
    rng = np.random.default_rng(0)
    fitness = [0.9, 0.0, 0.8, 0.0, 0.85]  # slots 1 and 3 failed
    picks = roulette_select(fitness, 5000, rng)
    assert 1 not in picks and 3 not in picks


@pytest.mark.slow
def test_a_full_disk_stops_the_run_with_a_clear_message_and_the_database_intact(tmp_path: Path) -> None:
    """The operating system refuses writes past a file-size limit, as a full disk refuses them."""

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get the write error, not a killing signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000))

    folder = tmp_path / "run"
    args = cli_command("evolve", "--out", str(folder), "--quiet", *set_args(TINY + ["evolution.generations=30"]))
    result = subprocess.run(args, capture_output=True, text=True, preexec_fn=limit_file_size, timeout=600)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "cannot write" in line and f"genetic-cnn resume {folder}" in line
    with load_run(folder) as run:
        assert run._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = run.evaluations()
        recorded, expected = run.config, load_config(None, TINY + ["evolution.generations=30"])
    # The run records its paths settled (data.root resolved, run.out its folder); all else as given.
    assert Path(recorded.data.root).resolve() == Path(expected.data.root).resolve()
    assert recorded.run.out in ("", str(folder))
    assert replace(recorded, data=replace(recorded.data, root=expected.data.root), run=replace(recorded.run, out="")) == expected
    assert 0 < len(stored) < 4 * 31
    # With space again, resume carries on from what was stored.
    resumed = subprocess.run(cli_command("resume", str(folder), "--quiet"), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    with load_run(folder) as run:
        assert run.evaluations()[: len(stored)] == stored
        assert len(run.evaluations()) == 4 * 31 and run.status == "finished"


# ---------------------------------------------------------------------- CUDA out of memory
OOM_MESSAGE = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.75 GiB total capacity)"


class OutOfMemoryOnce:
    """Stands in for ``train_model`` in genetic_cnn.fitness.standalone: raises what torch raises when the GPU
    is full on the first ``failures`` calls, then trains for real. Records each call's batch size."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.real = genetic_cnn.fitness.standalone.train_model
        self.batch_sizes: list[int] = []

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        bound = inspect.signature(self.real).bind(*args, **kwargs)
        self.batch_sizes.append(bound.arguments["batch_size"])
        if len(self.batch_sizes) <= self.failures:
            raise torch.OutOfMemoryError(OOM_MESSAGE)
        return self.real(*args, **kwargs)


def test_out_of_memory_is_retried_once_at_half_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(None, TINY)  # batch size 64
    task = EvaluationTask(1, 2, str(Genome.ones(config.preset().nodes)), seed=5)
    flaky = OutOfMemoryOnce(failures=1)
    monkeypatch.setattr(genetic_cnn.fitness.standalone, "train_model", flaky)
    result = Evaluator.from_config(config).evaluate(task)
    assert flaky.batch_sizes == [64, 32]
    assert result.status == OK and result.error == ""
    assert result.batch_size == 32 and result.epochs == 1
    monkeypatch.undo()
    # The retry is the training one would get asking for half the batch from the start, same seed.
    half = Evaluator.from_config(load_config(None, TINY + ["train.batch_size=32"])).evaluate(task)
    assert half.batch_size == 32
    assert (result.accuracy, result.test_accuracy, result.loss, result.train_loss) == (
        half.accuracy, half.test_accuracy, half.loss, half.train_loss
    )


def test_out_of_memory_twice_is_failed_with_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(None, TINY)
    always = OutOfMemoryOnce(failures=10**6)
    monkeypatch.setattr(genetic_cnn.fitness.standalone, "train_model", always)
    result = Evaluator.from_config(config).evaluate(EvaluationTask(0, 1, str(Genome.ones(config.preset().nodes)), seed=3))
    assert always.batch_sizes == [64, 32]  # one retry, not more
    assert result.status == FAILED and result.fitness_input == 0.0
    assert "OutOfMemoryError" in result.error and "CUDA out of memory" in result.error and "\n" not in result.error
    assert result.batch_size == 32  # the batch size of the attempt that failed last
    assert (result.generation, result.slot, result.seed) == (0, 1, 3)


def test_an_out_of_memory_retry_is_recorded_in_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flaky = OutOfMemoryOnce(failures=1)
    monkeypatch.setattr(genetic_cnn.fitness.standalone, "train_model", flaky)
    folder = start_run(load_config(None, TINY + ["evolution.generations=0"]), out=tmp_path / "run", progress=False, echo=quiet)
    assert flaky.batch_sizes == [64, 32, 64, 64, 64]  # only the first evaluation needed the retry
    with load_run(folder) as run:
        evaluations = run.evaluations()
        assert run.status == "finished"
    assert [e.status for e in evaluations] == [OK] * 4
    assert [e.batch_size for e in evaluations] == [32, 64, 64, 64]
