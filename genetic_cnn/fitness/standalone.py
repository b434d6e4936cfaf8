"""Standalone fitness (the paper): build the network, train it from scratch, measure it. Failures become states."""

from __future__ import annotations

import time
import traceback
from dataclasses import astuple, dataclass

import torch

from genetic_cnn.config import Config
from genetic_cnn.data.datasets import Datasets, load_datasets
from genetic_cnn.nn.device import is_out_of_memory, prepare_process, resolve_device
from genetic_cnn.nn.network import build_network
from genetic_cnn.nn.train import evaluate_model, train_model
from genetic_cnn.search.records import CURVE, DIVERGED, FAILED, OK, EvaluationResult, EvaluationTask
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.graph import architecture_key
from genetic_cnn.space.presets import NetworkPreset


@dataclass
class Evaluator:
    """Holds the datasets (loaded once) and trains one genome at a time.

    ``progress`` shows a bar over the epochs of the current training.
    """

    config: Config
    datasets: Datasets
    preset: NetworkPreset
    device: torch.device
    progress: bool = False

    def __post_init__(self) -> None:
        prepare_process(self.config.run, self.device)

    @classmethod
    def from_config(
        cls, config: Config, device: str | None = None, progress: bool = False, datasets: Datasets | None = None
    ) -> Evaluator:
        datasets = datasets or load_datasets(config.data, seed=config.run.seed)
        preset = config.preset().for_input(datasets.input_shape, datasets.num_classes)
        return cls(config, datasets, preset, resolve_device(device or config.run.device), progress)

    def evaluate(self, task: EvaluationTask) -> EvaluationResult:
        genome = Genome.from_string(task.genome, nodes=self.preset.nodes)
        start = time.perf_counter()
        batch_size = self.config.train.batch_size
        try:
            try:
                return self._train(task, genome, batch_size, start)
            except Exception as error:
                if not (is_out_of_memory(error) and batch_size > 1):
                    raise
                # One retry at half the batch: a large network may fit where the default did not.
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                batch_size //= 2
                return self._train(task, genome, batch_size, start)
        except Exception as error:
            message = f"{type(error).__name__}: {error}".strip()
            return EvaluationResult(
                task.generation, task.slot, task.genome, architecture_key(genome), task.seed, FAILED,
                seconds=time.perf_counter() - start, error=message.splitlines()[0][:500] if message else "",
                batch_size=batch_size, extra={"traceback": traceback.format_exc(limit=5)},
            )  # fmt: skip

    def _train(self, task: EvaluationTask, genome: Genome, batch_size: int, start: float) -> EvaluationResult:
        torch.manual_seed(task.seed)  # the initial weights depend only on the evaluation's seed
        model = build_network(genome, self.preset).to(self.device)
        result = train_model(
            model, self.datasets.train, self.datasets.validation, self.config.train,
            seed=task.seed, device=self.device, progress=self.progress, batch_size=batch_size,
            channels_last=self.config.run.channels_last, learning_curve=self.config.train.learning_curves,
        )  # fmt: skip
        key = architecture_key(genome)
        extra = {CURVE: [list(astuple(point)) for point in result.curve]}
        if result.diverged:
            return EvaluationResult(
                task.generation, task.slot, task.genome, key, task.seed, DIVERGED,
                accuracy=0.0, train_loss=_finite_or_none(result.train_loss), epochs=result.epochs,
                seconds=time.perf_counter() - start, error="training loss became NaN or infinite",
                batch_size=batch_size, extra=extra,
            )  # fmt: skip
        test_accuracy, _ = evaluate_model(
            model, self.datasets.test, self.config.train.eval_batch_size, self.device,
            channels_last=self.config.run.channels_last,
        )  # fmt: skip
        return EvaluationResult(
            task.generation, task.slot, task.genome, key, task.seed, OK,
            accuracy=result.accuracy, test_accuracy=test_accuracy, loss=result.loss,
            train_loss=result.train_loss, epochs=result.epochs, seconds=time.perf_counter() - start,
            batch_size=batch_size, extra=extra,
        )  # fmt: skip


def prepare(config: Config, progress: bool, echo: object) -> None:
    """Standalone fitness needs nothing before the first evaluation."""


def make_evaluator(config: Config, device: str | None, progress: bool, datasets: Datasets | None) -> Evaluator:
    return Evaluator.from_config(config, device=device, progress=progress, datasets=datasets)


def _finite_or_none(value: float) -> float | None:
    return value if value == value and abs(value) != float("inf") else None
