"""Multi-objective searches judged on a table: the exact front of the whole space and the hypervolume
a simulated search's front reaches against it (``experiments/compare_objectives.py``). No torch.

The truth is the table's mean validation accuracy over its seeds and the counted cost; a search sees
only the seeds its evaluations draw (``tables.simulate.simulate``). The front a search found is the one
it believes in: the non-dominated architectures by their observed mean accuracy at the end of the run,
scored with their true mean accuracy. Hypervolume is measured on objectives scaled by the exact
front's ideal and nadir points (the exact front spans [0, 1] in each), against the reference point
1.1 in each, and reported as a fraction of the exact front's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from genetic_cnn.search import pareto
from genetic_cnn.space.genome import Genome
from genetic_cnn.tables.simulate import Scalarize, TableLookup, Trace
from genetic_cnn.tables.table import Table

MARGIN = 0.1


def cost_matrix(table: Table, objectives: Sequence[str]) -> np.ndarray:
    """(architectures, costs) of the cost objectives after accuracy."""
    columns = {"flops": [a.flops for a in table.architectures], "params": [a.parameters for a in table.architectures]}
    return np.column_stack([np.asarray(columns[name], dtype=float) for name in objectives[1:]])


@dataclass(frozen=True)
class ExactFront:
    """The whole space's truth for one choice of objectives."""

    objectives: np.ndarray
    """(architectures, objectives) minimised: -mean accuracy, then the costs."""
    members: np.ndarray
    """Table indices of the exact Pareto front."""
    ideal: np.ndarray
    nadir: np.ndarray
    reference: np.ndarray
    hypervolume: float
    """Of the exact front, scaled (module docstring)."""

    @classmethod
    def of(cls, table: Table, objectives: Sequence[str]) -> ExactFront:
        matrix = np.column_stack([-table.mean_validation, cost_matrix(table, objectives)])
        members = pareto.pareto_indices(matrix)
        ideal, nadir, reference = pareto.normalizer(matrix[members], MARGIN)
        volume = pareto.hypervolume(pareto.scaled(matrix[members], ideal, nadir), reference)
        return cls(matrix, members, ideal, nadir, reference, volume)

    def hypervolume_ratio(self, architectures: Sequence[int]) -> float:
        """Hypervolume of ``architectures`` at their true objectives, as a fraction of the exact front's."""
        if len(architectures) == 0:
            return 0.0
        points = pareto.scaled(self.objectives[np.asarray(architectures, dtype=int)], self.ideal, self.nadir)
        return pareto.hypervolume(points, self.reference) / self.hypervolume


def found_front(trace: Trace, costs: np.ndarray) -> np.ndarray:
    """Table indices of the front a simulated run believes in: each evaluated architecture with the last
    mean the run observed for it (NaN: never measured, left out), non-dominated with its costs."""
    last: dict[int, float] = {}
    for architecture, observed in zip(trace.architectures.tolist(), trace.observed.tolist()):
        if np.isfinite(observed):
            last[architecture] = observed
    if not last:
        return np.array([], dtype=int)
    indices = np.array(sorted(last))
    matrix = pareto.objective_matrix([last[i] for i in indices.tolist()], costs[indices])
    return indices[pareto.pareto_indices(matrix)]


def weighted_sum(lookup: TableLookup, exact: ExactFront) -> Scalarize:
    """The fitness a single-objective GA is told: scaled accuracy minus the mean of the scaled costs, each
    scaled by the exact front's range (equal weights), so that a better trade-off is a higher fitness."""
    span = exact.nadir - exact.ideal
    costs = exact.objectives[:, 1:]

    def scalarize(population: Sequence[Genome], accuracy: Sequence[float]) -> list[float]:
        values = []
        for genome, value in zip(population, accuracy):
            scaled_cost = (costs[lookup.index(genome)] - exact.ideal[1:]) / span[1:]
            values.append((value + exact.ideal[0]) / span[0] - float(np.mean(scaled_cost)))  # NaN stays NaN
        return values

    return scalarize
