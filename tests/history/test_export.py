"""`genetic-cnn export RUN`: every evaluation of the run database, as CSV or JSON, to stdout or --out."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from conftest import TINY, run_cli

import genetic_cnn.fitness.standalone
from genetic_cnn.config import load_config
from genetic_cnn.evolution import start_run
from genetic_cnn.history.store import load_run
from genetic_cnn.search.records import FAILED, OK, REUSED, EvaluationResult

# Survivors are reused (rows without test accuracy or loss), and one training raises (a failed row
# whose message needs CSV quoting).
OVERRIDES = TINY + ["evolution.reevaluate=reuse", "evolution.p_mutation=0.2", "evolution.p_crossover=0.0"]
MESSAGE = 'injected failure, with a comma and "quotes"'
KEY_FIELDS = ("generation", "slot", "genome", "key", "seed", "status", "accuracy", "test_accuracy", "loss",
              "train_loss", "epochs", "seconds", "error", "batch_size")  # fmt: skip


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    real = genetic_cnn.fitness.standalone.train_model
    calls = []

    def third_training_raises(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(None)
        if len(calls) == 3:
            raise RuntimeError(MESSAGE)
        return real(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(genetic_cnn.fitness.standalone, "train_model", third_training_raises)
        folder = start_run(load_config(None, OVERRIDES), out=tmp_path_factory.mktemp("export") / "run",
                           progress=False, echo=lambda line: None)  # fmt: skip
    statuses = {e.status for e in stored(folder)}
    assert {OK, REUSED, FAILED} <= statuses, statuses  # every kind of row is there to export
    return folder


def stored(folder: Path) -> list[EvaluationResult]:
    with load_run(folder) as run:
        return run.evaluations()


def optional_float(text: str) -> float | None:
    return None if text == "" else float(text)


def optional_int(text: str) -> int | None:
    return None if text == "" else int(text)


def check_csv(text: str, evaluations: list[EvaluationResult]) -> None:
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(evaluations)
    assert set(KEY_FIELDS) <= set(rows[0])
    for row, e in zip(rows, evaluations):
        assert (int(row["generation"]), int(row["slot"]), int(row["seed"]), int(row["epochs"])) == (
            e.generation, e.slot, e.seed, e.epochs,
        )  # fmt: skip
        assert (row["genome"], row["key"], row["status"], row["error"]) == (e.genome, e.key, e.status, e.error)
        # Floats are written in full (repr), so they read back exactly.
        assert float(row["accuracy"]) == e.accuracy and float(row["seconds"]) == e.seconds
        assert optional_float(row["test_accuracy"]) == e.test_accuracy
        assert optional_float(row["loss"]) == e.loss and optional_float(row["train_loss"]) == e.train_loss
        assert optional_int(row["batch_size"]) == e.batch_size


def check_json(text: str, evaluations: list[EvaluationResult]) -> None:
    rows = json.loads(text)
    assert isinstance(rows, list) and len(rows) == len(evaluations)
    for row, e in zip(rows, evaluations):
        for name in KEY_FIELDS:
            assert row[name] == getattr(e, name), name


def test_csv_holds_every_evaluation_of_the_database(run_folder: Path) -> None:
    result = run_cli("export", str(run_folder), "--format", "csv")
    assert result.returncode == 0, result.stderr
    evaluations = stored(run_folder)
    check_csv(result.stdout, evaluations)
    failed = [e for e in evaluations if e.status == FAILED]
    assert len(failed) == 1 and MESSAGE in failed[0].error  # the quoted message came back whole
    reused = [e for e in evaluations if e.status == REUSED]
    assert reused and all(e.test_accuracy is None for e in reused)  # empty cells read back as None


def test_csv_is_the_default_format(run_folder: Path) -> None:
    default = run_cli("export", str(run_folder))
    explicit = run_cli("export", str(run_folder), "--format", "csv")
    assert default.returncode == 0, default.stderr
    assert default.stdout == explicit.stdout


def test_json_holds_every_evaluation_of_the_database(run_folder: Path) -> None:
    result = run_cli("export", str(run_folder), "--format", "json")
    assert result.returncode == 0, result.stderr
    check_json(result.stdout, stored(run_folder))


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_out_writes_the_named_file(run_folder: Path, tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"evaluations.{fmt}"
    result = run_cli("export", str(run_folder), "--format", fmt, "--out", str(path))
    assert result.returncode == 0, result.stderr
    assert str(path) in result.stdout and len(result.stdout.splitlines()) == 1  # the file is named, not printed
    assert path.is_file()
    (check_csv if fmt == "csv" else check_json)(path.read_text(encoding="utf-8"), stored(run_folder))
    assert path.read_text(encoding="utf-8") == run_cli("export", str(run_folder), "--format", fmt).stdout
