"""Train one network and measure it: the package's one training loop (``fit``); knows nothing about genomes.

Data stay as tensors on the device; every epoch shuffles with a ``torch.Generator`` seeded from the
seed and walks index slices, with no DataLoader, so the same model, data and seed give bit-identical
results on CPU. Losses are summed as tensors and read once per epoch, so a GPU is not made to wait
for the host after every batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import SGD, Adam, Optimizer
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LRScheduler,
    ReduceLROnPlateau,
    StepLR,
)

from genetic_cnn.config import TrainConfig
from genetic_cnn.data.datasets import Split
from genetic_cnn.progress import bar as progress_bar

Scheduler = LRScheduler | ReduceLROnPlateau

# On a GPU, checking the loss for NaN forces a host sync; do it every so many batches (and at the
# end of each epoch, where the summed loss also carries any NaN). On CPU it costs nothing.
GPU_DIVERGENCE_CHECK_EVERY = 50


@dataclass(frozen=True)
class EpochPoint:
    """One epoch of a learning curve: its mean training loss, and the validation split measured on the
    weights it ended with (None when that epoch was not validated)."""

    epoch: int
    train_loss: float
    validation_accuracy: float | None = None
    validation_loss: float | None = None


@dataclass(frozen=True)
class TrainResult:
    accuracy: float
    """On the validation split, in [0, 1]."""
    loss: float
    """Mean validation loss."""
    train_loss: float
    """Mean training loss of the last epoch run."""
    epochs: int
    """Epochs actually run; early stopping or divergence may stop sooner than the schedule."""
    diverged: bool
    """A non-finite training loss was seen; training stopped at once."""
    seconds: float
    rates: tuple[float, ...] = ()
    """The learning rate each epoch began with."""
    curve: tuple[EpochPoint, ...] = ()
    """What each completed epoch measured (the learning curve)."""


def total_epochs(config: TrainConfig) -> int:
    return sum(epochs for epochs, _ in config.schedule)


def base_learning_rate(config: TrainConfig) -> float:
    return float(config.schedule[0][1])


def make_optimizer(parameters, config: TrainConfig) -> Optimizer:
    """Adam or SGD (momentum, weight decay) at the base learning rate."""
    lr = base_learning_rate(config)
    if config.optimizer == "sgd":
        return SGD(parameters, lr=lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return Adam(parameters, lr=lr, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}")


def make_scheduler(optimizer: Optimizer, config: TrainConfig) -> Scheduler | None:
    """The per-epoch learning-rate schedule; None when the rate stays constant."""
    if config.scheduler == "piecewise":
        # The paper's phases exactly: epoch e runs at the rate of the phase it falls in.
        rates = [rate for epochs, rate in config.schedule for _ in range(epochs)]
        base = base_learning_rate(config)
        return LambdaLR(optimizer, lambda epoch: rates[min(epoch, len(rates) - 1)] / base)
    if config.scheduler == "step":
        return StepLR(optimizer, step_size=config.step_epochs, gamma=config.gamma)
    if config.scheduler == "exponential":
        return ExponentialLR(optimizer, gamma=config.gamma)
    if config.scheduler == "cosine":
        return CosineAnnealingLR(optimizer, T_max=total_epochs(config))
    if config.scheduler == "plateau":
        if config.gamma >= 1:  # ReduceLROnPlateau rejects factor 1, which would never change the rate
            return None
        return ReduceLROnPlateau(optimizer, mode="min", factor=config.gamma, patience=config.plateau_patience)
    raise ValueError(f"unknown scheduler {config.scheduler!r}")


def needs_validation_each_epoch(config: TrainConfig) -> bool:
    return config.scheduler == "plateau" or config.early_stopping > 0


def _advance(scheduler: Scheduler | None, validation_loss: float | None) -> None:
    """Step the schedule at the end of an epoch; plateau needs that epoch's validation loss."""
    if scheduler is None:
        return
    if isinstance(scheduler, ReduceLROnPlateau):
        assert validation_loss is not None
        scheduler.step(validation_loss)
    else:
        scheduler.step()


