"""`genetic-cnn report RUN [RUN ...]`: a run's history as a Markdown report with pictures.

One run: ``RUN/report/report.md`` (or ``--out``) with PNG images beside it: the paper's table per
generation, the evaluation noise against the spread between genomes, fitness over generations,
best-so-far curves, the best genomes drawn, population diversity, the connections the search
converged on, and where the time went. Several runs: a comparison (overlaid best-so-far curves, a
summary table) plus one sub-report per run.

Definitions are in ``genetic_cnn.history.rundata``, which reads the history. The Python API (``write_report``, ``generation_summaries``, ``RunData``) reads the run database only;
matplotlib is imported when pictures are drawn, never at import.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from genetic_cnn.errors import UserError
from genetic_cnn.files import plural, write_atomically
from genetic_cnn.fitness.method import FitnessMethod
from genetic_cnn.history.noise import FitnessNoise, noise_verdict, reliability_figures
from genetic_cnn.history.rundata import (
    TOP_ARCHITECTURES,
    RunData,
    code,
    distinct_names,
    duration,
    generation_summaries,
    markdown_rows,
    pct,
)
from genetic_cnn.history.store import RunStore
from genetic_cnn.search.records import DIVERGED, FAILED, REUSED

__all__ = ["RunData", "generation_summaries", "write_report", "write_run_report"]

def percent(value: float | None) -> str:
    """``value`` as a percentage, or a dash where nothing was measured (no "–%")."""
    return "–" if value is None else f"{pct(value)}%"


COMPARISON_FOLDER = "report-comparison"

def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M")


def run_markdown(data: RunData, title: str) -> str:
    """The text of one run's report; the images it names are drawn by ``plots.draw_run``."""
    config, rows = data.config, data.generation_rows()
    preset, evo = config.preset(), config.evolution
    counts = data.status_counts()
    trained = [e for e, _ in data.trained]
    best = data.ranking()[0]
    env = data.environment
    total = max(data.finished_at, default=data.created_at) - data.created_at
    method = FitnessMethod.of(config, data.folder)
    lines = [
        f"# {title}", "",
        f"- run folder: `{data.folder}` (status: {data.status}; created {_when(data.created_at)})",
        f"- data: {config.data.dataset}; network preset {preset.name}: nodes {preset.nodes}, channels {preset.channels}",
        f"- search: {evo.strategy}, N = {evo.population}, T = {evo.generations}, seed {data.seed}; "
        f"p_C {evo.p_crossover}, q_C {evo.q_crossover}, p_M {evo.p_mutation}, q_M {evo.q_mutation}; "
        f"identity {evo.identity}, re-evaluation {evo.reevaluate}",
        f"- fitness: {method.sentence()}",
        f"- environment: genetic-cnn {env.get('genetic_cnn', '?')}, torch {env.get('torch', '?')}, "
        f"device {env.get('cuda') or 'CPU'}, {env.get('platform', '?')}",
        f"- generations completed: {len(rows)} of {evo.generations + 1}; evaluations: {len(trained)} {method.evaluated} "
        f"({counts[FAILED]} failed, {counts[DIVERGED]} diverged), {counts[REUSED]} reused; wall time {duration(total)}",
        f"- best genome: {code(best.genome)}, fitness {pct(best.fitness)}%, test accuracy {percent(best.test_accuracy)} "
        f"({plural(best.evaluations, 'evaluation')})", "",
        "## Population per generation (the paper's table)", "",
        "Fitness (%) is the validation accuracy averaged over the successful evaluations of an individual so "
        "far, as told to the search; an individual none of whose evaluations succeeded has no fitness, is "
        "never selected, and shows as 0. *Test* is the mean test accuracy of the best genome's "
        "trained evaluations up to that generation (the paper's tables report test accuracy; failed or diverged "
        "evaluations have no test accuracy and are left out of it). "
        f"*{method.short.capitalize()}* ({method.evaluated}) and *reused* count the generation's evaluations.", "",
    ]  # fmt: skip
    lines += markdown_rows(
        ["gen", "max", "min", "mean", "median", "std", "best genome", "test", method.short, "reused"],
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
    lines += noise_markdown(data, method)
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
        f"{plural(best.evaluations, 'trained evaluation')}, test accuracy {percent(best.test_accuracy)}. It is the "
        f"{'string' if evo.identity == 'string' else 'architecture'} with the highest fitness averaged over all its "
        "trained evaluations in the run.", "",
        "![best genome](best_genome.png)", "",
        *front_markdown(data),
        f"## Top {TOP_ARCHITECTURES} architectures", "",
        "Distinct architectures (equivalent strings grouped by architecture key), ranked by the mean fitness "
        "over all their trained evaluations; the string shown is the one evaluated most often.", "",
    ]  # fmt: skip
    lines += markdown_rows(
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
    lines += cost_sentences(method, total)
    lines += markdown_rows(
        [method.short, "reused", "failed", "diverged", "wall time", "mean per evaluation", "median per evaluation",
         "mean per generation"],
        [[len(trained), counts[REUSED], counts[FAILED], counts[DIVERGED], duration(total),
          duration(statistics.fmean(seconds)) if seconds else "–", duration(statistics.median(seconds)) if seconds else "–",
          duration(statistics.fmean(r.seconds for r in data.generations))]],
    )  # fmt: skip
    lines += ["![time](time.png)", ""]
    errors = [e for e in data.evaluations if e.status in (FAILED, DIVERGED)]
    if errors:
        lines += ["Failed and diverged evaluations (no fitness):", ""]
        lines += markdown_rows(
            ["gen", "slot", "genome", "status", "error"],
            [[e.generation, e.slot, code(e.genome), e.status, " ".join(e.error.split())[:120].replace("|", "\\|") or "–"]
             for e in errors[:20]],
        )  # fmt: skip
    return "\n".join(lines)


def front_markdown(data: RunData) -> list[str]:
    """A multi-objective run's Pareto front: its members by rank, the picture, the hypervolume per generation."""
    if len(data.config.evolution.objectives) < 2:
        return []
    from genetic_cnn.history.front import front_hypervolume, run_front

    members = run_front(data)
    lines = [
        "## Pareto front", "",
        f"Objectives: {', '.join(data.config.evolution.objectives)}. The individuals no other evaluated individual "
        "beats in fitness and cost at once, most accurate first; train member K with "
        f"`genetic-cnn train --run {data.folder} --front-rank K`. Hypervolume {front_hypervolume(data, members):.4f} "
        "(error and costs scaled by the largest network's, reference point 1.1; docs/multi_objective.md).", "",
    ]  # fmt: skip
    timed = "latency" in data.config.evolution.objectives
    if timed:
        lines += [f"Latency: the median milliseconds of one forward pass of {data.config.evolution.latency_batch} "
                  f"image(s), timed once per architecture on {data.latency_device} (docs/multi_objective.md).", ""]  # fmt: skip
    lines += markdown_rows(
        ["rank", "genome", "fitness", "test", "FLOPs", "parameters", *(["latency (ms)"] if timed else []), "evaluations"],
        [[m.rank, code(m.genome), pct(m.accuracy), pct(m.test_accuracy), f"{m.flops:,}", f"{m.parameters:,}",
          *([milliseconds(m.latency_ms)] if timed else []), m.evaluations] for m in members],
    )  # fmt: skip
    return lines + ["![Pareto front](front.png)", "", "![the front's networks](front_networks.png)", "",
                    "![hypervolume](hypervolume.png)", ""]  # fmt: skip


def milliseconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def points(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def noise_sentence(noise: FitnessNoise, method: FitnessMethod | None = None) -> str:
    """The run's noise in words, with what it means for the search (under one-shot fitness, repetition
    measures no noise, so no verdict is drawn from it)."""
    learned = noise_verdict(noise) if noise.at_chance else None  # nothing learned: said before anything else
    if method is not None and method.method == "one-shot":
        return (
            (f"**{learned[0].upper()}{learned[1:]}.** " if learned else "")
            + f"Over the run: seed sd {points(noise.seed_sd)} pp over {plural(noise.repeated, 'repeated individual')} "
            f"(deterministic given the supernet), population sd {points(noise.population_sd)} pp. Whether the "
            "supernet ranks architectures as training them would is not measured by this run."
        )
    if learned and noise.seed_sd is None:
        return f"**{learned[0].upper()}{learned[1:]}.**"
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
        figures = reliability_figures(noise)
        return f"{measured} {figures[0].upper()}{figures[1:]}." if figures else measured
    return f"{measured} **{verdict[0].upper()}{verdict[1:]}.**"


def cost_sentences(method: FitnessMethod, wall_seconds: float) -> list[str]:
    """What the time table's figures include under the run's fitness method (a paragraph, or nothing)."""
    if method.method == "one-shot":
        share = f", {100 * method.supernet_seconds / wall_seconds:.0f}% of the wall time" if wall_seconds > 0 else ""
        return [
            f"The one-shot supernet's training took {duration(method.supernet_seconds)} "
            f"({plural(method.supernet_epochs, 'epoch')}{share}), once for the run before generation 0; the "
            "evaluations below are measurements of paths through it and their times do not include it "
            "(an architecture measured once is read back afterwards, in no time).", "",
        ]  # fmt: skip
    if method.method == "table":
        return [
            f"Every evaluation read its fitness from the table {code(method.table)}: the times below are lookups; "
            "what the trainings cost was spent when the table was built (the table keeps each one's seconds).", "",
        ]  # fmt: skip
    return []


NOISE_INTRODUCTION = {
    "standalone": (
        "Re-evaluated survivors are trained again with new seeds, which gives repeated evaluations of the same "
        "individual for free."
    ),
    "one-shot": (
        "One-shot fitness is deterministic given the supernet: an architecture measured again goes through the same "
        "weights with the same calibration images and gets the same accuracy, so re-evaluated survivors repeat a "
        "number instead of measuring noise, and the seed sd below is 0 by construction. The noise that matters, "
        "how another supernet (another seed) or a standalone training would rank the same architectures, is not "
        "measured within one run: `genetic-cnn tabulate` with two or more seeds, or `benchmarks/oneshot_rank.py`, "
        "measure it."
    ),
    "table": (
        "Table fitness draws one of the architecture's stored seeds (trainings done when the table was built), "
        "chosen by the evaluation's seed: a re-evaluated survivor gets another draw from the same few stored "
        "seeds, not a new training, so the seed sd is the spread of the table's seeds as this run drew them."
    ),
}
"""The noise section's first sentences: what a repeated evaluation is under each fitness method."""


def noise_markdown(data: RunData, method: FitnessMethod | None = None) -> list[str]:
    """The report's section on evaluation noise: the run's numbers, a table per generation and the picture."""
    method = method or FitnessMethod.of(data.config, data.folder)
    lines = [
        "## Fitness noise", "",
        NOISE_INTRODUCTION.get(method.method, NOISE_INTRODUCTION["standalone"]) + " *Seed sd* is the "
        "pooled standard deviation of the validation accuracy within individuals (the noise of one evaluation); "
        "*population sd* the standard deviation of the individuals' mean fitness (the spread selection ranks); "
        "both in percentage points; *repeated* counts the individuals with two or more successful "
        f"evaluations ({method.evaluated}). Per generation, the seed sd and *repeated* are over generations 0 up to "
        "it, the population sd over its population's distinct individuals.", "",
        noise_sentence(data.fitness_noise(), method), "",
    ]  # fmt: skip
    lines += markdown_rows(
        ["gen", "seed sd", "population sd", "repeated"],
        [[g, points(n.seed_sd), points(n.population_sd), n.repeated] for g, n in data.noise_by_generation()],
    )
    return lines + ["![fitness noise](noise.png)", ""]


def write_run_report(run: RunData | RunStore | str | Path, out: str | Path, title: str | None = None) -> Path:
    """One run's report.md and its images in ``out``; returns the path of report.md."""
    from genetic_cnn.report import plots

    data = RunData.load(run)
    if not data.generations:
        raise UserError(f"{data.folder}: no generation is complete yet, nothing to report; wait or resume the run")
    out = _folder(out)
    plots.draw_run(data, out)
    path = write_atomically(out / "report.md", run_markdown(data, title or f"Genetic CNN run {data.name}") + "\n")
    return path


def comparison_markdown(datas: Sequence[RunData], links: Sequence[Path]) -> str:
    lines = ["# Genetic CNN: comparison of runs", ""]
    rows = []
    for data, link in zip(datas, links):
        best = data.ranking()[0]
        counts = data.status_counts()
        trained = len(data.evaluations) - counts[REUSED]
        rows.append([
            f"[{data.name}]({link.as_posix()})", data.strategy, FitnessMethod.of(data.config, data.folder).label,
            data.seed, data.config.data.dataset,
            f"{len(data.generations)}/{data.config.evolution.generations + 1}", trained, counts[REUSED],
            counts[FAILED] + counts[DIVERGED], code(best.genome), pct(best.fitness), pct(best.test_accuracy),
            pct(data.generation_rows()[-1].summary.mean),
        ])  # fmt: skip
    lines += markdown_rows(
        ["run", "strategy", "fitness", "seed", "data", "generations done", "evaluated", "reused", "failed or diverged", "best genome",
         "best fitness", "best test", "last mean"], rows,
    )  # fmt: skip
    lines += [
        "Fitness: how it was measured (standalone: every evaluation trains its network; one-shot: paths through "
        "a supernet trained once per run; table NAME: stored seeds read from a table). Evaluated: the "
        "evaluations not reused (trained, measured or read, as the method does). "
        "Best fitness: the best individual's mean validation accuracy over its evaluations; best test: its "
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
        if out is None and not os.access(datas[0].folder, os.W_OK):
            raise UserError(
                f"{datas[0].folder} is read-only, so its report cannot go into {datas[0].folder / 'report'}; "
                "write it elsewhere with --out FOLDER"
            )
        return write_run_report(datas[0], out if out is not None else datas[0].folder / "report")
    from genetic_cnn.report import plots

    for data in datas:
        if not data.generations:
            raise UserError(f"{data.folder}: no generation is complete yet, nothing to compare; wait or resume the run")
    out = _folder(out if out is not None else COMPARISON_FOLDER)
    links = [write_run_report(data, out / data.name.replace("/", "--")).relative_to(out) for data in datas]
    plots.draw_comparison(datas, out)
    path = write_atomically(out / "report.md", comparison_markdown(datas, links) + "\n")
    return path


def _folder(out: str | Path) -> Path:
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"cannot write the report to {out}: it is a file; choose another --out") from None
    except OSError as error:
        raise UserError(f"cannot create {out}: {error.strerror}; choose another --out") from None
    if not os.access(out, os.W_OK):
        raise UserError(f"cannot write the report to {out}: it is read-only; choose another --out")
    return out
