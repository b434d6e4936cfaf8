"""A run's Pareto front: the individuals it evaluated that no other beats in accuracy and cost at once. No torch.

An individual's accuracy is its mean over its successful trained evaluations (the search's rule), its
costs are counted from the genome (``genetic_cnn.space.cost``), or for latency read from the run's database
(``genetic_cnn.fitness.latency``: an individual never timed has no place on a latency front), for the objectives of ``evolution.objectives``
(accuracy and FLOPs for a single-objective run, so that every run has a front to show). The front of
generation g is that of the individuals evaluated in generations 0 ... g. Members are numbered by
rank, 1 = the most accurate: ``genetic-cnn train --run RUN --front-rank K`` trains member K.

Hypervolume (the area the front dominates, larger is better) is measured on error (1 - accuracy) and
each cost divided by that of the largest network of the space (the all-one genome: every node used),
against the reference point 1.1 in every objective, so that it is comparable across generations and
runs of the same space.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np

from genetic_cnn.errors import UserError
from genetic_cnn.history.rundata import RunData, key_of, parse_genome
from genetic_cnn.search.records import OK, REUSED
from genetic_cnn.search.strategies import pareto
from genetic_cnn.space.cost import LATENCY, CostOf, NetworkCost, cost_function
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.presets import NetworkPreset

REFERENCE = 1.1
"""The hypervolume's reference point in every scaled objective."""


@lru_cache(maxsize=8)
def preset_costs(preset: NetworkPreset) -> CostOf:
    """``cost_function(preset)``, one per preset for the process: a front per generation counts the same
    genomes again and again, and the dashboard rebuilds them all whenever an evaluation lands."""
    return cost_function(preset)


@dataclass(frozen=True)
class FrontMember:
    rank: int
    """1 = the most accurate member of the front."""
    genome: str
    key: str
    accuracy: float
    """Mean validation accuracy over the individual's successful evaluations."""
    test_accuracy: float | None
    evaluations: int
    flops: int
    parameters: int
    latency_ms: float | None = None
    """The stored latency (``genetic_cnn.fitness.latency``); None for a run that timed none."""


def front_objectives(data: RunData) -> tuple[str, ...]:
    """The run's objectives; accuracy and FLOPs for a run that optimised accuracy alone."""
    objectives = tuple(data.config.evolution.objectives)
    return objectives if len(objectives) > 1 else ("accuracy", "flops")


def individuals(data: RunData, generation: int | None) -> list[tuple[str, float, float | None, int]]:
    """(genome, mean accuracy, mean test accuracy, evaluations) of each individual measured up to ``generation``."""
    groups: dict[str, list[Any]] = defaultdict(list)
    for e in data.evaluations:
        if e.status != REUSED and (generation is None or e.generation <= generation):
            groups[data.identity(e.genome)].append(e)
    found = []
    for members in groups.values():
        measured = [e.accuracy for e in members if e.status == OK]
        if not measured:
            continue  # no measurement, no place on a front
        tests = [e.test_accuracy for e in members if e.status == OK and e.test_accuracy is not None]
        genome = max((e.genome for e in members), key=[e.genome for e in members].count)
        found.append((genome, statistics.fmean(measured), statistics.fmean(tests) if tests else None, len(members)))
    return found


def run_front(data: RunData, generation: int | None = None) -> list[FrontMember]:
    """The non-dominated individuals evaluated up to ``generation`` (all: None), the most accurate first."""
    cost = preset_costs(data.config.preset())
    measured = individuals(data, generation)
    if not measured:
        return []
    names = front_objectives(data)[1:]
    if LATENCY in names:
        measured = [individual for individual in measured if data.latency_ms(individual[0]) is not None]
        if not measured:
            return []
    costs = [replace(cost(parse_genome(genome)), latency_ms=data.latency_ms(genome)) for genome, *_ in measured]
    matrix = pareto.objective_matrix([accuracy for _, accuracy, _, _ in measured],
                                     [[c.value(name) for name in names] for c in costs])  # fmt: skip
    chosen = sorted(pareto.pareto_indices(matrix).tolist(), key=lambda i: (-measured[i][1], matrix[i, 1:].tolist()))
    return [
        FrontMember(rank, measured[i][0], key_of(measured[i][0]), measured[i][1], measured[i][2],
                    measured[i][3], costs[i].flops, costs[i].parameters, costs[i].latency_ms)  # fmt: skip
        for rank, i in enumerate(chosen, start=1)
    ]


def largest_costs(data: RunData) -> list[float]:
    """Each cost objective of the space's largest network (the all-one genome uses every node; its latency
    is timed when the run starts, and the longest stored one stands in for a run that lacks it)."""
    preset = data.config.preset()
    ones = Genome.ones(preset.nodes)
    latency = data.latency_ms(str(ones))
    if latency is None:
        latency = max((record.milliseconds for record in data.latencies), default=1.0)
    largest = replace(preset_costs(preset)(ones), latency_ms=latency)
    return [float(largest.value(name)) for name in front_objectives(data)[1:]]


def front_hypervolume(data: RunData, members: list[FrontMember]) -> float:
    """The scaled hypervolume of ``members`` (module docstring)."""
    if not members:
        return 0.0
    scale = largest_costs(data)
    names = front_objectives(data)[1:]
    points = [[1 - m.accuracy, *(front_value(m, name) / s for name, s in zip(names, scale))] for m in members]
    return pareto.hypervolume(np.array(points), [REFERENCE] * (1 + len(names)))


def front_value(member: FrontMember, objective: str) -> float:
    """``member``'s value of the cost ``objective``."""
    return float(NetworkCost(member.parameters, member.flops, member.latency_ms).value(objective))


def front_summary(data: RunData) -> dict[str, Any]:
    """summary.json's ``pareto`` entry: the final front and, per completed generation, its front and hypervolume."""
    generations = []
    for record in data.generations:
        members = run_front(data, record.generation)
        generations.append({"generation": record.generation, "hypervolume": front_hypervolume(data, members),
                            "front": [m.genome for m in members]})  # fmt: skip
    final = run_front(data)
    timed = {"latency": {"device": data.latency_device, "batch": data.config.evolution.latency_batch, "unit": "ms"}}
    return {
        "objectives": list(front_objectives(data)),
        **(timed if LATENCY in front_objectives(data) else {}),
        "hypervolume": front_hypervolume(data, final),
        "hypervolume_reference": {"point": REFERENCE, "largest_costs": largest_costs(data)},
        "front": [asdict(member) for member in final],
        "generations": generations,
    }


def front_member(data: RunData, rank: int) -> FrontMember:
    """Member ``rank`` (1 = the most accurate) of the run's final front; a one-line error when there is none."""
    members = run_front(data)
    if not members:
        raise UserError(f"run {data.folder} has no measured network yet, so no Pareto front; resume or finish it first")
    if not 1 <= rank <= len(members):
        raise UserError(
            f"--front-rank {rank}: the Pareto front of run {data.folder} has {len(members)} members; "
            f"give a rank from 1 (the most accurate) to {len(members)}"
        )
    return members[rank - 1]