def learning_rates(config: TrainConfig, validation_losses: list[float] | None = None) -> list[float]:
    """The rate of each epoch as ``fit`` will use it (plateau: given the epochs' validation losses)."""
    optimizer = make_optimizer([nn.Parameter(torch.zeros(1))], config)
    scheduler = make_scheduler(optimizer, config)
    rates = []
    for epoch in range(total_epochs(config)):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradients, so nothing moves; it keeps the scheduler's call-order check quiet
        _advance(scheduler, validation_losses[epoch] if validation_losses is not None else None)
    return rates


@dataclass(frozen=True)
class FitResult:
    """What one call of ``fit`` did."""

    train_loss: float
    """Mean training loss of the last epoch run (NaN when it diverged or no epoch completed)."""
    epochs: int
    """Epochs begun; early stopping, divergence or ``on_batch`` may stop before the schedule ends."""
    steps: int
    """Optimizer steps taken."""
    diverged: bool
    """A non-finite training loss was seen; training stopped at once."""
    rates: tuple[float, ...]
    """The learning rate each epoch began with, as the optimizer really had it."""
    validation: tuple[float, float] | None
    """(accuracy, loss) on the validation split of the final weights, when measured after the last epoch."""
    curve: tuple[EpochPoint, ...] = ()
    """Each completed epoch's training loss, and its validation accuracy and loss when measured."""


BatchHook = Callable[[int, float], bool]
"""``on_batch(step, loss)``: called with each batch's loss before its update; False stops training."""


class EpochCheckpoint(Protocol):
    """Where ``fit`` keeps its state after every epoch, so that a killed training resumes where it was."""

    def load(self) -> dict[str, Any] | None:
        """The state saved last, or None to start from the beginning."""
        ...

    def save(self, state: dict[str, Any]) -> None:
        """Keep ``state`` (write it atomically: a kill while saving must leave the previous one)."""
        ...


