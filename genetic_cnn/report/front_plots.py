"""The pictures of a multi-objective run's report: its Pareto front and the hypervolume per generation.

Drawn as ``plots`` draws (matplotlib's object API, Agg, never pyplot); import only when drawing.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from genetic_cnn.history.front import front_hypervolume, front_objectives, front_value, individuals, run_front
from genetic_cnn.history.rundata import RunData, parse_genome
from genetic_cnn.space.cost import cost_function

DPI = 110
LABELS = {"flops": "FLOPs per image (forward)", "params": "parameters"}


def axis_label(data: RunData, objective: str) -> str:
    if objective == "latency":
        return f"latency (ms per forward pass of {data.config.evolution.latency_batch} image(s); {data.latency_device})"
    return LABELS[objective]


def plot_front(data: RunData, path: Path) -> Path:
    """Every measured individual (accuracy against the first cost objective), the front as a staircase,
    its members numbered by rank (``train --run RUN --front-rank K``)."""
    objective = front_objectives(data)[1]
    cost = cost_function(data.config.preset())
    measured = individuals(data, None)
    if objective == "latency":  # only the timed ones have a place on this axis
        measured = [individual for individual in measured if data.latency_ms(individual[0]) is not None]
    members = run_front(data)
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    xs = [float(replace(cost(parse_genome(genome)), latency_ms=data.latency_ms(genome)).value(objective))
          for genome, *_ in measured]  # fmt: skip
    ax.scatter(xs, [accuracy for _, accuracy, _, _ in measured], s=12, color="#999999", label="measured individuals")
    front_x = [front_value(m, objective) for m in members]
    front_y = [m.accuracy for m in members]
    ax.step(front_x[::-1], front_y[::-1], where="post", color="#1f77b4", marker="o", label=f"Pareto front ({len(members)})")
    for member, x, y in zip(members, front_x, front_y):
        ax.annotate(str(member.rank), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8, color="#1f77b4")
    ax.set_xscale("log")
    ax.set_xlabel(axis_label(data, objective))
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=None))
    ax.set_ylabel("fitness (mean validation accuracy)")
    accuracies = sorted(accuracy for _, accuracy, _, _ in measured)
    low = accuracies[len(accuracies) // 20]  # the worst 5% (failures at 0 among them) would squash the rest
    ax.set_ylim(low - 0.02 * (accuracies[-1] - low + 1e-9), accuracies[-1] + 0.05 * (accuracies[-1] - low + 1e-9))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title(f"Pareto front: {data.label}", fontsize=10)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def plot_hypervolume(data: RunData, path: Path) -> Path:
    """The hypervolume of the front of everything evaluated up to each generation (``genetic_cnn.history.front``)."""
    generations = [record.generation for record in data.generations]
    volumes = [front_hypervolume(data, run_front(data, generation)) for generation in generations]
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.subplots()
    ax.plot(generations, volumes, marker="o")
    ax.set_xlabel("generation")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("hypervolume (error, scaled cost)")
    ax.grid(alpha=0.3)
    ax.set_title(f"Hypervolume of the front so far: {data.label}", fontsize=10)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path
