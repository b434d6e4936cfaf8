"""Learning-rate range test on synthetic data: exponential rates, divergence stop, suggestions, plot, CLI."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from genetic_cnn.cli import main
from genetic_cnn.config import DataConfig, TrainConfig
from genetic_cnn.data.datasets import Datasets, load_datasets
from genetic_cnn.nn.network import build_network
from genetic_cnn.space.presets import DIGITS
from genetic_cnn.tools.lr_find import (
    LrFindError,
    LrFindResult,
    centered_average,
    lr_range_test,
    lr_schedule,
    plot_lr_find,
    smoothing_window,
    suggest,
)

GENOME = "1-01|0-01-100-0111"
PRESET = replace(DIGITS, channels=(4, 8))
ADAM = TrainConfig(schedule=((1, 1e-3),), optimizer="adam", batch_size=64)
SGD = TrainConfig(schedule=((1, 1e-2),), optimizer="sgd", momentum=0.9, batch_size=64)


@pytest.fixture(scope="module")
def data() -> Datasets:
    return load_datasets(DataConfig(dataset="synthetic"), seed=0)


def model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_network(GENOME, PRESET)


@pytest.fixture(scope="module")
def diverging(data: Datasets) -> LrFindResult:
    """SGD up to a rate of 10^4 cannot survive."""
    return lr_range_test(model(), data.train, SGD, start=1e-4, end=1e4, steps=80, seed=0)


def test_rates_grow_exponentially_from_start_to_end(data: Datasets) -> None:
    result = lr_range_test(model(), data.train, ADAM, start=1e-6, end=1e-3, steps=25, seed=0)
    assert not result.diverged and len(result.lrs) == 25
    assert result.lrs[0] == pytest.approx(1e-6) and result.lrs[-1] == pytest.approx(1e-3)
    ratios = np.diff(np.log(result.lrs))
    assert np.allclose(ratios, math.log(1e3) / 24)
    assert len(result.losses) == len(result.raw_losses) == 25
    assert all(math.isfinite(value) for value in result.losses)
    assert lr_schedule(1e-7, 1.0, 200)[0] == 1e-7 and lr_schedule(1e-7, 1.0, 200)[-1] == 1.0


def test_stops_on_divergence_with_suggestion_below_it(diverging: LrFindResult) -> None:
    result = diverging
    assert result.diverged and len(result.lrs) < 80
    assert max(result.lrs) < result.diverged_lr
    assert 1e-4 <= result.suggestion <= result.minimum_lr < result.diverged_lr <= 1e4
    assert result.order_below_minimum == pytest.approx(result.minimum_lr / 10)
    # The suggestion and the minimum are read off the curve that is drawn.
    assert result.losses[result.lrs.index(result.minimum_lr)] == min(result.losses)


def test_the_drawn_curve_is_a_centred_average_of_the_batch_losses(diverging: LrFindResult) -> None:
    raw, window = np.asarray(diverging.raw_losses), smoothing_window(80)
    assert window == 5  # 5% of 80 steps
    for index, smoothed in enumerate(diverging.losses):
        assert smoothed == pytest.approx(raw[max(0, index - 2) : index + 3].mean())


def test_the_curve_does_not_lag_a_loss_that_turns_up() -> None:
    """A loss that falls, then rises from step 120 of 200: the curve's minimum sits at the turn or up to
    half a window before it (on the safe side), and the curve follows the rise, which an exponential
    average with beta 0.98 (the old rule) trails by about 50 steps."""
    steps = np.arange(200)
    loss = np.where(steps < 120, 2.0 - steps / 120, 1.0 + (steps - 120) / 10)
    curve = centered_average(loss.tolist(), smoothing_window(200))
    assert 120 - smoothing_window(200) // 2 <= int(np.argmin(curve)) <= 120
    average, ema = 0.0, []
    for step, value in enumerate(loss):
        average = 0.98 * average + 0.02 * value
        ema.append(average / (1 - 0.98 ** (step + 1)))
    # 30 steps into the rise the curve shows the loss there; the old average shows half of it.
    assert curve[150] == pytest.approx(loss[150], rel=0.01) and ema[150] < 0.6 * loss[150]


def test_model_is_left_unchanged_and_runs_are_reproducible(data: Datasets) -> None:
    network = model()
    before = {key: value.clone() for key, value in network.state_dict().items()}
    first = lr_range_test(network, data.train, ADAM, start=1e-5, end=1e-1, steps=20, seed=4)
    assert all(torch.equal(before[key], value) for key, value in network.state_dict().items())
    assert lr_range_test(network, data.train, ADAM, start=1e-5, end=1e-1, steps=20, seed=4) == first


def test_suggestion_is_the_steepest_descent_before_the_minimum() -> None:
    lrs = np.logspace(-6, 0, 121)
    x = np.log10(lrs)
    losses = 2.0 - np.tanh(2 * (x + 3)) + np.where(x > -1, 30 * (x + 1) ** 2, 0)  # steepest at 1e-3
    suggestion, minimum = suggest(lrs.tolist(), losses.tolist())
    assert suggestion == pytest.approx(1e-3, rel=0.15)
    assert minimum == pytest.approx(lrs[int(np.argmin(losses))])
    assert suggest([1e-3, 1e-2], [1.0, 2.0]) == (1e-3, 1e-3)  # too short to differentiate: the minimum


def test_bad_ranges_are_user_errors(data: Datasets) -> None:
    for start, end, steps in ((1.0, 0.1, 30), (0.0, 1.0, 30), (1e-3, 1.0, 1), (1e-3, 1.0, 5)):
        with pytest.raises(LrFindError):
            lr_range_test(model(), data.train, ADAM, start=start, end=end, steps=steps)


def test_plot_is_a_png(diverging: LrFindResult, tmp_path: Path) -> None:
    path = plot_lr_find(diverging, tmp_path / "plots" / "lr.png", "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genetic_cnn.cli", "lr-find", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip


def test_cli_writes_the_plot_and_prints_the_suggestions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "lr.png"
    status = main([
        "lr-find", GENOME, "--preset", "digits", "--dataset", "synthetic", "--steps", "30", "--start", "1e-5",
        "--end", "10", "--out", str(out), "--set", "space.channels=[4, 8]", "--set", "run.device=cpu", "--quiet",
    ])  # fmt: skip
    printed = capsys.readouterr().out
    assert status == 0
    assert "suggested rate" in printed and "minimum / 10" in printed
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_says_whether_the_loss_diverged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = [GENOME, "--preset", "digits", "--dataset", "synthetic", "--set", "space.channels=[4, 8]",
              "--set", "run.device=cpu", "--set", "train.optimizer=sgd", "--quiet"]  # fmt: skip
    assert main(["lr-find", *common, "--steps", "60", "--start", "1e-4", "--end", "1e4", "--out", str(tmp_path / "a")]) == 0
    assert "the loss diverged at" in capsys.readouterr().out
    assert (tmp_path / "a.png").is_file()
    assert main(["lr-find", *common, "--steps", "20", "--start", "1e-6", "--end", "1e-4", "--out", str(tmp_path / "b.png")]) == 0
    assert "without diverging" in capsys.readouterr().out
    # The plot is not overwritten without --force.
    assert main(["lr-find", *common, "--steps", "20", "--out", str(tmp_path / "b.png")]) == 2
    assert "--force" in capsys.readouterr().err


def test_cli_errors_are_one_line() -> None:
    for args in (["1-0x", "--preset", "digits"], [GENOME, "--preset", "digits", "--start", "1", "--end", "0.1"],
                 [GENOME, "--preset", "digits", "--steps", "5"]):  # fmt: skip
        result = run_cli(*args)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
