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
All values are in percentage points of validation accuracy.

The population sd is not the spread between genomes: each mean still holds seed noise, the more
the fewer evaluations it averages. So (``FitnessNoise``): signal variance = population variance -
seed variance x mean(1/n_i) over the genomes in the population sd (n_i: a genome's successful
evaluations); the reliability of one evaluation = signal / (signal + seed variance), the share of
an evaluation's variance that is the genome's worth (an intra-class correlation), and of a mean of
n = signal / (signal + seed variance / n), for the run's genomes (n their harmonic mean count:
signal / population variance). Below a reliability of 0.5, one evaluation is more luck than
worth and the roulette mostly selects noise (``noise_verdict``).

Before any of that: a run whose best genome is at chance (within ``CHANCE_MARGIN`` of 1/K on K
classes) measured networks that did not learn, and its noise says nothing about the search.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from genetic_cnn.search.records import OK, EvaluationResult
from genetic_cnn.space.identity import individual_key

PERCENT = 100.0

ADVICE = (
    "to reduce the noise train on more images (data.subset) or for more epochs (train.schedule), hold out a larger "
    "validation split (data.validation), pick a fidelity with `genetic-cnn calibrate`, or use one-shot fitness "
    "(--set evaluation.method=one-shot)"
)


CHANCE_MARGIN = 5.0
"""Percentage points above 1/K within which a run's best genome counts as not having learned."""
RELIABLE = 0.5
"""Below this reliability of one evaluation, noise has more variance than the genomes' worth."""


@dataclass(frozen=True)
class FitnessNoise:
    """Evaluation noise and the spread between genomes, in percentage points; None where not measurable."""

    seed_sd: float | None
    population_sd: float | None
    repeated: int
    mean_inverse_count: float | None = None
    """mean(1/n_i) over the genomes in ``population_sd``; None in summaries written before it was kept
    (then 1: as if each mean were one evaluation, the most noise it can hold)."""
    best_accuracy: float | None = None
    """The highest mean accuracy of a genome (percentage points)."""
    chance: float | None = None
    """100 / K for K classes; None when the number of classes is not known."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FitnessNoise:
        return cls(values.get("seed_sd"), values.get("population_sd"), int(values.get("repeated", 0)),
                   values.get("mean_inverse_count"), values.get("best_accuracy"), values.get("chance"))  # fmt: skip

    @property
    def signal_variance(self) -> float | None:
        """Population variance less the seed noise its means hold (may come out below 0: none measurable)."""
        if self.seed_sd is None or self.population_sd is None:
            return None
        inverse = 1.0 if self.mean_inverse_count is None else self.mean_inverse_count
        return self.population_sd**2 - self.seed_sd**2 * inverse

    @property
    def signal_sd(self) -> float | None:
        variance = self.signal_variance
        return None if variance is None else math.sqrt(max(variance, 0.0))

    def reliability(self, evaluations: float = 1.0) -> float | None:
        """Share of the variance of a mean of ``evaluations`` evaluations that is the genomes' worth."""
        variance = self.signal_variance
        if variance is None or self.seed_sd is None:
            return None
        signal = max(variance, 0.0)
        noise = self.seed_sd**2 / evaluations
        return signal / (signal + noise) if signal + noise > 0 else None

    @property
    def evaluations_per_genome(self) -> float:
        """The harmonic mean count of evaluations per genome (1 / mean(1/n))."""
        return 1.0 / self.mean_inverse_count if self.mean_inverse_count else 1.0

    @property
    def at_chance(self) -> bool:
        return self.best_accuracy is not None and self.chance is not None and self.best_accuracy <= self.chance + CHANCE_MARGIN


def identity_of(result: EvaluationResult, identity: str) -> str:
    """The individual an evaluation belongs to (``space.identity.individual_key``; the record's stored key)."""
    return individual_key(result.genome, identity, key=result.key)


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


