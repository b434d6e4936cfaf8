"""`genetic-cnn report RUN [RUN ...]`: a run's history as a Markdown report with pictures.

One run: ``RUN/report/report.md`` (or ``--out``) with PNG images beside it: the paper's table per
generation, fitness over generations, best-so-far curves, the best genomes drawn, population
diversity, the connections the search converged on, and where the time went. Several runs: a
comparison (overlaid best-so-far curves, a summary table) plus one sub-report per run.

Definitions used throughout (they are written into the report too):

- fitness: what the search was told, i.e. the validation accuracy averaged over all evaluations
  of an individual up to that generation (failed or diverged evaluations count 0);
- an individual is a string or an architecture, as the run's ``evolution.identity`` says;
- test accuracy of a genome: the mean test accuracy over that individual's trained evaluations
  (status ok) up to the generation in question;
- best so far: the highest validation accuracy of any single trained evaluation so far; the cost
  axis counts trained evaluations only (reused ones cost nothing).

The Python API (``write_report``, ``generation_table``, ``RunData``) reads the run database only;
matplotlib is imported when pictures are drawn, never at import.
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from genetic_cnn.config import Config
from genetic_cnn.errors import UserError
from genetic_cnn.evolution import GenerationSummary
from genetic_cnn.genome import Genome, edge_list
from genetic_cnn.records import DIVERGED, FAILED, OK, REUSED, EvaluationResult
from genetic_cnn.store import GenerationRecord, RunStore, load_run

TOP_ARCHITECTURES = 4
COMPARISON_FOLDER = "report-comparison"


@cache
def parse_genome(text: str) -> Genome:
    return Genome.from_string(text)


def architecture_key(text: str) -> str:
    return parse_genome(text).architecture_key()


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
class TableRow:
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
            evaluations, times, tuple(store.generations()),
        )  # fmt: skip

    # ------------------------------------------------------------------ naming
    @property
    def name(self) -> str:
        return self.folder.resolve().name

    @property
    def strategy(self) -> str:
        return self.config.evolution.strategy

    @property
    def seed(self) -> int:
        return self.config.run.seed

    @property
    def label(self) -> str:
        return f"{self.name} ({self.strategy}, seed {self.seed})"

    def identity(self, genome: str) -> str:
        """What the run counts as the same individual: the string, or its architecture key."""
        return architecture_key(genome) if self.config.evolution.identity == "architecture" else genome

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

    def table(self) -> list[TableRow]:
        """The paper's table, one row per completed generation."""
        return list(self._table)

    @cached_property
    def _table(self) -> tuple[TableRow, ...]:
        by_generation: dict[int, list[EvaluationResult]] = defaultdict(list)
        for e in self.evaluations:
            by_generation[e.generation].append(e)
        rows = []
        for record in self.generations:
            summary = GenerationSummary.of(
                record.generation, record.genomes, record.fitness, by_generation[record.generation]
            )
            rows.append(TableRow(summary, self.test_accuracy(summary.best_genome, record.generation)))
        return tuple(rows)

    def ranking(self, by_architecture: bool = False) -> list[Candidate]:
        """Individuals (or architectures) by mean fitness over all trained evaluations, best first."""
        groups: dict[str, list[EvaluationResult]] = defaultdict(list)
        for e in self.evaluations:
            if e.status != REUSED:
                groups[e.key if by_architecture else self.identity(e.genome)].append(e)
        candidates = []
        for members in groups.values():
            counts = Counter(e.genome for e in members)
            genome = counts.most_common(1)[0][0]  # the string evaluated most often (first seen on ties)
            tests = [e.test_accuracy for e in members if e.status == OK and e.test_accuracy is not None]
            candidates.append(Candidate(
                genome, architecture_key(genome), statistics.fmean(e.fitness_input for e in members),
                statistics.fmean(tests) if tests else None, len(members), len(counts),
            ))  # fmt: skip
        return sorted(candidates, key=lambda c: (-c.fitness, -c.evaluations))

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

    def diversity(self) -> list[tuple[int, int, int]]:
        """(generation, distinct strings, distinct architectures) of each population."""
        return [
            (r.generation, len(set(r.genomes)), len({architecture_key(g) for g in r.genomes})) for r in self.generations
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


def generation_table(run: RunData | RunStore | str | Path) -> list[GenerationSummary]:
    """The paper's table: one ``GenerationSummary`` per completed generation, from the database."""
    return [row.summary for row in RunData.load(run).table()]


# ---------------------------------------------------------------------- Markdown
def pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}"


def code(genome: str) -> str:
    """A genome inside a Markdown table cell: `|` must be escaped even in a code span."""
    return "`" + genome.replace("|", "\\|") + "`"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows] + [""]


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M")


