"""``run.executor = "ray"``: evaluations on Ray actors, on this machine or on a Ray cluster.

The datasets are loaded once, here in the driver, and put in Ray's object store; each actor takes
them from there once and keeps an ``Evaluator``, so the nodes of a cluster need the package but not
the dataset files. Ray is optional and imported only when this executor is made.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from genetic_cnn.config import Config, training_devices
from genetic_cnn.errors import UserError
from genetic_cnn.executors.base import Schedule, WorkerError, available_cores
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
class _Actor:
    handle: Any
    ready_ref: Any
    ready: bool = False
    pid: int | None = None
    task: EvaluationTask | None = None
    ref: Any = None
    fresh: bool = True


class RayExecutor:
    """Ray actors, one evaluation at a time each; see ``docs/executors.md``.

    ``run.ray_address`` connects to a running cluster (``auto``: the one this machine belongs to);
    empty starts a local Ray instance, shut down again by ``close``. An already initialized Ray
    session (``ray.init`` called by the caller) is used as it is.
    """

    def __init__(self, config: Config, progress: bool = False) -> None:
        self.ray = import_ray()
        self.config = config
        self._started = False
        self._actors: list[_Actor | None] = []
        self._factory: Any = None
        self._data: Any = None
        try:  # connect now, so that a wrong address is reported before the run starts
            self._setup()
        except BaseException:
            self.close()
            raise

    def worker_pids(self) -> list[int]:
        return [actor.pid for actor in self._actors if actor and actor.pid is not None]

    def run(self, tasks: Sequence[EvaluationTask]) -> Iterator[EvaluationResult]:
        if not tasks:
            return
        ray = self.ray
        schedule = Schedule(self.config, tasks)
        missing = min(len(self._actors), len(tasks)) - sum(actor is not None for actor in self._actors)
        for index in [index for index, actor in enumerate(self._actors) if actor is None][: max(0, missing)]:
            self._start(index)  # actors that died when nothing was waiting are replaced now
        finished = False
        try:
            while schedule.left:
                self._dispatch(schedule)
                waiting = {}
                for actor in self._actors:
                    if actor and not actor.ready:
                        waiting[actor.ready_ref] = actor
                    elif actor and actor.ref is not None:
                        waiting[actor.ref] = actor
                done, _ = ray.wait(list(waiting), num_returns=1)
                results = [result for ref in done for result in self._collect(ref, waiting[ref], schedule)]
                self._dispatch(schedule)
                yield from results
            finished = True
        finally:
            if not finished:  # abandoned (error, Ctrl-C): stop the evaluations still running
                for index, actor in enumerate(self._actors):
                    if actor and (actor.task or not actor.ready):
                        self._discard(index)

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
        self._actors = [None] * count

    def _start(self, index: int) -> None:
        handle = self._factory.remote(self.config, self._data, self._device, self._threads)
        self._actors[index] = _Actor(handle, handle.pid.remote())

    def _dispatch(self, schedule: Schedule) -> None:
        for actor in self._actors:
            if actor and actor.ready and actor.task is None:
                task = schedule.take(actor.fresh)
                if task is not None:
                    actor.task, actor.fresh = task, False
                    actor.ref = actor.handle.evaluate.remote(task)

    def _collect(self, ref: Any, actor: _Actor, schedule: Schedule) -> list[EvaluationResult]:
        ray = self.ray
        died = (ray.exceptions.RayActorError, ray.exceptions.OutOfMemoryError, ray.exceptions.WorkerCrashedError)
        index = self._actors.index(actor)
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
        actor = self._actors[index]
        self._actors[index] = None
        if actor is not None:
            try:
                self.ray.kill(actor.handle, no_restart=True)
            except Exception:  # already gone
                pass

    def close(self) -> None:
        for index in range(len(self._actors)):
            self._discard(index)
        self._actors = []
        self._factory = self._data = None
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        self._started = False


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__
