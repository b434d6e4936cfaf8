"""Final training (`genetic-cnn train`): full training set, seeds, exports, augmentation, --epochs."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from genetic_cnn.cli import main
from genetic_cnn.cli.args import resolve_config
from genetic_cnn.config import ConfigError, TrainConfig, load_config
from genetic_cnn.data.datasets import augment_batch, augment_padding, load_datasets
from genetic_cnn.errors import UserError
from genetic_cnn.nn.network import build_network
from genetic_cnn.nn.saved import load_trained, save_trained, trained_metadata
from genetic_cnn.nn.train import evaluate_model
from genetic_cnn.space.presets import DIGITS
from genetic_cnn.tools.final import FinalResult, scale_schedule, train_final

GENOME = "1-01|0-01-100-0111"
TINY = ["data.dataset=synthetic", "space.preset=digits", "space.channels=[4, 8]", "run.device=cpu"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> FinalResult:
    """Two seeds, two epochs (scaled from the digits schedule), with augmentation."""
    config = load_config(None, TINY)
    return train_final(GENOME, config, seeds=2, augment=True, out=tmp_path_factory.mktemp("final"), epochs=2)


def test_two_seeds_report_mean_and_std_of_the_seeds(trained: FinalResult) -> None:
    assert trained.seeds == (0, 1)
    assert len(trained.accuracies) == 2 and all(0 <= value <= 1 for value in trained.accuracies)
    assert trained.mean == pytest.approx(statistics.fmean(trained.accuracies))
    assert trained.std == pytest.approx(statistics.stdev(trained.accuracies))
    assert trained.train_images == 600 and trained.test_images == 200  # train + validation: all 600
    assert trained.epochs == 2 and trained.schedule == ((2, 3e-3),)
    record = json.loads((Path(trained.out) / "results.json").read_text())
    for key in ("genome", "preset", "seeds", "accuracies", "mean", "std", "epochs"):
        assert key in record
    assert record["accuracies"] == list(trained.accuracies) and record["mean"] == trained.mean
    assert record["genome"] == GENOME and record["preset"] == "digits"
    assert record["augmentation"] == {"padding": 1, "flip": False}  # no mirrored digits


def test_saved_files_reproduce_the_reported_test_accuracy(trained: FinalResult) -> None:
    test = load_datasets(load_config(None, TINY).data, seed=0).test
    for accuracy, files in zip(trained.accuracies, trained.files):
        for path in (files["weights"], files["torchscript"]):
            model = load_trained(path)
            assert not model.training
            assert evaluate_model(model, test, 1000, "cpu")[0] == pytest.approx(accuracy)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            plain = torch.jit.load(files["torchscript"])  # works without genetic_cnn's help
        assert plain.genome == GENOME and plain.preset == "digits"
        metadata = trained_metadata(files["torchscript"])
        assert metadata["genome"] == GENOME and metadata["network"]["channels"] == [4, 8]


def test_state_dict_and_torchscript_round_trip(tmp_path: Path) -> None:
    preset = DIGITS
    torch.manual_seed(3)
    model = build_network(GENOME, preset)
    model.train()
    model(torch.randn(16, 1, 8, 8))  # move the batch-norm statistics away from their initial values
    model.eval()
    metadata = {"genome": GENOME, "preset": preset.name, "network": json.loads(json.dumps(preset.__dict__))}
    files = save_trained(model, tmp_path / "seed0", metadata)
    (tmp_path / "results.json").write_text(json.dumps({"genome": GENOME, "network": metadata["network"]}))
    x = torch.randn(5, 1, 8, 8)  # another batch size than the trace's
    with torch.no_grad():
        expected = model(x)
        for path in (files["weights"], files["torchscript"]):
            assert torch.allclose(load_trained(path)(x), expected, atol=1e-6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            assert torch.allclose(torch.jit.load(files["torchscript"])(x), expected, atol=1e-6)
    state = torch.load(files["weights"], weights_only=True)
    assert set(state) == set(model.state_dict())


def test_state_dict_without_results_json_says_what_to_do(tmp_path: Path) -> None:
    torch.save(build_network(GENOME, DIGITS).state_dict(), tmp_path / "w.pt")
    with pytest.raises(UserError, match="torchscript"):
        load_trained(tmp_path / "w.pt")


def test_augmentation_keeps_shapes_and_is_deterministic_for_a_seed() -> None:
    images = torch.randn(32, 3, 32, 32)

    def run(seed: int, **kwargs) -> torch.Tensor:
        return augment_batch(images, torch.Generator().manual_seed(seed), **kwargs)

    first = run(0)
    assert first.shape == images.shape and first.dtype == images.dtype
    assert torch.equal(first, run(0))
    assert not torch.equal(first, run(1))
    assert torch.equal(run(0, padding=0, flip=False), images)
    # Every output is a shifted (and maybe mirrored) crop of the zero-padded input.
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    for index in range(4):
        crops = [padded[index, :, dy : dy + 32, dx : dx + 32] for dy in range(9) for dx in range(9)]
        assert any(torch.equal(first[index], crop) or torch.equal(first[index], crop.flip(2)) for crop in crops)
    assert augment_padding(32) == 4 and augment_padding(28) == 4 and augment_padding(8) == 1


def test_epochs_scales_the_schedule_keeping_proportions() -> None:
    cifar = TrainConfig(schedule=((120, 1e-2), (60, 1e-3), (40, 1e-4), (20, 1e-5)), step_epochs=10)
    assert scale_schedule(cifar, 24).schedule == ((12, 1e-2), (6, 1e-3), (4, 1e-4), (2, 1e-5))
    assert scale_schedule(cifar, 480).schedule == ((240, 1e-2), (120, 1e-3), (80, 1e-4), (40, 1e-5))
    assert scale_schedule(cifar, 24).step_epochs == 1
    assert scale_schedule(cifar, 240) == cifar
    mnist = TrainConfig(schedule=((20, 1e-3), (4, 1e-4), (1, 1e-5)))
    assert scale_schedule(mnist, 5).schedule == ((4, 1e-3), (1, 1e-4))  # a phase with no epoch is dropped
    assert scale_schedule(mnist, 1).schedule == ((1, 1e-3),)
    for epochs in range(1, 60):
        scaled = scale_schedule(cifar, epochs).schedule
        assert sum(count for count, _ in scaled) == epochs
        assert [rate for _, rate in scaled] == sorted((rate for _, rate in scaled), reverse=True)
    with pytest.raises(ConfigError):
        scale_schedule(cifar, 0)


def test_dataset_follows_the_preset_unless_named() -> None:
    assert resolve_config(None, [], "cifar10-large", None).data.dataset == "cifar10"
    assert resolve_config(None, [], "mnist", "fashion-mnist").data.dataset == "fashion-mnist"
    assert resolve_config(None, ["data.dataset=synthetic"], "digits", None).data.dataset == "synthetic"
    config = resolve_config(None, [], "cifar10-large", None)
    assert config.train.optimizer == "sgd" and config.train.schedule[0] == (120, 1e-2)  # the preset's schedule


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "genetic_cnn.cli", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["1-0x", "--preset", "mnist"], "is not 0 or 1"),
        (["1-01|0-01-100", "--preset", "mnist"], "nodes"),
        (["1-01|0-01-100-0111", "--preset", "imagenet"], "space.preset"),
        (["1-01|0-01-100-0111", "--preset", "digits", "--epochs", "0"], "epochs"),
    ],
)
def test_cli_errors_are_one_line_with_status_2(args: list[str], message: str) -> None:
    result = run_cli("train", *args)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_genome_cut_by_the_shell_gets_the_hint_from_the_api(tmp_path: Path) -> None:
    """train_final parses with the parser show uses: the same error and hint, before anything is written."""
    with pytest.raises(UserError, match=re.escape("the shell cut it at '|'")):
        train_final("1-01", load_config(None, ["space.preset=mnist"]), seeds=1, out=tmp_path / "final")
    assert list(tmp_path.iterdir()) == []


def test_cli_trains_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main([
        "train", GENOME, "--preset", "digits", "--dataset", "synthetic", "--epochs", "1", "--seeds", "1",
        "--out", str(tmp_path), "--set", "space.channels=[4, 8]", "--set", "run.device=cpu", "--quiet",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0
    assert "seed 0: test accuracy" in out and "over 1 seed(s)" in out
    assert (tmp_path / "seed0.pt").is_file() and (tmp_path / "seed0.torchscript.pt").is_file()
    assert json.loads((tmp_path / "results.json").read_text())["epochs"] == 1


def test_without_augmentation_training_matches_the_search_trainer() -> None:
    """Same seed, data and schedule: ``train_full`` gives the weights ``train_model`` gives."""
    from dataclasses import replace

    from genetic_cnn.config import DataConfig
    from genetic_cnn.nn.train import train_model
    from genetic_cnn.tools.final import train_full

    data = load_datasets(DataConfig(dataset="synthetic"), seed=0)
    config = TrainConfig(schedule=((1, 3e-3), (1, 3e-4)), batch_size=64)
    preset = replace(DIGITS, channels=(4, 8))
    models = []
    for _ in range(2):
        torch.manual_seed(1)
        models.append(build_network(GENOME, preset))
    train_full(models[0], data.train, config, seed=5)
    train_model(models[1], data.train, data.validation, config, seed=5)
    for first, second in zip(models[0].state_dict().values(), models[1].state_dict().values()):
        assert torch.equal(first, second)


# ---------------------------------------------------------------------- --augment changes the training
def saved_weights(result: FinalResult) -> dict[str, torch.Tensor]:
    return torch.load(result.files[0]["weights"], weights_only=True)


def test_augmentation_changes_the_training_and_is_reproducible(tmp_path: Path) -> None:
    config = load_config(None, TINY + ["run.threads=1"])

    def final(name: str, augment: bool) -> FinalResult:
        return train_final(GENOME, config, seeds=[0], augment=augment, out=tmp_path / name, epochs=1)

    augmented, again, plain = final("augmented", True), final("again", True), final("plain", False)
    first, second, without = saved_weights(augmented), saved_weights(again), saved_weights(plain)
    assert first.keys() == without.keys()
    # Same seed and augmentation: the same crops, the same weights.
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert augmented.accuracies == again.accuracies
    # Same seed without augmentation: the same initial weights and batches, other images, other weights.
    changed = [name for name in first if first[name].is_floating_point() and not torch.equal(first[name], without[name])]
    assert len(changed) > len(first) // 2, changed
    records = [json.loads((Path(result.out) / "results.json").read_text()) for result in (augmented, plain)]
    assert records[0]["augment"] is True and records[1]["augment"] is False
    assert records[0]["augmentation"] == {"padding": augment_padding(8), "flip": False}
    assert records[1]["augmentation"] is None


@pytest.mark.slow
def test_cli_train_with_augment_runs_and_records_the_augmentation(tmp_path: Path) -> None:
    result = run_cli(
        "train", GENOME, "--preset", "digits", "--dataset", "synthetic", "--epochs", "1", "--seeds", "1", "--augment",
        "--set", "space.channels=[4, 8]", "--set", "run.device=cpu", "--set", "run.threads=1",
        "--quiet", "--out", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "augmented" in result.stdout and "seed 0: test accuracy" in result.stdout
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["augment"] is True and record["epochs"] == 1 and record["seeds"] == [0]
    assert record["augmentation"] == {"padding": 1, "flip": False}  # 8x8 digits: a one-pixel crop, never mirrored
    assert record["genome"] == GENOME and record["dataset"] == "synthetic"
    assert 0 <= record["accuracies"][0] <= 1
    assert (tmp_path / "seed0.pt").is_file() and (tmp_path / "seed0.torchscript.pt").is_file()
    model = load_trained(tmp_path / "seed0.torchscript.pt")
    test = load_datasets(load_config(None, TINY).data, seed=0).test
    assert evaluate_model(model, test, 1000, "cpu")[0] == pytest.approx(record["accuracies"][0])
