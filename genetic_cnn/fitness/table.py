"""Table fitness (``evaluation.method = "table"``): an evaluation reads one measured seed of its architecture.

The table (``evaluation.table``: a shipped name or a file, ``genetic_cnn.tables.table``) must be of the
config's space, preset and dataset; ``check`` refuses any other before a run folder is made. An
architecture's k-th evaluation in the run reads the seed ``table.SeedDraws`` gives it (a permutation
of its seeds drawn from the run seed: no seed repeats before all were read; one-shot tables: one
supernet for the whole run), so the same run seed gives the same results, a re-evaluated individual
sees another training, and failed or diverged trainings in the table come back as such. The counts
k live in the evaluator, which learns those of an interrupted run from its database when it starts,
so a resumed run reads what the whole run would have; lookups therefore always run in the run's own
process, one after another in run order (``executors.choose_executor``). The result's ``seconds`` is
the lookup's; the training's seconds and the seed read are kept in ``extra`` (``table_seconds``,
``table_seed``). No torch here.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genetic_cnn.config import Config
from genetic_cnn.errors import UserError
from genetic_cnn.search.records import REUSED, EvaluationResult, EvaluationTask
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.graph import architecture_key
from genetic_cnn.tables.table import SeedDraws, Table, load_table

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
    draws: SeedDraws
    done: Counter[str] = field(default_factory=Counter)
    """Lookups of each architecture key so far in the run (its next evaluation is number ``done[key]``)."""
    _keys: dict[str, str] = field(default_factory=dict)

    def evaluate(self, task: EvaluationTask) -> EvaluationResult:
        start = time.perf_counter()
        key = self._keys.get(task.genome)
        if key is None:
            key = self._keys[task.genome] = architecture_key(Genome.from_string(task.genome, nodes=self.nodes))
        index = self.table.index(key)
        position = self.draws.position(index, self.done[key])
        self.done[key] += 1
        measured = self.table.architectures[index].results[position]
        extra: dict[str, Any] = {"table_seed": self.table.seeds[position], "table_seconds": measured.seconds}
        return EvaluationResult(
            task.generation, task.slot, task.genome, key, task.seed, measured.status,
            accuracy=measured.accuracy, test_accuracy=measured.test_accuracy, loss=measured.loss,
            epochs=measured.epochs, seconds=time.perf_counter() - start, extra=extra,
        )  # fmt: skip


def lookups_so_far(folder: str) -> Counter[str]:
    """Per architecture key, the table lookups a run folder already holds (none for a new run)."""
    from genetic_cnn.history.store import DATABASE, RunStore

    if not folder or not (Path(folder) / DATABASE).is_file():
        return Counter()
    with RunStore.open(folder, readonly=True) as store:
        return Counter(result.key for result in store.evaluations() if result.status != REUSED)


def make_evaluator(config: Config, device: str | None, progress: bool, datasets: Any) -> TableEvaluator:
    table = matching_table(config)
    draws = SeedDraws(config.run.seed, len(table.seeds), one_shot=table.one_shot)
    return TableEvaluator(table, config.preset().nodes, draws, lookups_so_far(config.run.out))
