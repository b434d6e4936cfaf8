"""The speed levers change how fast, never what is measured (benchmarks/levers.py measures the speed).

Every fast path (channels-last, the default NCHW layout, the evaluation's batch sizes) is compared
with a float64 reference of the same computation (``copy.deepcopy(model).double()`` fed
``images.double()``), never one float32 path with another: which float32 path rounds closer to the
truth differs between machines (AMD EPYC, Intel Xeon) and oneDNN versions.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genetic_cnn.config import DataConfig, TrainConfig
from genetic_cnn.data.datasets import Datasets, Split, load_datasets
from genetic_cnn.nn.network import GeneticCNN, build_network
from genetic_cnn.nn.train import evaluate_model, fit, train_model
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.presets import DIGITS, MNIST

FAST = TrainConfig(schedule=((2, 3e-3),), batch_size=64, eval_batch_size=100)
GENOME = "1-01|0-01-100-0111"  # both stages have joins (sums of two inputs) and a chain
LAYOUTS = {"nchw": False, "channels_last": True}

EPS = torch.finfo(torch.float32).eps  # 1.19e-7: float32's relative spacing


def float32_tolerance(longest_sum: int) -> float:
    """The relative (norm) error float32 rounding explains in a result built from sums of up to
    ``longest_sum`` rounded terms (a convolution's fan-in, or the batch x positions that batch
    normalization's statistics and a weight gradient add up). The rounding errors of n terms add like
    a random walk, sqrt(n) * eps (the blocked and pairwise sums of oneDNN and MKL do better still);
    a dozen layers in a row, forward and back, multiply that by a small factor: 16. The errors measured
    on an AMD EPYC are 20 times lower or more (the channels-last gradients reported from an Intel Xeon,
    2-3e-6, 60 times); TF32 arithmetic (inputs cut to 10 mantissa bits) fails these tests, and so does
    any real mistake (mirrored images, a stale parameter, a wrong learning rate)."""
    return 16 * EPS * math.sqrt(longest_sum)


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """||actual - expected|| / ||expected||, computed in float64."""
    expected = expected.detach().double()
    return float((actual.detach().double() - expected).norm() / expected.norm())


def assert_near(actual: torch.Tensor, expected: torch.Tensor, tolerance: float, what: object) -> None:
    error = relative_error(actual, expected)
    assert error <= tolerance, f"{what}: relative error {error:.2e} > {tolerance:.2e}"


def float64_copy(model: nn.Module) -> nn.Module:
    return copy.deepcopy(model).double()


def calibrated(model: nn.Module, images: torch.Tensor) -> nn.Module:
    """``model`` in eval mode with batch normalization's running statistics those of ``images``: its
    outputs then keep their scale through every layer and depend on the image. (With the initial
    statistics they hardly do: a path that mirrored the images went unnoticed.)"""
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # a cumulative average: after one batch, that batch's statistics
    with torch.no_grad():
        model.train()(images)
    return model.eval()


def in_layout(model: nn.Module, images: torch.Tensor, channels_last: bool) -> tuple[nn.Module, torch.Tensor]:
    if not channels_last:
        return model, images
    return model.to(memory_format=torch.channels_last), images.contiguous(memory_format=torch.channels_last)


class Choices:
    """The discrete choices a float32 network makes in its forward passes, recorded by hooks: what
    each ReLU lets through and which element each max pool takes. Gradients jump where a choice
    flips: where two inputs of a pool window, or a ReLU's input and zero, lie within rounding of each
    other, either side is right, and float32 paths do take different sides: one pool window in 12,800
    taken differently put the MNIST network's NCHW weight gradients 1% off float64 on an AMD EPYC
    (the 0.7-2% seen on an Intel Xeon looks alike). ``follow`` makes a float64 copy take the same
    choices, and checks that rounding alone can explain each one that differs from its own."""

    def __init__(self, model: nn.Module) -> None:
        self.made: dict[str, list[torch.Tensor]] = {}
        self.hooks = []
        for name, module in model.named_modules():
            if isinstance(module, (nn.ReLU, nn.MaxPool2d)):
                self.made[name] = []
                self.hooks.append(module.register_forward_hook(self._record(name)))

    def _record(self, name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            if isinstance(module, nn.ReLU):  # in place, so only the output is left: positive = let through
                self.made[name].append((output > 0).detach().clone())
            else:  # the same kernel as training's forward (max_pool2d_with_indices), on the same input
                self.made[name].append(pool(module, inputs[0].detach(), indices=True)[1])

        return hook

    def remove(self) -> None:
        for hook in self.hooks:
            hook.remove()

    def follow(self, model: nn.Module, slack: float) -> nn.Module:
        """``model`` (a float64 copy) with its ReLUs and pools taking the recorded choices in turn;
        where a choice differs from the float64 one, the two sides must lie within ``slack`` (relative
        to the root mean square of the ReLU's or pool's input) of each other."""
        for name in self.made:
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, Follow(model.get_submodule(name), self.made[name], slack))
        return model

    def all_followed(self) -> bool:
        return all(not choices for choices in self.made.values())


def pool(module: nn.MaxPool2d, x: torch.Tensor, indices: bool = False):  # type: ignore[no-untyped-def]
    return F.max_pool2d(x, module.kernel_size, module.stride, module.padding, module.dilation,
                        ceil_mode=module.ceil_mode, return_indices=indices)  # fmt: skip


class Follow(nn.Module):
    """A ReLU or max pool that takes the next recorded choice instead of its own."""

    def __init__(self, original: nn.Module, choices: list[torch.Tensor], slack: float) -> None:
        super().__init__()
        self.original, self.choices, self.slack = original, choices, slack

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        choice = self.choices.pop(0)
        slack = self.slack * float(x.detach().pow(2).mean().sqrt())  # in the units of x
        if isinstance(self.original, nn.ReLU):
            flipped = choice != (x > 0)
            assert not flipped.any() or float(x.detach()[flipped].abs().max()) <= slack, "a ReLU far from zero flipped"
            return x * choice
        taken = x.flatten(2).gather(2, choice.flatten(2)).view(choice.shape)
        best = pool(self.original, x.detach())
        assert float((best - taken.detach()).max()) <= slack, "a max pool took an element far below its window's maximum"
        return taken


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
def test_each_layout_computes_the_float64_forward(training: bool) -> None:
    images = torch.randn(16, *MNIST.input_shape, generator=torch.Generator().manual_seed(1))
    model = calibrated(mnist_network(), images)
    tolerance = float32_tolerance(16 * 24 * 24)  # training: batch norm's statistics sum 16 images x 24 x 24
    torch.manual_seed(2)  # the same dropout mask in every precision and layout
    expected = float64_copy(model).train(training)(images.double())
    for layout, channels_last in LAYOUTS.items():
        fast, batch = in_layout(copy.deepcopy(model), images, channels_last)
        torch.manual_seed(2)
        assert_near(fast.train(training)(batch), expected, tolerance, layout)


def test_each_layout_computes_the_float64_gradients() -> None:
    model = mnist_network()
    generator = torch.Generator().manual_seed(3)
    images = torch.randn(16, *MNIST.input_shape, generator=generator)
    labels = torch.randint(0, 10, (16,), generator=generator)
    tolerance = float32_tolerance(16 * 24 * 24)  # stage 1's weight gradients sum 16 images x 24 x 24
    for layout, channels_last in LAYOUTS.items():
        fast, batch = in_layout(copy.deepcopy(model), images, channels_last)
        choices = Choices(fast)
        torch.manual_seed(4)
        F.cross_entropy(fast(batch), labels).backward()
        choices.remove()
        reference = choices.follow(float64_copy(model), tolerance)
        torch.manual_seed(4)
        F.cross_entropy(reference(images.double()), labels).backward()
        assert choices.all_followed()
        for (name, expected), (_, actual) in zip(reference.named_parameters(), fast.named_parameters(), strict=True):
            assert_near(actual.grad, expected.grad, tolerance, f"{layout} {name}")


def test_channels_last_training_is_bit_identical_for_a_seed(data: Datasets) -> None:
    model = digits_network()
    first, second = copy.deepcopy(model), copy.deepcopy(model)
    one = train_model(first, data.train, data.validation, FAST, seed=7, channels_last=True)
    two = train_model(second, data.train, data.validation, FAST, seed=7, channels_last=True)
    assert replace(one, seconds=0.0) == replace(two, seconds=0.0)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
    assert first.features[0].nodes[0][0].weight.is_contiguous(memory_format=torch.channels_last)


def train_with_float64_reference(
    model: nn.Module, split: Split, config: TrainConfig, seed: int, channels_last: bool, slack: float
) -> tuple[nn.Module, list[float], nn.Module, list[float]]:
    """``fit`` a float32 copy of ``model`` in the given layout, then a float64 copy on the same steps
    (the same batches and dropout masks, following the float32 run's ReLU and pool choices, each
    within ``slack`` of the float64 one): (float32 model, its per-step losses, float64 model, its
    per-step losses)."""
    fast, fast_losses = copy.deepcopy(model), []
    choices = Choices(fast)
    fit(fast, split, config, seed=seed, channels_last=channels_last, on_batch=lambda step, loss: fast_losses.append(loss) or True)
    choices.remove()
    reference, reference_losses = choices.follow(float64_copy(model), slack), []
    fit(reference, Split(split.images.double(), split.labels), config, seed=seed, channels_last=False,
        on_batch=lambda step, loss: reference_losses.append(loss) or True)  # fmt: skip
    assert choices.all_followed()  # the same number of forward passes: the same steps
    return fast, fast_losses, reference, reference_losses


def movement_errors(start: nn.Module, fast: nn.Module, reference: nn.Module) -> dict[str, float]:
    """For each parameter: ||fast - reference|| / ||reference - start||, the error relative to how far
    the float64 training moved it."""
    return {
        name: float((a.detach().double() - b.detach()).norm() / (b.detach() - s.detach().double()).norm())
        for (name, s), (_, a), (_, b) in zip(start.named_parameters(), fast.named_parameters(), reference.named_parameters(), strict=True)
    }  # fmt: skip


def test_each_layout_follows_a_float64_sgd_training(data: Datasets) -> None:
    """Five SGD steps with momentum. Given the ReLU and pool choices (followed), a step is a smooth
    map of the weights, so the losses and weights of each layout stay within rounding of a float64
    training of the same steps; over many steps rounding differences grow, as between any two BLAS
    builds: runs in two layouts agree in distribution, not digit for digit."""
    split = Split(data.train.images[:160], data.train.labels[:160])
    config = TrainConfig(schedule=((1, 0.05),), batch_size=32, optimizer="sgd", momentum=0.9)
    tolerance = float32_tolerance(32 * 8 * 8)  # stage 1's weight gradients sum 32 images x 8 x 8
    for seed in (1, 7):
        model = digits_network(seed)
        for layout, channels_last in LAYOUTS.items():
            fast, losses, reference, expected = train_with_float64_reference(model, split, config, seed, channels_last, tolerance)
            assert len(losses) == len(expected) == 5
            assert losses == pytest.approx(expected, rel=tolerance, abs=0), layout
            # Each step's update carries its gradient's rounding error, and momentum adds them up.
            for name, error in movement_errors(model, fast, reference).items():
                assert error <= 5 * tolerance, f"seed {seed} {layout} {name}: {error:.2e} of the movement"


def test_each_layout_follows_a_float64_adam_training(data: Datasets) -> None:
    """Five Adam steps. Adam's first step moves each weight by lr * sign(gradient), whatever the
    gradient's size, so a gradient within rounding of zero may take either sign: that weight ends up
    as much as 2 lr from the float64 one, the weights after it a little off too (so activations near
    a ReLU's or a pool's choice may fall either side by more than rounding). The weights are therefore
    compared loosely; such gradients barely change the loss, so the per-step losses agree to rounding."""
    split = Split(data.train.images[:160], data.train.labels[:160])
    lr = 1e-3
    config = TrainConfig(schedule=((1, lr),), batch_size=32)
    assert config.optimizer == "adam"
    tolerance = float32_tolerance(32 * 8 * 8)
    for seed in (1, 7):
        model = digits_network(seed)
        for layout, channels_last in LAYOUTS.items():
            # Choices may differ by what one weight 2 lr off makes of an activation: ~1e-2 of its size.
            fast, losses, reference, expected = train_with_float64_reference(model, split, config, seed, channels_last, 1e-2)
            assert len(losses) == len(expected) == 5
            assert losses == pytest.approx(expected, rel=tolerance, abs=0), layout
            starts = dict(model.named_parameters())
            for (name, a), (_, b) in zip(fast.named_parameters(), reference.named_parameters(), strict=True):
                moved = float((b.detach() - starts[name].detach().double()).norm())
                error = float((a.detach().double() - b.detach()).norm())
                # One weight's first step of the other sign (2 lr), and 2% of the movement for the rest;
                # below the movement, so a tensor left where it started fails.
                assert error <= 2 * lr + 0.02 * moved < moved, f"seed {seed} {layout} {name}: {error:.2e} of {moved:.2e}"


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


def float64_evaluation(model: nn.Module, split: Split) -> tuple[float, float, torch.Tensor]:
    """The textbook evaluation of a float64 copy of ``model``: (accuracy, mean loss, outputs)."""
    with torch.no_grad():
        outputs = float64_copy(model).eval()(split.images.double())
    accuracy = int((outputs.argmax(dim=1) == split.labels).sum()) / len(split)
    return accuracy, float(F.cross_entropy(outputs, split.labels)), outputs


def output_slack(outputs: torch.Tensor, tolerance: float) -> float:
    """How far rounding (``tolerance`` relative to the outputs' root mean square, on each output) can
    move two outputs' difference, or a cross-entropy loss: its gradient in the outputs, softmax minus
    one-hot, sums to at most 2 in absolute value."""
    return 2 * tolerance * float(outputs.pow(2).mean().sqrt())


def assert_no_near_tie(outputs: torch.Tensor, tolerance: float) -> None:
    """No image's two highest outputs so close that rounding could swap them: the accuracies of every
    path must then agree exactly."""
    top = outputs.topk(2, dim=1).values
    assert float((top[:, 0] - top[:, 1]).min()) > output_slack(outputs, tolerance)


def test_evaluation_measures_what_a_float64_evaluation_does(data: Datasets) -> None:
    model = digits_network()
    train_model(model, data.train, data.validation, replace(FAST, schedule=((1, 3e-3),)), seed=0)
    tolerance = float32_tolerance(200)  # no sum is longer: 144 inputs of a stage-2 convolution, 64 losses of a batch
    expected_accuracy, expected_loss, outputs = float64_evaluation(model, data.test)
    assert_no_near_tie(outputs, tolerance)
    for layout, channels_last in LAYOUTS.items():
        accuracy, loss = evaluate_model(copy.deepcopy(model), data.test, 64, "cpu", channels_last=channels_last)
        assert accuracy == expected_accuracy, layout
        assert loss == pytest.approx(expected_loss, rel=0, abs=output_slack(outputs, tolerance)), layout


def test_evaluation_batch_size_and_layout_do_not_change_the_measurement() -> None:
    model = mnist_network()
    generator = torch.Generator().manual_seed(5)
    split = Split(torch.randn(300, *MNIST.input_shape, generator=generator), torch.randint(0, 10, (300,), generator=generator))
    calibrated(model, split.images[:100])
    tolerance = float32_tolerance(800)  # the longest sum: the first fully connected layer's 800 inputs
    expected_accuracy, expected_loss, outputs = float64_evaluation(model, split)
    assert_no_near_tie(outputs, tolerance)
    for batch_size, channels_last in ((7, False), (100, False), (1000, False), (7, True), (100, True), (1000, True)):
        accuracy, loss = evaluate_model(copy.deepcopy(model), split, batch_size, "cpu", channels_last=channels_last)
        assert accuracy == expected_accuracy, (batch_size, channels_last)
        assert loss == pytest.approx(expected_loss, rel=0, abs=output_slack(outputs, tolerance)), (batch_size, channels_last)


def test_each_layout_evaluates_random_genomes_as_float64_does() -> None:
    """Every MNIST stage shape the search can produce goes through kernels that compute the same outputs."""
    rng = np.random.default_rng(0)
    images = torch.randn(8, *MNIST.input_shape, generator=torch.Generator().manual_seed(6))
    tolerance = float32_tolerance(800)
    for genome in [Genome.zeros(MNIST.nodes), Genome.ones(MNIST.nodes)] + [Genome.random(MNIST.nodes, rng) for _ in range(3)]:
        torch.manual_seed(0)
        model = calibrated(build_network(genome, MNIST), images)
        with torch.inference_mode():
            expected = float64_copy(model)(images.double())
            for layout, channels_last in LAYOUTS.items():
                fast, batch = in_layout(copy.deepcopy(model), images, channels_last)
                assert_near(fast(batch), expected, tolerance, f"{genome} {layout}")
