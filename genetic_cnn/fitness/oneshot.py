"""One-shot fitness (``evaluation.method = "one-shot"``): a supernet trained once per run, paths measured.

``prepare`` trains the run's supernet (``genetic_cnn.fitness.supernet``) on the training split with
``evaluation.supernet_schedule`` and ``train``'s optimizer, checkpointing every epoch under
``RUN/supernet/`` so that a killed run resumes from the last epoch and ends with the same weights
(on CPU). An evaluation then costs forward passes only: the architecture's path (its
``representative`` genome, so that equivalent strings get one fitness) has its batch-norm
statistics recomputed on ``evaluation.calibration_images`` training images and is measured on the
validation split. Nodes that an earlier architecture reached through the same sub-graph are read
from memory instead (``NodeMemo``: same values, a fraction of the convolutions). The result depends
only on the architecture key, so each key is computed once per run and kept in
``RUN/supernet/fitness.db``, shared by all workers. One-shot evaluations
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
from torch import nn

from genetic_cnn.config import Config
from genetic_cnn.data.datasets import Datasets, Split, load_datasets
from genetic_cnn.errors import UserError
from genetic_cnn.fitness.method import EPOCHS_LOG, SUPERNET_FOLDER, supernet_log
from genetic_cnn.fitness.supernet import SuperNet, recalibrated
from genetic_cnn.nn.device import prepare_process, resolve_device
from genetic_cnn.nn.train import evaluate_model, fit, use_channels_last
from genetic_cnn.search.records import FAILED, OK, EvaluationResult, EvaluationTask
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.graph import architecture_key, representative

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "weights.pt"
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
        return load_saved(self.path, "delete it and resume: the supernet's training starts again from its first epoch") \
            if self.path.is_file() else None  # fmt: skip

    def save(self, state: dict[str, Any]) -> None:
        _save_atomically(state, self.path)


def load_saved(path: Path, fix: str) -> Any:
    """``torch.load`` of a file the run wrote; a damaged one (cut short by a full disk, overwritten)
    is the user's to remove, named with ``fix``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError... for a damaged file
        reason = f"{type(error).__name__}: {error}".splitlines()[0].split(". ")[0][:160]  # torch's first sentence
        raise UserError(f"{path} is damaged ({reason}); {fix}") from None


WEIGHTS_FIX = "delete it and resume: the supernet is trained again (the same weights on CPU)"


def _save_atomically(state: Any, path: Path) -> None:
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)  # a kill while saving leaves the previous file whole


def supernet_training(config: Config) -> dict[str, Any]:
    """What the supernet's training did: epochs, seconds and training loss per epoch (from its log)."""
    return supernet_log(supernet_folder(config))


def check_stored(config: Config) -> None:
    """Refuse a run folder whose supernet files are damaged, before a resume writes anything: a
    truncated checkpoint or weights file, a fitness cache that is not one, a file in the folder's place."""
    folder = supernet_folder(config)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise UserError(f"{folder} is a file, not the run's supernet folder; move it away, then resume the run")
    if (folder / WEIGHTS).is_file():
        load_saved(folder / WEIGHTS, WEIGHTS_FIX)
    elif (folder / CHECKPOINT).is_file():
        FileCheckpoint(folder / CHECKPOINT).load()
    cache = folder / FITNESS_DB
    if cache.exists():
        from genetic_cnn.history.store import sqlite_uri

        reader = sqlite3.connect(sqlite_uri(cache, immutable="1"), uri=True)  # reads only: no -shm, no lock
        try:
            reader.execute("SELECT key, accuracy, loss FROM fitness LIMIT 1").fetchall()
        except sqlite3.DatabaseError as error:
            raise UserError(
                f"{cache} is not the run's fitness cache ({error}); delete it and resume the run: the "
                "architectures are measured again on the same supernet, with the same results"
            ) from None
        finally:
            reader.close()


