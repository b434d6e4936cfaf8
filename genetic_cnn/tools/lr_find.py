"""Learning-rate range test (L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", 2017).

``genetic-cnn lr-find GENOME --preset mnist --out lr.png`` (Python: ``lr_range_test``) trains the
network for ``steps`` mini-batches while the learning rate grows exponentially from ``start`` to
``end`` (rate of step i: ``start * (end / start) ** (i / (steps - 1))``), with the config's
optimizer, batch size and weight decay.

Smoothing without lag. The batch losses are noisy, so both the stop rule and the curve smooth them
over a window of ``SMOOTH_SHARE`` of the steps (at least 3). While the test runs, a causal
exponential average of that span (bias-corrected as in Adam) stops it once it exceeds 4x its best,
or at a NaN/inf loss: the rate has diverged. The curve that is drawn, and from which everything is
suggested, is a centred moving average of the same width, so it does not trail the batch losses
(an exponential average with beta 0.98 over 200 steps from 1e-7 to 1 lags them by about 1.5
decades and puts the "minimum" where the loss has already blown up).

Suggestions, read off the drawn curve:
- ``suggestion``: the point of steepest descent against log10(lr), searched from the start (past
  the first 5% of the steps) up to the curve's minimum: at or below the minimum and the divergence.
- ``minimum_lr / 10``: "an order of magnitude below the minimum", the other common rule.

The model's weights are restored afterwards, so the test does not change the model it is given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from genetic_cnn.config import Config, TrainConfig
from genetic_cnn.errors import UserError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from genetic_cnn.data.datasets import Split

SMOOTH_SHARE = 0.05
"""Width of the smoothing window as a share of the steps (at least 3 steps)."""
DIVERGENCE_FACTOR = 4.0
SKIP_START = 0.05
"""Fraction of the recorded steps not searched for the steepest descent (at least one step)."""
MIN_STEPS = 20
"""Fewer mini-batches than this cannot trace a curve to suggest anything from."""
MIN_RECORDED = 5
"""Steps the test must record before diverging for a suggestion to mean anything."""


class LrFindError(UserError, ValueError):
    """Arguments of the range test that cannot be used."""


@dataclass(frozen=True)
class LrFindResult:
    lrs: tuple[float, ...]
    """Learning rate of each recorded step, increasing exponentially."""
    losses: tuple[float, ...]
    """The drawn curve: the centred moving average of ``raw_losses`` at each recorded step."""
    suggestion: float
    """Steepest descent of the smoothed loss against log10(lr), below the minimum."""
    minimum_lr: float
    """Learning rate at the minimum of the smoothed loss."""
    raw_losses: tuple[float, ...] = ()
    """Unsmoothed loss of each recorded step's batch."""
    diverged_lr: float | None = None
    """The rate at which the loss diverged (the test stopped, or the curve rose past 4x its minimum
    by the end); None when it did neither."""

    @property
    def diverged(self) -> bool:
        return self.diverged_lr is not None

    @property
    def order_below_minimum(self) -> float:
        """``minimum_lr / 10``: an order of magnitude below the loss minimum."""
        return self.minimum_lr / 10


def lr_schedule(start: float, end: float, steps: int) -> list[float]:
    """``steps`` rates growing exponentially from ``start`` to ``end`` (both included)."""
    check_range(start, end, steps)
    ratio = (end / start) ** (1 / (steps - 1))
    return [start * ratio**step for step in range(steps - 1)] + [end]


def check_range(start: float, end: float, steps: int) -> None:
    if not (math.isfinite(start) and math.isfinite(end) and 0 < start < end):
        raise LrFindError(f"the range {start:g} .. {end:g} is not usable: need 0 < --start < --end")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < MIN_STEPS:
        raise LrFindError(
            f"--steps {steps} is too few to trace a curve and suggest a rate; use at least {MIN_STEPS} (default 200)"
        )


