"""The pictures of `genetic-cnn report`, each from a ``report.RunData``.

Every function draws one PNG and returns its path; fitness axes are in percent. Figures are made
with matplotlib's object API (``matplotlib.figure.Figure``), never pyplot: the PNGs are rendered by
Agg, no window or display is needed, and a notebook's plotting backend is left alone. Import this
module only when drawing: it loads matplotlib.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from genetic_cnn.files import plural, write_atomically
from genetic_cnn.fitness.method import FitnessMethod
from genetic_cnn.history.rundata import TOP_ARCHITECTURES, Candidate, pct
from genetic_cnn.report.drawing import genomes_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from genetic_cnn.history.rundata import RunData

DPI = 110
COLOURS = [colormaps["tab10"](index) for index in range(10)]


def _save(fig: Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")  # PNG through Agg; pyplot's backend is left alone
    return write_atomically(path, buffer.getvalue(), "free disk space or choose another --out")


def _percent_axis(ax: Axes, label: str) -> None:
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=None))
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)


def _generation_axis(ax: Axes) -> None:
    ax.set_xlabel("generation")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _time_unit(seconds: Sequence[float]) -> tuple[float, str]:
    longest = max(seconds, default=0.0)
    if longest < 120:
        return 1.0, "s"
    if longest < 7200:
        return 60.0, "min"
    return 3600.0, "h"


def _floor(values: Sequence[float]) -> float | None:
    """A lower y limit that keeps failures (fitness 0) from squashing the rest; None when not needed."""
    positive = [v for v in values if v > 0]
    if not positive or len(positive) == len(values):
        return None
    low, high = min(positive), max(positive)
    return max(0.0, low - 0.15 * max(high - low, 0.01))


def plot_fitness(data: RunData, path: Path) -> Path:
    fig = Figure(figsize=(9, 5))
    ax = fig.subplots()
    generations = [r.generation for r in data.generations]
    rows = [row.summary for row in data.generation_rows()]
    everything = [f for r in data.generations for f in r.fitness]
    floor = _floor(everything)
    ax.fill_between(generations, [s.minimum for s in rows], [s.maximum for s in rows], color=COLOURS[0], alpha=0.15,
                    label="min to max")  # fmt: skip
    xs: list[float] = []
    ys: list[float] = []
    failed: list[float] = []
    for record in data.generations:
        size = len(record.fitness)
        for slot, fitness in enumerate(record.fitness):
            x = record.generation + (0.3 * (slot / (size - 1) - 0.5) if size > 1 else 0.0)
            if floor is not None and fitness < floor:
                failed.append(x)
            else:
                xs.append(x)
                ys.append(fitness)
    ax.scatter(xs, ys, s=14, color="#555555", alpha=0.6, label="individual", zorder=3)
    if failed and floor is not None:  # failures are only set apart when there is a floor
        ax.scatter(failed, [floor] * len(failed), marker="v", s=30, color="#c0392b", label="failed or diverged (0%)",
                   zorder=3, clip_on=False)  # fmt: skip
        ax.set_ylim(floor, max(everything) + 0.05 * (max(everything) - floor))
    ax.plot(generations, [s.maximum for s in rows], color=COLOURS[2], lw=1.5, marker=".", label="max")
    ax.plot(generations, [s.mean for s in rows], color=COLOURS[0], lw=2.2, marker="o", ms=4, label="mean")
    ax.plot(generations, [s.minimum for s in rows], color=COLOURS[3], lw=1.2, ls="--", label="min")
    _percent_axis(ax, "fitness (mean validation accuracy)")
    _generation_axis(ax)
    ax.set_title(f"Fitness of every individual per generation: {data.label}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9)
    return _save(fig, path)


def plot_best_so_far(datas: Sequence[RunData], path: Path) -> Path:
    fig = Figure(figsize=(12, 4.8))
    left, right = fig.subplots(1, 2, sharey=True)
    curves = [data.best_so_far() for data in datas]
    scale, unit = _time_unit([s for _, seconds, _ in curves for s in seconds])
    for index, (data, (counts, seconds, best)) in enumerate(zip(datas, curves)):
        colour = COLOURS[index % len(COLOURS)]
        left.step(counts, best, where="post", color=colour, lw=1.8, label=data.label)
        right.step([s / scale for s in seconds], best, where="post", color=colour, lw=1.8, label=data.label)
    all_best = [b for _, _, best in curves for b in best]
    floor = _floor(all_best)
    if floor is not None:
        left.set_ylim(floor, max(all_best) + 0.05 * (max(all_best) - floor))
    _percent_axis(left, "best validation accuracy so far")
    right.grid(alpha=0.3)
    left.set_xlabel("trained evaluations")
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_xlabel(f"wall time since the run was created ({unit})")
    left.set_title("against evaluations")
    right.set_title("against wall time")
    left.legend(loc="lower right", fontsize=9)
    fig.suptitle("Best validation accuracy of a single evaluation so far")
    fig.tight_layout()
    return _save(fig, path)


def plot_mean_fitness(datas: Sequence[RunData], path: Path) -> Path:
    fig = Figure(figsize=(9, 5))
    ax = fig.subplots()
    for index, data in enumerate(datas):
        rows = [row.summary for row in data.generation_rows()]
        generations = [s.generation for s in rows]
        colour = COLOURS[index % len(COLOURS)]
        ax.plot(generations, [s.mean for s in rows], color=colour, lw=2, marker="o", ms=3, label=f"{data.label}: mean")
        ax.plot(generations, [s.maximum for s in rows], color=colour, lw=1, ls="--", label=f"{data.label}: max")
    _percent_axis(ax, "population fitness")
    _generation_axis(ax)
    ax.set_title("Mean (solid) and max (dashed) fitness per generation")
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


def plot_learning_curves(data: RunData, path: Path) -> Path:
    """Training loss and validation accuracy per epoch of every trained evaluation; the best one's
    (highest validation accuracy) in colour, the others thin and grey."""
    fig = Figure(figsize=(12, 4.5))
    left, right = fig.subplots(1, 2)
    curves = data.curves()
    best = max((e for e in data.evaluations if (e.generation, e.slot) in curves and e.status == "ok"),
               key=lambda e: e.accuracy, default=None)  # fmt: skip
    best_place = (best.generation, best.slot) if best is not None else None
    for place, curve in curves.items():
        epochs = [point[0] + 1 for point in curve]
        losses = [math.nan if point[1] is None else point[1] for point in curve]
        accuracies = [math.nan if point[2] is None else point[2] for point in curve]
        style = {"color": "#999999", "lw": 0.8, "alpha": 0.4} if place != best_place else {
            "color": COLOURS[2], "lw": 2.2, "zorder": 3, "label": f"best evaluation (generation {place[0]}, slot {place[1]})"}
        left.plot(epochs, losses, marker="." if len(epochs) < 4 else None, **style)
        right.plot(epochs, accuracies, marker="." if len(epochs) < 4 else None, **style)
    if not curves:
        for ax in (left, right):
            ax.text(0.5, 0.5, "no learning curves recorded (a run of an older version)", transform=ax.transAxes,
                    ha="center", va="center", fontsize=10, color="#555555")  # fmt: skip
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    left.set_ylabel("training loss (epoch mean)")
    _percent_axis(right, "validation accuracy")
    left.set_title("Training loss per epoch")
    right.set_title("Validation accuracy per epoch")
    if best_place is not None:
        left.legend(loc="upper right", fontsize=9)
    fig.suptitle(f"Learning curves of {plural(len(curves), 'trained evaluation')}: {data.label}")
    fig.tight_layout()
    return _save(fig, path)


def plot_diversity(data: RunData, path: Path) -> Path:
    fig = Figure(figsize=(9, 4.2))
    ax = fig.subplots()
    rows = data.diversity()
    generations = [g for g, _, _ in rows]
    ax.plot(generations, [s for _, s, _ in rows], marker="o", ms=4, lw=2, color=COLOURS[0], label="distinct strings")
    ax.plot(
        generations, [a for _, _, a in rows], marker="s", ms=4, lw=2, color=COLOURS[1], label="distinct architectures"
    )
    size = max((len(r.genomes) for r in data.generations), default=1)
    ax.axhline(size, color="#888888", ls=":", lw=1.2, label=f"population size ({size})")
    ax.set_ylim(0, size * 1.1 + 0.5)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("distinct in the population")
    _generation_axis(ax)
    ax.grid(alpha=0.3)
    ax.set_title(f"Population diversity: {data.label}")
    ax.legend(loc="lower left", fontsize=9)
    return _save(fig, path)


def plot_noise(data: RunData, path: Path) -> Path:
    """Seed sd (the noise of one evaluation) and population sd (the spread selection ranks) per generation."""
    fig = Figure(figsize=(9, 4.2))
    ax = fig.subplots()
    rows = data.noise_by_generation()
    generations = [g for g, _ in rows]
    nan = float("nan")  # a generation with nothing to measure leaves a gap in its line
    seed = [nan if n.seed_sd is None else n.seed_sd for _, n in rows]
    population = [nan if n.population_sd is None else n.population_sd for _, n in rows]
    ax.plot(generations, seed, marker="o", ms=4, lw=2, color=COLOURS[3], label="seed sd (same genome, new seed)")
    ax.plot(generations, population, marker="s", ms=4, lw=2, color=COLOURS[0], label="population sd (between genomes)")
    if all(n.seed_sd is None for _, n in rows):
        ax.text(0.5, 0.5, "seed sd not measured: no genome was evaluated twice", transform=ax.transAxes,
                ha="center", va="center", fontsize=10, color="#555555")  # fmt: skip
    ax.set_ylim(bottom=0)
    ax.set_ylabel("standard deviation (percentage points)")
    _generation_axis(ax)
    ax.grid(alpha=0.3)
    ax.set_title(f"Evaluation noise against the spread between genomes: {data.label}")
    ax.legend(loc="best", fontsize=9)
    return _save(fig, path)


def plot_calibration(
    fidelities: Sequence[tuple[str, float | None, float | None, float]], ranks: float, weak: float, path: Path
) -> Path:
    """Kendall tau between seeds against seconds per evaluation: one point per fidelity, given as
    (name, seconds per evaluation, tau, tau's standard error between unrelated orders); ``ranks`` and
    ``weak`` are the verdict's thresholds (``genetic-cnn calibrate``)."""
    fig = Figure(figsize=(8, 4.5))
    ax = fig.subplots()
    shown = [(name, seconds, tau, error) for name, seconds, tau, error in fidelities if seconds is not None and tau is not None]
    for index, (name, seconds, tau, error) in enumerate(shown):
        ax.errorbar([seconds], [tau], yerr=[2 * error], fmt="o", ms=7, capsize=4, color=COLOURS[index % len(COLOURS)],
                    label=f"{index + 1}: {name}")  # fmt: skip
        ax.annotate(str(index + 1), (seconds, tau), textcoords="offset points", xytext=(7, 5))
    ax.axhline(ranks, color="#2a7f2a", lw=1, ls="--", label=f"tau {ranks}: ranks architectures")
    ax.axhline(weak, color="#b07000", lw=1, ls=":", label=f"tau {weak}: below, mostly noise")
    ax.axhline(0, color="#555555", lw=0.8)
    if not shown:
        ax.text(0.5, 0.5, "nothing measured yet", transform=ax.transAxes, ha="center", va="center", color="#555555")
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlabel("seconds per evaluation")
    ax.set_ylabel("Kendall tau between seeds")
    ax.grid(alpha=0.3)
    ax.set_title("Can the fidelity rank architectures? (bars: 2 standard errors of tau between unrelated orders)",
                 fontsize=10)  # fmt: skip
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_bit_frequency(data: RunData, path: Path) -> Path:
    matrix = data.bit_frequency()
    labels, starts = data.bit_labels()
    generations = [r.generation for r in data.generations]
    fig = Figure(figsize=(max(7.0, 0.45 * len(labels) + 2.5), max(3.5, min(0.22 * len(matrix) + 2.2, 12))))
    ax = fig.subplots()
    image = ax.imshow(matrix, aspect="auto", origin="lower", cmap="viridis", vmin=0, vmax=1, interpolation="nearest",
                      extent=(-0.5, len(labels) - 0.5, generations[0] - 0.5, generations[-1] + 0.5))  # fmt: skip
    for start in starts:
        ax.axvline(start - 0.5, color="white", lw=3)
    bounds = [0, *starts, len(labels)]
    for index, (low, high) in enumerate(zip(bounds, bounds[1:]), start=1):
        ax.text((low + high - 1) / 2, 1.01, f"stage {index}", transform=ax.get_xaxis_transform(), ha="center",
                va="bottom", fontsize=10)  # fmt: skip
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    ax.set_xlabel("connection bit (source → target node within the stage)")
    ax.set_ylabel("generation")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    bar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
    bar.set_label("individuals with the bit set")
    ax.set_title(f"Connections chosen by the population: {data.label}", pad=22)
    return _save(fig, path)


def plot_time(data: RunData, path: Path) -> Path:
    fig = Figure(figsize=(12, 4.5))
    left, right = fig.subplots(1, 2)
    generations = [r.generation for r in data.generations]
    per_generation = [r.seconds for r in data.generations]
    scale, unit = _time_unit(per_generation)
    left.bar(generations, [s / scale for s in per_generation], color=COLOURS[0])
    _generation_axis(left)
    left.set_ylabel(f"wall time ({unit})")
    counts = data.status_counts()
    trained = len(data.evaluations) - counts["reused"]
    method = FitnessMethod.of(data.config, data.folder)
    supernet = (f"; supernet trained before: {method.supernet_seconds:.1f} s" if method.method == "one-shot" else "")
    left.set_title(f"Time per generation ({method.label} fitness{supernet})\nevaluations: {trained} {method.evaluated} "
                   f"({counts['failed']} failed, {counts['diverged']} diverged), {counts['reused']} reused",
                   fontsize=11)  # fmt: skip
    left.grid(alpha=0.3, axis="y")
    seconds = [e.seconds for e, _ in data.trained]
    scale, unit = _time_unit(seconds)
    if seconds:
        right.hist([s / scale for s in seconds], bins=min(30, max(5, len(seconds) // 3)), color=COLOURS[1],
                   edgecolor="white", label=f"{len(seconds)} evaluations ({method.short})")  # fmt: skip
        mean = sum(seconds) / len(seconds) / scale
        right.axvline(mean, color="black", ls="--", lw=1.2, label=f"mean {mean:.2f} {unit}")
        right.legend(fontsize=9)
    what = {"standalone": "training and evaluation time of one network",
            "one-shot": "measuring time of one path (the supernet's training not included)",
            "table": "time to read one evaluation from the table"}.get(method.method, "time of one evaluation")  # fmt: skip
    right.set_xlabel(f"{what} ({unit})")
    right.set_ylabel("evaluations")
    right.yaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_title(f"Time per evaluation ({method.short}, not reused)")
    right.grid(alpha=0.3, axis="y")
    fig.suptitle(f"Where the time went: {data.label}")
    fig.tight_layout()
    return _save(fig, path)


def plot_genomes(rows: Sequence[tuple[str, str]], path: Path, title: str) -> Path:
    return _save(genomes_figure(rows, title), path)


def _heading(candidate: Candidate, rank: int | None = None) -> str:
    number = "" if rank is None else f"#{rank}   "
    evaluations = plural(candidate.evaluations, "evaluation")
    return (f"{number}{candidate.genome}   fitness {pct(candidate.fitness)}%, test {pct(candidate.test_accuracy)}%, "
            f"{evaluations}")  # fmt: skip


def draw_run(data: RunData, out: Path) -> list[Path]:
    """Every picture of one run's report, into ``out``."""
    best = data.ranking()[0]
    top = data.ranking(by_architecture=True)[:TOP_ARCHITECTURES]
    return [
        plot_fitness(data, out / "fitness.png"),
        plot_best_so_far([data], out / "best_so_far.png"),
        plot_genomes([(_heading(best), best.genome)], out / "best_genome.png", f"Best genome: {data.label}"),
        plot_genomes(
            [(_heading(c, rank), c.genome) for rank, c in enumerate(top, start=1)],
            out / "top_architectures.png",
            f"Top {len(top)} architectures: {data.label}",
        ),  # fmt: skip
        plot_noise(data, out / "noise.png"),
        plot_learning_curves(data, out / "learning_curves.png"),
        plot_diversity(data, out / "diversity.png"),
        plot_bit_frequency(data, out / "bit_frequency.png"),
        plot_time(data, out / "time.png"),
        *_front_pictures(data, out),
    ]


def _front_pictures(data: RunData, out: Path) -> list[Path]:
    """A multi-objective run's front and hypervolume (``genetic_cnn.report.front_plots``)."""
    if len(data.config.evolution.objectives) < 2:
        return []
    from genetic_cnn.history.front import run_front
    from genetic_cnn.report.front_plots import plot_front, plot_hypervolume

    members = [(f"#{m.rank}   {m.genome}   fitness {pct(m.accuracy)}%, {m.flops:,} FLOPs, {m.parameters:,} parameters",
                m.genome) for m in run_front(data)]  # fmt: skip
    return [
        plot_front(data, out / "front.png"),
        plot_hypervolume(data, out / "hypervolume.png"),
        plot_genomes(members, out / "front_networks.png", f"Pareto front's networks: {data.label}"),
    ]


def draw_comparison(datas: Sequence[RunData], out: Path) -> list[Path]:
    return [plot_best_so_far(datas, out / "best_so_far.png"), plot_mean_fitness(datas, out / "mean_fitness.png")]