def prepare(config: Config, progress: bool, echo: Callable[[str], None]) -> None:
    """Train the run's supernet, or finish training it; nothing when its weights exist. Creates the
    run's fitness database too, before any worker opens it."""
    folder = supernet_folder(config)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder} is a file, not the run's supernet folder; move it away, then resume the run")
    if not (folder / WEIGHTS).is_file():
        prepare_with(config, load_datasets(config.data, seed=config.run.seed), progress, echo)
    else:
        load_saved(folder / WEIGHTS, WEIGHTS_FIX)  # damaged weights refused here, not in every worker
    FitnessCache(folder / FITNESS_DB).close()


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
            "the one-shot supernet's training loss became NaN or infinite; start the run again with lower "
            "learning rates in evaluation.supernet_schedule"
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
        # Switching to WAL needs the file to itself and fails at once ("database is locked") while
        # another worker opens it, so ``prepare`` creates it in WAL mode (which persists) before any
        # worker exists, and workers only read the mode.
        try:
            if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("CREATE TABLE IF NOT EXISTS fitness (key TEXT PRIMARY KEY, accuracy REAL, loss REAL)")
            self.db.execute("SELECT key, accuracy, loss FROM fitness LIMIT 1").fetchall()
        except sqlite3.DatabaseError as error:
            self.db.close()
            if "locked" in str(error):
                raise
            raise UserError(
                f"{path} is not the run's fitness cache ({error}); delete it and resume the run: the "
                "architectures are measured again on the same supernet, with the same results"
            ) from None

    def close(self) -> None:
        self.db.close()

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
        self.supernet.load_state_dict(load_saved(folder / WEIGHTS, WEIGHTS_FIX))
        self.supernet.to(self.device)
        self.validation = _on_device(self.datasets.validation, self.device)
        calibration = _calibration_split(self.datasets.train, self.config.evaluation.calibration_images, self.config.run.seed)
        self.calibration = _on_device(calibration, self.device).images
        if self.config.run.channels_last:
            (images,) = use_channels_last(self.supernet, self.validation.images)
            self.validation = Split(images, self.validation.labels)
            (self.calibration,) = use_channels_last(self.supernet, self.calibration)
        self.cache = FitnessCache(folder / FITNESS_DB)
        self.supernet.eval()
        self.memo = NodeMemo(self.supernet, self.calibration, self.validation.images, self.config.train.eval_batch_size)

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
        """(accuracy, loss) of ``genome``'s path on the validation split, its batch norms recalibrated:
        exactly what recalibrating the whole path and evaluating it computes, with the nodes it shares
        with architectures measured before read from ``NodeMemo`` instead of computed again."""
        _, features = self.memo.features(genome)
        head, batch = self.supernet.classifier, self.config.train.eval_batch_size
        return evaluate_model(head, Split(features, self.validation.labels), batch, self.device, channels_last=False)


MEMO_BYTES = 2 * 1024**3
"""At most this much memory per evaluator holds node outputs kept for later architectures (a node of the
MNIST preset's second stage is 141 MB on 1,000 calibration and 10,000 validation images)."""

Outputs = tuple[torch.Tensor, torch.Tensor]
"""A node's (calibration, validation) outputs."""


@dataclass(frozen=True)
class Step:
    """How one value of a path is computed: a node's block over the sum of its sources (in order), or
    the pooling after a stage's output node."""

    stage: int
    label: int | None
    """The node's label in the stage (0 input, K+1 output); None for the pooling."""
    sources: tuple[int, ...]
    """Provenance ids of the values it reads."""


IMAGES = 0
"""The provenance id of the images themselves."""


