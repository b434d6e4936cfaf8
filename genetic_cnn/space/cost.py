"""What a network costs, counted from its genome without building it: parameters and FLOPs. No torch.

A stage computes one convolution block (convolution without bias, batch norm, ReLU) per node of its
decoded graph (``graph.count_convolutions``): the input node with the preset's first kernel, every
other node with the padded node kernel, so a network's cost follows from each stage's convolution
count. The counts equal ``network.count_parameters`` and ``network.count_flops`` (forward, one image,
a multiply-add counts 2; batch norm, ReLU, pooling and sums count nothing, as in torch's
``FlopCounterMode``) of the built network; ``tests/search/test_pareto.py`` checks them against every
architecture of the shipped tables. The search uses them to keep networks out of a run before any
is trained (``evolution.max_flops``, ``evolution.max_params``) and as objectives to minimise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from genetic_cnn.space.genome import Genome
from genetic_cnn.space.graph import count_convolutions
from genetic_cnn.space.presets import NetworkPreset

COST_OBJECTIVES = ("flops", "params")
"""Objectives counted from the genome alone (minimised)."""
LATENCY = "latency"
"""The objective measured on the run's device instead (``genetic_cnn.fitness.latency``), minimised."""


@dataclass(frozen=True)
class NetworkCost:
    parameters: int
    flops: int
    latency_ms: float | None = None
    """Measured milliseconds of one forward pass (``genetic_cnn.fitness.latency``); None where the run needs none."""

    def value(self, objective: str) -> float:
        if objective == "flops":
            return self.flops
        if objective == "params":
            return self.parameters
        if objective == LATENCY:
            if self.latency_ms is None:
                raise ValueError("this cost was counted without a latency; give the search the run's latency cost")
            return self.latency_ms
        raise ValueError(f"objective {objective!r} is not one of {', '.join((*COST_OBJECTIVES, LATENCY))}")


def network_cost(genome: Genome, preset: NetworkPreset) -> NetworkCost:
    """Parameters and forward FLOPs per image of the network ``genome`` encodes on ``preset``."""
    if genome.nodes != preset.nodes:
        raise ValueError(f"genome {genome} has nodes {genome.nodes} per stage, preset {preset.name!r} expects {preset.nodes}")
    in_channels, (height, width) = preset.input_shape[0], preset.input_shape[1:]
    parameters = flops = 0
    for bits, nodes, channels in zip(genome.stages, genome.nodes, preset.channels):
        height = height + 2 * preset.first_padding - preset.first_kernel + 1
        width = width + 2 * preset.first_padding - preset.first_kernel + 1
        convolutions = count_convolutions(bits, nodes)
        weights = in_channels * channels * preset.first_kernel**2  # the input node's convolution
        weights += (convolutions - 1) * channels * channels * preset.node_kernel**2
        parameters += weights + convolutions * 2 * channels  # each batch norm's scale and shift
        flops += 2 * height * width * weights  # every convolution keeps the stage's size
        height = (height - preset.pool_kernel) // preset.pool_stride + 1
        width = (width - preset.pool_kernel) // preset.pool_stride + 1
        in_channels = channels
    width_in = in_channels * height * width
    for width_out in (*preset.hidden, preset.num_classes):
        parameters += width_in * width_out + width_out
        flops += 2 * width_in * width_out
        width_in = width_out
    return NetworkCost(parameters, flops)


CostOf = Callable[[Genome], NetworkCost]
"""How a search learns what a genome costs (``network_cost`` on the run's preset, or a table's counts)."""


def cost_function(preset: NetworkPreset) -> CostOf:
    """``network_cost`` on ``preset``, remembered per architecture string."""
    known: dict[Genome, NetworkCost] = {}

    def cost(genome: Genome) -> NetworkCost:
        found = known.get(genome)
        if found is None:
            found = known[genome] = network_cost(genome, preset)
        return found

    return cost
