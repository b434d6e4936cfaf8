"""``run.executor = "auto"`` (the default): every CPU core busy without asking, the choice recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TINY
from run_helpers import evolution_history as history

from genetic_cnn.config import load_config
from genetic_cnn.evolution import start_run
from genetic_cnn.executors import SerialExecutor, available_cores, choose_executor, executor_for
from genetic_cnn.history.store import load_run

CPU = ["run.device=cpu"]


def chosen(*overrides: str) -> tuple[str, int, int]:
    run = choose_executor(load_config(None, [*CPU, *overrides])).run
    return run.executor, run.workers, run.threads


def test_auto_is_the_default() -> None:
    assert load_config(None, []).run.executor == "auto"


def test_auto_runs_one_single_thread_worker_per_core_when_a_generation_keeps_them_busy() -> None:
    cores = available_cores()
    if cores >= 2:
        assert chosen(f"evolution.population={cores}") == ("processes", cores, 1)
    # Fewer individuals than workers would leave cores idle all run long: serial.
    assert chosen("evolution.population=2", "run.workers=3")[0] == "serial"
    if cores == 1:
        assert chosen("evolution.population=20")[0] == "serial"


def test_the_executor_is_made_from_the_choice_and_never_chooses_again() -> None:
    """The run records ``choose_executor``'s choice and starts ``executor_for`` it: an undecided config is refused."""
    with pytest.raises(ValueError, match="choose_executor"):
        executor_for(load_config(None, CPU))
    executor = executor_for(choose_executor(load_config(None, [*CPU, "evolution.population=2", "run.workers=3"])))
    try:
        assert isinstance(executor, SerialExecutor)
    finally:
        executor.close()


def test_auto_keeps_the_workers_and_threads_it_is_given() -> None:
    assert chosen("evolution.population=8", "run.workers=2", "run.threads=3") == ("processes", 2, 3)
    assert chosen("evolution.population=8", "run.workers=1")[0] == "serial"


@pytest.mark.parametrize("executor", ["serial", "processes", "ray"])
def test_a_named_executor_is_left_alone(executor: str) -> None:
    assert chosen(f"run.executor={executor}")[0] == executor


@pytest.mark.slow
def test_an_auto_run_records_its_choice_and_gives_the_history_of_that_choice(tmp_path: Path) -> None:
    settings = [*TINY, "run.executor=auto", "run.workers=2"]  # two workers even on a one-core machine
    auto = start_run(load_config(None, settings), out=tmp_path / "auto", progress=False, echo=lambda line: None)
    with load_run(auto) as run:
        assert run.meta("executors")[-1] | {"at": 0} == {"at": 0, "asked": "auto", "executor": "processes",
                                                         "workers": 2, "threads": 1}  # fmt: skip
    serial = start_run(load_config(None, [*TINY]), out=tmp_path / "serial", progress=False, echo=lambda line: None)
    assert history(auto) == history(serial)  # one thread per evaluation either way: the same numbers


@pytest.mark.parametrize(("guarded", "expected"), [(False, "False"), (True, "True")])
def test_auto_trains_serially_for_a_script_workers_could_not_import(tmp_path: Path, guarded: bool, expected: str) -> None:
    """A spawned worker re-imports the main script: unguarded, it would start the run again."""
    import subprocess
    import sys

    body = "from genetic_cnn.executors import spawning_is_safe\nprint(spawning_is_safe())\n"
    if guarded:
        body = 'if __name__ == "__main__":\n' + "".join(f"    {line}\n" for line in body.splitlines())
    script = tmp_path / "experiment.py"
    script.write_text(body)
    assert subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout.strip() == expected