def _inverse_counts(groups: Mapping[str, Sequence[float]], names: Sequence[str]) -> float | None:
    counts = [len(groups[name]) for name in names]
    return statistics.fmean(1.0 / count for count in counts) if counts else None


def _best(means: Sequence[float]) -> float | None:
    return PERCENT * max(means) if means else None


def fitness_noise(evaluations: Sequence[EvaluationResult], identity: str, classes: int | None = None) -> FitnessNoise:
    """The noise over all ``evaluations`` of a run (see the module's docstring); ``classes``: K, for chance."""
    groups = measured(evaluations, identity)
    seed, repeated = pooled_sd(groups)
    means = [statistics.fmean(values) for values in groups.values()]
    return FitnessNoise(_in_points(seed), _in_points(spread(means)), repeated, _inverse_counts(groups, list(groups)),
                        _best(means), chance_level(classes))  # fmt: skip


def chance_level(classes: int | None) -> float | None:
    return PERCENT / classes if classes and classes >= 2 else None


def noise_by_generation(
    evaluations: Sequence[EvaluationResult], identity: str, classes: int | None = None
) -> dict[int, FitnessNoise]:
    """Generation -> its noise: cumulative seed sd, the spread of its own population (module docstring)."""
    result: dict[int, FitnessNoise] = {}
    for generation in sorted({e.generation for e in evaluations}):
        so_far = [e for e in evaluations if e.generation <= generation]
        groups = measured(so_far, identity)
        seed, repeated = pooled_sd(groups)
        population = {identity_of(e, identity) for e in evaluations if e.generation == generation}
        names = [name for name in sorted(population) if name in groups]
        means = [statistics.fmean(groups[name]) for name in names]
        result[generation] = FitnessNoise(_in_points(seed), _in_points(spread(means)), repeated,
                                          _inverse_counts(groups, names), _best(means), chance_level(classes))  # fmt: skip
    return result


def reliability_figures(noise: FitnessNoise) -> str:
    """The reliability of one evaluation and of the run's means, with what they come from, in words."""
    one, mean = noise.reliability(), noise.reliability(noise.evaluations_per_genome)
    if one is None or mean is None:
        return ""
    return (
        f"reliability of one evaluation {one:.2f}, of a genome's mean of {noise.evaluations_per_genome:.1f} "
        f"evaluations {mean:.2f} (signal sd {noise.signal_sd:.2f} pp: population sd {noise.population_sd:.2f} pp "
        f"less the seed noise its means hold)"
    )


def noise_verdict(noise: FitnessNoise) -> str | None:
    """One line when the run's networks did not learn, or when one evaluation is more noise than worth
    (reliability below ``RELIABLE``); None otherwise.

    Without a repeated genome nothing was measured, so there is nothing to say about noise. With a
    single genome there is no spread to compare with: the line says so rather than comparing with a zero.
    """
    if noise.at_chance:
        classes = round(PERCENT / noise.chance) if noise.chance else 0
        return (
            f"the networks did not learn: the best genome's accuracy {noise.best_accuracy:.2f}% is at chance "
            f"(1/K = {noise.chance:.2f}% on {classes} classes), so fitness ranks nothing; train longer "
            "(more epochs in train.schedule) or change the learning rate (genetic-cnn lr-find)"
        )
    if noise.seed_sd is None:
        return None
    seed = f"seed sd {noise.seed_sd:.2f} pp over {noise.repeated} repeated genome{'s' if noise.repeated != 1 else ''}"
    if noise.population_sd is None:
        return (
            f"fitness noise: {seed}, but only one genome has a fitness, so there is no spread between genomes to rank "
            'it against; start from a varied population (evolution.init = "random") to search'
        )
    one = noise.reliability()
    if one is None or one >= RELIABLE:  # None: no variance at all, nothing to compare
        return None
    return (
        f"fitness noise: {seed}, population sd {noise.population_sd:.2f} pp: {reliability_figures(noise)}; below "
        f"{RELIABLE} one evaluation is more luck than worth, so selection mostly follows noise; {ADVICE}"
    )
