"""`genetic-cnn report RUN [RUN ...]`: a run's history as a Markdown report with pictures.

One run: ``RUN/report/report.md`` (or ``--out``) with PNG images beside it: the paper's table per
generation, the evaluation noise against the spread between genomes, fitness over generations,
best-so-far curves, the best genomes drawn, population diversity, the connections the search
converged on, and where the time went. Several runs: a comparison (overlaid best-so-far curves, a
summary table) plus one sub-report per run.

Definitions are in ``genetic_cnn.rundata``, which reads the history. The Python API (``write_report``, ``generation_table``, ``RunData``) reads the run database only;
matplotlib is imported when pictures are drawn, never at import.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from genetic_cnn.errors import UserError
from genetic_cnn.files import plural
from genetic_cnn.noise import FitnessNoise, noise_verdict
from genetic_cnn.records import DIVERGED, FAILED, REUSED
from genetic_cnn.rundata import (
    TOP_ARCHITECTURES,
    RunData,
    code,
    distinct_names,
    duration,
    generation_table,
    pct,
    table,
)
from genetic_cnn.store import RunStore
from genetic_cnn.summary import GenerationSummary

__all__ = ["RunData", "generation_table", "write_report", "write_run_report", "write_summary"]

COMPARISON_FOLDER = "report-comparison"

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
        "Fitness (%) is the validation accuracy averaged over the successful evaluations of an individual so "
        "far, as told to the search; an individual none of whose evaluations succeeded has no fitness, is "
        "never selected, and shows as 0. *Test* is the mean test accuracy of the best genome's "
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
    lines += noise_markdown(data)
    lines += [
        "## Fitness over generations", "",
        "Every individual is a point (slots spread slightly within a generation); the band spans min to max.", "",
        "![fitness over generations](fitness.png)", "",
        "## Best so far", "",
        "The highest validation accuracy of any single trained evaluation, against the number of trained "
        "evaluations (the search's cost) and against wall time since the run was created.", "",
        "![best so far](best_so_far.png)", "",
        "## Learning curves", "",
        "The training loss (mean over each epoch) and the validation accuracy after each epoch of every trained "
        "evaluation, kept in the run database as the evaluations land; the evaluation with the highest validation "
        "accuracy in colour. The last point of a validation curve is the accuracy told to the search."
        + ("" if data.curves() else " This run recorded none: its database was written by a version that did not "
           "keep them."), "",
        "![learning curves](learning_curves.png)", "",
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
        lines += ["Failed and diverged evaluations (no fitness):", ""]
        lines += table(
            ["gen", "slot", "genome", "status", "error"],
            [[e.generation, e.slot, code(e.genome), e.status, " ".join(e.error.split())[:120].replace("|", "\\|") or "–"]
             for e in errors[:20]],
        )  # fmt: skip
    return "\n".join(lines)


def points(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def noise_sentence(noise: FitnessNoise) -> str:
    """The run's noise in words, with what it means for the search."""
    if noise.seed_sd is None:
        return (
            "Not measured: no individual was evaluated successfully twice (with `evolution.reevaluate = \"reuse\"` "
            "survivors are never trained again)."
        )
    measured = (
        f"Over the run: seed sd {points(noise.seed_sd)} pp over {plural(noise.repeated, 'repeated individual')}, "
        f"population sd {points(noise.population_sd)} pp."
    )
    verdict = noise_verdict(noise)
    if verdict is None:
        return f"{measured} One evaluation's noise is smaller than the spread between individuals."
    return f"{measured} **{verdict[0].upper()}{verdict[1:]}.**"


def noise_markdown(data: RunData) -> list[str]:
    """The report's section on evaluation noise: the run's numbers, a table per generation and the picture."""
    lines = [
        "## Fitness noise", "",
        "Re-evaluated survivors give repeated evaluations of the same individual for free. *Seed sd* is the "
        "pooled standard deviation of the validation accuracy within individuals (the noise of one evaluation); "
        "*population sd* the standard deviation of the individuals' mean fitness (the spread selection ranks); "
        "both in percentage points; *repeated* counts the individuals with two or more successful trained "
        "evaluations. Per generation, the seed sd and *repeated* are over generations 0 up to it, the population "
        "sd over its population's distinct individuals.", "",
        noise_sentence(data.fitness_noise()), "",
    ]  # fmt: skip
    lines += table(
        ["gen", "seed sd", "population sd", "repeated"],
        [[g, points(n.seed_sd), points(n.population_sd), n.repeated] for g, n in data.noise_by_generation()],
    )
    return lines + ["![fitness noise](noise.png)", ""]


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
    seen: dict[Path, Path] = {}
    for data in datas:
        if data.folder.resolve() in seen:
            raise UserError(f"{data.folder} is given twice (as {seen[data.folder.resolve()]}); give each run once")
        seen[data.folder.resolve()] = data.folder
    if len(datas) > 1:
        datas = [replace(data, display_name=name) for data, name in zip(datas, distinct_names([d.folder for d in datas]))]
    if len(datas) == 1:
        return write_run_report(datas[0], out if out is not None else datas[0].folder / "report")
    from genetic_cnn import plots

    for data in datas:
        if not data.generations:
            raise UserError(f"{data.folder}: no generation is complete yet, nothing to compare; wait or resume the run")
    out = _folder(out if out is not None else COMPARISON_FOLDER)
    links = [write_run_report(data, out / data.name.replace("/", "--")).relative_to(out) for data in datas]
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
        "plots, fitness noise, the best genomes drawn, diversity, bit frequencies, time. Several runs: a comparison.",
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run folder(s)")
    parser.add_argument(
        "--out", type=Path, help=f"output folder (default: RUN/report for one run, ./{COMPARISON_FOLDER} for several)"
    )
    parser.set_defaults(func=cmd_report)
    return parser


def write_summary(store: RunStore, summaries: Sequence[GenerationSummary]) -> Path:
    """summary.json beside the database: the best genome, the fitness noise and the paper-style table.

    The best genome is the individual with the highest mean fitness over all its trained
    evaluations, as in the report.
    """
    data = RunData.load(store)
    best = data.ranking()[0]
    summary = {
        "best_genome": best.genome,
        "best_fitness": best.fitness,
        "best_test_accuracy": best.test_accuracy,
        "best_evaluations": best.evaluations,
        "fitness_noise": data.fitness_noise().to_dict(),  # percentage points; see genetic_cnn.noise
        "generations": [asdict(row) for row in summaries],
    }
    path = store.folder / "summary.json"
    path.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return path
