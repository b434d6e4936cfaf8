"""Final training of a found genome: the full training set, several seeds, test accuracy, exports.

``genetic-cnn train GENOME --preset cifar10-large --augment --seeds 3 --out final/`` (Python:
``train_final``) trains the network the genome encodes from scratch on the FULL training set (the
search's training and validation splits together: nothing is held out, no choice is made on the
result), measures it once on the test set, and repeats for each seed. The report is the test
accuracy per seed and its mean ± std (sample standard deviation, 0 for one seed).

Schedule: ``config.train`` (the preset's defaults, the paper's sections 4.1 and 4.2, unless the config says
otherwise). ``--epochs N`` rescales it to N epochs in total, keeping the proportions of the
phases: phase boundaries are scaled and rounded, phases left with no epoch are dropped
(``scale_schedule``; the step scheduler's ``step_epochs`` is scaled alike). With no held-out split
the plateau scheduler watches the training loss, and ``train.early_stopping`` is not used.

Augmentation (``--augment``): the standard CIFAR recipe, random crop with zero padding (4 pixels
for 32x32 images, ``augment_padding``) and, on CIFAR-10 and CIFAR-100 only, a random horizontal flip (digits are
not mirror-symmetric). It runs on whole batches of tensors on the device, seeded per training seed.
Padding is in normalized units, so it pads with the training set's mean colour.

Files written to ``out`` for each seed ``k``: ``seed{k}.pt`` (the ``state_dict``) and
``seed{k}.torchscript.pt`` (an inference export traced in eval mode; ``torch.jit.load(path)``
works without this package, and the loaded module has ``genome`` and ``preset`` attributes and a
``genetic_cnn.json`` extra file with the network, dataset normalization and accuracy); and one
``results.json`` for the whole run. ``genetic_cnn.nn.saved.load_trained(path)`` loads either kind of file.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genetic_cnn.config import Config, ConfigError, TrainConfig
from genetic_cnn.errors import UserError
from genetic_cnn.nn.saved import RESULTS, check_onnx_exporter, save_trained
from genetic_cnn.progress import bar as progress_bar
from genetic_cnn.space.genome import parse_genome
from genetic_cnn.tools.inputs import preset_for_data

if TYPE_CHECKING:  # torch is imported only when training or loading, so the CLI starts fast
    import torch
    from torch import nn

    from genetic_cnn.data.datasets import Split
    from genetic_cnn.space.genome import Genome

FLIP_DATASETS = ("cifar10", "cifar100")
"""Datasets whose images may be mirrored left-right by augmentation (not digits, house numbers, or
a user's images, of which we cannot know whether a mirror image keeps its class)."""

Echo = Callable[[str], None]


@dataclass(frozen=True)
class FinalResult:
    genome: str
    preset: str
    dataset: str
    seeds: tuple[int, ...]
    accuracies: tuple[float, ...]
    """Test accuracy of each seed, in [0, 1]."""
    mean: float
    std: float
    """Sample standard deviation over seeds (0 for a single seed)."""
    epochs: int
    schedule: tuple[tuple[int, float], ...]
    augment: bool
    train_images: int
    test_images: int
    files: tuple[dict[str, str], ...]
    """Per seed: ``weights`` (state dict) and ``torchscript`` paths, and ``onnx`` when asked for."""
    out: str
    """The folder holding the files and ``results.json``."""
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))  # tuples to lists