def fit(
    model: nn.Module,
    train: Split,
    config: TrainConfig,
    *,
    seed: int,
    device: torch.device | str = "cpu",
    validation: Split | None = None,
    batch_size: int | None = None,
    channels_last: bool = True,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    step_rates: Sequence[float] | None = None,
    on_batch: BatchHook | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
    progress: bool = False,
    checkpoint: EpochCheckpoint | None = None,
    validate_each_epoch: bool = False,
) -> FitResult:
    """The one training loop: train ``model`` in place on ``train`` with ``config``'s optimizer and schedule.

    Every trainer of the package calls it: the search's (``train_model``), final training and the
    learning-rate range test. Batches are index slices of tensors on the device in an order drawn
    from a CPU generator seeded with ``seed``, so the same model, data and seed give bit-identical
    results on CPU.

    - ``validation``: measured after each epoch when the schedule needs it (plateau, early stopping)
      or ``validate_each_epoch`` asks for it (learning curves); without it the plateau scheduler
      watches the training loss and early stopping is off. Measuring changes nothing in training:
      eval mode, no gradients, no random numbers drawn.
    - ``augment(batch)``: applied to every training batch (e.g. ``data.augment_batch``).
    - ``step_rates``: the learning rate of every step instead of the epoch schedule; training stops
      after ``len(step_rates)`` steps (the range test).
    - ``on_batch``, ``on_epoch(epoch, train_loss)``: callbacks; ``progress`` shows a bar.
    - ``channels_last`` converts the model (left so) and the images to the channels-last memory format.
    - ``checkpoint``: the model, optimizer, schedule and random states are saved after every epoch
      and restored at the start, so a training killed between epochs ends as an uninterrupted one
      (bit-identical on CPU). Not with ``step_rates``.
    """
    torch.manual_seed(seed)  # dropout and any other randomness inside the model
    device = torch.device(device)
    batch = batch_size or config.batch_size
    model.to(device)
    images, labels = train.images.to(device), train.labels.to(device)
    val_images = val_labels = None
    if validation is not None:
        val_images, val_labels = validation.images.to(device), validation.labels.to(device)
        if len(val_labels) == 0:
            raise ValueError("fit needs a non-empty validation split when one is given")
    if channels_last:
        images, *rest = use_channels_last(model, images, *([val_images] if val_images is not None else []))
        val_images = rest[0] if rest else None
    size = len(labels)
    if size == 0:
        raise ValueError("fit needs a non-empty training split")

    optimizer = make_optimizer(model.parameters(), config)
    scheduler = None if step_rates is not None else make_scheduler(optimizer, config)
    shuffle = torch.Generator().manual_seed(seed)  # CPU generator: the same order on every device
    check_every = 1 if device.type == "cpu" else GPU_DIVERGENCE_CHECK_EVERY
    bounds = batch_bounds(size, batch)
    if step_rates is not None:
        epoch_count = math.ceil(len(step_rates) / len(bounds))
        each_epoch = False
    else:
        epoch_count = total_epochs(config)
        each_epoch = val_images is not None and (validate_each_epoch or needs_validation_each_epoch(config))

    best_loss, stale = math.inf, 0
    measured: tuple[float, float] | None = None  # (accuracy, loss) of the current weights
    train_loss, epochs_run, steps, diverged, stopped = math.nan, 0, 0, False, False
    rates: list[float] = []
    curve: list[EpochPoint] = []
    first_epoch = 0
    saved = checkpoint.load() if checkpoint is not None and step_rates is None else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        shuffle.set_state(saved["shuffle"])
        torch.set_rng_state(saved["torch_rng"])
        first_epoch = epochs_run = saved["epochs"]
        train_loss, steps, rates = saved["train_loss"], saved["steps"], list(saved["rates"])
        best_loss, stale = saved["best_loss"], saved["stale"]
        curve = [EpochPoint(*point) for point in saved.get("curve", [])]  # a checkpoint of an older version has none
    bar = progress_bar(total=len(step_rates) if step_rates is not None else epoch_count, desc="train",
                       unit="batch" if step_rates is not None else "epoch", leave=False, disable=not progress,
                       initial=first_epoch)  # fmt: skip
    for epoch in range(first_epoch, epoch_count):
        model.train()
        order = torch.randperm(size, generator=shuffle).to(device)
        total = torch.zeros((), device=device)
        seen = 0
        if step_rates is not None:
            _set_rate(optimizer, step_rates[steps])
        rates.append(float(optimizer.param_groups[0]["lr"]))
        for step, (start, stop) in enumerate(bounds):
            if step_rates is not None:
                if steps == len(step_rates):
                    break
                _set_rate(optimizer, step_rates[steps])
            index = order[start:stop]
            batch_images = images[index]
            if augment is not None:
                batch_images = augment(batch_images)
            loss = F.cross_entropy(model(batch_images), labels[index])
            if on_batch is not None and not on_batch(steps, float(loss.detach())):
                stopped = True
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
            total += loss.detach() * len(index)
            seen += len(index)
            if step_rates is not None:
                bar.update(1)
            if step % check_every == 0 and not torch.isfinite(loss):
                diverged = True
                break
        epochs_run += 1
        train_loss = float(total) / seen if seen else math.nan  # on divergence only a part was summed: NaN/inf
        diverged = diverged or (seen > 0 and not math.isfinite(train_loss))
        measured = None
        if diverged or stopped:
            break
        if on_epoch is not None:
            on_epoch(epoch, train_loss)
        if step_rates is not None:
            continue
        validation_loss = None
        if each_epoch:
            assert val_images is not None and val_labels is not None
            measured = _evaluate(model, val_images, val_labels, config.eval_batch_size)
            validation_loss = measured[1]
        curve.append(EpochPoint(epoch, train_loss, *(measured or (None, None))))
        bar.update(1)
        bar.set_postfix(loss=f"{train_loss:.4f}", **({"val": f"{validation_loss:.4f}"} if each_epoch else {}))
        # Without a held-out split the plateau scheduler watches the training loss.
        plateau_loss = validation_loss if val_images is not None else train_loss
        _advance(scheduler, plateau_loss)
        if config.early_stopping and validation_loss is not None:
            if validation_loss < best_loss:
                best_loss, stale = validation_loss, 0
            else:
                stale += 1
        if checkpoint is not None:
            checkpoint.save({
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "shuffle": shuffle.get_state(), "torch_rng": torch.get_rng_state(), "epochs": epochs_run,
                "train_loss": train_loss, "steps": steps, "rates": rates, "best_loss": best_loss, "stale": stale,
                "curve": [astuple(point) for point in curve],
            })  # fmt: skip
        if config.early_stopping and stale >= config.early_stopping:
            break
    bar.close()
    return FitResult(train_loss, epochs_run, steps, diverged, tuple(rates), measured, tuple(curve))


