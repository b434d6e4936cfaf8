"""``run.executor = "ray"``: evaluations on Ray actors, on this machine or on a Ray cluster.

The datasets are loaded once, here in the driver, and put in Ray's object store; each actor takes
them from there once and keeps an ``Evaluator``, so the nodes of a cluster need the package but not
the dataset files. Ray is optional and imported only when this executor is made.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Any

from genetic_cnn.config import Config, training_devices
from genetic_cnn.errors import UserError
from genetic_cnn.executors.base import Schedule, WorkerError, available_cores
from genetic_cnn.executors.pool import PoolWorker, WorkerPool
from genetic_cnn.search.records import EvaluationResult, EvaluationTask

RAY_MISSING = "run.executor = \"ray\" needs Ray: pip install 'genetic-cnn[ray]'"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError(RAY_MISSING) from None
    return ray


class RayWorker:
    """The body of one Ray actor: the fitness method's evaluator over the datasets from the object store."""

    def __init__(self, config: Config, datasets: Any, device: str, threads: int) -> None:
        import torch

        from genetic_cnn.fitness.methods import make_evaluator

        torch.set_num_threads(threads)
        self.evaluator = make_evaluator(config, device=device, datasets=datasets)

    def pid(self) -> int:
        return os.getpid()

    def evaluate(self, task: EvaluationTask) -> EvaluationResult:
        return self.evaluator.evaluate(task)


@dataclass(eq=False)
class _Actor(PoolWorker):
    handle: Any
    ready_ref: Any
    pid: int | None = None
    ref: Any = None


class RayExecutor(WorkerPool[_Actor]):
    """Ray actors, one evaluation at a time each; see ``docs/executors.md``.

    ``run.ray_address`` connects to a running cluster (``auto``: the one this machine belongs to);
    empty starts a local Ray instance, shut down again by ``close``. An already initialized Ray
    session (``ray.init`` called by the caller) is used as it is.
    """

    def __init__(self, config: Config, progress: bool = False) -> None:
        super().__init__(config)
        self.ray = import_ray()
        self._started = False
        self._factory: Any = None
        self._data: Any = None
        try:  # connect now, so that a wrong address is reported before the run starts
            self._setup()
        except BaseException:
            self.close()
            raise

    def worker_pids(self) -> list[int]:
        return [actor.pid for actor in self._workers if actor and actor.pid is not None]

    def _setup(self) -> None:
        ray, run = self.ray, self.config.run
        threads = run.threads or 1
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
            try:
                if run.ray_address:
                    ray.init(address=run.ray_address, **options)
                else:
                    ray.init(address="local", num_cpus=max(available_cores(), run.workers * threads), **options)
            except ConnectionError as error:
                raise UserError(f"run.ray_address = {run.ray_address!r}: cannot connect to Ray ({error})") from None
            self._started = True
        resources = ray.cluster_resources()
        gpus = resources.get("GPU", 0)
        cuda = training_devices(run.device, lambda: math.ceil(gpus)) != ("cpu",)  # cuda without GPUs: refused next
        if cuda and not gpus:
            raise UserError(f"run.device = {run.device!r} but the Ray cluster has no GPUs; use run.device = cpu")
        if cuda:
            capacity = int(gpus / run.gpus_per_evaluation + 1e-9)
            options = {"num_cpus": threads, "num_gpus": run.gpus_per_evaluation}
        else:
            capacity = int(resources.get("CPU", 1) // threads)
            options = {"num_cpus": threads, "num_gpus": 0}
        count = min(run.workers or max(1, capacity), self.config.evolution.population)
        from genetic_cnn.data.datasets import load_datasets

        self._data = ray.put(load_datasets(self.config.data, seed=run.seed))
        self._device = "cuda" if cuda else "cpu"  # Ray shows each actor only the GPUs it was given
        self._threads = threads
        self._factory = ray.remote(max_restarts=0, max_task_retries=0)(RayWorker).options(**options)
        self._workers = [None] * count

    def _start(self, index: int) -> None:
        handle = self._factory.remote(self.config, self._data, self._device, self._threads)
        self._workers[index] = _Actor(handle, handle.pid.remote())

    def _submit(self, worker: _Actor, task: EvaluationTask) -> None:
        worker.ref = worker.handle.evaluate.remote(task)

    def _collect(self, schedule: Schedule) -> list[EvaluationResult]:
        """Wait for the first actor to be ready (its pid) or done with its task (its result or its death)."""
        waiting = {}
        for actor in self._workers:
            if actor and not actor.ready:
                waiting[actor.ready_ref] = actor
            elif actor and actor.ref is not None:
                waiting[actor.ref] = actor
        done, _ = self.ray.wait(list(waiting), num_returns=1)
        return [result for ref in done for result in self._settle(ref, waiting[ref], schedule)]

    def _settle(self, ref: Any, actor: _Actor, schedule: Schedule) -> list[EvaluationResult]:
        """What ``ref``, done, means for ``actor``: ready, a result, a failed evaluation, or its death."""
        ray = self.ray
        died = (ray.exceptions.RayActorError, ray.exceptions.OutOfMemoryError, ray.exceptions.WorkerCrashedError)
        index = self._workers.index(actor)
        task = actor.task
        try:
            value = ray.get(ref)
        except died as error:
            self._discard(index)
            if not actor.ready:
                raise WorkerError(f"a Ray actor died while loading the datasets: {_first_line(error)}") from None
            assert task is not None
            failure = schedule.lost(task, f"{type(error).__name__}: {_first_line(error)}")
            if schedule.waiting():
                self._start(index)
            return [failure] if failure else []
        except ray.exceptions.RayError as error:  # evaluate itself raised: a failed evaluation
            assert task is not None
            actor.task, actor.ref = None, None
            return [schedule.failed(task, _first_line(error)[:500])]
        if not actor.ready:
            actor.ready, actor.pid = True, value
            return []
        actor.task, actor.ref = None, None
        return [schedule.completed(value)]

    def _discard(self, index: int) -> None:
        actor = self._workers[index]
        self._workers[index] = None
        if actor is not None:
            try:
                self.ray.kill(actor.handle, no_restart=True)
            except Exception:  # already gone
                pass

    def close(self) -> None:
        for index in range(len(self._workers)):
            self._discard(index)
        self._workers = []
        self._factory = self._data = None
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        self._started = False


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__
