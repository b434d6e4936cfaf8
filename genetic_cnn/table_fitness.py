"""Table fitness (``evaluation.method = "table"``): an evaluation reads one measured seed of its architecture.

The table (``evaluation.table``: a shipped name or a file, ``genetic_cnn.table``) must be of the
config's space, preset and dataset; ``check`` refuses any other before a run folder is made. Each
evaluation reads the seed its evaluation seed draws (``Table.draw``), so the same run seed gives the
same results, a re-evaluated individual sees another training when the table holds several, and
failed or diverged trainings in the table come back as such. The result's ``seconds`` is the
lookup's; the training's seconds and the seed read are kept in ``extra`` (``table_seconds``,
``table_seed``). No torch here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from genetic_cnn.config import Config
from genetic_cnn.errors import UserError
from genetic_cnn.genome import Genome
from genetic_cnn.graph import architecture_key
from genetic_cnn.records import EvaluationResult, EvaluationTask
from genetic_cnn.table import Table, load_table

IN_PROCESS = True
"""A lookup costs microseconds: worker processes would only add their start-up (``fitness.evaluates_in_process``)."""


def matching_table(config: Config) -> Table:
    """``config``'s table, refused with one line when it is of another space, preset or dataset."""
    table = load_table(config.evaluation.table)
    problem = table.mismatch(config)
    if problem:
        raise UserError(problem)
    return table


def check(config: Config) -> None:
    matching_table(config)


def prepare(config: Config, progress: bool, echo: Callable[[str], None]) -> None:
    """Nothing to prepare: the table was built by ``genetic-cnn tabulate``."""


@dataclass
class TableEvaluator:
    table: Table
    nodes: tuple[int, ...]
    _keys: dict[str, str] = field(default_factory=dict)

    def evaluate(self, task: EvaluationTask) -> EvaluationResult:
        start = time.perf_counter()
        key = self._keys.get(task.genome)
        if key is None:
            key = self._keys[task.genome] = architecture_key(Genome.from_string(task.genome, nodes=self.nodes))
        position, measured = self.table.draw(key, task.seed)
        extra: dict[str, Any] = {"table_seed": self.table.seeds[position], "table_seconds": measured.seconds}
        return EvaluationResult(
            task.generation, task.slot, task.genome, key, task.seed, measured.status,
            accuracy=measured.accuracy, test_accuracy=measured.test_accuracy, loss=measured.loss,
            epochs=measured.epochs, seconds=time.perf_counter() - start, extra=extra,
        )  # fmt: skip


def make_evaluator(config: Config, device: str | None, progress: bool, datasets: Any) -> TableEvaluator:
    return TableEvaluator(matching_table(config), config.preset().nodes)