def _set_rate(optimizer: Optimizer, rate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = rate


def train_model(
    model: nn.Module,
    train: Split,
    validation: Split,
    config: TrainConfig,
    *,
    seed: int,
    device: torch.device | str = "cpu",
    progress: bool = False,
    batch_size: int | None = None,
    channels_last: bool = True,
    learning_curve: bool = True,
) -> TrainResult:
    """The search's training: ``fit`` on ``train``, then the final weights measured on ``validation``.

    ``batch_size`` overrides ``config.batch_size`` (a caller retries at half the batch after running
    out of GPU memory). ``channels_last`` (the default) as in ``fit``: oneDNN's and cuDNN's
    convolutions are faster that way (benchmarks/levers.py); a run stays bit-identical for a seed.
    ``learning_curve``: validate after every epoch, not only after the last (``TrainResult.curve``).
    """
    started = time.perf_counter()
    if len(train) == 0 or len(validation) == 0:
        raise ValueError("train_model needs non-empty training and validation splits")
    fitted = fit(
        model, train, config, seed=seed, device=device, validation=validation, batch_size=batch_size,
        channels_last=channels_last, progress=progress, validate_each_epoch=learning_curve,
    )  # fmt: skip
    accuracy, validation_loss = fitted.validation or evaluate_model(
        model, validation, config.eval_batch_size, device, channels_last=channels_last
    )
    return TrainResult(
        accuracy, validation_loss, fitted.train_loss, fitted.epochs, fitted.diverged,
        time.perf_counter() - started, fitted.rates, fitted.curve,
    )  # fmt: skip


def batch_bounds(size: int, batch: int) -> list[tuple[int, int]]:
    """(start, stop) of each training batch; a last batch of one image joins the one before it,
    because batch normalization cannot train on a single value per channel (e.g. after 1x1 maps)."""
    bounds = [(start, min(start + batch, size)) for start in range(0, size, batch)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], size)]
    return bounds


def evaluate_model(
    model: nn.Module, split: Split, batch_size: int, device: torch.device | str, *, channels_last: bool = True
) -> tuple[float, float]:
    """(accuracy, mean cross-entropy loss) of ``model`` on ``split``, in eval mode.

    ``channels_last`` (the default, see ``train_model``) converts the model and the images first.
    """
    model.to(device)
    images = split.images.to(device)
    if channels_last:
        (images,) = use_channels_last(model, images)
    return _evaluate(model, images, split.labels.to(device), batch_size)


def use_channels_last(model: nn.Module, *batches: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Convert ``model`` in place to the channels-last memory format (before an optimizer takes its
    parameters) and return ``batches`` converted too; tensors that are not (N, C, H, W) stay as they are."""
    model.to(memory_format=torch.channels_last)
    return tuple(batch.contiguous(memory_format=torch.channels_last) if batch.dim() == 4 else batch for batch in batches)


def _evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> tuple[float, float]:
    if len(labels) == 0:
        raise ValueError("cannot evaluate on an empty split")
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=labels.device)
    loss = torch.zeros((), dtype=torch.float64, device=labels.device)
    with torch.inference_mode():
        for start in range(0, len(labels), batch_size):
            outputs = model(images[start : start + batch_size])
            target = labels[start : start + batch_size]
            loss += F.cross_entropy(outputs.float(), target, reduction="sum")
            correct += (outputs.argmax(dim=1) == target).sum()
    return int(correct) / len(labels), float(loss) / len(labels)
