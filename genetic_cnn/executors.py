"""Where evaluations run. Every executor takes tasks and yields results, in any order.

Results never depend on the executor: each task carries its own seed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from genetic_cnn.config import Config
from genetic_cnn.records import EvaluationResult, EvaluationTask


class Executor(Protocol):
    def run(self, tasks: Sequence[EvaluationTask]) -> Iterator[EvaluationResult]:
        """Evaluate ``tasks``; yield each result as soon as it is complete."""
        ...

    def close(self) -> None: ...


class SerialExecutor:
    """One evaluation after another in this process; the datasets are loaded on first use."""

    def __init__(self, config: Config, progress: bool = False) -> None:
        self.config = config
        self.progress = progress
        self._evaluator = None

    def run(self, tasks: Sequence[EvaluationTask]) -> Iterator[EvaluationResult]:
        if not tasks:
            return
        if self._evaluator is None:
            from genetic_cnn.evaluate import Evaluator

            self._evaluator = Evaluator.from_config(self.config, progress=self.progress)
        for task in tasks:
            yield self._evaluator.evaluate(task)

    def close(self) -> None:
        self._evaluator = None


def make_executor(config: Config, progress: bool = False) -> Executor:
    """The executor named by ``run.executor``."""
    if config.run.executor == "serial":
        return SerialExecutor(config, progress)
    from genetic_cnn.errors import UserError

    raise UserError(f"run.executor = {config.run.executor!r} is not available yet; use serial")
