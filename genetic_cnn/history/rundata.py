"""A run's history read back from its database: the paper's rows per generation, rankings, curves. No torch, no matplotlib.

Definitions (the report writes them out too):

- fitness: what the search was told, i.e. the validation accuracy averaged over the successful
  evaluations of an individual up to that generation (an individual with none has no fitness
  and shows as 0);
- an individual is a string or an architecture, as the run's ``evolution.identity`` says;
- test accuracy of a genome: the mean test accuracy over that individual's trained evaluations
  (status ok) up to the generation in question;
- best so far: the highest validation accuracy of any single trained evaluation so far; the cost
  axis counts trained evaluations only (reused ones cost nothing).
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from genetic_cnn.config import Config
from genetic_cnn.history.noise import FitnessNoise, fitness_noise, noise_by_generation
from genetic_cnn.history.store import GenerationRecord, LatencyRecord, RunStore, load_run
from genetic_cnn.history.summary import GenerationSummary
from genetic_cnn.search.records import OK, REUSED, CurvePoint, EvaluationResult
from genetic_cnn.space.genome import Genome, edge_list
from genetic_cnn.space.graph import architecture_key
from genetic_cnn.space.identity import individual_key

TOP_ARCHITECTURES = 4


@cache
def parse_genome(text: str) -> Genome:
    """A stored genome string (``Genome.from_string``), each decoded once: a run's strings repeat."""
    return Genome.from_string(text)


@cache
def key_of(text: str) -> str:
    return architecture_key(parse_genome(text))


@dataclass(frozen=True)
class Candidate:
    """An individual or architecture ranked by its mean fitness over all its trained evaluations."""

    genome: str
    key: str
    fitness: float
    test_accuracy: float | None
    evaluations: int
    strings: int


@dataclass(frozen=True)
class GenerationRow:
    """One row of the paper's table, with the test accuracy of the generation's best genome."""

    summary: GenerationSummary
    test_accuracy: float | None


