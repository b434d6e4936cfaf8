"""TensorBoard event files of a run (``run.tensorboard = true``), written under ``RUN/tensorboard/``.

The run database stays the record; these files are a view of it for TensorBoard, written as the run
goes (``tensorboard --logdir RUN/tensorboard``):

- per evaluation, step = its number in the order committed (1, 2, ...): ``evaluation/validation_accuracy``
  (0 for a failed or diverged one, as in the report), ``evaluation/test_accuracy``, ``evaluation/seconds``,
  ``evaluation/best_so_far``;
- per generation, step = the generation: ``generation/max``, ``min``, ``mean``, ``median``, ``std`` of
  the population's fitness, ``generation/trained`` and ``reused``, and the generation's best genome
  drawn (image ``best_genome``);
- at the end, in ``RUN/tensorboard/hparams``: the run's settings as hyper-parameters with the best
  individual's fitness and test accuracy as metrics (the HParams dashboard).

A resumed run appends: the generations it only replays are not written again.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from genetic_cnn.config import Config
from genetic_cnn.errors import UserError
from genetic_cnn.history.summary import GenerationSummary
from genetic_cnn.search.records import REUSED, EvaluationResult

FOLDER = "tensorboard"
HPARAMS_RUN = "hparams"


def check_tensorboard(config: Config) -> None:
    """Refuse ``run.tensorboard = true`` before anything is written when TensorBoard is not installed."""
    if config.run.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise UserError(
            "run.tensorboard = true needs the tensorboard package; install it with pip install 'genetic-cnn[tensorboard]' "
            "or set run.tensorboard=false"
        )


def hyperparameters(config: Config) -> dict[str, Any]:
    """The settings that make one search differ from another, as TensorBoard's HParams plugin takes them
    (numbers, strings and booleans only)."""
    evo, train = config.evolution, config.train
    return {
        "data.dataset": config.data.dataset, "space.preset": config.preset().name,
        "space.nodes": str(list(config.preset().nodes)), "space.channels": str(list(config.preset().channels)),
        "evolution.strategy": evo.strategy, "evolution.population": evo.population,
        "evolution.generations": evo.generations, "evolution.p_crossover": evo.p_crossover,
        "evolution.q_crossover": evo.q_crossover, "evolution.p_mutation": evo.p_mutation,
        "evolution.q_mutation": evo.q_mutation, "evolution.identity": evo.identity,
        "evolution.reevaluate": evo.reevaluate, "evaluation.method": config.evaluation.method,
        "train.epochs": sum(epochs for epochs, _ in train.schedule), "train.learning_rate": float(train.schedule[0][1]),
        "train.optimizer": train.optimizer, "train.batch_size": train.batch_size, "run.seed": config.run.seed,
    }  # fmt: skip


class TensorBoardLog:
    """Writes one run's events; ``evaluations_before`` and ``best_before``: what a resumed run had."""

    def __init__(self, folder: Path, config: Config, evaluations_before: int = 0, best_before: float = 0.0) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.folder = folder / FOLDER
        self.config = config
        self.writer = SummaryWriter(str(self.folder))
        self.count = evaluations_before
        self.best = best_before

    def evaluation(self, result: EvaluationResult) -> None:
        self.count += 1
        step = self.count
        if result.status != REUSED:
            self.best = max(self.best, result.fitness_input)
        self.writer.add_scalar("evaluation/validation_accuracy", result.fitness_input, step)
        if result.test_accuracy is not None:
            self.writer.add_scalar("evaluation/test_accuracy", result.test_accuracy, step)
        self.writer.add_scalar("evaluation/seconds", result.seconds, step)
        self.writer.add_scalar("evaluation/best_so_far", self.best, step)
        self.writer.flush()  # visible in TensorBoard at once, and kept if the run is killed

    def generation(self, summary: GenerationSummary) -> None:
        import numpy as np
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        from genetic_cnn.report.drawing import draw_genome

        step = summary.generation
        for name in ("max", "min", "mean", "median", "std"):
            value = getattr(summary, {"max": "maximum", "min": "minimum"}.get(name, name))
            self.writer.add_scalar(f"generation/{name}", value, step)
        self.writer.add_scalar("generation/trained", summary.trained, step)
        self.writer.add_scalar("generation/reused", summary.reused, step)
        title = f"generation {step}: best {summary.best_genome} ({100 * summary.maximum:.2f}%)"
        canvas = FigureCanvasAgg(draw_genome(summary.best_genome, title))  # Agg directly: pyplot is left alone
        canvas.draw()
        image = np.asarray(canvas.buffer_rgba())[..., :3]
        self.writer.add_image("best_genome", image, step, dataformats="HWC")
        self.writer.flush()

    def finish(self, best_fitness: float, best_test_accuracy: float | None) -> None:
        metrics = {"hparam/best_fitness": best_fitness}
        if best_test_accuracy is not None:
            metrics["hparam/best_test_accuracy"] = best_test_accuracy
        # What SummaryWriter.add_hparams does, without needing this (possibly closed) writer: the
        # experiment, session start and end, and the metrics as scalars, in the hparams folder.
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        experiment, start, end = hparams(hyperparameters(self.config), metrics)
        with SummaryWriter(str(self.folder / HPARAMS_RUN)) as writer:
            assert writer.file_writer is not None
            for event in (experiment, start, end):
                writer.file_writer.add_summary(event)
            for name, value in metrics.items():
                writer.add_scalar(name, value)

    def close(self) -> None:
        self.writer.close()
