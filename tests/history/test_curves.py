"""Learning curves: ``fit`` returns each epoch's values, the run database keeps them per evaluation,
and a database written before curves were kept still opens, reads and resumes."""

from __future__ import annotations

import copy
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from conftest import TINY

from genetic_cnn.config import DataConfig, TrainConfig, config_from_dict, load_config
from genetic_cnn.data.datasets import load_datasets
from genetic_cnn.evolution import resume_run, start_run
from genetic_cnn.history.rundata import RunData
from genetic_cnn.history.store import DATABASE, SCHEMA_VERSION, RunStore, load_run
from genetic_cnn.nn.train import fit, train_model
from genetic_cnn.report.markdown import write_report
from genetic_cnn.search.records import CURVE, OK, EvaluationResult

CURVED = TINY + ["train.schedule=[[3, 0.003]]"]


def small_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 3, padding=1), torch.nn.BatchNorm2d(6), torch.nn.ReLU(), torch.nn.Flatten(),
        torch.nn.Dropout(0.2), torch.nn.Linear(6 * 8 * 8, 10),
    )  # fmt: skip


def silent(line: str) -> None:
    pass


def test_fit_returns_each_epoch_and_validating_changes_no_weight() -> None:
    data = load_datasets(DataConfig(dataset="synthetic"), seed=0)
    config = TrainConfig(schedule=((3, 1e-2),), batch_size=32, eval_batch_size=64)
    watched, plain = small_cnn(), small_cnn()
    curved = fit(watched, data.train, config, seed=3, validation=data.validation, validate_each_epoch=True)
    bare = fit(plain, data.train, config, seed=3, validation=data.validation)
    assert [point.epoch for point in curved.curve] == [0, 1, 2]
    assert all(point.validation_accuracy is not None for point in curved.curve)
    assert [p.train_loss for p in curved.curve] == [p.train_loss for p in bare.curve]  # the same training
    assert all(p.validation_accuracy is None for p in bare.curve)
    for a, b in zip(watched.state_dict().values(), plain.state_dict().values()):
        assert torch.equal(a, b)
    assert curved.curve[-1].train_loss == curved.train_loss
    assert curved.curve[-1].train_loss < curved.curve[0].train_loss  # it learns
    # The last point is the final weights' measurement, the one the search is told.
    measured = train_model(copy.deepcopy(small_cnn()), data.train, data.validation, config, seed=3)
    assert measured.curve[-1].validation_accuracy == measured.accuracy


@pytest.fixture(scope="module")
def curved_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return start_run(load_config(None, CURVED), out=tmp_path_factory.mktemp("curves") / "run", progress=False, echo=silent)


def test_every_trained_evaluation_stores_its_curve(curved_run: Path) -> None:
    folder = curved_run
    with load_run(folder) as store:
        curves = store.curves()
        evaluations = store.evaluations()
        raw_extra = [json.loads(row[0]) for row in store._db.execute("SELECT extra FROM evaluations")]
        assert store.meta("schema_version") == SCHEMA_VERSION
    trained = [e for e in evaluations if e.status == OK]
    assert trained and len(curves) == len(trained)
    for result in trained:
        curve = curves[(result.generation, result.slot)]
        assert [point[0] for point in curve] == [0, 1, 2]
        assert curve[-1][1] == result.train_loss and curve[-1][2] == result.accuracy and curve[-1][3] == result.loss
        assert result.curve == curve  # read back into the result as it was given
    assert all(CURVE not in extra for extra in raw_extra)  # kept in their own table, not twice
    data = RunData.load(folder)
    assert data.curves() == curves


def test_add_evaluation_round_trips_a_curve(tmp_path: Path) -> None:
    store = RunStore.create(tmp_path / "run", load_config(None, TINY), {})
    curve = [[0, 2.1, None, None], [1, 1.5, 0.625, 1.25]]
    result = EvaluationResult(0, 1, "1-01|0-01-100-0111", "k", 7, OK, accuracy=0.625, extra={CURVE: curve, "note": 1})
    store.add_evaluation(result)
    store.add_evaluation(replace(result, extra={CURVE: curve[:1]}))  # a slot written again keeps only its new curve
    (read,) = store.evaluations()
    assert read.extra == {CURVE: curve[:1]}
    store.add_evaluation(result)
    assert store.evaluations() == [result]
    store.close()


