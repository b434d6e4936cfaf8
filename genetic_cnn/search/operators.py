"""Genetic operators of Algorithm 1 (Xie & Yuille, "Genetic CNN", ICCV 2017, arXiv:1703.01513, section 3.2).

Pure functions: each takes an explicit ``numpy.random.Generator`` and never touches global
random state, so a run is reproducible from its seed.

Order of random draws in ``next_generation`` (fixed; changing it changes every seeded run):

1. Selection: roulette (the paper): one ``rng.random(N)``, mapped through the cumulative roulette
   weights; tournament (``config.selection``): one ``rng.integers(0, N, (N, S))``, row i the contestants
   of slot i.
2. Crossover, for each pair (slots 2n-1, 2n), n = 1 ... floor(N/2), in order: one ``rng.random()``
   (the pair is crossed when it is < p_C); for a crossed pair, one ``rng.random(S)`` (stage s is
   swapped when its draw is < q_C).
3. Mutation, for each slot i = 1 ... N in order, skipping the crossed slots: one ``rng.random()``
   (mutated when it is < p_M); for a mutated slot, one ``rng.random(L)`` (bit j flips when its
   draw is < q_M).

``initialize`` draws the N genomes one after another, L bits each (as ``Genome.random``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from genetic_cnn.config import INIT_MODES, EvolutionConfig
from genetic_cnn.space.genome import Genome, bits_per_stage


@dataclass(frozen=True)
class GenerationLog:
    """What one breeding step did, slot by slot (0-based slots of the new generation).

    ``parents[i]``: index in the previous generation of the individual selected into slot i.
    ``crossed[i]``: slot i's pair was chosen for crossover (p_C), even if no stage was swapped.
    ``mutated[i]``: slot i was chosen for mutation (p_M), even if no bit flipped.
    """

    parents: tuple[int, ...]
    crossed: tuple[bool, ...]
    mutated: tuple[bool, ...]

    def to_dict(self) -> dict[str, Any]:
        return {key: list(value) for key, value in asdict(self).items()}


def initialize(nodes: Sequence[int], size: int, rng: np.random.Generator, mode: str = "random") -> list[Genome]:
    """Algorithm 1, step 1: N individuals, every bit from Bernoulli(0.5) ("random") or all zeros ("zeros")."""
    if mode == "random":
        total = sum(bits_per_stage(count) for count in nodes)
        # Genome.random's draws, with the validated genomes shared as in ``mutate``
        return [_genome_of(tuple(rng.integers(0, 2, size=total).tolist()), tuple(nodes)) for _ in range(size)]
    if mode == "zeros":
        return [Genome.zeros(nodes)] * size
    raise ValueError(f"initialization mode {mode!r} is not one of {', '.join(INIT_MODES)}")


def roulette_select(fitness: Sequence[float], size: int, rng: np.random.Generator) -> list[int]:
    """Russian roulette: ``size`` independent draws with replacement, P(n) proportional to r_n - r_min.

    The worst individual is never drawn when another one is better; all equal gives uniform draws.
    Non-finite fitness (NaN, a failed individual) counts as the worst: never drawn unless all are.
    """
    values = np.asarray(fitness, dtype=float)
    if values.size == 0:
        raise ValueError("roulette selection needs at least one fitness value")
    finite = np.isfinite(values)
    if not finite.any():
        weights = np.ones(len(values))
    else:
        weights = np.where(finite, values - values[finite].min(), 0.0)
        if weights.sum() <= 0:
            weights = finite.astype(float)
    cumulative = np.cumsum(weights)
    picks = np.searchsorted(cumulative, rng.random(size) * cumulative[-1], side="right")
    return np.minimum(picks, np.flatnonzero(weights)[-1]).tolist()  # guards u * total rounding up to total


def tournament_select(fitness: Sequence[float], size: int, sample_size: int, rng: np.random.Generator) -> list[int]:
    """``size`` tournaments: each draws ``sample_size`` individuals uniformly with replacement and keeps the fittest
    (the first drawn among equals). Non-finite fitness (NaN, a failed individual) loses to any finite one."""
    values = np.asarray(fitness, dtype=float)
    if values.size == 0:
        raise ValueError("tournament selection needs at least one fitness value")
    if sample_size < 1:
        raise ValueError(f"a tournament needs at least one contestant, got sample_size = {sample_size}")
    ranked = np.where(np.isfinite(values), values, -np.inf)
    contestants = rng.integers(0, len(values), size=(size, sample_size))
    winners = contestants[np.arange(size), np.argmax(ranked[contestants], axis=1)]
    return winners.tolist()


def crossover(a: Genome, b: Genome, q: float, rng: np.random.Generator) -> tuple[Genome, Genome]:
    """Swap each pair of corresponding stages independently with probability q_C (the stage is the unit)."""
    if a.nodes != b.nodes:
        raise ValueError(f"cannot cross genomes of nodes {a.nodes} and {b.nodes}")
    swap = rng.random(a.num_stages) < q
    first = tuple(sb if s else sa for sa, sb, s in zip(a.stages, b.stages, swap, strict=True))
    second = tuple(sa if s else sb for sa, sb, s in zip(a.stages, b.stages, swap, strict=True))
    return Genome(a.nodes, first), Genome(a.nodes, second)


def mutate(g: Genome, q: float, rng: np.random.Generator) -> Genome:
    """Flip each bit independently with probability q_M."""
    flips = rng.random(len(g)) < q
    if not flips.any():
        return g
    return _genome_of(tuple((np.asarray(g.bits) ^ flips).tolist()), g.nodes)


@lru_cache(maxsize=1 << 16)
def _genome_of(bits: tuple[int, ...], nodes: tuple[int, ...]) -> Genome:
    """A genome is a value, so equal bits can share one validated instance: a search on a table
    (``experiments/compare_strategies.py``) spends most of its time building genomes otherwise."""
    return Genome.from_bits(bits, nodes)


def next_generation(
    population: Sequence[Genome], fitness: Sequence[float], config: EvolutionConfig, rng: np.random.Generator
) -> tuple[list[Genome], GenerationLog]:
    """Algorithm 1, one step t: selection (``config.selection``: the paper's roulette, or tournaments of
    ``config.sample_size``), crossover, mutation (draw order in the module docstring)."""
    size = len(population)
    if len(fitness) != size:
        raise ValueError(f"{len(fitness)} fitness values given for {size} individuals")
    if config.selection == "tournament":
        parents = tournament_select(fitness, size, config.sample_size, rng)
    else:
        parents = roulette_select(fitness, size, rng)
    offspring, crossed, mutated = vary([population[index] for index in parents], config, rng)
    return offspring, GenerationLog(tuple(parents), tuple(crossed), tuple(mutated))


def vary(
    selected: Sequence[Genome], config: EvolutionConfig, rng: np.random.Generator
) -> tuple[list[Genome], list[bool], list[bool]]:
    """Algorithm 1's variation of the selected individuals (slot i is the i-th selected): crossover of
    pairs, then mutation of the individuals not crossed (draw order 2 and 3 of the module docstring).
    Returns the offspring and, per slot, whether it was crossed and whether it was mutated."""
    size = len(selected)
    offspring = list(selected)
    crossed = [False] * size
    for i in range(0, size - 1, 2):  # pairs (M_2n-1, M_2n), n = 1 ... floor(N/2)
        if rng.random() < config.p_crossover:
            offspring[i], offspring[i + 1] = crossover(offspring[i], offspring[i + 1], config.q_crossover, rng)
            crossed[i] = crossed[i + 1] = True
    mutated = [False] * size
    for i in range(size):  # only individuals that did not undergo crossover
        if not crossed[i] and rng.random() < config.p_mutation:
            offspring[i] = mutate(offspring[i], config.q_mutation, rng)
            mutated[i] = True
    return offspring, crossed, mutated