# --------------------------------------------------------------------------------- schedule
def scale_schedule(train: TrainConfig, epochs: int) -> TrainConfig:
    """``train`` with its schedule rescaled to ``epochs`` in total, the phases kept in proportion.

    The cumulative phase boundaries are scaled by ``epochs / total`` and rounded half up; phases
    left with no epoch are dropped. E.g. the CIFAR schedule 120/60/40/20 (240 epochs) becomes
    12/6/4/2 for ``epochs=24``, and MNIST's 20/4/1 becomes 4/1 for ``epochs=5``.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"--epochs {epochs!r}: the total number of epochs must be a whole number of at least 1")
    total = sum(count for count, _ in train.schedule)
    if epochs == total:
        return train
    schedule: list[tuple[int, float]] = []
    done, cumulative = 0, 0
    for count, rate in train.schedule:
        cumulative += count
        boundary = math.floor(cumulative * epochs / total + 0.5)
        if boundary > done:
            schedule.append((boundary - done, rate))
            done = boundary
    step_epochs = max(1, math.floor(train.step_epochs * epochs / total + 0.5))
    return replace(train, schedule=tuple(schedule), step_epochs=step_epochs)


# --------------------------------------------------------------------------------- training
def train_full(
    model: nn.Module,
    split: Split,
    config: TrainConfig,
    *,
    seed: int,
    device: torch.device | str = "cpu",
    augment: bool = False,
    padding: int = 4,
    flip: bool = True,
    on_epoch: Callable[[int, float], None] | None = None,
    channels_last: bool = True,
) -> float:
    """Train ``model`` in place on every image of ``split`` with ``config``'s optimizer and schedule.

    ``train.fit`` with no held-out split (the plateau scheduler watches the training loss) and, with
    ``augment``, random crops and flips seeded by ``seed``. Returns the last epoch's mean training
    loss; raises ``UserError`` when the loss becomes NaN or infinite. ``on_epoch(epoch, loss)`` is
    called after each epoch (for a progress bar).
    """
    import torch

    from genetic_cnn.data.datasets import augment_batch
    from genetic_cnn.nn.train import fit

    if len(split) == 0:
        raise UserError("the training set is empty; check data.subset")
    crops = torch.Generator(device=torch.device(device)).manual_seed(seed)
    augmentation = (lambda batch: augment_batch(batch, crops, padding, flip)) if augment else None
    result = fit(
        model, split, config, seed=seed, device=device, augment=augmentation, on_epoch=on_epoch,
        channels_last=channels_last,
    )  # fmt: skip
    if result.diverged:
        raise UserError(
            f"training diverged in epoch {result.epochs} (loss {result.train_loss}); lower the learning rates "
            "with --set train.schedule=[[epochs, rate], ...] (genetic-cnn lr-find suggests one)"
        )
    return result.train_loss


def full_training_split(train: Split, validation: Split) -> Split:
    """The search's training and validation splits as one (the full training set)."""
    import torch

    from genetic_cnn.data.datasets import Split

    return Split(torch.cat([train.images, validation.images]), torch.cat([train.labels, validation.labels]))


