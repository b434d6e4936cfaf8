"""A run from start to finish: the search asks, executors evaluate, the run database remembers.

Resuming replays the run from its seed: the search is deterministic given the fitness it is told,
and every completed evaluation is read back from the database instead of being trained again, so a
resumed run ends with exactly the history of an uninterrupted one.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from genetic_cnn.config import Config
from genetic_cnn.errors import UserError
from genetic_cnn.executors import Executor, make_executor
from genetic_cnn.genome import Genome
from genetic_cnn.records import REUSED, EvaluationResult, EvaluationTask
from genetic_cnn.search import FitnessLedger, evaluation_seed, make_search
from genetic_cnn.store import DATABASE, LOCK, GenerationRecord, RunStore, StoreError

Echo = Callable[[str], None]


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


def environment() -> dict[str, Any]:
    """Versions and machine, stored with the run so that its numbers can be interpreted later."""
    import numpy
    import torch

    from genetic_cnn import __version__

    return {
        "genetic_cnn": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch_threads": torch.get_num_threads(),
    }


def default_run_folder(config: Config) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config.data.dataset}-{config.evolution.strategy}-{stamp}"


class Evolution:
    """Drives one run folder to completion; ``run`` is the paper's Algorithm 1 around the database."""

    def __init__(self, store: RunStore, executor: Executor, progress: bool = True, echo: Echo | None = None) -> None:
        self.store = store
        self.config = store.config
        self.executor = executor
        self.progress = progress
        self.echo: Echo = echo or _tqdm_write
        self.summaries: list[GenerationSummary] = []

    def run(self) -> list[GenerationSummary]:
        config = self.config
        search = make_search(config.evolution, config.preset().nodes, config.run.seed)
        ledger = FitnessLedger(config.evolution.identity)
        stored = {(result.generation, result.slot): result for result in self.store.evaluations()}
        recorded = {record.generation: record for record in self.store.generations()}
        bar = _bar(total=config.evolution.generations + 1, desc="generations", unit="gen", disable=not self.progress)
        self.echo(GenerationSummary.HEADER)
        while not search.done():
            generation = search.generation
            population = search.ask()
            started = time.time()
            results = self._evaluate_generation(generation, population, stored, ledger)
            fitness = [ledger.mean(genome) or 0.0 for genome in population]
            search.tell(fitness)
            genomes = tuple(str(genome) for genome in population)
            if generation in recorded:
                if recorded[generation].genomes != genomes:
                    raise StoreError(
                        f"{self.store.folder}: replaying generation {generation} gave other genomes than recorded; "
                        "the run was made by an incompatible version"
                    )
            else:
                log = search.last_log.to_dict() if search.last_log and generation < config.evolution.generations else None
                self.store.add_generation(
                    GenerationRecord(generation, genomes, tuple(fitness), search.rng_state(), log, time.time() - started, time.time())
                )
            summary = GenerationSummary.of(generation, genomes, fitness, results)
            self.summaries.append(summary)
            self.echo(summary.line())
            bar.update(1)
        bar.close()
        self.store.set_status("finished")
        write_summary(self.store, self.summaries)
        return self.summaries

    def _evaluate_generation(
        self, generation: int, population: list[Genome], stored: dict[tuple[int, int], EvaluationResult], ledger: FitnessLedger
    ) -> list[EvaluationResult]:
        """Evaluate one generation and record it in the ledger; returns results in slot order.

        With ``reevaluate = "reuse"``, an individual known from earlier generations, or already
        trained in an earlier slot of this one, is not trained: it gets the mean of its evaluations.
        """
        reuse = self.config.evolution.reevaluate == "reuse"
        results: dict[int, EvaluationResult] = {}
        tasks: list[EvaluationTask] = []
        reused_slots: list[int] = []
        planned: set[str] = set()
        for slot, genome in enumerate(population):
            identity = ledger.identity_of(genome)
            if (generation, slot) in stored:
                results[slot] = stored[(generation, slot)]
            elif reuse and (ledger.known(genome) or identity in planned):
                reused_slots.append(slot)
            else:
                tasks.append(EvaluationTask(generation, slot, str(genome), evaluation_seed(self.config.run.seed, generation, slot)))
            if (generation, slot) not in stored or stored[(generation, slot)].trained:
                planned.add(identity)
        bar = _bar(total=len(population), initial=len(results), desc=f"generation {generation}", unit="net",
                   leave=False, disable=not self.progress)  # fmt: skip
        for result in self.executor.run(tasks):
            self.store.add_evaluation(result)  # committed now: a crash loses at most the evaluations running
            results[result.slot] = result
            bar.update(1)
        for slot in sorted(results):
            if results[slot].trained:
                ledger.record(population[slot], results[slot].fitness_input)
        for slot in reused_slots:
            genome = population[slot]
            result = EvaluationResult(
                generation, slot, str(genome), genome.architecture_key(),
                evaluation_seed(self.config.run.seed, generation, slot), REUSED, accuracy=ledger.mean(genome) or 0.0,
            )  # fmt: skip
            self.store.add_evaluation(result)
            results[slot] = result
            bar.update(1)
        bar.close()
        return [results[slot] for slot in range(len(population))]