@dataclass(frozen=True)
class RunData:
    """Everything a report needs from one run folder, read once from its database."""

    folder: Path
    config: Config
    status: str
    created_at: float
    environment: dict[str, Any]
    evaluations: tuple[EvaluationResult, ...]
    finished_at: tuple[float, ...]
    generations: tuple[GenerationRecord, ...]
    display_name: str = ""
    """How reports call the run; empty = the folder's name (``distinct_names`` sets it for comparisons)."""
    latencies: tuple[LatencyRecord, ...] = ()
    """The latencies the run timed (``genetic_cnn.fitness.latency``); none unless it had the objective or the limit."""

    @classmethod
    def load(cls, run: RunData | RunStore | str | Path) -> RunData:
        """From a run folder, an open ``RunStore`` or (unchanged) a ``RunData``."""
        if isinstance(run, RunData):
            return run
        if isinstance(run, RunStore):
            return cls._read(run)
        with load_run(run) as store:
            return cls._read(store)

    @classmethod
    def _read(cls, store: RunStore) -> RunData:
        evaluations = tuple(store.evaluations())
        times = tuple(store.evaluation_times())
        created = store.meta("created_at")
        created_at = float(created) if created is not None else min(times, default=0.0)
        return cls(
            Path(store.folder), store.config, store.status, created_at, store.meta("environment", {}) or {},
            evaluations, times, tuple(store.generations()), latencies=tuple(store.latencies()),
        )  # fmt: skip

    # ------------------------------------------------------------------ naming
    @property
    def name(self) -> str:
        return self.display_name or self.folder.resolve().name

    @property
    def strategy(self) -> str:
        return self.config.evolution.strategy

    @property
    def seed(self) -> int:
        return self.config.run.seed

    @property
    def label(self) -> str:
        return f"{self.name} ({self.strategy}, seed {self.seed})"

    @cached_property
    def _latency_by_key(self) -> dict[str, float]:
        batch = self.config.evolution.latency_batch
        return {record.key: record.milliseconds for record in self.latencies if record.batch == batch}

    def latency_ms(self, genome: str) -> float | None:
        """The stored latency of ``genome``'s architecture at the run's ``latency_batch``; None when not timed."""
        return self._latency_by_key.get(key_of(genome))

    @property
    def latency_device(self) -> str:
        """Where the latencies were timed (``cpu``, ``cuda``), with the hardware's name when known."""
        record = next(iter(self.latencies), None)
        return "" if record is None else f"{record.device}, {record.hardware}"

    def identity(self, genome: str) -> str:
        """What the run counts as the same individual: the string, or its architecture key."""
        return individual_key(genome, self.config.evolution.identity)

    # ------------------------------------------------------------------ derived
    @property
    def trained(self) -> list[tuple[EvaluationResult, float]]:
        """Trained evaluations (not reused) with their finishing time, in the order they finished."""
        pairs = [(e, t) for e, t in zip(self.evaluations, self.finished_at) if e.status != REUSED]
        return sorted(pairs, key=lambda pair: pair[1])

    def test_accuracy(self, genome: str, generation: int | None = None) -> float | None:
        """Mean test accuracy of ``genome``'s trained evaluations (up to ``generation``); None if none."""
        identity = self.identity(genome)
        values = [
            e.test_accuracy for e in self.evaluations
            if e.status == OK and e.test_accuracy is not None and (generation is None or e.generation <= generation)
            and self.identity(e.genome) == identity
        ]  # fmt: skip
        return statistics.fmean(values) if values else None

    def generation_rows(self) -> list[GenerationRow]:
        """The paper's table, one row per completed generation."""
        return list(self._generation_rows)

    @cached_property
    def _generation_rows(self) -> tuple[GenerationRow, ...]:
        by_generation: dict[int, list[EvaluationResult]] = defaultdict(list)
        for e in self.evaluations:
            by_generation[e.generation].append(e)
        rows = []
        for record in self.generations:
            summary = GenerationSummary.of(
                record.generation, record.genomes, record.fitness, by_generation[record.generation]
            )
            rows.append(GenerationRow(summary, self.test_accuracy(summary.best_genome, record.generation)))
        return tuple(rows)

    def ranking(self, by_architecture: bool = False) -> list[Candidate]:
        """Individuals (or architectures) by mean fitness over all trained evaluations, best first."""
        groups: dict[str, list[EvaluationResult]] = defaultdict(list)
        identity = "architecture" if by_architecture else self.config.evolution.identity
        for e in self.evaluations:
            if e.status != REUSED:
                groups[individual_key(e.genome, identity, key=e.key)].append(e)
        ranked: list[tuple[bool, Candidate]] = []
        for members in groups.values():
            counts = Counter(e.genome for e in members)
            genome = counts.most_common(1)[0][0]  # the string evaluated most often (first seen on ties)
            tests = [e.test_accuracy for e in members if e.status == OK and e.test_accuracy is not None]
            # The search's rule: the mean over successful evaluations; one with none ranks last, shown as 0.
            measured = [e.accuracy for e in members if e.status == OK]
            ranked.append((not measured, Candidate(
                genome, key_of(genome), statistics.fmean(measured) if measured else 0.0,
                statistics.fmean(tests) if tests else None, len(members), len(counts),
            )))  # fmt: skip
        ranked.sort(key=lambda item: (item[0], -item[1].fitness, -item[1].evaluations))
        return [candidate for _, candidate in ranked]

    def best_so_far(self) -> tuple[list[int], list[float], list[float]]:
        """(trained evaluations so far, seconds since the run was created, best validation accuracy)."""
        counts, seconds, best = [], [], []
        top = 0.0
        for number, (e, finished) in enumerate(self.trained, start=1):
            top = max(top, e.fitness_input)
            counts.append(number)
            seconds.append(max(0.0, finished - self.created_at))
            best.append(top)
        return counts, seconds, best

    def curves(self) -> dict[tuple[int, int], list[CurvePoint]]:
        """Learning curves by (generation, slot) of the evaluations that recorded one (``records.CURVE``)."""
        return {(e.generation, e.slot): e.curve for e in self.evaluations if e.curve}

    def diversity(self) -> list[tuple[int, int, int]]:
        """(generation, distinct strings, distinct architectures) of each population."""
        return [
            (r.generation, len(set(r.genomes)), len({key_of(g) for g in r.genomes})) for r in self.generations
        ]

    def bit_frequency(self) -> list[list[float]]:
        """Share of each generation's population with each bit set: generations x bit positions."""
        return [
            [sum(column) / len(record.genomes) for column in zip(*(parse_genome(g).bits for g in record.genomes))]
            for record in self.generations
        ]

    def bit_labels(self) -> tuple[list[str], list[int]]:
        """A label per bit (``v1→v2``) and the bit index at which each stage after the first starts."""
        labels: list[str] = []
        starts: list[int] = []
        for nodes in self.config.preset().nodes:
            if labels:
                starts.append(len(labels))
            labels += [f"v{a}→v{b}" for a, b in edge_list(nodes)]
        return labels, starts

    def status_counts(self) -> Counter[str]:
        return Counter(e.status for e in self.evaluations)

    def fitness_noise(self) -> FitnessNoise:
        """Evaluation noise and spread between individuals over the whole run (``genetic_cnn.history.noise``)."""
        return fitness_noise(self.evaluations, self.config.evolution.identity, class_count(self.config))

    def noise_by_generation(self) -> list[tuple[int, FitnessNoise]]:
        """(generation, noise) for each completed generation (``noise.noise_by_generation``)."""
        noise = noise_by_generation(self.evaluations, self.config.evolution.identity, class_count(self.config))
        return [(r.generation, noise[r.generation]) for r in self.generations if r.generation in noise]


KNOWN_CLASSES = {"digits": 10, "synthetic": 10, "mnist": 10, "fashion-mnist": 10, "cifar10": 10, "cifar100": 100, "svhn": 10}


def class_count(config: Config) -> int | None:
    """K, the number of classes of the run's data, where it is known without loading the images: the
    built-in datasets', or an image folder's class folders; None for arrays (their labels would have
    to be read)."""
    if config.data.dataset in KNOWN_CLASSES:
        return KNOWN_CLASSES[config.data.dataset]
    if config.data.dataset == "folder":
        train = Path(config.data.root).expanduser() / "train"
        if train.is_dir():
            return sum(1 for entry in train.iterdir() if entry.is_dir()) or None
    return None


def generation_summaries(run: RunData | RunStore | str | Path) -> list[GenerationSummary]:
    """The paper's table: one ``GenerationSummary`` per completed generation, from the database."""
    return [row.summary for row in RunData.load(run).generation_rows()]


# ---------------------------------------------------------------------- Markdown
def pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}"


def code(genome: str) -> str:
    """A genome inside a Markdown table cell: `|` must be escaped even in a code span."""
    return "`" + genome.replace("|", "\\|") + "`"


def markdown_rows(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows] + [""]


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def distinct_names(folders: Sequence[Path]) -> list[str]:
    """The shortest trailing parts of each folder's path that tell the folders apart
    (``a/run`` and ``b/run`` rather than ``run`` twice)."""
    parts = [folder.resolve().parts for folder in folders]
    depth = 1
    while depth < max(len(p) for p in parts) and len({p[-depth:] for p in parts}) < len(parts):
        depth += 1
    return ["/".join(p[-depth:]) for p in parts]
