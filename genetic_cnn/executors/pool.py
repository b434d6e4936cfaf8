"""The run loop of the pooled executors (processes, Ray), written once.

A pool is a row of worker slots, each empty or holding a worker that is loading, idle or busy with
one task. The loop starts the workers a batch needs, hands each ready idle worker its next task
(``Schedule``: a retry goes to a fresh worker), waits for what the workers send, yields the results
and, when the batch is abandoned (an error, Ctrl-C), stops the evaluations still running. How a
worker is started, given a task, listened to and stopped is each executor's own.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from genetic_cnn.config import Config
from genetic_cnn.executors.base import Schedule
from genetic_cnn.search.records import EvaluationResult, EvaluationTask


@dataclass(eq=False, kw_only=True)
class PoolWorker:
    """What the loop knows of a worker, whatever runs it."""

    ready: bool = False
    """It has loaded the datasets and takes tasks."""
    task: EvaluationTask | None = None
    """The task it holds, if any."""
    fresh: bool = True
    """It was never given a task: only such a worker gets a retry."""


W = TypeVar("W", bound=PoolWorker)


class WorkerPool(ABC, Generic[W]):
    """The shared run loop; a subclass fills ``self._workers`` with slots and supplies the hooks below."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._workers: list[W | None] = []
        self._lock = threading.Lock()
        """Guards the workers' tasks, which ``running`` may read from another thread."""

    def run(self, tasks: Sequence[EvaluationTask]) -> Iterator[EvaluationResult]:
        if not tasks:
            return
        schedule = Schedule(self.config, tasks)
        missing = min(len(self._workers), len(tasks)) - sum(worker is not None for worker in self._workers)
        for index in [index for index, worker in enumerate(self._workers) if worker is None][: max(0, missing)]:
            self._start(index)  # workers that died when nothing was waiting are replaced now
        finished = False
        try:
            while schedule.left:
                self._dispatch(schedule)
                results = self._collect(schedule)
                self._dispatch(schedule)  # keep the workers busy while the runner commits
                yield from results
            finished = True
        finally:
            if not finished:  # abandoned (error, Ctrl-C): stop the evaluations still running
                for index, worker in enumerate(self._workers):
                    if worker and (worker.task or not worker.ready):
                        self._discard(index)

    def _dispatch(self, schedule: Schedule) -> None:
        for worker in self._workers:
            if worker and worker.ready and worker.task is None:
                task = schedule.take(worker.fresh)
                if task is None:
                    continue
                with self._lock:
                    worker.task, worker.fresh = task, False
                self._submit(worker, task)

    @abstractmethod
    def _start(self, index: int) -> None:
        """Start a worker in the empty slot ``index``; it loads the datasets and says when it is ready."""

    @abstractmethod
    def _submit(self, worker: W, task: EvaluationTask) -> None:
        """Send ``task`` to ``worker``, ready and now holding it."""

    @abstractmethod
    def _collect(self, schedule: Schedule) -> list[EvaluationResult]:
        """Wait until at least one worker has something to say; return the results it brought, settled
        with ``schedule``. A worker that died is discarded here, its task lost (``Schedule.lost``) and
        replaced while tasks wait."""

    @abstractmethod
    def _discard(self, index: int) -> None:
        """Stop the worker in slot ``index`` at once, whatever it is doing, and empty the slot."""