def lr_range_test(
    model: nn.Module,
    split: Split,
    config: TrainConfig | Config,
    start: float = 1e-7,
    end: float = 1.0,
    steps: int = 200,
    seed: int = 0,
    *,
    device: torch.device | str = "cpu",
    progress: bool = False,
    channels_last: bool = True,
) -> LrFindResult:
    """Smith's range test on ``split`` (the training images); see the module docstring.

    ``config`` gives the optimizer, batch size, momentum and weight decay (its schedule's rates
    are replaced by the test's). Batches are drawn in a seeded shuffled order, reshuffled after
    each pass over ``split`` (``train.fit`` with one rate per step). ``model`` is left with the
    weights it came with.
    """
    import copy

    from genetic_cnn.nn.train import fit

    train = config.train if isinstance(config, Config) else config
    rates = lr_schedule(start, end, steps)
    if len(split) < 2:
        raise LrFindError("the range test needs at least two training images")
    saved = copy.deepcopy(model.state_dict())
    lrs: list[float] = []
    raw: list[float] = []
    beta = 1 - 2 / (smoothing_window(steps) + 1)  # an exponential average of the same span as the curve
    average, best = 0.0, math.inf
    diverged_lr: float | None = None

    def record(step: int, value: float) -> bool:
        """Record one batch's loss; False (stop) once the loss has diverged."""
        nonlocal average, best, diverged_lr
        if not math.isfinite(value):
            diverged_lr = rates[step]
            return False
        average = beta * average + (1 - beta) * value
        smoothed = average / (1 - beta ** (step + 1))
        if step > 0 and smoothed > DIVERGENCE_FACTOR * best:
            diverged_lr = rates[step]
            return False
        best = min(best, smoothed)
        lrs.append(rates[step])
        raw.append(value)
        return True

    try:
        fit(
            model, split, train, seed=seed, device=device, channels_last=channels_last, step_rates=rates,
            on_batch=record, progress=progress,
        )  # fmt: skip
    finally:
        model.load_state_dict(saved)
    if len(lrs) < MIN_RECORDED:
        where = f"at {diverged_lr:.3g}" if diverged_lr is not None else ""
        raise LrFindError(
            f"the loss diverged {where} after {len(lrs)} step(s), too early to suggest a rate; "
            f"lower --start (now {start:g}) or check the data and the model"
        )
    losses = centered_average(raw, smoothing_window(steps))
    suggestion, minimum_lr = suggest(lrs, losses)
    if diverged_lr is None:
        lowest = min(losses)
        risen = [lr for lr, loss in zip(lrs, losses) if lr > minimum_lr and loss > DIVERGENCE_FACTOR * lowest]
        diverged_lr = risen[0] if risen else None
    return LrFindResult(tuple(lrs), tuple(losses), suggestion, minimum_lr, tuple(raw), diverged_lr)


def smoothing_window(steps: int) -> int:
    """Steps the curve averages over: ``SMOOTH_SHARE`` of them, odd, at least 3."""
    width = max(3, round(steps * SMOOTH_SHARE))
    return width + (width % 2 == 0)


def centered_average(values: Sequence[float], window: int) -> list[float]:
    """Each value replaced by the mean of the ``window`` values centred on it (fewer at the ends)."""
    half = window // 2
    return [sum(values[max(0, i - half) : i + half + 1]) / len(values[max(0, i - half) : i + half + 1])
            for i in range(len(values))]  # fmt: skip


def suggest(lrs: Sequence[float], losses: Sequence[float]) -> tuple[float, float]:
    """(steepest-descent rate, rate at the minimum) of a smoothed loss curve."""
    import numpy as np

    loss = np.asarray(losses, dtype=float)
    minimum = int(np.argmin(loss))
    if len(loss) < 3 or minimum == 0:
        return float(lrs[minimum]), float(lrs[minimum])
    slopes = np.gradient(loss, np.log10(np.asarray(lrs, dtype=float)))
    skip = max(1, int(SKIP_START * len(loss)))
    first = skip if skip < minimum else 0
    steepest = first + int(np.argmin(slopes[first : minimum + 1]))
    return float(lrs[steepest]), float(lrs[minimum])


def plot_lr_find(result: LrFindResult, path: str | Path, title: str = "") -> Path:
    """Smoothed loss against the learning rate (log x-axis), the suggestions marked; writes a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lrs, losses = list(result.lrs), list(result.losses)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    if result.raw_losses:
        ax.plot(lrs, result.raw_losses, color="#bbbbbb", linewidth=0.8, label="batch loss")
    ax.plot(lrs, losses, color="#1f77b4", linewidth=2, label="smoothed loss (centred moving average)")
    ax.set_xscale("log")
    at = {lr: loss for lr, loss in zip(lrs, losses)}
    ax.axvline(result.suggestion, color="#d62728", linestyle="--", linewidth=1)
    ax.plot([result.suggestion], [at[result.suggestion]], "o", color="#d62728", markersize=9,
            label=f"suggested {result.suggestion:.2g} (steepest descent)")  # fmt: skip
    ax.plot([result.minimum_lr], [at[result.minimum_lr]], "v", color="#2ca02c", markersize=9,
            label=f"minimum {result.minimum_lr:.2g}; /10 = {result.order_below_minimum:.2g}")  # fmt: skip
    ax.axvline(result.order_below_minimum, color="#2ca02c", linestyle=":", linewidth=1)
    if result.diverged_lr is not None:
        ax.axvline(result.diverged_lr, color="#555555", linestyle="-.", linewidth=1,
                   label=f"diverged at {result.diverged_lr:.2g}")  # fmt: skip
    # From the lowest batch loss to a little above the early losses: the divergence's spike is cut off.
    low = min(losses + [value for value in result.raw_losses if math.isfinite(value)])
    high = max(losses[: max(1, len(losses) // 10)] + [min(losses) * 1.5])
    margin = 0.05 * (high - low) + 1e-9
    ax.set_ylim(max(0.0, low - margin), high + 3 * margin)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.set_title(title or "learning-rate range test")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