def run_markdown(data: RunData, title: str) -> str:
    """The text of one run's report; the images it names are drawn by ``plots.draw_run``."""
    config, rows = data.config, data.table()
    preset, evo = config.preset(), config.evolution
    counts = data.status_counts()
    trained = [e for e, _ in data.trained]
    best = data.ranking()[0]
    env = data.environment
    total = max(data.finished_at, default=data.created_at) - data.created_at
    lines = [
        f"# {title}", "",
        f"- run folder: `{data.folder}` (status: {data.status}; created {_when(data.created_at)})",
        f"- data: {config.data.dataset}; network preset {preset.name}: nodes {preset.nodes}, channels {preset.channels}",
        f"- search: {evo.strategy}, N = {evo.population}, T = {evo.generations}, seed {data.seed}; "
        f"p_C {evo.p_crossover}, q_C {evo.q_crossover}, p_M {evo.p_mutation}, q_M {evo.q_mutation}; "
        f"identity {evo.identity}, re-evaluation {evo.reevaluate}",
        f"- environment: genetic-cnn {env.get('genetic_cnn', '?')}, torch {env.get('torch', '?')}, "
        f"device {env.get('cuda') or 'CPU'}, {env.get('platform', '?')}",
        f"- generations completed: {len(rows)} of {evo.generations + 1}; evaluations: {len(trained)} trained "
        f"({counts[FAILED]} failed, {counts[DIVERGED]} diverged), {counts[REUSED]} reused; wall time {duration(total)}",
        f"- best genome: {code(best.genome)}, fitness {pct(best.fitness)}%, test accuracy {pct(best.test_accuracy)}% "
        f"({plural(best.evaluations, 'evaluation')})", "",
        "## Population per generation (the paper's table)", "",
        "Fitness (%) is the validation accuracy averaged over all evaluations of an individual so far "
        "(failures count 0), as told to the search. *Test* is the mean test accuracy of the best genome's "
        "trained evaluations up to that generation (the paper's tables report test accuracy; failed or diverged "
        "evaluations have no test accuracy and are left out of it). "
        "*Trained* and *reused* count the generation's evaluations.", "",
    ]  # fmt: skip
    lines += table(
        ["gen", "max", "min", "mean", "median", "std", "best genome", "test", "trained", "reused"],
        [
            [
                s.generation,
                pct(s.maximum),
                pct(s.minimum),
                pct(s.mean),
                pct(s.median),
                pct(s.std),
                code(s.best_genome),
                pct(row.test_accuracy),
                s.trained,
                s.reused,
            ]
            for row in rows
            for s in [row.summary]
        ],  # fmt: skip
    )
    lines += [
        "## Fitness over generations", "",
        "Every individual is a point (slots spread slightly within a generation); the band spans min to max.", "",
        "![fitness over generations](fitness.png)", "",
        "## Best so far", "",
        "The highest validation accuracy of any single trained evaluation, against the number of trained "
        "evaluations (the search's cost) and against wall time since the run was created.", "",
        "![best so far](best_so_far.png)", "",
        "## Best genome", "",
        f"{code(best.genome)} (architecture key {code(best.key)}): fitness {pct(best.fitness)}% over "
        f"{plural(best.evaluations, 'trained evaluation')}, test accuracy {pct(best.test_accuracy)}%. It is the "
        f"{'string' if evo.identity == 'string' else 'architecture'} with the highest fitness averaged over all its "
        "trained evaluations in the run.", "",
        "![best genome](best_genome.png)", "",
        f"## Top {TOP_ARCHITECTURES} architectures", "",
        "Distinct architectures (equivalent strings grouped by architecture key), ranked by the mean fitness "
        "over all their trained evaluations; the string shown is the one evaluated most often.", "",
    ]  # fmt: skip
    lines += table(
        ["rank", "genome", "architecture key", "fitness", "test", "evaluations", "strings"],
        [[i, code(c.genome), code(c.key), pct(c.fitness), pct(c.test_accuracy), c.evaluations, c.strings]
         for i, c in enumerate(data.ranking(by_architecture=True)[:TOP_ARCHITECTURES], start=1)],
    )  # fmt: skip
    lines += [
        "![top architectures](top_architectures.png)", "",
        "## Diversity and convergence", "",
        "Distinct strings and distinct architectures in each population, and the share of the population "
        "that has each connection bit set (stage boundaries marked): columns turning uniformly dark or "
        "bright are connections the search converged on.", "",
        "![diversity](diversity.png)", "",
        "![bit frequency](bit_frequency.png)", "",
        "## Time and cost", "",
    ]  # fmt: skip
    seconds = [e.seconds for e in trained]
    lines += table(
        ["trained", "reused", "failed", "diverged", "wall time", "mean per evaluation", "median per evaluation",
         "mean per generation"],
        [[len(trained), counts[REUSED], counts[FAILED], counts[DIVERGED], duration(total),
          duration(statistics.fmean(seconds)) if seconds else "–", duration(statistics.median(seconds)) if seconds else "–",
          duration(statistics.fmean(r.seconds for r in data.generations))]],
    )  # fmt: skip
    lines += ["![time](time.png)", ""]
    errors = [e for e in data.evaluations if e.status in (FAILED, DIVERGED)]
    if errors:
        lines += ["Failed and diverged evaluations (fitness 0):", ""]
        lines += table(
            ["gen", "slot", "genome", "status", "error"],
            [[e.generation, e.slot, code(e.genome), e.status, " ".join(e.error.split())[:120].replace("|", "\\|") or "–"]
             for e in errors[:20]],
        )  # fmt: skip
    return "\n".join(lines)


