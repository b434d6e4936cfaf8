"""The run's summary.json: the best genome, how fitness was measured, the fitness noise, the paper's rows
per generation and, with several objectives, the Pareto front. Written after every generation. No torch."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genetic_cnn.files import write_atomically
from genetic_cnn.history.front import front_summary
from genetic_cnn.history.rundata import RunData
from genetic_cnn.history.summary import GenerationSummary

if TYPE_CHECKING:
    from genetic_cnn.history.store import RunStore


def write_summary(store: RunStore, summaries: Sequence[GenerationSummary], fitness_method: Mapping[str, Any]) -> Path:
    """summary.json beside the database: the best genome, the fitness noise and the paper-style table.

    The best genome is the individual with the highest mean fitness over all its trained
    evaluations, as in the report. ``fitness_method``: how the fitness was measured, as
    ``genetic_cnn.fitness.method.FitnessMethod.to_dict`` gives it (fitness/ lies above history/, so the
    caller reads it).
    """
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
        summary["pareto"] = front_summary(data)  # the front per generation and at the end (genetic_cnn.history.front)
    # Atomic: a full disk or a kill while writing leaves the previous summary whole, never half of one.
    fix = f"free disk space, then `genetic-cnn resume {store.folder}` writes it again"
    return write_atomically(store.folder / "summary.json", json.dumps(summary, indent=1) + "\n", fix)
