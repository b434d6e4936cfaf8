"""How noisy fitness is, measured from the run itself. Plain statistics, no torch.

Re-evaluation (the paper's mode) trains survivors again with new seeds, so every run holds repeated
evaluations of the same genome for free. From them:

- seed sd: the pooled standard deviation within genomes, sqrt(sum_i SS_i / sum_i (n_i - 1)), where
  SS_i is the sum of squared deviations of genome i's accuracies from their mean, over the genomes
  with two or more trained, successful evaluations (status ok: failed and diverged ones measured
  nothing, reused ones repeat an earlier mean and would shrink the estimate);
- population sd: the sample standard deviation (n - 1) of the genomes' mean fitness, over the
  genomes with at least one successful evaluation;
- repeated: how many genomes enter the seed sd.

"Genome" is the run's identity (``evolution.identity``): the exact string, or the architecture key.
All values are in percentage points of validation accuracy. When the seed sd reaches the population
sd, one evaluation's luck moves a genome as far as the differences between genomes do, and the
roulette mostly selects noise.

Per generation g (``noise_by_generation``): the seed sd and the repeated count are cumulative, over
the evaluations of generations 0..g (repeats accumulate, so the estimate sharpens as the run goes
on); the population sd is the spread in generation g's population, over its distinct genomes, of
their fitness as the search saw it then (the mean over their evaluations of generations 0..g).
Duplicates count once, so a population converged on copies of one genome shows no spread.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from genetic_cnn.records import OK, EvaluationResult

PERCENT = 100.0

ADVICE = (
    "to reduce the noise train on more images (data.subset) or for more epochs (train.schedule), hold out a larger "
    "validation split (data.validation), pick a fidelity with `genetic-cnn calibrate`, or use one-shot fitness "
    "(--set evaluation.method=one-shot)"
)


@dataclass(frozen=True)
class FitnessNoise:
    """Evaluation noise and the spread between genomes, in percentage points; None where not measurable."""

    seed_sd: float | None
    population_sd: float | None
    repeated: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FitnessNoise:
        return cls(values.get("seed_sd"), values.get("population_sd"), int(values.get("repeated", 0)))


def identity_of(result: EvaluationResult, identity: str) -> str:
    """The individual an evaluation belongs to, as ``search.FitnessLedger.identity_of`` counts it."""
    if identity == "architecture":
        if result.key:
            return result.key
        from genetic_cnn.graph import architecture_key  # only for a record without a key (none is written so)

        return architecture_key(result.genome)
    return result.genome


def measured(evaluations: Sequence[EvaluationResult], identity: str) -> dict[str, list[float]]:
    """Each genome's successful, trained accuracies, in the order given."""
    groups: dict[str, list[float]] = defaultdict(list)
    for e in evaluations:
        if e.status == OK:
            groups[identity_of(e, identity)].append(e.accuracy)
    return dict(groups)


def pooled_sd(groups: Mapping[str, Sequence[float]]) -> tuple[float | None, int]:
    """(pooled within-group standard deviation, groups with two or more values); None without such a group."""
    repeated = [values for values in groups.values() if len(values) >= 2]
    if not repeated:
        return None, 0
    squares = math.fsum(math.fsum((v - statistics.fmean(values)) ** 2 for v in values) for values in repeated)
    freedom = sum(len(values) - 1 for values in repeated)
    return math.sqrt(squares / freedom), len(repeated)


def spread(means: Sequence[float]) -> float | None:
    """Sample standard deviation of the genomes' mean fitness; None for fewer than two genomes."""
    return statistics.stdev(means) if len(means) >= 2 else None


def _in_points(value: float | None) -> float | None:
    return None if value is None else PERCENT * value


def fitness_noise(evaluations: Sequence[EvaluationResult], identity: str) -> FitnessNoise:
    """The noise over all ``evaluations`` of a run (see the module's docstring)."""
    groups = measured(evaluations, identity)
    seed, repeated = pooled_sd(groups)
    population = spread([statistics.fmean(values) for values in groups.values()])
    return FitnessNoise(_in_points(seed), _in_points(population), repeated)


def noise_by_generation(evaluations: Sequence[EvaluationResult], identity: str) -> dict[int, FitnessNoise]:
    """Generation -> its noise: cumulative seed sd, the spread of its own population (module docstring)."""
    result: dict[int, FitnessNoise] = {}
    for generation in sorted({e.generation for e in evaluations}):
        so_far = [e for e in evaluations if e.generation <= generation]
        groups = measured(so_far, identity)
        seed, repeated = pooled_sd(groups)
        population = {identity_of(e, identity) for e in evaluations if e.generation == generation}
        means = [statistics.fmean(groups[name]) for name in sorted(population) if name in groups]
        result[generation] = FitnessNoise(_in_points(seed), _in_points(spread(means)), repeated)
    return result


def noise_verdict(noise: FitnessNoise) -> str | None:
    """One line when evaluation noise is as large as the spread between genomes; None otherwise.

    Without a repeated genome nothing was measured, so there is nothing to say. With a single genome
    there is no spread to compare with: the line says so rather than comparing with a zero.
    """
    if noise.seed_sd is None:
        return None
    seed = f"seed sd {noise.seed_sd:.2f} pp over {noise.repeated} repeated genome{'s' if noise.repeated != 1 else ''}"
    if noise.population_sd is None:
        return (
            f"fitness noise: {seed}, but only one genome has a fitness, so there is no spread between genomes to rank "
            'it against; start from a varied population (evolution.init = "random") to search'
        )
    if noise.seed_sd < noise.population_sd:
        return None
    return (
        f"fitness noise: {seed} >= population sd {noise.population_sd:.2f} pp: evaluations of the same genome differ "
        f"as much as genomes do, so selection mostly follows noise; {ADVICE}"
    )
