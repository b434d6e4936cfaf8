"""Runs that survive: kill -9 and Ctrl-C in the middle of a generation, then resume."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from conftest import TINY, cli_command, run_cli, set_args

from genetic_cnn.store import RunStore, load_run

# Enough evaluations that the run is still going when it is stopped.
LONGER = TINY + ["evolution.generations=5", "train.schedule=[[3, 0.003]]"]


def history(folder: Path) -> tuple[list[tuple], list[tuple]]:
    with load_run(folder) as run:
        evaluations = [
            (e.generation, e.slot, e.genome, e.seed, e.status, e.accuracy, e.test_accuracy, e.loss, e.epochs)
            for e in run.evaluations()
        ]
        generations = [(g.generation, g.genomes, g.fitness, g.rng_state) for g in run.generations()]
    return evaluations, generations


def count_evaluations(folder: Path) -> int:
    try:
        with sqlite3.connect(f"file:{folder / 'run.db'}?mode=ro", uri=True) as db:
            return db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
    except sqlite3.Error:
        return 0


def start_and_stop(folder: Path, sig: int, after_evaluations: int) -> subprocess.CompletedProcess[str]:
    """Start `genetic-cnn evolve`, wait until it is inside generation 1, send ``sig``."""
    process = subprocess.Popen(
        cli_command("evolve", "--out", str(folder), "--quiet", *set_args(LONGER)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while count_evaluations(folder) < after_evaluations:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.02)
    process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[tuple], list[tuple]]:
    folder = tmp_path_factory.mktemp("uninterrupted") / "run"
    result = run_cli("evolve", "--out", str(folder), "--quiet", *set_args(LONGER))
    assert result.returncode == 0, result.stderr
    return history(folder)


def test_kill_9_mid_generation_then_resume_gives_the_uninterrupted_history(tmp_path: Path, uninterrupted) -> None:
    folder = tmp_path / "run"
    stopped = start_and_stop(folder, signal.SIGKILL, after_evaluations=6)  # generation 1, slot 2
    assert stopped.returncode == -signal.SIGKILL
    done_before, _ = history(folder)
    assert 6 <= len(done_before) < 24, "the kill should land before the run ends"
    with load_run(folder) as run:
        assert run.status == "running"  # killed: nobody could mark it

    resumed = run_cli("resume", str(folder), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert history(folder) == uninterrupted
    evaluations, _ = history(folder)
    assert evaluations[: len(done_before)] == done_before  # completed evaluations kept, not retrained
    with load_run(folder) as run:
        assert run.status == "finished"


def test_ctrl_c_marks_the_run_interrupted_and_resume_finishes_it(tmp_path: Path, uninterrupted) -> None:
    folder = tmp_path / "run"
    stopped = start_and_stop(folder, signal.SIGINT, after_evaluations=5)
    assert stopped.returncode == 130
    assert f"genetic-cnn resume {folder}" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    with load_run(folder) as run:
        assert run.status == "interrupted"
    assert run_cli("resume", str(folder), "--quiet").returncode == 0
    assert history(folder) == uninterrupted


def test_resume_of_a_finished_run_trains_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    assert run_cli("evolve", "--out", str(folder), "--quiet", *set_args(TINY)).returncode == 0
    before = history(folder)
    started = time.monotonic()
    result = run_cli("resume", str(folder), "--quiet")
    assert result.returncode == 0, result.stderr
    assert history(folder) == before
    assert time.monotonic() - started < 60


def test_a_second_process_on_the_same_run_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    assert run_cli("evolve", "--out", str(folder), "--quiet", *set_args(TINY)).returncode == 0
    before = (folder / "run.db").read_bytes()
    holder = RunStore.open(folder)
    holder.lock()
    try:
        result = run_cli("resume", str(folder), "--quiet")
    finally:
        holder.close()
    assert result.returncode == 2
    assert "in use by another genetic-cnn process" in result.stderr
    assert (folder / "run.db").read_bytes() == before


def test_evolve_onto_an_existing_run_refuses_and_keeps_it(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    assert run_cli("evolve", "--out", str(folder), "--quiet", *set_args(TINY)).returncode == 0
    before = history(folder)
    result = run_cli("evolve", "--out", str(folder), "--quiet", *set_args(TINY))
    assert result.returncode == 2
    assert "already holds a run" in result.stderr and "genetic-cnn resume" in result.stderr
    assert history(folder) == before
