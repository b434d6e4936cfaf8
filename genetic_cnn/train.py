"""Train one network from scratch and measure it; knows nothing about genomes.

Data stay as tensors on the device; every epoch shuffles with a ``torch.Generator`` seeded from the
seed and walks index slices, with no DataLoader, so the same model, data and seed give bit-identical
results on CPU. Losses are summed as tensors and read once per epoch, so a GPU is not made to wait
for the host after every batch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

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
from tqdm import tqdm

from genetic_cnn.config import TrainConfig
from genetic_cnn.data import Split

Scheduler = LRScheduler | ReduceLROnPlateau

# On a GPU, checking the loss for NaN forces a host sync; do it every so many batches (and at the
# end of each epoch, where the summed loss also carries any NaN). On CPU it costs nothing.
GPU_DIVERGENCE_CHECK_EVERY = 50


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
    """The rate of each epoch as ``train_model`` uses it (plateau: given the epochs' validation losses)."""
    optimizer = make_optimizer([nn.Parameter(torch.zeros(1))], config)
    scheduler = make_scheduler(optimizer, config)
    rates = []
    for epoch in range(total_epochs(config)):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradients, so nothing moves; it keeps the scheduler's call-order check quiet
        _advance(scheduler, validation_losses[epoch] if validation_losses is not None else None)
    return rates


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
) -> TrainResult:
    """Train ``model`` in place with ``config``'s optimizer and schedule; measure it on ``validation``.

    ``batch_size`` overrides ``config.batch_size`` (a caller retries at half the batch after running
    out of GPU memory).

    ``channels_last`` (the default) converts the model and the images to the channels-last memory
    format and leaves the model in it: oneDNN's and cuDNN's convolutions are faster that way
    (benchmarks/levers.py). A run stays bit-identical for a seed; against ``channels_last=False``
    the numbers differ within float rounding (tests/test_speed_equivalence.py).
    """
    started = time.perf_counter()
    torch.manual_seed(seed)  # dropout and any other randomness inside the model
    device = torch.device(device)
    batch = batch_size or config.batch_size
    model.to(device)
    images, labels = train.images.to(device), train.labels.to(device)
    val_images, val_labels = validation.images.to(device), validation.labels.to(device)
    if channels_last:
        images, val_images = use_channels_last(model, images, val_images)
    size = len(labels)
    if size == 0 or len(val_labels) == 0:
        raise ValueError("train_model needs non-empty training and validation splits")

    optimizer = make_optimizer(model.parameters(), config)
    scheduler = make_scheduler(optimizer, config)
    shuffle = torch.Generator().manual_seed(seed)  # CPU generator: the same order on every device
    check_every = 1 if device.type == "cpu" else GPU_DIVERGENCE_CHECK_EVERY
    each_epoch = needs_validation_each_epoch(config)
    bounds = batch_bounds(size, batch)

    best_loss, stale = math.inf, 0
    measured: tuple[float, float] | None = None  # (accuracy, loss) of the current weights
    train_loss, epochs_run, diverged = math.nan, 0, False
    bar = tqdm(range(total_epochs(config)), desc="train", leave=False, disable=not progress)
    for _ in bar:
        model.train()
        order = torch.randperm(size, generator=shuffle).to(device)
        total = torch.zeros((), device=device)
        for step, (start, stop) in enumerate(bounds):
            index = order[start:stop]
            loss = F.cross_entropy(model(images[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(index)
            if step % check_every == 0 and not torch.isfinite(loss):
                diverged = True
                break
        epochs_run += 1
        train_loss = float(total) / size  # on divergence only a part was summed; it is NaN/inf anyway
        diverged = diverged or not math.isfinite(train_loss)
        measured = None
        if diverged:
            break
        validation_loss = None
        if each_epoch:
            measured = _evaluate(model, val_images, val_labels, config.eval_batch_size)
            validation_loss = measured[1]
        bar.set_postfix(loss=f"{train_loss:.4f}", **({"val": f"{validation_loss:.4f}"} if each_epoch else {}))
        _advance(scheduler, validation_loss)
        if config.early_stopping and validation_loss is not None:
            if validation_loss < best_loss:
                best_loss, stale = validation_loss, 0
            else:
                stale += 1
                if stale >= config.early_stopping:
                    break
    bar.close()

    accuracy, validation_loss = measured or _evaluate(model, val_images, val_labels, config.eval_batch_size)
    return TrainResult(accuracy, validation_loss, train_loss, epochs_run, diverged, time.perf_counter() - started)


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
