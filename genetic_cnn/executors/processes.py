"""``run.executor = "processes"``: worker processes on this machine, each with the datasets loaded once.

Each worker is a spawned process with its own pipe and gets one task at a time, so the parent
always knows which task a worker holds; a dead worker is noticed by its process sentinel, its task
is retried once on a fresh worker (then recorded as failed), and the worker is replaced.
(``concurrent.futures.ProcessPoolExecutor`` would break the whole pool when one worker dies.)
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any

from genetic_cnn.config import Config, training_devices
from genetic_cnn.errors import UserError
from genetic_cnn.executors.base import Schedule, WorkerError, available_cores, visible_gpus
from genetic_cnn.executors.pool import PoolWorker, WorkerPool
from genetic_cnn.search.records import EvaluationResult, EvaluationTask


def plan_workers(config: Config) -> tuple[list[str], int]:
    """Devices of the ``processes`` workers (one entry per worker) and torch threads per worker.

    On CPU, ``run.workers`` workers (0 = 1); with ``run.device`` auto or cuda, one per GPU (or
    ``run.workers``, spread round-robin over the GPUs); with ``cuda:N``, all on that GPU.
    Threads: ``run.threads``, or the cores divided among the workers (at least 1).
    """
    device, workers = config.run.device, config.run.workers
    found = training_devices(device, visible_gpus)
    if not found:
        raise UserError(f"run.device = {device!r} but torch sees no GPU; use run.device = cpu")
    devices = [found[index % len(found)] for index in range(workers or len(found))]  # round-robin over the GPUs
    return devices, config.run.threads or max(1, available_cores() // len(devices))


def describe_exit(exitcode: int | None) -> str:
    """How a worker process ended, e.g. ``killed by SIGKILL``."""
    if exitcode is None:
        return "stopped answering"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


def _worker_main(conn: Any, config: Config, device: str, threads: int) -> None:
    """A ``processes`` worker: set the threads, load the datasets once, then evaluate until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us
    import torch
    from tqdm import tqdm

    torch.set_num_threads(threads)
    tqdm.set_lock(threading.RLock())  # not tqdm's default, a semaphore that a killed worker would leak
    try:
        from genetic_cnn.fitness.methods import make_evaluator

        evaluator = make_evaluator(config, device=device)
    except Exception as error:
        conn.send(("error", _picklable(error)))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            task = conn.recv()
        except EOFError:  # the parent is gone
            return
        if task is None:
            return
        conn.send(("result", evaluator.evaluate(task)))


def _picklable(error: Exception) -> Exception:
    import pickle

    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")


@dataclass(eq=False)
class _Worker(PoolWorker):
    process: Any
    conn: Any
    device: str


class ProcessExecutor(WorkerPool[_Worker]):
    """Worker processes on this machine (spawned), each with its own copy of the datasets.

    Each worker is given one task at a time over its own pipe, so the parent always knows which
    task a worker holds; a dead worker is noticed by its process sentinel and replaced.
    """

    def __init__(self, config: Config, progress: bool = False) -> None:
        import multiprocessing

        super().__init__(config)
        self.devices, self.threads = plan_workers(config)
        self._context = multiprocessing.get_context("spawn")
        self._workers = [None] * len(self.devices)

    def worker_pids(self) -> list[int]:
        return [worker.process.pid for worker in self._workers if worker]

    def running(self) -> dict[int, EvaluationTask]:
        """Worker pid -> the task it holds; safe to call from another thread."""
        with self._lock:
            return {worker.process.pid: worker.task for worker in self._workers if worker and worker.task}

    def _start(self, index: int) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main, args=(child, self.config, self.devices[index], self.threads),
            name=f"genetic-cnn-worker-{index}", daemon=True,
        )  # fmt: skip
        process.start()
        child.close()  # only the worker holds its end: its death reads as end-of-file here
        self._workers[index] = _Worker(process, parent, self.devices[index])

    def _submit(self, worker: _Worker, task: EvaluationTask) -> None:
        try:
            worker.conn.send(task)
        except OSError:
            pass  # it died: its sentinel says so next, and the task is retried

    def _collect(self, schedule: Schedule) -> list[EvaluationResult]:
        """Wait for a worker's message or death (its pipe or its process sentinel), then read every worker that spoke."""
        live = [worker for worker in self._workers if worker]
        handles = {worker.conn: worker for worker in live} | {worker.process.sentinel: worker for worker in live}
        signalled = {id(handles[handle]): handles[handle] for handle in wait(list(handles))}
        return [result for worker in signalled.values() for result in self._service(worker, schedule)]

    def _service(self, worker: _Worker, schedule: Schedule) -> list[EvaluationResult]:
        """Read what ``worker`` sent; if it died, settle its task and replace it."""
        results: list[EvaluationResult] = []
        error: Exception | None = None
        ended = False
        try:
            while error is None and worker.conn.poll():
                kind, payload = worker.conn.recv()
                if kind == "ready":
                    worker.ready = True
                elif kind == "result":
                    with self._lock:
                        worker.task = None
                    results.append(schedule.completed(payload))
                else:
                    error = payload  # it could not load the datasets: the user's error
        except (EOFError, OSError):  # it died; whatever it sent before was read above
            ended = True
        if error is not None:
            raise error
        if not ended and worker.process.is_alive():
            return results
        worker.process.join(5)
        cause = describe_exit(worker.process.exitcode)
        index = self._workers.index(worker)
        task = worker.task
        self._discard(index)
        if not worker.ready:
            raise WorkerError(
                f"a worker process {cause} before it was ready (device {worker.device}); its error is printed above. "
                "A script that starts a run with worker processes must do so under if __name__ == '__main__':"
            )
        if task is not None:
            failure = schedule.lost(task, cause)
            if failure:
                results.append(failure)
        if schedule.waiting():
            self._start(index)
        return results

    def _discard(self, index: int) -> None:
        worker = self._workers[index]
        if worker is None:
            return
        with self._lock:
            self._workers[index] = None
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(5)
        worker.conn.close()

    def close(self) -> None:
        """Stop the workers: idle ones are asked to exit, busy or loading ones are killed."""
        for index, worker in enumerate(self._workers):
            if worker and worker.ready and worker.task is None:
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
            elif worker:
                self._discard(index)
        for index, worker in enumerate(self._workers):
            if worker:
                worker.process.join(2)
                self._discard(index)