class NodeMemo:
    """Every node's outputs on the calibration and validation images, kept per *provenance*: the node's
    label and, recursively, the provenances of the nodes it sums (the images at the bottom). Two paths
    that reach a node through the same sub-graph compute the same values there — including its batch
    norm's recalibrated statistics, which depend only on what flows into it — so each such node is
    computed once while it stays in memory (least recently used dropped beyond ``budget`` bytes).

    Architectures in the order of their keys share long prefixes (a first stage, then the early nodes
    of the second), so a tabulation computes only a few of each architecture's nodes (152 of the 553
    values 40 MNIST architectures use, as one of two workers takes them: ``benchmarks/README.md``).
    The values are exactly what recalibrating and evaluating the whole path computes: every node runs
    over the same batches, in training mode on the calibration images (batch statistics, running
    statistics averaged as ``recalibrated`` does), then in eval mode on the validation images.
    """

    def __init__(self, supernet: SuperNet, calibration: torch.Tensor, validation: torch.Tensor, batch_size: int,
                 budget: int = MEMO_BYTES) -> None:  # fmt: skip
        self.supernet, self.batch_size, self.budget = supernet, batch_size, budget
        self.images: Outputs = (calibration, validation)
        self._ids: dict[Step, int] = {}
        self._kept: OrderedDict[int, Outputs] = OrderedDict()
        self._kept_bytes = 0
        self.computed = 0
        """Values computed so far (nodes and poolings); the rest came from memory."""

    def features(self, genome: Genome) -> Outputs:
        """``genome``'s (calibration, validation) outputs after its last stage's pooling: what the head reads."""
        steps: dict[int, Step] = {}
        stage_input = IMAGES
        for stage, (order, inputs) in enumerate(self.supernet.plans(genome)):
            ids: list[int] = []
            for label, sources in zip(order, inputs):
                ids.append(self._id(Step(stage, label, tuple(ids[i] for i in sources) or (stage_input,)), steps))
            stage_input = self._id(Step(stage, None, (ids[-1],)), steps)
        return self._value(stage_input, steps, {IMAGES: self.images})

    def _id(self, step: Step, steps: dict[int, Step]) -> int:
        ident = self._ids.setdefault(step, len(self._ids) + 1)
        steps[ident] = step
        return ident

    def _value(self, ident: int, steps: dict[int, Step], values: dict[int, Outputs]) -> Outputs:
        if ident in values:
            return values[ident]
        if ident in self._kept:
            self._kept.move_to_end(ident)
            values[ident] = self._kept[ident]
            return values[ident]
        step = steps[ident]
        inputs = [self._value(source, steps, values) for source in step.sources]
        values[ident] = self._pool(inputs[0]) if step.label is None else self._node(step, inputs)
        self.computed += 1
        self._keep(ident, values[ident])
        return values[ident]

    def _node(self, step: Step, inputs: list[Outputs]) -> Outputs:
        assert step.label is not None
        block = self.supernet.blocks(step.stage)[step.label]
        calibration, validation = inputs[0]
        for more_calibration, more_validation in inputs[1:]:  # summed in the stage's order, as run_stage does
            calibration, validation = calibration + more_calibration, validation + more_validation
        norms = [module for module in block.modules() if isinstance(module, nn.BatchNorm2d)]
        calibrated = recalibrated(norms, block, calibration, self.batch_size)
        return calibrated, self._batched(block, validation)

    def _pool(self, outputs: Outputs) -> Outputs:
        return self._batched(self.supernet.pool, outputs[0]), self._batched(self.supernet.pool, outputs[1])

    def _batched(self, module: nn.Module, images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            size = self.batch_size
            return torch.cat([module(images[start : start + size]) for start in range(0, len(images), size)])

    def _keep(self, ident: int, outputs: Outputs) -> None:
        size = _bytes(outputs)
        if size > self.budget:
            return
        self._kept[ident] = outputs
        self._kept_bytes += size
        while self._kept_bytes > self.budget:
            _, dropped = self._kept.popitem(last=False)
            self._kept_bytes -= _bytes(dropped)


def _bytes(outputs: Outputs) -> int:
    return sum(tensor.element_size() * tensor.nelement() for tensor in outputs)


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
