"""Where evaluations run. Every executor takes tasks and yields results, in any order.

Results never depend on the executor: each task carries its own seed. ``serial`` trains in this
process; ``processes`` (``genetic_cnn.executors.processes``) keeps worker processes on this machine,
each holding the datasets; ``ray`` (``genetic_cnn.executors.ray_actors``) runs such workers as Ray
actors, on this machine or a cluster; both run the one loop of ``genetic_cnn.executors.pool``.
See ``docs/executors.md``.

A worker that dies mid-evaluation (SIGKILL, the out-of-memory killer) loses only that evaluation:
it is tried once more on a fresh worker, and if that worker dies too, the task is recorded as
``failed`` with an error saying so. Results already yielded were committed by the runner.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from genetic_cnn.config import Config, training_devices
from genetic_cnn.executors.base import Schedule, WorkerError, available_cores, visible_gpus
from genetic_cnn.search.records import EvaluationResult, EvaluationTask

__all__ = ["Executor", "Schedule", "SerialExecutor", "WorkerError", "available_cores", "choose_executor", "executor_for", "make_executor"]

if TYPE_CHECKING:
    from genetic_cnn.fitness.methods import FitnessEvaluator


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
        self._evaluator: FitnessEvaluator | None = None
        self._threads_before: int | None = None

    def run(self, tasks: Sequence[EvaluationTask]) -> Iterator[EvaluationResult]:
        if not tasks:
            return
        if self._evaluator is None:
            import torch

            from genetic_cnn.fitness.methods import make_evaluator

            if self.config.run.threads:
                self._threads_before = torch.get_num_threads()
                torch.set_num_threads(self.config.run.threads)
            self._evaluator = make_evaluator(self.config, progress=self.progress)
        for task in tasks:
            yield self._evaluator.evaluate(task)

    def close(self) -> None:
        self._evaluator = None
        if self._threads_before is not None:
            import torch

            torch.set_num_threads(self._threads_before)
            self._threads_before = None


def choose_executor(config: Config) -> Config:
    """``config`` with ``run.executor = "auto"`` made concrete; any other executor is returned as it is.

    On CPU, evaluations are small enough that one torch thread each is the most efficient use of a
    core (benchmarks/README.md), so ``auto`` runs as many worker processes of one thread as the
    process may use cores, when a generation (``evolution.population``) can keep them busy; with one
    core, or fewer individuals than cores, it trains serially. On GPUs: one worker per GPU when
    there are several, else serially on the one. ``run.workers`` and ``run.threads`` are kept when set.
    Table fitness always runs serially, whatever ``run.executor`` asks (its lookups count in run order).
    """
    run = config.run
    from genetic_cnn.fitness.methods import evaluates_in_process

    if evaluates_in_process(config):
        # Table lookups: microseconds each, where a worker takes seconds to start; and they count each
        # architecture's evaluations in run order (fitness.table), which only one process can do.
        return config if run.executor == "serial" else replace(config, run=replace(run, executor="serial"))
    if run.executor != "auto":
        return config
    devices = training_devices(run.device, visible_gpus)
    if devices != ("cpu",):
        chosen = replace(run, executor="processes") if len(devices) > 1 or run.workers > 1 else replace(run, executor="serial")
        return replace(config, run=chosen)
    cores = available_cores()
    workers = run.workers or cores
    if workers >= 2 and config.evolution.population >= workers and spawning_is_safe():
        return replace(config, run=replace(run, executor="processes", workers=workers, threads=run.threads or 1))
    return replace(config, run=replace(run, executor="serial"))


def spawning_is_safe() -> bool:
    """Whether worker processes can start here. A spawned worker imports the main script again, so
    a script that starts a run at its top level, without ``if __name__ == "__main__":``, would start
    it again in every worker (Python refuses). The CLI, ``python -c``, notebooks and guarded
    scripts are safe; for any other script ``auto`` trains serially instead of failing."""
    import sys

    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    spec = getattr(main, "__spec__", None)
    if path is None or spec is not None and str(spec.name).startswith("genetic_cnn"):
        return True
    try:
        source = open(path, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError):
        return False
    return "__name__ ==" in source or "__name__==" in source


def make_executor(config: Config, progress: bool = False) -> Executor:
    """The executor named by ``run.executor`` (``auto``: see ``choose_executor``)."""
    return executor_for(choose_executor(config), progress)


def executor_for(chosen: Config, progress: bool = False) -> Executor:
    """The executor of a config that ``choose_executor`` returned. The run driver chooses once, records
    the choice with the run and starts this, so what is recorded is what runs."""
    if chosen.run.executor == "auto":
        raise ValueError("executor_for takes a config from choose_executor, where run.executor is no longer auto")
    if chosen.run.executor == "processes":
        from genetic_cnn.executors.processes import ProcessExecutor

        return ProcessExecutor(chosen, progress)
    if chosen.run.executor == "ray":
        from genetic_cnn.executors.ray_actors import RayExecutor

        return RayExecutor(chosen, progress)
    return SerialExecutor(chosen, progress)
