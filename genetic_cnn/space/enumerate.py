"""The distinct architectures of a search space, enumerated stage by stage, and samples of them. No torch.

Two genomes are the same architecture exactly when their stages' canonical forms agree
(``graph.architecture_key``), so the architectures of a space are the product of each stage's
distinct canonical forms: 1,812 for the MNIST preset's nodes (3, 5), found from 8 + 1,024 stage
strings instead of 8,192 genomes.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from functools import cache

import numpy as np

from genetic_cnn.space.genome import STAGE_SEPARATOR, Genome, bits_per_stage
from genetic_cnn.space.graph import canonical_stage, count_convolutions, representative
from genetic_cnn.space.presets import BALANCED_MAX_NODES


@cache
def stage_forms(nodes: int) -> tuple[tuple[str, int], ...]:
    """Each distinct canonical form of a stage of ``nodes`` nodes with its convolution count, sorted."""
    forms: dict[str, int] = {}
    for bits in itertools.product((0, 1), repeat=bits_per_stage(nodes)):
        key = canonical_stage(bits, nodes)
        if key not in forms:
            forms[key] = count_convolutions(bits, nodes)
    return tuple(sorted(forms.items()))


@cache
def stage_strings_by_convolutions(nodes: int) -> tuple[tuple[int, tuple[tuple[int, ...], ...]], ...]:
    """Every bit string of a stage of ``nodes`` nodes, grouped by the convolutions it performs."""
    if nodes > BALANCED_MAX_NODES:
        raise ValueError(f"a stage of {nodes} nodes has too many strings to group; at most {BALANCED_MAX_NODES} nodes")
    groups: dict[int, list[tuple[int, ...]]] = defaultdict(list)
    for bits in itertools.product((0, 1), repeat=bits_per_stage(nodes)):
        groups[count_convolutions(bits, nodes)].append(bits)
    return tuple((count, tuple(groups[count])) for count in sorted(groups))


def architectures(nodes: Sequence[int]) -> dict[str, int]:
    """Every architecture key of the space -> the convolutions its network performs."""
    per_stage = [stage_forms(count) for count in nodes]
    return {
        STAGE_SEPARATOR.join(key for key, _ in combination): sum(convolutions for _, convolutions in combination)
        for combination in itertools.product(*per_stage)
    }


def stratified_sample(nodes: Sequence[int], count: int, rng: np.random.Generator) -> list[Genome]:
    """``count`` distinct architectures (as ``representative`` genomes) spread over convolution counts.

    The all-zero genome (the base network) comes first; then the groups of equal convolution count
    take turns, smallest count first, each giving one architecture drawn at random, so that small
    and large networks are equally represented however unequal the groups' sizes.
    """
    space = architectures(nodes)
    if count > len(space):
        raise ValueError(f"the space of nodes {list(nodes)} has {len(space)} architectures, fewer than {count}")
    zero = Genome.zeros(nodes)
    groups: dict[int, list[str]] = defaultdict(list)
    zero_key = STAGE_SEPARATOR.join(canonical_stage(bits, n) for bits, n in zip(zero.stages, zero.nodes))
    for key, convolutions in sorted(space.items()):
        if key != zero_key:
            groups[convolutions].append(key)
    for members in groups.values():
        rng.shuffle(members)
    chosen = [zero_key]
    while len(chosen) < count:
        for convolutions in sorted(groups):
            if groups[convolutions] and len(chosen) < count:
                chosen.append(groups[convolutions].pop())
    return [representative(key, nodes) for key in chosen]
