"""The PyTorch network a genome encodes."""

import numpy as np
import pytest
import torch
from torch import nn

from genetic_cnn.nn.network import Stage, build_network, count_flops, count_parameters
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.graph import count_convolutions, stage_graphs
from genetic_cnn.space.presets import CIFAR10, CIFAR10_LARGE, DIGITS, MNIST, NetworkPreset


def lenet_with_batch_norm() -> nn.Sequential:
    """LeNet for MNIST as the paper describes it: C5@20 - MP2 - C5@50 - MP2 - FC500 - D0.5 - FC10."""
    return nn.Sequential(
        nn.Conv2d(1, 20, 5, bias=False), nn.BatchNorm2d(20), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(20, 50, 5, bias=False), nn.BatchNorm2d(50), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Dropout(0.5), nn.Linear(500, 10),
    )  # fmt: skip


def test_all_zero_mnist_genome_is_lenet_with_batch_norm() -> None:
    torch.manual_seed(0)
    model = build_network(Genome.zeros(MNIST.nodes), MNIST)
    reference = lenet_with_batch_norm()
    ours = [p.shape for p in model.parameters()]
    assert ours == [p.shape for p in reference.parameters()]
    assert count_parameters(model) == count_parameters(reference) == 431_150
    reference.load_state_dict(dict(zip(reference.state_dict().keys(), model.state_dict().values())))
    x = torch.randn(4, 1, 28, 28)
    model.eval(), reference.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) == 2


def test_convolutions_follow_the_decoded_graph() -> None:
    genome = Genome.from_string("1-01|0-01-100-0111")
    model = build_network(genome, MNIST)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == sum(count_convolutions(bits, k) for bits, k in zip(genome.stages, genome.nodes)) == 12
    # First convolution of each stage keeps LeNet's 5x5; every other one is 3x3 padded 1.
    stage_two = [m for m in model.features[2].modules() if isinstance(m, nn.Conv2d)]
    assert stage_two[0].kernel_size == (5, 5) and stage_two[0].padding == (0, 0)
    assert all(m.kernel_size == (3, 3) and m.padding == (1, 1) for m in stage_two[1:])
    assert all(m.in_channels == m.out_channels == 50 for m in stage_two[1:])


def test_stage_sums_inputs_elementwise() -> None:
    genome = Genome.from_string("0-11")  # v1 and v2 both feed v3: v3 sums them
    stage = Stage(stage_graphs(genome)[0], 1, 2, MNIST)
    order_inputs = stage.inputs
    assert order_inputs[0] == ()  # the input node reads the stage input
    assert sorted(len(sources) for sources in order_inputs) == [0, 1, 1, 1, 2]
    stage.eval()
    x = torch.randn(1, 1, 12, 12)
    outputs = []
    with torch.no_grad():
        for block, sources in zip(stage.nodes, stage.inputs):
            outputs.append(block(x if not sources else sum(outputs[s] for s in sources)))
        torch.testing.assert_close(stage(x), outputs[-1])


@pytest.mark.parametrize("preset", [MNIST, CIFAR10, CIFAR10_LARGE, DIGITS], ids=lambda p: p.name)
def test_forward_backward_on_sampled_genomes(preset: NetworkPreset) -> None:
    rng = np.random.default_rng(0)
    genomes = [Genome.zeros(preset.nodes), Genome.ones(preset.nodes)]
    genomes += [Genome.random(preset.nodes, rng) for _ in range(3)]
    torch.manual_seed(0)
    for genome in genomes:
        model = build_network(genome, preset)
        x = torch.randn(3, *preset.input_shape)
        out = model(x)
        assert out.shape == (3, preset.num_classes)
        out.logsumexp(dim=1).mean().backward()
        assert torch.isfinite(out).all()
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_preset_is_a_dataclass_a_user_can_change() -> None:
    from dataclasses import replace

    wide = replace(CIFAR10, channels=(16, 32, 64), hidden=(256,), num_classes=100)
    model = build_network(Genome.ones(wide.nodes), wide)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    with pytest.raises(ValueError, match="shrinks"):
        replace(MNIST, input_shape=(1, 8, 8))


def test_genome_must_match_preset_nodes() -> None:
    with pytest.raises(ValueError, match="expects"):
        build_network(Genome.zeros((3, 4)), MNIST)
    with pytest.raises(ValueError, match="nodes=\\(3, 5\\)"):
        build_network("1-01|0-01-100", "mnist")


def test_flops_grow_with_connections() -> None:
    lenet = count_flops(build_network(Genome.zeros(MNIST.nodes), MNIST), MNIST.input_shape)
    dense = count_flops(build_network(Genome.ones(MNIST.nodes), MNIST), MNIST.input_shape)
    # LeNet: 2 * (24*24*20*25 + 8*8*50*500 + 800*500 + 500*10) multiply-adds per image.
    assert lenet == 2 * (24 * 24 * 20 * 25 + 8 * 8 * 50 * 500 + 800 * 500 + 500 * 10)
    assert dense > 5 * lenet
