"""One row of the paper's table per generation: plain statistics of the population's fitness; and the run's
summary.json, which holds them with the best genome. No torch."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genetic_cnn.files import write_atomically
from genetic_cnn.search.records import REUSED, EvaluationResult

if TYPE_CHECKING:
    from genetic_cnn.history.store import RunStore


@dataclass(frozen=True)
class GenerationSummary:
    """One row of the paper's table: statistics of the population's fitness in one generation."""

    generation: int
    maximum: float
    minimum: float
    mean: float
    median: float
    std: float
    best_genome: str
    trained: int
    reused: int

    @classmethod
    def of(cls, generation: int, genomes: Sequence[str], fitness: Sequence[float], results: Sequence[EvaluationResult]) -> GenerationSummary:
        best = max(range(len(fitness)), key=lambda i: fitness[i])
        reused = sum(result.status == REUSED for result in results)
        return cls(
            generation, max(fitness), min(fitness), statistics.fmean(fitness), statistics.median(fitness),
            statistics.pstdev(fitness), genomes[best], len(results) - reused, reused,
        )  # fmt: skip

    HEADER = f"{'gen':>4} {'max':>7} {'min':>7} {'mean':>7} {'median':>7} {'std':>6}  best genome"

    def line(self) -> str:
        pct = [100 * value for value in (self.maximum, self.minimum, self.mean, self.median, self.std)]
        return f"{self.generation:>4} {pct[0]:7.2f} {pct[1]:7.2f} {pct[2]:7.2f} {pct[3]:7.2f} {pct[4]:6.2f}  {self.best_genome}"


def write_summary(store: RunStore, summaries: Sequence[GenerationSummary], fitness_method: Mapping[str, Any]) -> Path:
    """summary.json beside the database: the best genome, the fitness noise and the paper-style table.

    The best genome is the individual with the highest mean fitness over all its trained
    evaluations, as in the report. ``fitness_method``: how the fitness was measured, as
    ``genetic_cnn.fitness.method.FitnessMethod.to_dict`` gives it (fitness/ lies above history/, so the
    caller reads it).
    """
    from genetic_cnn.history.rundata import RunData  # rundata reads GenerationSummary from this module

    data = RunData.load(store)
    best = data.ranking()[0]
    summary = {
        "best_genome": best.genome,
        "best_fitness": best.fitness,
        "best_test_accuracy": best.test_accuracy,
        "best_evaluations": best.evaluations,
        "fitness_method": dict(fitness_method),  # e.g. the supernet's training time
        "fitness_noise": data.fitness_noise().to_dict(),  # percentage points; see genetic_cnn.history.noise
        "generations": [asdict(row) for row in summaries],
    }
    if len(data.config.evolution.objectives) > 1:
        from genetic_cnn.history.front import front_summary

        summary["pareto"] = front_summary(data)  # the front per generation and at the end (genetic_cnn.history.front)
    # Atomic: a full disk or a kill while writing leaves the previous summary whole, never half of one.
    fix = f"free disk space, then `genetic-cnn resume {store.folder}` writes it again"
    return write_atomically(store.folder / "summary.json", json.dumps(summary, indent=1) + "\n", fix)
