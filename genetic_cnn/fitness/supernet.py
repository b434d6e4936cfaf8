"""A weight-sharing supernet of a search space: every genome is a path through it (one-shot fitness).

Each stage holds one convolution block per node label — the input node 0, the ordinary nodes
1..K and the output node K+1 — and the network holds one head. A genome selects the blocks of its
decoded stages and computes exactly what ``build_network`` computes for it with those weights
(``run_stage``, ``classifier_head`` and the pooling are shared with ``genetic_cnn.nn.network``).
In training mode the supernet draws a random genome for every forward call, i.e. for every
mini-batch (single-path one-shot, Guo et al. 2019), from its own seeded generator, which is part of
its state dict so that a checkpointed training resumes with the same paths. ``uniform`` draws every
bit from Bernoulli(0.5); ``balanced`` draws each stage's convolution count uniformly, then a string
with that count: uniform bits leave a stage empty once in 2^(K(K-1)/2) draws (1 in 1,024 for K = 5),
so the head almost never learns to read an empty stage's input convolution.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
from torch import nn

from genetic_cnn.config import SAMPLING_RULES
from genetic_cnn.nn.network import (
    GeneticCNN,
    StagePlan,
    build_network,
    classifier_head,
    conv_block,
    run_stage,
    stage_plan,
)
from genetic_cnn.space.enumerate import stage_strings_by_convolutions
from genetic_cnn.space.genome import Genome, bits_per_stage
from genetic_cnn.space.graph import decode_stage
from genetic_cnn.space.presets import NetworkPreset


class SuperNet(nn.Module):
    """All of a preset's genomes in one module; ``use(genome)`` fixes the path used outside training."""

    def __init__(self, preset: NetworkPreset, sampling_seed: int = 0, sampling: str = "uniform") -> None:
        super().__init__()
        if sampling not in SAMPLING_RULES:
            raise ValueError(f"unknown path sampling {sampling!r}; choose one of {', '.join(SAMPLING_RULES)}")
        self.preset = preset
        self.sampling = sampling
        self._groups = [stage_strings_by_convolutions(nodes) for nodes in preset.nodes] if sampling == "balanced" else []
        self.stages = nn.ModuleList()
        in_channels = preset.input_shape[0]
        for nodes, channels in zip(preset.nodes, preset.channels):
            blocks = [conv_block(in_channels, channels, preset.first_kernel, preset.first_padding)]
            blocks += [conv_block(channels, channels, preset.node_kernel, preset.node_kernel // 2) for _ in range(nodes + 1)]
            self.stages.append(nn.ModuleList(blocks))
            in_channels = channels
        self.pool = nn.MaxPool2d(preset.pool_kernel, preset.pool_stride)
        self.classifier = classifier_head(in_channels, preset)
        self.sampler = torch.Generator().manual_seed(sampling_seed)
        self.sample_paths = True
        """In training mode, draw a path per forward call; False trains the path set by ``use``."""
        self.path: Genome = Genome.zeros(preset.nodes)
        self._plans: dict[str, list[StagePlan]] = {}

    def use(self, genome: Genome | str) -> SuperNet:
        """Compute ``genome``'s network from now on (outside training, or with ``sample_paths`` off)."""
        self.path = Genome.from_string(genome, nodes=self.preset.nodes) if isinstance(genome, str) else genome
        return self

    def sample(self) -> Genome:
        """A random genome of the space by the sampling rule, from the supernet's own generator."""
        if self.sampling == "uniform":
            total = sum(bits_per_stage(nodes) for nodes in self.preset.nodes)
            bits = torch.randint(0, 2, (total,), generator=self.sampler).tolist()
            return Genome.from_bits(bits, self.preset.nodes)
        stages = []
        for groups in self._groups:
            _, strings = groups[int(torch.randint(len(groups), (1,), generator=self.sampler))]
            stages.append(strings[int(torch.randint(len(strings), (1,), generator=self.sampler))])
        return Genome(self.preset.nodes, tuple(stages))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        genome = self.sample() if self.training and self.sample_paths else self.path
        return self.classifier(self.run_stages(genome, x))

    def run_stages(self, genome: Genome, x: torch.Tensor) -> torch.Tensor:
        """The stages of ``genome``'s path, each followed by the pooling."""
        for index, (order, inputs) in enumerate(self.plans(genome)):
            blocks = self.blocks(index)
            x = self.pool(run_stage([blocks[node] for node in order], inputs, x))
        return x

    def batch_norms(self, genome: Genome) -> list[nn.BatchNorm2d]:
        """The batch norms of ``genome``'s path (the head has none)."""
        blocks = [self.blocks(index)[node] for index, (order, _) in enumerate(self.plans(genome)) for node in order]
        return [module for block in blocks for module in block.modules() if isinstance(module, nn.BatchNorm2d)]

    def plans(self, genome: Genome) -> list[StagePlan]:
        """Each stage's computing order with the supernet's node labels (0 input, K+1 output)."""
        text = str(genome)
        if text not in self._plans:
            self._plans[text] = [stage_plan(decode_stage(bits, nodes)) for bits, nodes in zip(genome.stages, genome.nodes)]
        return self._plans[text]

    def path_modules(self, genome: Genome) -> list[nn.Module]:
        """The blocks ``genome`` uses, stage by stage, and the head."""
        used: list[nn.Module] = []
        for index, (order, _) in enumerate(self.plans(genome)):
            used += [self.blocks(index)[node] for node in order]
        return [*used, self.classifier]

    def blocks(self, stage: int) -> nn.ModuleList:
        """The blocks of stage ``stage``, by node label."""
        return cast(nn.ModuleList, self.stages[stage])

    def extract(self, genome: Genome | str) -> GeneticCNN:
        """``genome``'s standalone network carrying the supernet's weights for its path."""
        genome = Genome.from_string(genome, nodes=self.preset.nodes) if isinstance(genome, str) else genome
        network = build_network(genome, self.preset)
        stages = [module for module in network.features if hasattr(module, "nodes")]
        for index, (stage, (order, _)) in enumerate(zip(stages, self.plans(genome))):
            for target, node in zip(cast(nn.ModuleList, stage.nodes), order):
                target.load_state_dict(self.blocks(index)[node].state_dict())
        network.classifier.load_state_dict(self.classifier.state_dict())
        return network

    def get_extra_state(self) -> dict[str, Any]:
        return {"sampler": self.sampler.get_state()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.sampler.set_state(state["sampler"])


def recalibrate_batch_norm(model: SuperNet, genome: Genome, images: torch.Tensor, batch_size: int) -> None:
    """Recompute the running statistics of ``genome``'s batch norms on ``images``.

    Shared weights saw every path, so their running statistics mix all of them; the path's own
    statistics (an equal-weight average over the batches, as ``momentum=None`` gives) are what its
    standalone network would have. Only the batch norms run in training mode, so dropout is off.
    """
    model.use(genome).eval()
    recalibrated(model.batch_norms(genome), model, images, batch_size)


def recalibrated(
    norms: list[nn.BatchNorm2d], compute: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """Reset ``norms``' running statistics and recompute them while ``compute`` runs over ``images`` in
    batches; returns what ``compute`` gave, batches concatenated. The norms normalize each batch with
    its own statistics meanwhile (training mode), then return to eval mode."""
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
        norm.train()
    with torch.inference_mode():
        outputs = torch.cat([compute(images[start : start + batch_size]) for start in range(0, len(images), batch_size)])
    for norm in norms:
        norm.eval()
    return outputs

