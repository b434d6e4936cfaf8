"""The speed levers change how fast, never what is measured (benchmarks/levers.py measures the speed)."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genetic_cnn.config import DataConfig, TrainConfig
from genetic_cnn.data import Datasets, Split, load_datasets
from genetic_cnn.genome import Genome
from genetic_cnn.network import GeneticCNN, build_network
from genetic_cnn.presets import DIGITS, MNIST
from genetic_cnn.train import evaluate_model, train_model

FAST = TrainConfig(schedule=((2, 3e-3),), batch_size=64, eval_batch_size=100)
GENOME = "1-01|0-01-100-0111"  # both stages have joins (sums of two inputs) and a chain


@pytest.fixture(scope="module")
def data() -> Datasets:
    return load_datasets(DataConfig(dataset="synthetic"), seed=0)


def digits_network(seed: int = 0) -> GeneticCNN:
    torch.manual_seed(seed)
    return build_network(GENOME, DIGITS)


def mnist_network(seed: int = 0) -> GeneticCNN:
    torch.manual_seed(seed)
    return build_network(GENOME, MNIST)


@pytest.mark.parametrize("training", [False, True])
def test_channels_last_forward_equals_default_layout(training: bool) -> None:
    default = mnist_network()
    fast = copy.deepcopy(default).to(memory_format=torch.channels_last)
    images = torch.randn(16, *MNIST.input_shape, generator=torch.Generator().manual_seed(1))
    default.train(training)
    fast.train(training)
    torch.manual_seed(2)  # the same dropout mask on both sides
    expected = default(images)
    torch.manual_seed(2)
    actual = fast(images.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)


def test_channels_last_gradients_equal_default_layout() -> None:
    default = mnist_network()
    fast = copy.deepcopy(default).to(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(3)
    images = torch.randn(16, *MNIST.input_shape, generator=generator)
    labels = torch.randint(0, 10, (16,), generator=generator)
    for model, batch in ((default, images), (fast, images.contiguous(memory_format=torch.channels_last))):
        torch.manual_seed(4)
        F.cross_entropy(model(batch), labels).backward()
    for (name, a), (_, b) in zip(default.named_parameters(), fast.named_parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-3, atol=1e-5, msg=name)


def test_channels_last_training_is_bit_identical_for_a_seed(data: Datasets) -> None:
    model = digits_network()
    first, second = copy.deepcopy(model), copy.deepcopy(model)
    one = train_model(first, data.train, data.validation, FAST, seed=7, channels_last=True)
    two = train_model(second, data.train, data.validation, FAST, seed=7, channels_last=True)
    assert replace(one, seconds=0.0) == replace(two, seconds=0.0)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
    assert first.features[0].nodes[0][0].weight.is_contiguous(memory_format=torch.channels_last)


def test_channels_last_training_follows_the_default_training(data: Datasets) -> None:
    """Five Adam steps: the same losses up to rounding. Over many steps rounding differences grow, as
    between any two BLAS builds: runs in the two layouts agree in distribution, not digit for digit."""
    images = Split(data.train.images[:160], data.train.labels[:160])
    config = TrainConfig(schedule=((1, 1e-3),), batch_size=32, eval_batch_size=100)
    for seed in (1, 7):
        model = digits_network(seed)
        default_model, fast_model = copy.deepcopy(model), copy.deepcopy(model)
        default = train_model(default_model, images, data.validation, config, seed=seed, channels_last=False)
        fast = train_model(fast_model, images, data.validation, config, seed=seed, channels_last=True)
        assert fast.train_loss == pytest.approx(default.train_loss, rel=1e-4)
        assert fast.loss == pytest.approx(default.loss, rel=1e-4)
        assert fast.accuracy == default.accuracy
        for (name, a), (_, b) in zip(default_model.named_parameters(), fast_model.named_parameters()):
            # Adam's step is about lr * sign(gradient): a gradient near zero may take the other sign.
            torch.testing.assert_close(b.detach(), a.detach(), rtol=0, atol=5 * 2 * 1e-3, msg=name)


def test_channels_last_is_the_default(data: Datasets) -> None:
    model = digits_network()
    implicit = copy.deepcopy(model)
    explicit = copy.deepcopy(model)
    one = train_model(implicit, data.train, data.validation, FAST, seed=3)
    two = train_model(explicit, data.train, data.validation, FAST, seed=3, channels_last=True)
    assert replace(one, seconds=0.0) == replace(two, seconds=0.0)
    assert implicit.features[0].nodes[0][0].weight.is_contiguous(memory_format=torch.channels_last)


def test_the_default_layout_stays_available(data: Datasets) -> None:
    model = digits_network()
    train_model(model, data.train, data.validation, FAST, seed=3, channels_last=False)
    assert all(parameter.is_contiguous() for parameter in model.parameters())


def _no_grad_evaluation(model: torch.nn.Module, split: Split, batch_size: int) -> tuple[float, float]:
    """The textbook evaluation: no_grad, per-batch Python numbers."""
    model.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for start in range(0, len(split), batch_size):
            outputs = model(split.images[start : start + batch_size])
            target = split.labels[start : start + batch_size]
            loss += float(F.cross_entropy(outputs.double(), target, reduction="sum"))
            correct += int((outputs.argmax(dim=1) == target).sum())
    return correct / len(split), loss / len(split)


def test_inference_mode_evaluation_equals_no_grad_evaluation(data: Datasets) -> None:
    model = digits_network()
    train_model(model, data.train, data.validation, replace(FAST, schedule=((1, 3e-3),)), seed=0)
    accuracy, loss = evaluate_model(model, data.test, 64, "cpu")
    expected_accuracy, expected_loss = _no_grad_evaluation(model, data.test, 64)
    assert accuracy == expected_accuracy
    assert loss == pytest.approx(expected_loss, rel=1e-6)


def test_evaluation_batch_size_and_layout_do_not_change_the_measurement() -> None:
    model = mnist_network()
    generator = torch.Generator().manual_seed(5)
    split = Split(torch.randn(300, *MNIST.input_shape, generator=generator), torch.randint(0, 10, (300,), generator=generator))
    model.train()
    with torch.no_grad():  # move batch-norm statistics away from their initial values
        model(split.images[:100])
    reference = evaluate_model(copy.deepcopy(model), split, 300, "cpu", channels_last=False)
    with torch.inference_mode():
        outputs = model.eval()(split.images)
    margins = outputs.topk(2, dim=1).values
    assert float((margins[:, 0] - margins[:, 1]).min()) > 1e-4  # no near-tie that float rounding could flip
    for batch_size, channels_last in ((7, False), (100, False), (1000, False), (100, True), (1000, True)):
        accuracy, loss = evaluate_model(copy.deepcopy(model), split, batch_size, "cpu", channels_last=channels_last)
        assert accuracy == reference[0], (batch_size, channels_last)
        assert loss == pytest.approx(reference[1], rel=1e-5), (batch_size, channels_last)


def test_channels_last_evaluation_of_random_genomes_matches() -> None:
    """Every MNIST stage shape the search can produce goes through the same kernels either way."""
    rng = np.random.default_rng(0)
    images = torch.randn(8, *MNIST.input_shape, generator=torch.Generator().manual_seed(6))
    for genome in [Genome.zeros(MNIST.nodes), Genome.ones(MNIST.nodes)] + [Genome.random(MNIST.nodes, rng) for _ in range(3)]:
        torch.manual_seed(0)
        model = build_network(genome, MNIST).eval()
        with torch.inference_mode():
            expected = model(images)
            actual = copy.deepcopy(model).to(memory_format=torch.channels_last)(images.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5, msg=str(genome))
