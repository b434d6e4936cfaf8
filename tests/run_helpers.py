"""Helpers for tests that start, stop and read back runs: their histories, and a run stopped by a signal."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from conftest import TINY, cli_command, set_args

from genetic_cnn.history.store import load_run


def evolution_history(folder: Path) -> list[tuple]:
    with load_run(folder) as run:
        return [(e.generation, e.slot, e.genome, e.seed, e.status, e.accuracy, e.test_accuracy) for e in run.evaluations()] + [
            (g.generation, g.genomes, g.fitness) for g in run.generations()
        ]


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


def start_and_stop(
    folder: Path, sig: int, after_evaluations: int, overrides: list[str] = LONGER, group: bool = False
) -> subprocess.CompletedProcess[str]:
    """Start `genetic-cnn evolve`, wait until ``after_evaluations`` are stored, send ``sig``: to the
    process, or with ``group`` to its whole process group (workers included), as Ctrl-C in a terminal does."""
    process = subprocess.Popen(
        cli_command("evolve", "--out", str(folder), "--quiet", *set_args(overrides)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=group,
        # A suite started as a background job without job control inherits SIGINT ignored, and so would the
        # run (POSIX); a terminal's Ctrl-C reaches a run whose SIGINT is the default, so restore it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while count_evaluations(folder) < after_evaluations:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.02)
    if group:
        os.killpg(process.pid, sig)
    else:
        process.send_signal(sig)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
