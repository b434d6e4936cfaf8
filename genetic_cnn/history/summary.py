"""One row of the paper's table per generation: plain statistics of the population's fitness. No torch."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from genetic_cnn.search.records import REUSED, EvaluationResult

if TYPE_CHECKING:
    pass


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