def write_summary(store: RunStore, summaries: Sequence[GenerationSummary]) -> Path:
    """summary.json beside the database: the best genome and the paper-style table.

    The best genome is the individual with the highest mean fitness over all its trained
    evaluations, as in the report.
    """
    from genetic_cnn.report import RunData

    best = RunData.load(store).ranking()[0]
    summary = {
        "best_genome": best.genome,
        "best_fitness": best.fitness,
        "best_test_accuracy": best.test_accuracy,
        "best_evaluations": best.evaluations,
        "generations": [asdict(row) for row in summaries],
    }
    path = store.folder / "summary.json"
    path.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return path


def _bar(**kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(file=sys.stderr, dynamic_ncols=True, **kwargs)


def _tqdm_write(line: str) -> None:
    from tqdm.auto import tqdm

    tqdm.write(line, file=sys.stdout)


def start_run(config: Config, out: str | Path | None = None, progress: bool = True, echo: Echo | None = None) -> Path:
    """Create a run folder for ``config`` and evolve to the end; returns the folder."""
    folder = Path(out or config.run.out or default_run_folder(config))
    existed = folder.exists()
    store = RunStore.create(folder, config, environment())
    (folder / "config.toml").write_text(config.to_toml(), encoding="utf-8")
    try:
        return _drive(store, progress, echo)
    except UserError:
        if not load_run_evaluations_exist(folder):
            _remove_empty_run(folder, remove_folder=not existed)  # bad input: leave no half-made run behind
        raise


def load_run_evaluations_exist(folder: Path) -> bool:
    with RunStore.open(folder, readonly=True) as store:
        return bool(store.evaluations())


def _remove_empty_run(folder: Path, remove_folder: bool) -> None:
    for name in (DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm", LOCK, "config.toml"):
        (folder / name).unlink(missing_ok=True)
    if remove_folder and not any(folder.iterdir()):
        folder.rmdir()


def resume_run(folder: str | Path, progress: bool = True, echo: Echo | None = None) -> Path:
    """Continue a stopped run where it stopped; completed evaluations are not trained again."""
    store = RunStore.open(folder)
    store.lock()
    return _drive(store, progress, echo)


def check_inputs(config: Config) -> None:
    """Fail on a bad device or missing dataset files now, before any progress bar or training."""
    from genetic_cnn.data import load_datasets
    from genetic_cnn.evaluate import resolve_device

    resolve_device(config.run.device)
    load_datasets(config.data, seed=config.run.seed)


def _drive(store: RunStore, progress: bool, echo: Echo | None) -> Path:
    try:
        if store.status != "finished":
            check_inputs(store.config)
        executor = make_executor(store.config, progress=progress)
        try:
            Evolution(store, executor, progress, echo).run()
        finally:
            executor.close()
    except KeyboardInterrupt:
        store.set_status("interrupted")
        print(f"interrupted; continue with `genetic-cnn resume {store.folder}`", file=sys.stderr)
        raise
    finally:
        store.close()
    return store.folder
