"""Runs that survive: kill -9 and Ctrl-C in the middle of a generation, then resume."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from conftest import TINY, count_trainings, run_cli, set_args
from run_helpers import LONGER, history, start_and_stop

from genetic_cnn.config import load_config
from genetic_cnn.evolution import resume_run, start_run
from genetic_cnn.history.store import RunStore, load_run
from genetic_cnn.search.records import REUSED


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[tuple], list[tuple]]:
    folder = tmp_path_factory.mktemp("uninterrupted") / "run"
    result = run_cli("evolve", "--out", str(folder), "--quiet", *set_args(LONGER))
    assert result.returncode == 0, result.stderr
    return history(folder)


@pytest.mark.slow
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


@pytest.mark.slow
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


def stored_rows(folder: Path) -> list[tuple]:
    """Every evaluation as stored, with its training time and commit time: a retraining changes both."""
    with load_run(folder) as run:
        return [(e, at) for e, at in zip(run.evaluations(), run.evaluation_times())]


@pytest.mark.slow
def test_resume_of_a_finished_run_trains_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    assert run_cli("evolve", "--out", str(folder), "--quiet", *set_args(TINY)).returncode == 0
    before, rows_before = history(folder), stored_rows(folder)
    result = run_cli("resume", str(folder), "--quiet")
    assert result.returncode == 0, result.stderr
    assert history(folder) == before
    # Not one evaluation was written again: same rows, same recorded seconds, same commit times.
    assert stored_rows(folder) == rows_before and len(rows_before) == 4 * 3


@pytest.mark.slow
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


@pytest.mark.slow
def test_evolve_onto_an_existing_run_refuses_and_keeps_it(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    assert run_cli("evolve", "--out", str(folder), "--quiet", *set_args(TINY)).returncode == 0
    before = history(folder)
    result = run_cli("evolve", "--out", str(folder), "--quiet", *set_args(TINY))
    assert result.returncode == 2
    assert "already holds a run" in result.stderr and "genetic-cnn resume" in result.stderr
    assert history(folder) == before


# ---------------------------------------------------------------------- in-process runs, trainings counted
def silent(line: str) -> None:
    pass


def run_in_process(folder: Path, overrides: list[str]) -> Path:
    return start_run(load_config(None, overrides), out=folder, progress=False, echo=silent)


def test_resume_of_a_finished_run_makes_no_training_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainings = count_trainings(monkeypatch)
    folder = run_in_process(tmp_path / "run", TINY)
    assert trainings.count == 4 * 3  # the counter sees every training
    before, rows_before = history(folder), stored_rows(folder)
    trainings.tasks.clear()
    assert resume_run(folder, progress=False, echo=silent) == folder
    assert trainings.count == 0
    assert history(folder) == before and stored_rows(folder) == rows_before


def test_resume_of_a_complete_run_stopped_before_it_was_marked_finished_trains_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C after the last generation is stored but before the run is marked finished."""
    lines: list[str] = []

    def stop_after_the_last_row(line: str) -> None:
        lines.append(line)
        if len(lines) == 1 + 3:  # the header, then generations 0, 1, 2 (the last)
            raise KeyboardInterrupt

    folder = tmp_path / "run"
    trainings = count_trainings(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        start_run(load_config(None, TINY), out=folder, progress=False, echo=stop_after_the_last_row)
    assert trainings.count == 4 * 3  # the counter sees every training
    trainings.tasks.clear()
    with load_run(folder) as run:
        assert run.status == "interrupted" and len(run.generations()) == 3
    before, rows_before = history(folder), stored_rows(folder)
    assert len(rows_before) == 12

    shown: list[str] = []
    resume_run(folder, progress=False, echo=shown.append)
    assert trainings.count == 0
    assert history(folder) == before and stored_rows(folder) == rows_before
    assert shown == lines  # the same table, replayed from the database
    with load_run(folder) as run:
        assert run.status == "finished"
    assert (folder / "summary.json").is_file()


# Each mode at a setting that exercises it; see the assertions on the uninterrupted run.
MODES = {
    "reuse": ["evolution.reevaluate=reuse", "evolution.generations=4", "evolution.p_mutation=0.2", "evolution.p_crossover=0.0"],
    # Sparse genomes from all-zero ones: different strings of one architecture (e.g. any single edge of a stage).
    "architecture": ["evolution.identity=architecture", "evolution.init=zeros", "evolution.generations=3", "run.seed=2"],
    "random": ["evolution.strategy=random", "evolution.generations=3"],
}


def mid_generation_stop(folder: Path) -> int:
    """A training index (in training order) that is not the first of its generation: stopping
    there leaves a generation half done."""
    with load_run(folder) as run:
        trained = [e for e in run.evaluations() if e.status != REUSED]
    candidates = [k for k in range(1, len(trained)) if trained[k].generation == trained[k - 1].generation]
    return candidates[len(candidates) // 2]


@pytest.mark.parametrize("mode", sorted(MODES))
def test_ctrl_c_mid_generation_then_resume_gives_the_uninterrupted_history(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overrides = TINY + MODES[mode]
    reference = run_in_process(tmp_path / "uninterrupted", overrides)
    expected = history(reference)
    with load_run(reference) as run:
        evaluations = run.evaluations()
    if mode == "reuse":
        assert any(e.status == REUSED for e in evaluations)  # the mode is exercised
    if mode == "architecture":
        # Different strings of the same architecture occurred, so identity by architecture mattered.
        assert len({e.key for e in evaluations}) < len({e.genome for e in evaluations})
    if mode == "random":
        with load_run(reference) as run:
            assert run.config.evolution.strategy == "random"
    total = sum(e.status != REUSED for e in evaluations)
    stop = mid_generation_stop(reference)

    folder = tmp_path / "run"
    stopper = count_trainings(monkeypatch, stop_at=stop)
    with pytest.raises(KeyboardInterrupt):
        run_in_process(folder, overrides)
    assert stopper.count == stop
    with load_run(folder) as run:
        assert run.status == "interrupted"
        generations_done = len(run.generations())
    rows_before = stored_rows(folder)
    # Every training before the stop was committed (and the reused slots of finished generations).
    assert sum(e.status != REUSED for e, _ in rows_before) == stop
    assert generations_done < len(expected[1])

    monkeypatch.undo()
    trainings = count_trainings(monkeypatch)
    resume_run(folder, progress=False, echo=silent)
    assert trainings.count == total - stop  # only what was missing is trained
    assert history(folder) == expected
    rows_after = stored_rows(folder)
    assert all(row in rows_after for row in rows_before)  # kept as they were, not retrained
    with load_run(folder) as run:
        assert run.status == "finished"


@pytest.mark.slow
def test_ctrl_c_with_worker_processes_then_resume_gives_the_uninterrupted_history(tmp_path: Path) -> None:
    """Ctrl-C in a terminal signals the whole process group: the runner and its two workers."""
    overrides = LONGER + ["run.executor=processes", "run.workers=2", "run.threads=1"]
    expected = history(run_in_process(tmp_path / "uninterrupted", overrides))
    folder = tmp_path / "run"
    stopped = start_and_stop(folder, signal.SIGINT, after_evaluations=6, overrides=overrides, group=True)
    assert stopped.returncode == 130, stopped.stderr
    assert "Traceback" not in stopped.stderr
    with load_run(folder) as run:
        assert run.status == "interrupted"
        assert run.config.run.executor == "processes"
    rows_before = stored_rows(folder)
    assert 6 <= len(rows_before) < 24, "the stop should land before the run ends"

    resumed = run_cli("resume", str(folder), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert history(folder) == expected
    rows_after = stored_rows(folder)
    assert all(row in rows_after for row in rows_before)  # kept as they were, not retrained
