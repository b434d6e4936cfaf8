"""One-shot fitness (``evaluation.method = "one-shot"``): a supernet trained once per run, paths measured.

``prepare`` trains the run's supernet (``genetic_cnn.supernet``) on the training split with
``evaluation.supernet_schedule`` and ``train``'s optimizer, checkpointing every epoch under
``RUN/supernet/`` so that a killed run resumes from the last epoch and ends with the same weights
(on CPU). An evaluation then costs forward passes only: the architecture's path (its
``representative`` genome, so that equivalent strings get one fitness) has its batch-norm
statistics recomputed on ``evaluation.calibration_images`` training images and is measured on the
validation split. The result depends only on the architecture key, so each key is computed once
per run and kept in ``RUN/supernet/fitness.db``, shared by all workers. One-shot evaluations
measure no test accuracy: retrain a found genome standalone with ``genetic-cnn train``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from genetic_cnn.config import Config
from genetic_cnn.data import Datasets, Split, load_datasets
from genetic_cnn.device import prepare_process, resolve_device
from genetic_cnn.errors import UserError
from genetic_cnn.genome import Genome
from genetic_cnn.graph import architecture_key, representative
from genetic_cnn.records import FAILED, OK, EvaluationResult, EvaluationTask
from genetic_cnn.supernet import SuperNet, recalibrated
from genetic_cnn.train import evaluate_model, fit, use_channels_last

SUPERNET_FOLDER = "supernet"
CHECKPOINT = "checkpoint.pt"
WEIGHTS = "weights.pt"
EPOCHS_LOG = "epochs.jsonl"
FITNESS_DB = "fitness.db"


def supernet_folder(config: Config) -> Path:
    if not config.run.out:
        raise UserError("one-shot fitness keeps its supernet in the run folder; set run.out (or --out)")
    return Path(config.run.out) / SUPERNET_FOLDER


@dataclass(frozen=True)
class FileCheckpoint:
    """``fit``'s epoch checkpoint as one file, replaced atomically."""

    path: Path

    def load(self) -> dict[str, Any] | None:
        return torch.load(self.path, weights_only=False) if self.path.is_file() else None

    def save(self, state: dict[str, Any]) -> None:
        _save_atomically(state, self.path)


def _save_atomically(state: Any, path: Path) -> None:
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)  # a kill while saving leaves the previous file whole


def supernet_training(config: Config) -> dict[str, Any]:
    """What the supernet's training did: epochs, seconds and training loss per epoch (from its log)."""
    log = supernet_folder(config) / EPOCHS_LOG
    epochs: dict[int, dict[str, Any]] = {}
    if log.is_file():
        for line in log.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            epochs[record["epoch"]] = record  # an epoch run again after a kill counts once, as it ended
    rows = [epochs[epoch] for epoch in sorted(epochs)]
    return {"epochs": len(rows), "seconds": sum(row["seconds"] for row in rows), "per_epoch": rows}


def prepare(config: Config, progress: bool, echo: Callable[[str], None]) -> None:
    """Train the run's supernet, or finish training it; nothing when its weights exist."""
    if not (supernet_folder(config) / WEIGHTS).is_file():
        prepare_with(config, load_datasets(config.data, seed=config.run.seed), progress, echo)


def prepare_with(config: Config, datasets: Datasets, progress: bool, echo: Callable[[str], None]) -> None:
    """``prepare`` on datasets already loaded."""
    folder = supernet_folder(config)
    if (folder / WEIGHTS).is_file():
        return
    folder.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.run.device)
    prepare_process(config.run, device)
    supernet = new_supernet(config, datasets)
    schedule = replace(config.train, schedule=config.evaluation.supernet_schedule)
    total = sum(epochs for epochs, _ in schedule.schedule)
    started = time.perf_counter()

    def log_epoch(epoch: int, loss: float) -> None:
        nonlocal started
        seconds = time.perf_counter() - started
        with (folder / EPOCHS_LOG).open("a", encoding="utf-8") as log:
            log.write(json.dumps({"epoch": epoch, "train_loss": loss, "seconds": seconds}) + "\n")
        echo(f"supernet epoch {epoch + 1}/{total}: training loss {loss:.4f} ({seconds:.0f} s)")
        started = time.perf_counter()

    echo(f"training the one-shot supernet: {total} epochs on {len(datasets.train)} images")
    result = fit(
        supernet, datasets.train, schedule, seed=config.run.seed, device=device,
        channels_last=config.run.channels_last, on_epoch=log_epoch, progress=progress,
        checkpoint=FileCheckpoint(folder / CHECKPOINT),
    )  # fmt: skip
    if result.diverged:
        raise UserError(
            "the one-shot supernet's training loss became NaN or infinite; lower "
            "evaluation.supernet_schedule's learning rates"
        )
    _save_atomically(supernet.state_dict(), folder / WEIGHTS)
    (folder / CHECKPOINT).unlink(missing_ok=True)  # the weights say everything the checkpoint did