# The schema of version 1, before learning curves were kept, as those versions wrote it.
VERSION_1_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE evaluations (
    generation INTEGER NOT NULL, slot INTEGER NOT NULL, genome TEXT NOT NULL, key TEXT NOT NULL,
    seed INTEGER NOT NULL, status TEXT NOT NULL, accuracy REAL NOT NULL, test_accuracy REAL,
    loss REAL, train_loss REAL, epochs INTEGER NOT NULL, seconds REAL NOT NULL, error TEXT NOT NULL,
    batch_size INTEGER, extra TEXT NOT NULL, finished_at REAL NOT NULL,
    PRIMARY KEY (generation, slot)
);
CREATE TABLE generations (
    generation INTEGER PRIMARY KEY, genomes TEXT NOT NULL, fitness TEXT NOT NULL,
    rng_state TEXT NOT NULL, log TEXT, seconds REAL NOT NULL, finished_at REAL NOT NULL
);
"""


def as_version_1(source: Path, target: Path, keep_generations: int) -> None:
    """Copy a run folder's history into a database of schema version 1, keeping the first
    ``keep_generations`` generations (as a run of an older version stopped there would be)."""
    target.mkdir()
    old = sqlite3.connect(source / DATABASE)
    new = sqlite3.connect(target / DATABASE)
    new.execute("PRAGMA journal_mode=WAL")
    new.executescript(VERSION_1_SCHEMA)
    with new:
        for name, value in old.execute("SELECT name, value FROM meta"):
            if name == "config":
                raw = json.loads(value)
                raw["run"]["out"] = str(target.resolve())
                del raw["train"]["learning_curves"], raw["run"]["tensorboard"]  # keys added with version 2
                (target / "config.toml").write_text(config_from_dict(raw).to_toml(), encoding="utf-8")
                value = json.dumps(raw)
            new.execute("INSERT INTO meta VALUES (?, ?)", (name, json.dumps(1) if name == "schema_version" else value))
        new.execute("INSERT OR REPLACE INTO meta VALUES ('status', '\"interrupted\"')")
        for row in old.execute("SELECT * FROM evaluations WHERE generation < ?", (keep_generations,)):
            new.execute(f"INSERT INTO evaluations VALUES ({', '.join('?' * len(row))})", row)
        for row in old.execute("SELECT * FROM generations WHERE generation < ?", (keep_generations,)):
            new.execute(f"INSERT INTO generations VALUES ({', '.join('?' * len(row))})", row)
    old.close()
    new.close()


def test_the_report_draws_the_curves(curved_run: Path, tmp_path: Path) -> None:
    text = write_report([curved_run], tmp_path / "report").read_text(encoding="utf-8")
    assert "## Learning curves" in text and "![learning curves](learning_curves.png)" in text
    assert "recorded none" not in text
    assert (tmp_path / "report" / "learning_curves.png").stat().st_size > 10_000


@pytest.mark.slow
def test_a_version_1_database_opens_read_only_and_resumes_with_curves(curved_run: Path, tmp_path: Path) -> None:
    complete = curved_run
    old = tmp_path / "old"
    as_version_1(complete, old, keep_generations=2)
    with load_run(old) as store:  # read-only: nothing is changed, the missing table reads as no curves
        assert not store.has_curves and store.curves() == {}
        assert store.meta("schema_version") == 1
        assert len(store.generations()) == 2 and len(store.evaluations()) == 8
    assert RunData.load(old).generation_rows()
    assert "This run recorded none" in write_report([old], tmp_path / "old-report").read_text(encoding="utf-8")
    assert "curves" not in {row[0] for row in sqlite3.connect(old / DATABASE).execute("SELECT name FROM sqlite_master")}

    resume_run(old, progress=False, echo=silent)
    with load_run(old) as resumed, load_run(complete) as reference:
        assert resumed.meta("schema_version") == SCHEMA_VERSION
        assert [g.genomes for g in resumed.generations()] == [g.genomes for g in reference.generations()]
        assert resumed.has_curves
        new_curves, all_curves = resumed.curves(), reference.curves()
    # The generations evaluated before the migration have no curves; the resumed one has them, as
    # the uninterrupted run recorded them.
    assert set(new_curves) == {key for key in all_curves if key[0] == 2}
    assert new_curves == {key: value for key, value in all_curves.items() if key[0] == 2}