def write_run_report(run: RunData | RunStore | str | Path, out: str | Path, title: str | None = None) -> Path:
    """One run's report.md and its images in ``out``; returns the path of report.md."""
    from genetic_cnn import plots

    data = RunData.load(run)
    if not data.generations:
        raise UserError(f"{data.folder}: no generation is complete yet, nothing to report; wait or resume the run")
    out = _folder(out)
    plots.draw_run(data, out)
    path = out / "report.md"
    path.write_text(run_markdown(data, title or f"Genetic CNN run {data.name}") + "\n", encoding="utf-8")
    return path


def comparison_markdown(datas: Sequence[RunData], links: Sequence[Path]) -> str:
    lines = ["# Genetic CNN: comparison of runs", ""]
    rows = []
    for data, link in zip(datas, links):
        best = data.ranking()[0]
        counts = data.status_counts()
        trained = len(data.evaluations) - counts[REUSED]
        rows.append([
            f"[{data.name}]({link.as_posix()})", data.strategy, data.seed, data.config.data.dataset,
            f"{len(data.generations)}/{data.config.evolution.generations + 1}", trained, counts[REUSED],
            counts[FAILED] + counts[DIVERGED], code(best.genome), pct(best.fitness), pct(best.test_accuracy),
            pct(data.table()[-1].summary.mean),
        ])  # fmt: skip
    lines += table(
        ["run", "strategy", "seed", "data", "generations done", "trained", "reused", "failed or diverged", "best genome",
         "best fitness", "best test", "last mean"], rows,
    )  # fmt: skip
    lines += [
        "Best fitness: the best individual's mean validation accuracy over its trained evaluations; best test: its "
        "mean test accuracy; last mean: the mean fitness of the last completed generation (all in %).", "",
        "## Best so far", "",
        "The highest validation accuracy of any single trained evaluation, against trained evaluations and wall time.", "",
        "![best so far](best_so_far.png)", "",
        "## Population fitness per generation", "",
        "![mean fitness](mean_fitness.png)", "",
        "Each run's full report is linked from the table above.", "",
    ]  # fmt: skip
    return "\n".join(lines)


def write_report(runs: Sequence[str | Path | RunData], out: str | Path | None = None) -> Path:
    """Write the report of one run (default ``RUN/report``) or a comparison of several (default
    ``./report-comparison``, with a sub-report per run); returns the path of report.md."""
    if not runs:
        raise UserError("no run folder given; pass one or more run folders")
    datas = [RunData.load(run) for run in runs]
    if len(datas) == 1:
        return write_run_report(datas[0], out if out is not None else datas[0].folder / "report")
    from genetic_cnn import plots

    for data in datas:
        if not data.generations:
            raise UserError(f"{data.folder}: no generation is complete yet, nothing to compare; wait or resume the run")
    out = _folder(out if out is not None else COMPARISON_FOLDER)
    links, used = [], Counter[str]()
    for data in datas:
        used[data.name] += 1
        name = data.name if used[data.name] == 1 else f"{data.name}-{used[data.name]}"
        links.append(write_run_report(data, out / name).relative_to(out))
    plots.draw_comparison(datas, out)
    path = out / "report.md"
    path.write_text(comparison_markdown(datas, links) + "\n", encoding="utf-8")
    return path


def _folder(out: str | Path) -> Path:
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"cannot write the report to {out}: it is a file; choose another --out") from None
    except OSError as error:
        raise UserError(f"cannot create {out}: {error.strerror}; choose another --out") from None
    return out


# ---------------------------------------------------------------------- CLI
def cmd_report(args: argparse.Namespace) -> int:
    path = write_report(args.runs, args.out)
    print(f"report: {path}")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "report",
        help="write a Markdown report with plots of a run, or compare several runs",
        description="Write report.md with PNG images: the paper's per-generation table, fitness and best-so-far "
        "plots, the best genomes drawn, diversity, bit frequencies, time. Several runs: a comparison.",
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run folder(s)")
    parser.add_argument(
        "--out", type=Path, help=f"output folder (default: RUN/report for one run, ./{COMPARISON_FOLDER} for several)"
    )
    parser.set_defaults(func=cmd_report)
    return parser