def new_supernet(config: Config, datasets: Datasets) -> SuperNet:
    """The run's supernet before training: its weights and its path sampler seeded by ``run.seed``."""
    preset = config.preset().for_input(datasets.input_shape, datasets.num_classes)
    torch.manual_seed(config.run.seed)
    return SuperNet(preset, sampling_seed=config.run.seed, sampling=config.evaluation.supernet_sampling)


class FitnessCache:
    """Architecture key -> one-shot (accuracy, loss), in SQLite so that all workers of a run share it.
    The first result stored for a key is the one every worker returns."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, timeout=60, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS fitness (key TEXT PRIMARY KEY, accuracy REAL, loss REAL)")

    def get(self, key: str) -> tuple[float, float] | None:
        row = self.db.execute("SELECT accuracy, loss FROM fitness WHERE key = ?", (key,)).fetchone()
        return None if row is None else (row[0], row[1])

    def put(self, key: str, accuracy: float, loss: float) -> tuple[float, float]:
        self.db.execute("INSERT OR IGNORE INTO fitness VALUES (?, ?, ?)", (key, accuracy, loss))
        stored = self.get(key)
        assert stored is not None
        return stored


@dataclass
class OneShotEvaluator:
    """Measures paths of the run's trained supernet; holds the datasets and the weights once."""

    config: Config
    datasets: Datasets
    device: torch.device
    supernet: SuperNet = field(init=False)
    cache: FitnessCache = field(init=False)

    def __post_init__(self) -> None:
        prepare_process(self.config.run, self.device)
        folder = supernet_folder(self.config)
        if not (folder / WEIGHTS).is_file():
            raise UserError(f"{folder / WEIGHTS} is missing: the run's supernet was not trained (resume the run)")
        self.supernet = new_supernet(self.config, self.datasets)
        self.supernet.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=False))
        self.supernet.to(self.device)
        self.validation = _on_device(self.datasets.validation, self.device)
        calibration = _calibration_split(self.datasets.train, self.config.evaluation.calibration_images, self.config.run.seed)
        self.calibration = _on_device(calibration, self.device).images
        if self.config.run.channels_last:
            (images,) = use_channels_last(self.supernet, self.validation.images)
            self.validation = Split(images, self.validation.labels)
            (self.calibration,) = use_channels_last(self.supernet, self.calibration)
        self.cache = FitnessCache(folder / FITNESS_DB)
        self.first_stages = FirstStageCache(self.supernet, self.calibration, self.validation.images,
                                            self.config.train.eval_batch_size)  # fmt: skip

    def evaluate(self, task: EvaluationTask) -> EvaluationResult:
        start = time.perf_counter()
        nodes = self.supernet.preset.nodes
        key = ""
        try:
            key = architecture_key(Genome.from_string(task.genome, nodes=nodes))
            measured = self.cache.get(key)
            if measured is None:
                measured = self.cache.put(key, *self.measure(representative(key, nodes)))
        except Exception as error:
            message = f"{type(error).__name__}: {error}".strip()
            return EvaluationResult(
                task.generation, task.slot, task.genome, key, task.seed, FAILED, seconds=time.perf_counter() - start,
                error=message.splitlines()[0][:500], extra={"traceback": traceback.format_exc(limit=5)},
            )  # fmt: skip
        accuracy, loss = measured
        return EvaluationResult(
            task.generation, task.slot, task.genome, key, task.seed, OK, accuracy=accuracy, loss=loss,
            seconds=time.perf_counter() - start,
        )  # fmt: skip

    def measure(self, genome: Genome) -> tuple[float, float]:
        """(accuracy, loss) of ``genome``'s path on the validation split, its batch norms recalibrated.

        Exactly what recalibrating the whole path and evaluating it computes, but the first stage's
        outputs are kept per first-stage string (``FirstStageCache``): a space has few distinct first
        stages (6 for the MNIST preset's 3 nodes), and the first stage's batch norms depend on
        nothing after it, so only the later stages and the head run for each architecture."""
        supernet, batch = self.supernet.use(genome).eval(), self.config.train.eval_batch_size
        calibration, validation = self.first_stages.outputs(genome)
        recalibrated(supernet.batch_norms(genome, start=1), lambda x: supernet.run_stages(genome, x, start=1), calibration, batch)
        later = PathAfterFirstStage(supernet, genome)
        return evaluate_model(later, Split(validation, self.validation.labels), batch, self.device, channels_last=False)