def train_final(
    genome: Genome | str,
    config: Config,
    seeds: int | Sequence[int] = 1,
    augment: bool = False,
    out: str | Path | None = None,
    *,
    epochs: int | None = None,
    device: str | None = None,
    progress: bool = False,
    echo: Echo | None = None,
    force: bool = False,
    onnx: bool = False,
) -> FinalResult:
    """Train ``genome`` on ``config``'s full training set once per seed; test it; save the models.

    ``seeds``: a count (seeds ``run.seed``, ``run.seed + 1``, ...) or the seeds themselves.
    ``epochs``: rescale ``config.train``'s schedule to this many epochs (``scale_schedule``).
    ``out``: folder for the weights, TorchScript exports and ``results.json`` (default
    ``runs/final-<preset>-<time>``); files already there are refused unless ``force``. ``echo``
    receives one line per seed. ``onnx``: also ``seedK.onnx`` beside each TorchScript file.
    """
    started = time.perf_counter()
    seed_list = _seed_list(seeds, config.run.seed)
    train_config = scale_schedule(config.train, epochs) if epochs is not None else config.train
    configured = config.preset()
    parsed = parse_genome(genome, configured.nodes, configured.name)  # fail fast, before importing torch or reading data
    if onnx:
        check_onnx_exporter()

    import torch

    from genetic_cnn.data.datasets import augment_padding, load_datasets
    from genetic_cnn.nn.device import prepare_process, resolve_device
    from genetic_cnn.nn.network import build_network
    from genetic_cnn.nn.train import evaluate_model

    folder = Path(out) if out is not None else _default_folder(config.preset().name)
    existing = [name for name in output_names(seed_list, onnx) if (folder / name).exists()]
    if existing and not force:  # refused before the data are read (and a folder's decoded images cached)
        raise UserError(
            f"--out {folder} already holds {', '.join(existing[:3])}{', ...' if len(existing) > 3 else ''}; "
            "choose another folder or pass --force to overwrite them"
        )
    datasets = load_datasets(config.data, seed=config.run.seed, accept=lambda data: preset_for_data(config, data))
    preset = preset_for_data(config, datasets)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create output folder {folder}: {error.strerror}; choose another --out") from None
    full = full_training_split(datasets.train, datasets.validation)
    padding, flip = augment_padding(datasets.input_shape[1]), datasets.name in FLIP_DATASETS
    device_ = resolve_device(device or config.run.device)
    prepare_process(config.run, device_)
    total = sum(count for count, _ in train_config.schedule)
    say: Echo = echo or (lambda line: None)

    bar = progress_bar(total=total * len(seed_list), unit="epoch", disable=not progress)
    accuracies: list[float] = []
    files: list[dict[str, str]] = []
    for seed in seed_list:
        bar.set_description(f"seed {seed}")
        torch.manual_seed(seed)  # the initial weights
        model = build_network(parsed, preset)
        train_full(
            model, full, train_config, seed=seed, device=device_, augment=augment, padding=padding, flip=flip,
            on_epoch=lambda _, loss: _advance_bar(bar, loss), channels_last=config.run.channels_last,
        )  # fmt: skip
        accuracy, _ = evaluate_model(
            model, datasets.test, train_config.eval_batch_size, device_, channels_last=config.run.channels_last
        )
        accuracies.append(accuracy)
        metadata = {
            "genome": str(parsed), "preset": preset.name, "network": _plain(asdict(preset)), "seed": seed,
            "dataset": datasets.name, "normalization": {"mean": list(datasets.mean), "std": list(datasets.std)},
            "test_accuracy": accuracy,
        }  # fmt: skip
        files.append(save_trained(model.cpu(), folder / f"seed{seed}", metadata, onnx=onnx))
        say(f"seed {seed}: test accuracy {100 * accuracy:.2f}%  ({files[-1]['torchscript']})")
        # Rewritten after every seed, so the seeds done so far are described even if a later one is stopped.
        result = FinalResult(
            genome=str(parsed), preset=preset.name, dataset=datasets.name,
            seeds=tuple(seed_list[: len(accuracies)]), accuracies=tuple(accuracies),
            mean=statistics.fmean(accuracies), std=statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            epochs=total, schedule=train_config.schedule, augment=augment, train_images=len(full),
            test_images=len(datasets.test), files=tuple(files), out=str(folder),
            seconds=time.perf_counter() - started,
        )  # fmt: skip
        record = result.to_dict() | {
            "network": _plain(asdict(preset)),
            "normalization": {"mean": list(datasets.mean), "std": list(datasets.std)},
            "augmentation": {"padding": padding, "flip": flip} if augment else None,
            "config": config.to_dict() | {"train": _plain(asdict(train_config))},
        }
        (folder / RESULTS).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    bar.close()
    return result


# --------------------------------------------------------------------------------- helpers
def output_names(seeds: Sequence[int], onnx: bool = False) -> list[str]:
    """The files ``train_final`` writes into its folder for ``seeds``."""
    suffixes = (".pt", ".torchscript.pt", ".onnx") if onnx else (".pt", ".torchscript.pt")
    return [f"seed{seed}{suffix}" for seed in seeds for suffix in suffixes] + [RESULTS]


def _seed_list(seeds: int | Sequence[int], base: int) -> list[int]:
    if isinstance(seeds, bool):
        raise UserError(f"seeds = {seeds!r} must be a count or a list of seeds")
    if isinstance(seeds, int):
        if seeds < 1:
            raise UserError(f"--seeds {seeds}: train at least one seed")
        return [base + index for index in range(seeds)]
    seed_list = [int(seed) for seed in seeds]
    if not seed_list or any(seed < 0 for seed in seed_list):
        raise UserError(f"seeds {seed_list} must be a non-empty list of seeds >= 0")
    return seed_list


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _advance_bar(bar: Any, loss: float) -> None:
    bar.update(1)
    bar.set_postfix(loss=f"{loss:.4f}")


def _default_folder(preset: str) -> Path:
    return Path("runs") / f"final-{preset}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
