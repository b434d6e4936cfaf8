"""What the pooled executors (processes, Ray) share: core counting, worker errors, task bookkeeping."""

from __future__ import annotations

import os
from collections import Counter, deque
from collections.abc import Sequence

from genetic_cnn.config import Config
from genetic_cnn.search.records import FAILED, EvaluationResult, EvaluationTask
from genetic_cnn.space.graph import architecture_key


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def visible_gpus() -> int:
    """How many CUDA GPUs torch sees in this process (0 without CUDA); imports torch when asked."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


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
        from genetic_cnn.space.genome import Genome

        key = architecture_key(Genome.from_string(task.genome, nodes=self.nodes))
        return self.completed(EvaluationResult(task.generation, task.slot, task.genome, key, task.seed, FAILED, error=error))