FIRST_STAGE_CACHE_BYTES = 2 * 1024**3
"""At most this much memory per evaluator holds first-stage outputs (the MNIST preset's are 124 MB for
1,000 calibration and 10,000 validation images, so all 6 first stages fit)."""


class FirstStageCache:
    """A path's first-stage outputs (after pooling) on the calibration and validation images, per
    first-stage string, the least recently used dropped beyond ``FIRST_STAGE_CACHE_BYTES``.

    On the calibration images the first stage's batch norms normalize each batch with its own
    statistics while they recompute their running statistics, exactly as when the whole path is
    recalibrated; the validation images then pass in eval mode. So the outputs are the ones the
    whole path computes, and the later stages can start from them."""

    def __init__(self, supernet: SuperNet, calibration: torch.Tensor, validation: torch.Tensor, batch_size: int) -> None:
        self.supernet, self.calibration, self.validation, self.batch_size = supernet, calibration, validation, batch_size
        self._outputs: OrderedDict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    def outputs(self, genome: Genome) -> tuple[torch.Tensor, torch.Tensor]:
        """(calibration, validation) outputs of ``genome``'s first stage."""
        first = genome.stages[0]
        if first in self._outputs:
            self._outputs.move_to_end(first)
            return self._outputs[first]
        supernet, batch = self.supernet.use(genome).eval(), self.batch_size
        first_stage = lambda x: supernet.run_stages(genome, x, stop=1)  # noqa: E731
        calibration = recalibrated(supernet.batch_norms(genome, stop=1), first_stage, self.calibration, batch)
        with torch.inference_mode():
            validation = torch.cat([first_stage(self.validation[i : i + batch]) for i in range(0, len(self.validation), batch)])
        self._outputs[first] = (calibration, validation)
        size = calibration.element_size() * calibration.nelement() + validation.element_size() * validation.nelement()
        while len(self._outputs) > max(1, FIRST_STAGE_CACHE_BYTES // size):
            self._outputs.popitem(last=False)
        return calibration, validation


class PathAfterFirstStage(torch.nn.Module):
    """``genome``'s path from the second stage on, with the head: what follows a cached first stage."""

    def __init__(self, supernet: SuperNet, genome: Genome) -> None:
        super().__init__()
        self.supernet, self.genome = supernet, genome

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.supernet.classifier(self.supernet.run_stages(self.genome, x, start=1))


def _calibration_split(train: Split, count: int, seed: int) -> Split:
    """A seeded sample of the training split (sorted, for ordered memory reads)."""
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[: min(count, len(train))]
    index = order.sort().values
    return Split(train.images[index], train.labels[index])


def _on_device(split: Split, device: torch.device) -> Split:
    return Split(split.images.to(device), split.labels.to(device))


def make_evaluator(config: Config, device: str | None, progress: bool, datasets: Datasets | None) -> OneShotEvaluator:
    datasets = datasets or load_datasets(config.data, seed=config.run.seed)
    return OneShotEvaluator(config, datasets, resolve_device(device or config.run.device))
