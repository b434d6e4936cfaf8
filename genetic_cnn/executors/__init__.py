"""Where evaluations run. Every executor takes tasks and yields results, in any order.

Results never depend on the executor: each task carries its own seed. ``serial`` trains in this
process; ``processes`` (``genetic_cnn.executors.processes``) keeps worker processes on this machine,
each holding the datasets; ``ray`` (``genetic_cnn.executors.ray_actors``) runs such workers as Ray
actors, on this machine or a cluster. See ``docs/executors.md``.

A worker that dies mid-evaluation (SIGKILL, the out-of-memory killer) loses only that evaluation:
it is tried once more on a fresh worker, and if that worker dies too, the task is recorded as
``failed`` with an error saying so. Results already yielded were committed by the runner.
"""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from genetic_cnn.config import Config
from genetic_cnn.records import FAILED, EvaluationResult, EvaluationTask

if TYPE_CHECKING:
    from genetic_cnn.evaluate import Evaluator


class Executor(Protocol):
    def run(self, tasks: Sequence[EvaluationTask]) -> Iterator[EvaluationResult]:
        """Evaluate ``tasks``; yield each result as soon as it is complete."""
        ...

    def close(self) -> None: ...


class SerialExecutor:
    """One evaluation after another in this process; the datasets are loaded on first use.

    ``run.threads`` > 0 sets torch's thread count while the executor is open (restored on close).
    """

    def __init__(self, config: Config, progress: bool = False) -> None:
        self.config = config
        self.progress = progress
        self._evaluator: Evaluator | None = None
        self._threads_before: int | None = None

    def run(self, tasks: Sequence[EvaluationTask]) -> Iterator[EvaluationResult]:
        if not tasks:
            return
        if self._evaluator is None:
            import torch

            from genetic_cnn.evaluate import Evaluator

            if self.config.run.threads:
                self._threads_before = torch.get_num_threads()
                torch.set_num_threads(self.config.run.threads)
            self._evaluator = Evaluator.from_config(self.config, progress=self.progress)
        for task in tasks:
            yield self._evaluator.evaluate(task)

    def close(self) -> None:
        self._evaluator = None
        if self._threads_before is not None:
            import torch

            torch.set_num_threads(self._threads_before)
            self._threads_before = None


def make_executor(config: Config, progress: bool = False) -> Executor:
    """The executor named by ``run.executor``."""
    if config.run.executor == "processes":
        from genetic_cnn.executors.processes import ProcessExecutor

        return ProcessExecutor(config, progress)
    if config.run.executor == "ray":
        from genetic_cnn.executors.ray_actors import RayExecutor

        return RayExecutor(config, progress)
    return SerialExecutor(config, progress)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class WorkerError(RuntimeError):
    """A worker died before it was ready to evaluate: the run cannot go on without workers."""


class Schedule:
    """Bookkeeping shared by the pooled executors: which task a worker gets next, and what a
    worker's death means for the task it held (one retry on a fresh worker, then ``failed``)."""

    def __init__(self, config: Config, tasks: Sequence[EvaluationTask]) -> None:
        self.nodes = config.preset().nodes
        self.pending = deque(tasks)
        self.retries: deque[EvaluationTask] = deque()
        self.deaths: Counter[EvaluationTask] = Counter()
        self.left = len(tasks)
        """Tasks without a result yet, running ones included."""

    def waiting(self) -> bool:
        return bool(self.pending or self.retries)

    def take(self, fresh: bool) -> EvaluationTask | None:
        """The next task for a worker; a retry goes only to a fresh worker (one never given a task)."""
        if fresh and self.retries:
            return self.retries.popleft()
        return self.pending.popleft() if self.pending else None

    def completed(self, result: EvaluationResult) -> EvaluationResult:
        self.left -= 1
        return result

    def lost(self, task: EvaluationTask, cause: str) -> EvaluationResult | None:
        """The worker running ``task`` died of ``cause``: queue the retry, or return the failure."""
        self.deaths[task] += 1
        if self.deaths[task] < 2:
            self.retries.append(task)
            return None
        return self.failed(task, f"the worker process died while evaluating this genome, twice ({cause}); out of memory?")

    def failed(self, task: EvaluationTask, error: str) -> EvaluationResult:
        """A ``failed`` result for ``task``, which counts as its result."""
        from genetic_cnn.genome import Genome

        key = Genome.from_string(task.genome, nodes=self.nodes).architecture_key()
        return self.completed(EvaluationResult(task.generation, task.slot, task.genome, key, task.seed, FAILED, error=error))
