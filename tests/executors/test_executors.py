"""Executors: worker processes and Ray give exactly the serial history; a killed worker loses only its
evaluation; Ray is optional. Real processes and a real local Ray instance, on tiny synthetic data."""

import os
import signal
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY
from run_helpers import evolution_history as history

from genetic_cnn.cli import main
from genetic_cnn.config import load_config
from genetic_cnn.evolution import start_run
from genetic_cnn.executors import SerialExecutor, make_executor
from genetic_cnn.executors.processes import ProcessExecutor, plan_workers
from genetic_cnn.executors.ray_actors import RAY_MISSING
from genetic_cnn.search.records import FAILED, OK, EvaluationTask
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.graph import architecture_key

# One thread everywhere: bit-identical results across executors, and no fight over the 2 cores.
PARALLEL = ["run.threads=1", "run.workers=2"]


def run_with(folder: Path, executor: str) -> list[tuple]:
    config = load_config(None, TINY + PARALLEL + [f"run.executor={executor}"])
    return history(start_run(config, out=folder, progress=False, echo=lambda line: None))


@pytest.fixture(scope="module")
def serial_history(tmp_path_factory: pytest.TempPathFactory) -> list[tuple]:
    session = torch.get_num_threads()  # 1: conftest pins it, as run.threads does, so set another
    torch.set_num_threads(2)
    try:
        serial = run_with(tmp_path_factory.mktemp("serial") / "run", "serial")
        assert torch.get_num_threads() == 2, "the serial executor did not restore the thread count"
    finally:
        torch.set_num_threads(session)
    return serial


@pytest.mark.slow
def test_processes_give_the_serial_history(serial_history: list[tuple], tmp_path: Path) -> None:
    assert run_with(tmp_path / "run", "processes") == serial_history


@pytest.mark.slow
def test_ray_gives_the_serial_history_and_stops_the_instance_it_started(serial_history: list[tuple], tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    assert not ray.is_initialized()
    assert run_with(tmp_path / "run", "ray") == serial_history
    assert not ray.is_initialized()  # started for the run (no run.ray_address), so shut down after it


def test_plan_workers_splits_the_cores() -> None:
    devices, threads = plan_workers(load_config(None, ["run.device=cpu", "run.workers=2"]))
    assert devices == ["cpu", "cpu"] and threads == max(1, len(os.sched_getaffinity(0)) // 2)
    devices, threads = plan_workers(load_config(None, ["run.device=cpu", "run.threads=3"]))
    assert devices == ["cpu"] and threads == 3


@pytest.mark.slow
def test_a_killed_worker_loses_only_its_evaluation() -> None:
    """Slot 0's worker is killed once: retried on a fresh worker, with the serial result. Slot 1's
    worker is killed twice: recorded as failed, the worker died. Each task gets exactly one result."""
    config = load_config(None, TINY + PARALLEL + ["train.schedule=[[2, 0.003]]"])
    nodes = config.preset().nodes
    tasks = [EvaluationTask(0, slot, str(Genome.random(nodes, np.random.default_rng(slot))), 100 + slot) for slot in range(2)]
    kills = {0: 1, 1: 2}
    killed: Counter[int] = Counter()
    executor = ProcessExecutor(config)
    stop = threading.Event()

    def killer() -> None:  # kills a worker as soon as it holds a task marked for killing
        dead: set[int] = set()
        while not stop.is_set():
            for pid, task in executor.running().items():
                if pid not in dead and killed[task.slot] < kills.get(task.slot, 0):
                    os.kill(pid, signal.SIGKILL)
                    dead.add(pid)
                    killed[task.slot] += 1
            time.sleep(0.005)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        results = list(executor.run(tasks))
        stop.set()
        workers = executor.worker_pids()
        assert 1 <= len(workers) <= 2  # a dead worker is replaced while tasks wait for one
        later = list(executor.run([EvaluationTask(1, 0, tasks[0].genome, tasks[0].seed)]))
        assert executor.worker_pids() == workers  # the next generation runs on the same workers and datasets
    finally:
        stop.set()
        thread.join()
        executor.close()
    assert killed == kills
    assert sorted(result.slot for result in results) == [0, 1]
    retried, failed = sorted(results, key=lambda result: result.slot)
    assert failed.status == FAILED and "worker process died" in failed.error and "SIGKILL" in failed.error
    assert failed.key == architecture_key(Genome.from_string(tasks[1].genome, nodes=nodes))
    assert retried.status == later[0].status == OK
    serial = SerialExecutor(config)
    try:
        [expected] = serial.run([tasks[0]])
    finally:
        serial.close()
    for result in (retried, later[0]):
        assert (result.accuracy, result.test_accuracy, result.loss) == (expected.accuracy, expected.test_accuracy, expected.loss)


def test_a_dataset_error_in_a_worker_is_the_users_one_line_error(tmp_path: Path) -> None:
    config = load_config(None, ["data.dataset=mnist", f"data.root={tmp_path}", "run.device=cpu", "run.executor=processes"])
    executor = make_executor(config)
    task = EvaluationTask(0, 0, "0-00|0-00-000-0000", 1)
    try:
        with pytest.raises(Exception, match="MNIST") as raised:
            list(executor.run([task]))
    finally:
        executor.close()
    from genetic_cnn.errors import UserError

    assert isinstance(raised.value, UserError)


def test_missing_ray_is_a_one_line_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError, as without Ray
    status = main(["evolve", "--quiet", "--out", str(tmp_path / "run"), "--set", "run.executor=ray", "--set", "run.device=cpu"])
    assert status == 2
    assert capsys.readouterr().err == f"genetic-cnn: error: {RAY_MISSING}\n"
    assert RAY_MISSING == "run.executor = \"ray\" needs Ray: pip install 'genetic-cnn[ray]'"
