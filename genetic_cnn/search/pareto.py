"""Pareto fronts of accuracy against cost: NSGA-II's sorting, crowding, survival and tournaments,
and the hypervolume a front covers. Pure functions of numbers; no torch.

Every objective matrix here is minimised, one row per individual: ``objective_matrix`` turns an
accuracy (maximised) into its negative beside the costs. Non-dominated sorting, crowding distance
and the hypervolume come from pymoo (``NonDominatedSorting``, ``calc_crowding_distance``, ``HV``):
a well-tested implementation whose import loads neither torch nor matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

NO_ACCURACY = -1.0
"""The accuracy an individual without any (every evaluation failed) is ranked with: below any measured one."""


def objective_matrix(accuracy: Sequence[float], costs: Sequence[Sequence[float]]) -> np.ndarray:
    """(individuals, 1 + costs) to minimise: -accuracy (``NO_ACCURACY`` for NaN), then each cost."""
    values = np.asarray(accuracy, dtype=float)
    values = np.where(np.isfinite(values), values, NO_ACCURACY)
    cost_matrix = np.asarray(costs, dtype=float).reshape(len(values), -1)
    return np.column_stack([-values, cost_matrix])


def non_dominated_fronts(objectives: np.ndarray) -> list[np.ndarray]:
    """Indices of the rows front by front: front 0 is dominated by no row, front k only by rows of fronts < k.
    Each front's indices are in increasing order."""
    if len(objectives) == 0:
        return []
    fronts = NonDominatedSorting().do(np.asarray(objectives, dtype=float))
    return [np.sort(np.asarray(front, dtype=int)) for front in fronts]


def pareto_indices(objectives: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows (the first front), in increasing order."""
    fronts = non_dominated_fronts(objectives)
    return fronts[0] if fronts else np.array([], dtype=int)


def crowding_distance(objectives: np.ndarray) -> np.ndarray:
    """NSGA-II's crowding distance of each row of one front: for each objective, the gap between its
    two neighbours divided by the front's range, averaged over objectives; the extremes are infinite."""
    objectives = np.asarray(objectives, dtype=float)
    if len(objectives) <= 2:
        return np.full(len(objectives), np.inf)
    return np.asarray(calc_crowding_distance(objectives), dtype=float)


def rank_and_crowding(objectives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's front (0 = non-dominated) and its crowding distance within that front."""
    rank = np.zeros(len(objectives), dtype=int)
    crowding = np.zeros(len(objectives))
    for number, front in enumerate(non_dominated_fronts(objectives)):
        rank[front] = number
        crowding[front] = crowding_distance(objectives[front])
    return rank, crowding


def survivors(objectives: np.ndarray, size: int) -> np.ndarray:
    """NSGA-II's elitist survival: whole fronts while they fit, then the most crowding-distant rows of
    the front that does not (the lower index among equal distances). Indices in the order chosen."""
    chosen: list[int] = []
    for front in non_dominated_fronts(objectives):
        if len(chosen) + len(front) <= size:
            chosen += front.tolist()
            continue
        distance = crowding_distance(objectives[front])
        order = np.argsort(-distance, kind="stable")
        chosen += front[order[: size - len(chosen)]].tolist()
        break
    return np.array(chosen, dtype=int)


def binary_tournament(rank: np.ndarray, crowding: np.ndarray, size: int, rng: np.random.Generator) -> list[int]:
    """``size`` tournaments of two drawn uniformly with replacement (one ``rng.integers(0, n, (size, 2))``):
    the lower front wins, then the larger crowding distance, then the first drawn."""
    pairs = rng.integers(0, len(rank), size=(size, 2))
    winners = []
    for first, second in pairs.tolist():
        if rank[second] < rank[first] or (rank[second] == rank[first] and crowding[second] > crowding[first]):
            winners.append(second)
        else:
            winners.append(first)
    return winners


def hypervolume(objectives: np.ndarray, reference: Sequence[float] | np.ndarray) -> float:
    """The volume dominated by the rows and bounded by ``reference`` (rows beyond it add nothing)."""
    objectives = np.asarray(objectives, dtype=float).reshape(-1, len(reference))
    inside = objectives[np.all(objectives < np.asarray(reference), axis=1)]
    if len(inside) == 0:
        return 0.0
    return float(HV(ref_point=np.asarray(reference, dtype=float))(inside))


def normalizer(front: np.ndarray, margin: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ideal, nadir, reference) of a front: objectives are scaled by (f - ideal) / (nadir - ideal), so the
    front spans [0, 1] in each, and the reference point is 1 + ``margin`` in each scaled objective."""
    ideal, nadir = front.min(axis=0), front.max(axis=0)
    span = np.where(nadir > ideal, nadir - ideal, 1.0)
    return ideal, ideal + span, np.full(front.shape[1], 1.0 + margin)


def scaled(objectives: np.ndarray, ideal: np.ndarray, nadir: np.ndarray) -> np.ndarray:
    return (np.asarray(objectives, dtype=float) - ideal) / (nadir - ideal)
