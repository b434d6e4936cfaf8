"""Build the PyTorch network a genome encodes on a base network (paper, section 3.1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import networkx as nx
import torch
from torch import nn

from genetic_cnn.errors import UserError
from genetic_cnn.space.genome import Genome, GenomeError
from genetic_cnn.space.graph import decode_stage
from genetic_cnn.space.presets import NetworkPreset, get_preset


def conv_block(in_channels: int, out_channels: int, kernel: int, padding: int) -> nn.Sequential:
    """Every node of a stage: convolution, batch normalization, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, padding=padding, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


StagePlan = tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]
"""A decoded stage in computing order: the node labels, and for each node the positions (in that
order) of the nodes whose outputs it sums; an empty tuple reads the stage's input."""


def stage_plan(graph: nx.DiGraph) -> StagePlan:
    """The order in which ``Stage`` (and the one-shot supernet) compute a decoded stage's nodes."""
    order = tuple(nx.topological_sort(graph))
    index = {node: i for i, node in enumerate(order)}
    return order, tuple(tuple(sorted(index[pred] for pred in graph.predecessors(node))) for node in order)


def run_stage(blocks: Sequence[nn.Module], inputs: Sequence[tuple[int, ...]], x: torch.Tensor) -> torch.Tensor:
    """Each node sums its inputs element-wise, then applies its block; the last node is the output."""
    outputs: list[torch.Tensor] = []
    for block, sources in zip(blocks, inputs):
        if not sources:
            node_input = x
        else:
            node_input = outputs[sources[0]]
            for source in sources[1:]:
                node_input = node_input + outputs[source]
        outputs.append(block(node_input))
    return outputs[-1]


def node_block(graph: nx.DiGraph, node: int, in_channels: int, channels: int, preset: NetworkPreset) -> nn.Sequential:
    """The input node keeps the base network's convolution; every other node is a padded one."""
    if graph.nodes[node]["role"] == "input":
        return conv_block(in_channels, channels, preset.first_kernel, preset.first_padding)
    return conv_block(channels, channels, preset.node_kernel, preset.node_kernel // 2)


class Stage(nn.Module):
    """One decoded stage: nodes in topological order, each summing its inputs element-wise."""

    def __init__(self, graph: nx.DiGraph, in_channels: int, channels: int, preset: NetworkPreset) -> None:
        super().__init__()
        order, self.inputs = stage_plan(graph)
        self.nodes = nn.ModuleList(node_block(graph, node, in_channels, channels, preset) for node in order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_stage(cast(Sequence[nn.Module], self.nodes), self.inputs, x)


def classifier_head(in_channels: int, preset: NetworkPreset) -> nn.Sequential:
    """Flatten, the preset's hidden layers, dropout and the classifier."""
    height, width = preset.feature_size()
    head: list[nn.Module] = [nn.Flatten()]
    width_in = in_channels * height * width
    for hidden in preset.hidden:
        head += [nn.Linear(width_in, hidden), nn.ReLU(inplace=True)]
        width_in = hidden
    head += [nn.Dropout(preset.dropout), nn.Linear(width_in, preset.num_classes)]
    return nn.Sequential(*head)


class GeneticCNN(nn.Module):
    """Stages with max pooling after each, then the fully connected head."""

    def __init__(self, genome: Genome, preset: NetworkPreset) -> None:
        super().__init__()
        if genome.nodes != preset.nodes:
            raise GenomeError(
                f"genome {genome} has nodes {genome.nodes} per stage, preset {preset.name!r} "
                f"expects {preset.nodes}"
            )
        self.genome = genome
        self.preset = preset
        layers: list[nn.Module] = []
        in_channels = preset.input_shape[0]
        for bits, nodes, channels in zip(genome.stages, genome.nodes, preset.channels):
            layers.append(Stage(decode_stage(bits, nodes), in_channels, channels, preset))
            layers.append(nn.MaxPool2d(preset.pool_kernel, preset.pool_stride))
            in_channels = channels
        self.features = nn.Sequential(*layers)
        self.classifier = classifier_head(in_channels, preset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_network(genome: Genome | str, preset: NetworkPreset | str = "mnist") -> GeneticCNN:
    """The network ``genome`` encodes on ``preset`` (a ``NetworkPreset`` or its name)."""
    if isinstance(preset, str):
        try:
            preset = get_preset(preset)
        except ValueError as error:
            raise UserError(str(error)) from None
    if not isinstance(preset, NetworkPreset):
        raise UserError(f"build_network's preset is a NetworkPreset or a preset's name; got {type(preset).__name__}")
    if isinstance(genome, str):
        genome = Genome.from_string(genome, nodes=preset.nodes)
    if not isinstance(genome, Genome):
        raise GenomeError(f"build_network takes a Genome or a genome string, e.g. '1-01|0-01-100-0111'; got {type(genome).__name__}")
    return GeneticCNN(genome, preset)


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def count_flops(model: nn.Module, input_shape: tuple[int, ...], backward: bool = False) -> int:
    """FLOPs for one image (a multiply-add counts 2), forward or forward and backward."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.train(backward)
    batch = 2  # batch norm refuses a batch of one image in training mode
    x = torch.zeros((batch, *input_shape))
    counter = FlopCounterMode(display=False)
    with counter:
        if backward:
            model(x).sum().backward()
        else:
            with torch.no_grad():
                model(x)
    model.train(was_training)
    if backward:
        model.zero_grad(set_to_none=True)
    return counter.get_total_flops() // batch
