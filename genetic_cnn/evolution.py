"""A run from start to finish: the search asks, executors evaluate, the run database remembers.

Resuming replays the run from its seed: the search is deterministic given the fitness it is told,
and every completed evaluation is read back from the database instead of being trained again, so a
resumed run ends with exactly the history of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genetic_cnn.config import Config
from genetic_cnn.errors import UserError
from genetic_cnn.executors import Executor, choose_executor, executor_for
from genetic_cnn.fitness.latency import RunLatency, uses_latency
from genetic_cnn.fitness.method import FitnessMethod
from genetic_cnn.fitness.methods import check_fitness_inputs, check_stored_fitness, prepare_fitness
from genetic_cnn.history.store import DATABASE, LOCK, GenerationRecord, RunStore, StoreError, relocated
from genetic_cnn.history.summary import GenerationSummary
from genetic_cnn.history.summary_json import write_summary
from genetic_cnn.progress import bar as progress_bar
from genetic_cnn.progress import write as print_line
from genetic_cnn.report.tensorboard import check_tensorboard
from genetic_cnn.search.operators import GenerationLog
from genetic_cnn.search.records import OK, REUSED, EvaluationResult, EvaluationTask
from genetic_cnn.search.strategies import FitnessLedger, evaluation_seed, make_search
from genetic_cnn.space.cost import LATENCY, cost_function
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.graph import architecture_key

if TYPE_CHECKING:
    from genetic_cnn.data.arrays import LabelledImages

Echo = Callable[[str], None]
OnResult = Callable[[EvaluationResult], None]
"""Called with every evaluation result as it is committed (``genetic-cnn tabulate``'s progress over many runs)."""


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
    """``runs/<dataset>-<strategy>-<fitness method>-<time>``: the method in the name, since a table or one-shot
    run's figures mean something else than a standalone run's (``digits-genetic-table-digits-standalone-...``)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    method = FitnessMethod.of(config).slug
    return Path("runs") / f"{config.data.dataset}-{config.evolution.strategy}-{method}-{stamp}"


@dataclass(frozen=True)
class GenerationPlan:
    """How each slot of one generation gets its result: trained now, read back, or reused."""

    tasks: tuple[EvaluationTask, ...]
    """Slots to train now."""
    stored: dict[int, EvaluationResult]
    """Slots whose result the run database already holds (a resumed run reads them back)."""
    reused: tuple[int, ...]
    """Slots that take their individual's mean fitness without training (``reevaluate = "reuse"``)."""


def plan_generation(
    generation: int,
    population: Sequence[Genome],
    stored: dict[int, EvaluationResult],
    ledger: FitnessLedger,
    *,
    reevaluate: str,
    run_seed: int,
) -> GenerationPlan:
    """Which slots of ``population`` train, which are read back from ``stored``, which reuse a mean.

    With ``reevaluate = "reuse"``, an individual the ledger knows from earlier generations, or one
    trained in an earlier slot of this generation, is not trained again. Pure: nothing is changed.
    """
    tasks: list[EvaluationTask] = []
    reused: list[int] = []
    planned: set[str] = set()
    for slot, genome in enumerate(population):
        identity = ledger.identity_of(genome)
        if slot in stored:
            if stored[slot].trained:
                planned.add(identity)
            continue
        if reevaluate == "reuse" and (ledger.known(genome) or identity in planned):
            reused.append(slot)
            continue
        tasks.append(EvaluationTask(generation, slot, str(genome), evaluation_seed(run_seed, generation, slot)))
        planned.add(identity)
    return GenerationPlan(tuple(tasks), {slot: stored[slot] for slot in sorted(stored)}, tuple(reused))


def fitness_to_tell(
    population: Sequence[Genome], ledger: FitnessLedger, own: Sequence[EvaluationResult] | None = None
) -> list[float]:
    """Each individual's mean fitness; NaN for one with no successful evaluation (the worst, and
    left out of r_min, so a failure does not flatten the roulette for everyone else). With ``own``
    (this generation's results in slot order; for a search that ``tells_own_evaluation``), each
    slot's own evaluation instead: its accuracy, NaN when it failed or diverged (a reused slot's
    accuracy is its mean, the only figure it has)."""
    if own is not None:
        return [result.accuracy if result.status in (OK, REUSED) else math.nan for result in own]
    return [math.nan if (mean := ledger.mean(genome)) is None else mean for genome in population]


class RunRecorder:
    """Everything a run writes and shows: results committed as they come, generations stored (or,
    on a replay, checked against what was stored), the table printed, progress bars."""

    def __init__(self, store: RunStore, progress: bool, echo: Echo) -> None:
        self.store = store
        self.progress = progress
        self.echo = echo
        self.summaries: list[GenerationSummary] = []
        self._stored: dict[tuple[int, int], EvaluationResult] = {(e.generation, e.slot): e for e in store.evaluations()}
        self._recorded = {record.generation: record for record in store.generations()}
        self._generations = progress_bar(total=store.config.evolution.generations + 1, desc="generations", unit="gen",
                                         disable=not progress)  # fmt: skip
        self._slots: Any = None
        self._board: Any = None
        self._finished_before = store.status == "finished"  # a resume that only replays writes no second HParams
        if store.config.run.tensorboard:
            from genetic_cnn.report.tensorboard import TensorBoardLog

            best = max((e.fitness_input for e in self._stored.values() if e.trained), default=0.0)
            self._board = TensorBoardLog(store.folder, store.config, len(self._stored), best)
        self.echo(GenerationSummary.HEADER)

    def stored(self, generation: int) -> dict[int, EvaluationResult]:
        """Results of ``generation`` already in the database, by slot."""
        return {slot: result for (g, slot), result in self._stored.items() if g == generation}

    def begin(self, generation: int, size: int, done: int) -> None:
        self._slots = progress_bar(total=size, initial=done, desc=f"generation {generation}", unit="net",
                                   leave=False, disable=not self.progress)  # fmt: skip

    def evaluation(self, result: EvaluationResult) -> None:
        self.store.add_evaluation(result)  # committed now: a crash loses at most the evaluations running
        self._slots.update(1)
        if self._board is not None:
            self._board.evaluation(result)

    def generation(
        self, generation: int, population: Sequence[Genome], fitness: Sequence[float], rng_state: dict[str, Any],
        log: GenerationLog | None, seconds: float, results: Sequence[EvaluationResult],
    ) -> GenerationSummary:  # fmt: skip
        """Store (or check on a replay) one completed generation and print its row of the table."""
        self._slots.close()
        genomes = tuple(str(genome) for genome in population)
        if generation in self._recorded:
            if self._recorded[generation].genomes != genomes:
                raise StoreError(
                    f"{self.store.folder}: replaying generation {generation} gave other genomes than recorded; "
                    "the run was made by an incompatible version"
                )
        else:
            self.store.add_generation(GenerationRecord(
                generation, genomes, tuple(fitness), rng_state, log.to_dict() if log else None, seconds, time.time()
            ))  # fmt: skip
        summary = GenerationSummary.of(generation, genomes, fitness, results)
        if self._board is not None and generation not in self._recorded:  # a replayed generation was written before
            self._board.generation(summary)
        self.summaries.append(summary)
        self.echo(summary.line())
        self._generations.update(1)
        return summary

    def close_bars(self) -> None:
        if self._slots is not None:
            self._slots.close()
        self._generations.close()
        if self._board is not None:
            self._board.close()  # on every way out (finish writes the hyper-parameters into a folder of their own)

    def finish(self) -> list[GenerationSummary]:
        self.store.set_status("finished")
        method = FitnessMethod.of(self.store.config, self.store.folder).to_dict()  # e.g. the supernet's training time
        path = write_summary(self.store, self.summaries, method)
        if self._board is not None and not self._finished_before:
            import json

            summary = json.loads(path.read_text(encoding="utf-8"))
            self._board.finish(summary["best_fitness"], summary["best_test_accuracy"])
        return self.summaries


class Evolution:
    """Drives one run folder to completion: ask, evaluate, tell, record (the paper's Algorithm 1)."""

    def __init__(
        self, store: RunStore, executor: Executor, progress: bool = True, echo: Echo | None = None,
        on_result: OnResult | None = None,
    ) -> None:  # fmt: skip
        self.store = store
        self.on_result = on_result
        self.config = store.config
        self.executor = executor
        self.progress = progress
        self.echo: Echo = echo or print_line

    def run(self) -> list[GenerationSummary]:
        config = self.config
        latency = self._latency()
        cost = latency.cost_function() if latency is not None else cost_function(config.preset())
        with _measuring(latency):  # a latency limit times the networks the search draws for generation 0
            search = make_search(config.evolution, config.preset().nodes, config.run.seed, cost)
        ledger = FitnessLedger(config.evolution.identity)
        recorder = RunRecorder(self.store, self.progress, self.echo)
        try:
            while not search.done():
                generation, population = search.generation, search.ask()
                started = time.time()
                if latency is not None:  # stored before training: every evaluated network has its latency
                    latency.measure_all(population)
                results = self._evaluate(generation, population, ledger, recorder)
                told = fitness_to_tell(population, ledger, results if search.tells_own_evaluation else None)
                with _measuring(latency):  # and the children bred under a latency limit
                    log = search.tell(told)
                shown = [ledger.mean(genome) or 0.0 for genome in population]  # no fitness shows as 0
                recorder.generation(generation, population, shown, search.rng_state(), log, time.time() - started, results)
        finally:
            recorder.close_bars()  # before any message about why the run stopped
        return recorder.finish()

    def _latency(self) -> RunLatency | None:
        """The run's latencies (objective or limit), read back or timed on its device; None when it needs none."""
        if not uses_latency(self.config.evolution):
            return None
        latency = RunLatency(self.store, self.config, self.progress)
        latency.check_limit(self.config.preset().nodes)
        if LATENCY in self.config.evolution.objectives:  # the hypervolume's scale: the largest network's latency
            with latency.measuring(1):
                latency.milliseconds(Genome.ones(self.config.preset().nodes))
        return latency

    def _evaluate(
        self, generation: int, population: list[Genome], ledger: FitnessLedger, recorder: RunRecorder
    ) -> list[EvaluationResult]:
        """Train what the plan says, read back what is stored, reuse means; the ledger learns the
        new evaluations in slot order. Returns the results in slot order."""
        plan = plan_generation(
            generation, population, recorder.stored(generation), ledger,
            reevaluate=self.config.evolution.reevaluate, run_seed=self.config.run.seed,
        )  # fmt: skip
        results = dict(plan.stored)
        recorder.begin(generation, len(population), len(results))
        for result in self.executor.run(plan.tasks):
            recorder.evaluation(result)
            results[result.slot] = result
            if self.on_result is not None:
                self.on_result(result)
        for slot in sorted(results):
            if results[slot].status == OK:  # failed and diverged evaluations measure nothing
                ledger.record(population[slot], results[slot].accuracy)
        for slot in plan.reused:
            genome = population[slot]
            result = EvaluationResult(
                generation, slot, str(genome), architecture_key(genome),
                evaluation_seed(self.config.run.seed, generation, slot), REUSED, accuracy=ledger.mean(genome) or 0.0,
            )  # fmt: skip
            recorder.evaluation(result)
            results[slot] = result
        return [results[slot] for slot in range(len(population))]


def _measuring(latency: RunLatency | None) -> contextlib.AbstractContextManager[None]:
    return latency.measuring() if latency is not None else contextlib.nullcontext()


RESUMABLE_KEYS = (
    "run.executor", "run.workers", "run.threads", "run.device", "run.ray_address", "run.gpus_per_evaluation",
    "data.root", "data.download",
)  # fmt: skip
"""Settings ``resume --set`` may change: where and how fast the run trains, and where its data lie.
Every other key decides what the run computes, and changing it half-way would mix two experiments."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a run; it is marked interrupted and ``folder`` can be resumed."""

    def __init__(self, folder: Path) -> None:
        super().__init__(f"interrupted; continue with `genetic-cnn resume {folder}`")
        self.folder = folder


def start_run(
    config: Config, out: str | Path | None = None, progress: bool = True, echo: Echo | None = None,
    on_result: OnResult | None = None, data: Any = None,
) -> Path:  # fmt: skip
    """Create a run folder for ``config`` and evolve to the end; returns the folder.

    Everything that can be checked is checked before anything is written: the folder (new, empty,
    or refused), the device, the dataset files, and that the preset can take the data's images.

    ``data``: images already in memory instead of ``config.data.dataset``'s files: a map-style torch
    ``Dataset`` of (image, label) items, an (images, labels) pair of arrays or tensors, a (train,
    test) pair of these, or (x_train, y_train, x_test, y_test); without a test set, a seeded 20% of
    every class is held out for testing. They are checked, then copied into ``RUN/data.npz`` and the
    run records ``data.dataset = "arrays"`` with that file as ``data.root``, so that worker processes
    and a later ``resume`` read exactly the same images.
    """
    config = _as_config(config)
    if out is not None and not isinstance(out, (str, os.PathLike)):
        raise UserError(f"start_run(out=...) is the run's folder, a str or pathlib.Path; got {type(out).__name__}")
    folder = Path(out or config.run.out or default_run_folder(config))
    check_new_folder(folder)
    own = None
    if data is not None:
        from genetic_cnn.data.arrays import from_memory

        own = from_memory(data, config.data.layout, progress)
        config = replace(config, data=replace(config.data, dataset="arrays", root=str(folder / OWN_DATA_FILE)))
    config = settled(config, folder)
    check_inputs(config, own)
    existed = folder.exists()
    store = RunStore.create(folder, config, environment())
    try:
        write_config_file(folder, config)
        if own is not None:
            from genetic_cnn.data.arrays import save_npz

            save_npz(own, folder / OWN_DATA_FILE)
        return _drive(store, progress, echo, checked=True, on_result=on_result)
    except UserError:
        if not load_run_evaluations_exist(folder):
            _remove_empty_run(folder, remove_folder=not existed)  # bad input: leave no half-made run behind
        raise


def _as_config(config: Any) -> Config:
    """``config``, or the ``Config`` a dict of sections stands for (checked as a config file is)."""
    if isinstance(config, Config):
        return config
    if isinstance(config, Mapping):
        from genetic_cnn.config import config_from_dict

        return config_from_dict(dict(config))
    raise UserError(
        f"start_run takes a Config (genetic_cnn.config.load_config(path)) or a dict of config sections; "
        f"got {type(config).__name__}"
    )


OWN_DATA_FILE = "data.npz"
"""Where a run started with ``start_run(config, data=...)`` keeps its copy of the data."""
CONFIG_FILE = "config.toml"


def settled(config: Config, folder: Path) -> Config:
    """``config`` as the run records it: its folder in ``run.out``, and a relative ``data.root`` and
    ``evaluation.table`` file resolved, so that the run can be resumed from any directory."""
    return replace(_with_resolved_root(config), run=replace(config.run, out=str(folder.resolve())))


def _with_resolved_root(config: Config) -> Config:
    config = replace(config, data=replace(config.data, root=str(Path(config.data.root).expanduser().resolve())))
    table = Path(config.evaluation.table).expanduser()
    if config.evaluation.table and table.is_file():  # a table file, not a shipped table's name
        config = replace(config, evaluation=replace(config.evaluation, table=str(table.resolve())))
    return config


def check_new_folder(folder: Path) -> None:
    """A run goes into a new or empty folder: never among files genetic-cnn did not write."""
    if (folder / DATABASE).exists():
        raise StoreError(f"{folder} already holds a run; use `genetic-cnn resume {folder}` or another --out")
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--out {folder} is a file, not a folder; choose a new folder for the run")
    if folder.is_dir():
        names = sorted(path.name for path in folder.iterdir())
        if names:
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            raise UserError(
                f"--out {folder} is not empty and holds no run ({shown}); choose a new or empty folder, "
                "so that no file of yours is overwritten"
            )


def load_run_evaluations_exist(folder: Path) -> bool:
    with RunStore.open(folder, readonly=True) as store:
        return bool(store.evaluations())


def _remove_empty_run(folder: Path, remove_folder: bool) -> None:
    """Remove what ``start_run`` wrote, and nothing else: the folder was new or empty (``check_new_folder``)."""
    from genetic_cnn.fitness.oneshot import SUPERNET_FOLDER

    for name in (DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm", LOCK, CONFIG_FILE, OWN_DATA_FILE,
                 f"{CONFIG_FILE}.partial", "summary.json"):  # fmt: skip
        (folder / name).unlink(missing_ok=True)
    if (folder / SUPERNET_FOLDER).is_dir():  # a supernet whose training failed (diverged) is no result
        shutil.rmtree(folder / SUPERNET_FOLDER, ignore_errors=True)
    if remove_folder and not any(folder.iterdir()):
        folder.rmdir()


def resume_run(
    folder: str | Path, progress: bool = True, echo: Echo | None = None, overrides: Sequence[str] = (),
    on_result: OnResult | None = None,
) -> Path:  # fmt: skip
    """Continue a stopped run where it stopped; completed evaluations are not trained again.

    ``overrides`` (``run.executor=processes``, ...) may change the keys in ``RESUMABLE_KEYS``; the
    change is stored with the run and ``config.toml`` is rewritten. Any other key is refused.
    """
    if isinstance(overrides, str):  # one override, not a sequence of one-character ones
        overrides = [overrides]
    store = RunStore.open(folder)
    folder = store.folder
    try:
        _check_config_file(folder, store.config)  # refused before the lock file is touched
        config = resumed_config(store.config, overrides) if overrides else None
        check_stored_fitness(store.config)  # e.g. a truncated supernet checkpoint: refused before anything is written
        if store.status != "finished":
            check_inputs(config or store.config)  # the data, the device, the table: before the lock is written
        store.lock()
        if config is not None:
            store.update_config(config, {"at": time.time(), "set": list(overrides)})
        elif store.recorded_out != str(folder.resolve()):  # copied or moved: the run records where it is now
            config = store.config
            store.update_config(config, {"at": time.time(), "moved_from": store.recorded_out})
        if config is not None:
            write_config_file(folder, config)
    except BaseException:
        store.close()
        raise
    return _drive(store, progress, echo, checked=True, on_result=on_result)


def write_config_file(folder: Path, config: Config) -> None:
    """``RUN/config.toml``, replaced atomically: a kill or a full disk leaves the previous one whole."""
    path = folder / CONFIG_FILE
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(config.to_toml(), encoding="utf-8")
        os.replace(partial, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {error.strerror}; free disk space or make the run folder writable") from None


def resumed_config(config: Config, overrides: Sequence[str]) -> Config:
    """``config`` with ``resume --set`` overrides applied; keys outside ``RESUMABLE_KEYS`` are refused."""
    from genetic_cnn.config import config_from_dict, parse_override

    raw = config.to_dict()
    for override in overrides:
        section, key, value = parse_override(override)
        name = f"{section}.{key}"
        if name not in RESUMABLE_KEYS:
            raise UserError(
                f"resume --set {name}: {name} decides what the run computes and cannot change half-way; "
                f"resume may change only {', '.join(RESUMABLE_KEYS)} (start a new run with "
                f"`genetic-cnn evolve --config RUN/{CONFIG_FILE} --set {override}`)"
            )
        raw[section][key] = value
    return _with_resolved_root(config_from_dict(raw))


def _check_config_file(folder: Path, stored: Config) -> None:
    """Refuse a ``config.toml`` edited after the run started: the run would not do what it says."""
    from genetic_cnn.config import ConfigError, load_config

    path = folder / CONFIG_FILE
    if not path.is_file():
        return
    try:
        written = relocated(load_config(path), folder)  # a copied or moved run's file names where it was made
    except ConfigError as error:
        raise UserError(f"{path} was edited and no longer loads ({error}); undo the edit") from None
    differ = [
        f"{section}.{key}"
        for section, values in written.to_dict().items()
        for key, value in values.items()
        if stored.to_dict()[section][key] != value
    ]
    if differ:
        raise UserError(
            f"{path} differs from the settings the run was started with ({', '.join(differ)}); the run's settings "
            f"live in {DATABASE} and config.toml is a copy: undo the edit, and change run settings with "
            f"`genetic-cnn resume {folder} --set KEY=VALUE` ({', '.join(RESUMABLE_KEYS)})"
        )


def check_inputs(config: Config, own: LabelledImages | None = None) -> None:
    """Fail on a bad device, missing dataset files or a preset that cannot take the data's images,
    now, before any folder is made, progress bar shown or network trained; warn on a preset much
    smaller than the data. ``own``: images in memory that stand for ``config.data``'s file."""
    from genetic_cnn.nn.device import resolve_device

    resolve_device(config.run.device)
    check_tensorboard(config)
    if config.evolution.strategy in ("calibration", "tabulation"):
        from genetic_cnn.space.enumerate import architectures

        count = len(architectures(config.preset().nodes))
        if config.evolution.strategy == "calibration" and config.evolution.population > count:
            raise UserError(
                f"evolution.population = {config.evolution.population} distinct architectures asked for calibration, "
                f"but the space of nodes {list(config.preset().nodes)} has only {count}; ask for at most {count}"
            )
        if config.evolution.strategy == "tabulation" and config.evolution.population != count:
            raise UserError(
                f"evolution.population = {config.evolution.population}: a tabulation evaluates every architecture, "
                f"and the space of nodes {list(config.preset().nodes)} has {count}; use genetic-cnn tabulate"
            )
    check_fitness_inputs(config, own)  # e.g. the dataset loads and fits the preset, or the table is of this space


def _drive(
    store: RunStore, progress: bool, echo: Echo | None, checked: bool = False, on_result: OnResult | None = None
) -> Path:
    try:
        if store.status != "finished" and not checked:
            check_inputs(store.config)
        chosen = choose_executor(store.config)  # what run.executor = "auto" means here, recorded with the run
        store.record_executor({"at": time.time(), "asked": store.config.run.executor, "executor": chosen.run.executor,
                               "workers": chosen.run.workers, "threads": chosen.run.threads})  # fmt: skip
        prepare_fitness(store.config, progress, echo or print_line)  # e.g. the one-shot supernet, trained once
        executor = executor_for(chosen, progress=progress)
        try:
            Evolution(store, executor, progress, echo, on_result).run()
        finally:
            executor.close()
    except KeyboardInterrupt:
        store.set_status("interrupted")
        raise RunInterrupted(store.folder) from None
    finally:
        store.close()
    return store.folder
