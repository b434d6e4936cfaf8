"""Fitness methods: how an evaluation task becomes a result. ``evaluation.method`` picks one.

A method is a module with two functions, named in ``config.METHODS`` and imported by ``method_module``:

- optionally ``check(config)``: refuse inputs that cannot be used, before any folder is written
  (default: the dataset loads and the preset can take its images);
- optionally ``IN_PROCESS = True``: evaluations are so cheap (a table lookup) that ``run.executor =
  "auto"`` evaluates in the main process instead of starting workers;
- ``prepare(config, progress, echo)``: work done once per run in the main process before any
  evaluation (the one-shot supernet's training); it must resume after a kill and be a no-op once done.
- ``make_evaluator(config, device, progress, datasets)``: an object whose ``evaluate(task)`` returns
  the task's ``EvaluationResult``; every executor builds one per worker (``datasets``: already
  loaded ones, e.g. from Ray's object store, or None to load them).

The search, the run loop and the executors call only ``prepare_fitness`` and ``make_evaluator``
below, so none of them knows which method is in use. No torch here.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

from genetic_cnn.errors import UserError

if TYPE_CHECKING:
    from genetic_cnn.config import Config
    from genetic_cnn.data.arrays import LabelledImages
    from genetic_cnn.data.datasets import Datasets
    from genetic_cnn.search.records import EvaluationResult, EvaluationTask

class FitnessEvaluator(Protocol):
    def evaluate(self, task: EvaluationTask) -> EvaluationResult: ...


def method_module(name: str) -> ModuleType:
    """The module of the fitness method ``name`` (one of ``config.METHODS``), imported only now: the
    standalone and one-shot methods load torch, the table method does not."""
    if name == "standalone":
        from genetic_cnn.fitness import standalone

        return standalone
    if name == "one-shot":
        from genetic_cnn.fitness import oneshot

        return oneshot
    if name == "table":
        from genetic_cnn.fitness import table

        return table
    raise UserError(f"evaluation.method = {name!r} is not a fitness method; use one of standalone, one-shot, table")


def _method(config: Config) -> ModuleType:
    return method_module(config.evaluation.method)


def check_fitness_inputs(config: Config, own: LabelledImages | None = None) -> None:
    """The method's ``check``, or by default: the dataset loads and the preset can take its images
    (a warning for a preset much smaller than the data). ``own``: images in memory that stand for
    ``config.data``'s file (``start_run(config, data=...)``)."""
    check = getattr(_method(config), "check", None)
    if check is not None:
        check(config)
        return
    from genetic_cnn.data.datasets import load_datasets
    from genetic_cnn.progress import warn
    from genetic_cnn.space.presets import fit_to_data, size_warning

    def fits(data: Datasets) -> None:
        try:
            fit_to_data(config.preset(), data.name, data.input_shape, data.num_classes)
        except UserError as error:
            if not config.data.image_size:
                raise
            size = config.data.image_size  # the user's own setting made the images this small: name it first
            raise UserError(f"data.image_size = {size} resizes the images to {size}x{size}, too small for the preset: {error}") from None

    datasets = load_datasets(config.data, seed=config.run.seed, own=own, accept=fits)
    warning = size_warning(config.preset(), datasets.name, datasets.input_shape)
    if warning:
        warn(warning)


def check_stored_fitness(config: Config) -> None:
    """The method's ``check_stored``: what a run keeps for its fitness (a one-shot supernet) is whole."""
    check = getattr(_method(config), "check_stored", None)
    if check is not None:
        check(config)


def evaluates_in_process(config: Config) -> bool:
    """Whether the method's evaluations are too cheap to be worth a worker process."""
    return bool(getattr(_method(config), "IN_PROCESS", False))


def prepare_fitness(config: Config, progress: bool = False, echo: Callable[[str], None] | None = None) -> None:
    """Run the method's once-per-run preparation (nothing for standalone)."""
    _method(config).prepare(config, progress, echo or print)


def make_evaluator(
    config: Config, device: str | None = None, progress: bool = False, datasets: Datasets | None = None
) -> FitnessEvaluator:
    """The evaluator of ``config``'s fitness method, on ``device`` (default ``run.device``)."""
    return _method(config).make_evaluator(config, device, progress, datasets)
