"""Training one network: learning, bit-identical reruns, schedules, early stopping, divergence."""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from genetic_cnn.config import DataConfig, TrainConfig
from genetic_cnn.data.datasets import Datasets, Split, load_datasets
from genetic_cnn.nn.train import (
    TrainResult,
    batch_bounds,
    evaluate_model,
    learning_rates,
    make_optimizer,
    make_scheduler,
    train_model,
)

FAST = TrainConfig(schedule=((4, 1e-2),), batch_size=32, eval_batch_size=64)


@pytest.fixture(scope="module")
def data() -> Datasets:
    return load_datasets(DataConfig(dataset="synthetic"), seed=0)


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 10))


def small_cnn(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1, bias=False),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(8 * 4 * 4, 10),
    )


class Constant(nn.Module):
    """Outputs that ignore the weights' values (zero gradients): the validation loss never moves."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)) * 0.0


class NaNOutput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)) * math.nan


@pytest.mark.parametrize("build", [mlp, small_cnn])
def test_learns_well_above_chance(data: Datasets, build) -> None:
    result = train_model(build(), data.train, data.validation, FAST, seed=0)
    assert isinstance(result, TrainResult)
    assert result.accuracy > 0.6  # chance is 0.1
    assert result.epochs == 4 and not result.diverged
    assert 0 < result.loss < math.log(10) and 0 < result.train_loss < math.log(10)
    assert result.seconds > 0


def test_same_seed_is_bit_identical(data: Datasets) -> None:
    model = small_cnn()
    first, second = copy.deepcopy(model), copy.deepcopy(model)
    one = train_model(first, data.train, data.validation, FAST, seed=5)
    two = train_model(second, data.train, data.validation, FAST, seed=5)
    assert replace(one, seconds=0.0) == replace(two, seconds=0.0)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
    third = copy.deepcopy(model)
    other = train_model(third, data.train, data.validation, FAST, seed=6)  # another shuffle and dropout
    assert not torch.equal(third.state_dict()["0.weight"], first.state_dict()["0.weight"])
    assert other.train_loss != one.train_loss


def test_evaluate_model_counts_correct_answers(data: Datasets) -> None:
    class AlwaysZero(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.zeros(len(x), 10)
            out[:, 0] = 1.0
            return out

    accuracy, loss = evaluate_model(AlwaysZero(), data.test, batch_size=7, device="cpu")
    assert accuracy == pytest.approx(float((data.test.labels == 0).float().mean()))
    expected = -torch.log_softmax(torch.tensor([1.0] + [0.0] * 9), 0)
    assert loss == pytest.approx(float(expected[data.test.labels].mean()), rel=1e-5)


def test_batch_size_argument_overrides_the_config(data: Datasets) -> None:
    model = mlp()
    base = train_model(copy.deepcopy(model), data.train, data.validation, FAST, seed=0)
    same = train_model(copy.deepcopy(model), data.train, data.validation, FAST, seed=0, batch_size=32)
    half = train_model(copy.deepcopy(model), data.train, data.validation, FAST, seed=0, batch_size=16)
    assert base.train_loss == same.train_loss and half.train_loss != base.train_loss


def test_batch_bounds_never_leave_a_single_image() -> None:
    assert batch_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert batch_bounds(9, 4) == [(0, 4), (4, 9)]  # batch norm cannot train on one image
    assert batch_bounds(1, 4) == [(0, 1)]


def test_sgd_with_momentum_and_weight_decay(data: Datasets) -> None:
    config = replace(FAST, optimizer="sgd", momentum=0.9, weight_decay=1e-4, schedule=((4, 0.05),))
    optimizer = make_optimizer(mlp().parameters(), config)
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["momentum"] == 0.9 and optimizer.param_groups[0]["weight_decay"] == 1e-4
    assert train_model(mlp(), data.train, data.validation, config, seed=0).accuracy > 0.5


def test_piecewise_schedule_is_the_papers() -> None:
    config = TrainConfig(schedule=((3, 1e-3), (2, 1e-4), (1, 1e-5)))
    assert learning_rates(config) == pytest.approx([1e-3] * 3 + [1e-4] * 2 + [1e-5], rel=1e-9)
    skip_first = TrainConfig(schedule=((0, 1e-2), (2, 1e-3)))  # a phase may have no epochs
    assert learning_rates(skip_first) == pytest.approx([1e-3, 1e-3], rel=1e-9)


def test_step_and_exponential_schedules() -> None:
    step = TrainConfig(schedule=((3, 0.1), (2, 0.5)), scheduler="step", step_epochs=2, gamma=0.5)
    assert learning_rates(step) == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])  # base rate = the first
    exponential = replace(step, scheduler="exponential", gamma=0.9)
    assert learning_rates(exponential) == pytest.approx([0.1 * 0.9**epoch for epoch in range(5)])


def test_cosine_schedule() -> None:
    config = TrainConfig(schedule=((8, 0.2),), scheduler="cosine")
    expected = [0.1 * (1 + math.cos(math.pi * epoch / 8)) for epoch in range(8)]
    assert learning_rates(config) == pytest.approx(expected)


def test_plateau_schedule_follows_validation_loss() -> None:
    config = TrainConfig(schedule=((7, 1.0),), scheduler="plateau", gamma=0.5, plateau_patience=1)
    losses = [1.0, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8]
    # No improvement in epochs 2 and 3 (two bad epochs > patience 1): halved for epoch 4; again at 6.
    assert learning_rates(config, losses) == pytest.approx([1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5])
    assert learning_rates(config, [1.0] * 7) == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25])
    never = replace(config, gamma=1.0)  # torch refuses factor 1; it means a constant rate
    assert make_scheduler(make_optimizer(mlp().parameters(), never), never) is None
    assert learning_rates(never, [1.0] * 7) == [1.0] * 7


def test_plateau_trains(data: Datasets) -> None:
    config = replace(FAST, scheduler="plateau", plateau_patience=0)
    result = train_model(mlp(), data.train, data.validation, config, seed=0)
    assert result.epochs == 4 and result.accuracy > 0.5


def test_early_stopping_on_a_plateau(data: Datasets) -> None:
    config = replace(FAST, schedule=((20, 1e-2),), early_stopping=2)
    result = train_model(Constant(), data.train, data.validation, config, seed=0)
    assert result.epochs == 3  # the first epoch sets the best loss; two more without a lower one
    assert result.loss == pytest.approx(math.log(10)) and not result.diverged


def test_early_stopping_lets_an_improving_model_run(data: Datasets) -> None:
    config = replace(FAST, schedule=((3, 1e-2),), early_stopping=2)
    assert train_model(mlp(), data.train, data.validation, config, seed=0).epochs == 3


@pytest.mark.parametrize(
    ("model", "config"),
    [
        (NaNOutput, FAST),  # NaN from the first batch
        (mlp, replace(FAST, optimizer="sgd", schedule=((5, 1e6),))),  # weights blow up to inf
    ],
)
def test_divergence_stops_at_once_without_an_exception(data: Datasets, model, config: TrainConfig) -> None:
    result = train_model(model(), data.train, data.validation, config, seed=0)
    assert result.diverged
    assert result.epochs == 1  # stopped inside the first epoch, not at the end of the schedule
    assert not math.isfinite(result.train_loss)
    assert 0.0 <= result.accuracy <= 1.0


def test_progress_bar_runs(data: Datasets, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import genetic_cnn.progress

    monkeypatch.setattr(genetic_cnn.progress, "on_terminal", lambda: True)  # bars are drawn on terminals only
    config = replace(FAST, schedule=((2, 1e-2),), early_stopping=1)
    result = train_model(mlp(), data.train, data.validation, config, seed=0, progress=True)
    assert result.epochs >= 1
    assert "train" in capsys.readouterr().err


def test_tiny_split_trains(data: Datasets) -> None:
    tiny = Split(data.train.images[:3], data.train.labels[:3])
    result = train_model(small_cnn(), tiny, data.validation, replace(FAST, batch_size=2), seed=0)
    assert result.epochs == 4 and not result.diverged


# ----------------------------------------------------------------------------- schedules in real training
def rates_used(train: callable, steps_per_epoch: int) -> list[float]:
    """The learning rate of every optimizer step ``train()`` takes, seen by a global step hook (not by
    the trainer's own bookkeeping), one value per epoch; fails if a rate changes inside an epoch."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    seen: list[float] = []
    handle = register_optimizer_step_pre_hook(lambda optimizer, args, kwargs: seen.append(optimizer.param_groups[0]["lr"]))
    try:
        train()
    finally:
        handle.remove()
    epochs = [seen[start : start + steps_per_epoch] for start in range(0, len(seen), steps_per_epoch)]
    assert all(len(set(epoch)) == 1 for epoch in epochs), "the rate changed inside an epoch"
    return [epoch[0] for epoch in epochs]


SCHEDULES = [
    (TrainConfig(schedule=((3, 1e-2), (2, 1e-3), (1, 1e-4))), [1e-2] * 3 + [1e-3] * 2 + [1e-4]),
    (TrainConfig(schedule=((3, 0.1), (2, 0.5)), scheduler="step", step_epochs=2, gamma=0.5), [0.1, 0.1, 0.05, 0.05, 0.025]),
    (TrainConfig(schedule=((4, 0.1),), scheduler="exponential", gamma=0.9), [0.1 * 0.9**epoch for epoch in range(4)]),
    (TrainConfig(schedule=((4, 0.2),), scheduler="cosine"), [0.1 * (1 + math.cos(math.pi * epoch / 4)) for epoch in range(4)]),
]


@pytest.mark.parametrize(("config", "expected"), SCHEDULES, ids=["piecewise", "step", "exponential", "cosine"])
def test_train_model_trains_each_epoch_at_the_scheduled_rate(data: Datasets, config: TrainConfig, expected: list[float]) -> None:
    config = replace(config, batch_size=128, optimizer="sgd", momentum=0.0)
    steps = len(batch_bounds(len(data.train), 128))
    result: list[TrainResult] = []
    used = rates_used(lambda: result.append(train_model(mlp(), data.train, data.validation, config, seed=0)), steps)
    assert used == pytest.approx(expected, rel=1e-9)
    assert result[0].rates == pytest.approx(expected, rel=1e-9)  # what the result reports is what was used


def test_train_model_lowers_the_rate_on_a_validation_plateau(data: Datasets) -> None:
    """Constant outputs keep the validation loss flat: with patience 1 the rate halves after every
    two epochs without improvement, in the training itself."""
    config = TrainConfig(schedule=((6, 1.0),), scheduler="plateau", gamma=0.5, plateau_patience=1, batch_size=128,
                         optimizer="sgd", momentum=0.0)  # fmt: skip
    steps = len(batch_bounds(len(data.train), 128))
    used = rates_used(lambda: train_model(Constant(), data.train, data.validation, config, seed=0), steps)
    assert used == pytest.approx([1.0, 1.0, 1.0, 0.5, 0.5, 0.25])


def test_final_training_trains_each_epoch_at_the_scheduled_rate(data: Datasets) -> None:
    from genetic_cnn.tools.final import train_full

    config = TrainConfig(schedule=((2, 1e-2), (1, 1e-3)), batch_size=128)
    steps = len(batch_bounds(len(data.train), 128))
    used = rates_used(lambda: train_full(mlp(), data.train, config, seed=0), steps)
    assert used == pytest.approx([1e-2, 1e-2, 1e-3], rel=1e-9)
