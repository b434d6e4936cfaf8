"""Multi-objective searches compared on a table over hundreds of seeds: NSGA-II, random, weighted-sum GA.

    python experiments/compare_objectives.py --table digits-standalone --objectives accuracy,flops \\
        --seeds 500 --out runs/objectives-digits
    (or: python experiments/compare_strategies.py --table ... --objectives accuracy,flops ...)

Each (strategy, seed) is a search driven through ask/tell with table fitness in memory
(``tables.simulate.simulate``), the preset's defaults otherwise (the paper's N = 20, p_M/q_M, p_C/q_C):
- nsga2: ``evolution.strategy = "nsga2"`` with the objectives;
- random: N fresh genomes a generation, the same budget;
- weighted-sum: the paper's GA (roulette) told scaled accuracy minus the mean scaled cost, equal
  weights (``tables.pareto.weighted_sum``), one run per seed.
Each run's front is the one it believes in (its observed means), scored with the table's mean
accuracy (``tables.pareto``): the hypervolume as a fraction of the exact front's (all 1,812
architectures), at budgets of ``--generations`` (comma-separated T). Intervals: mean and 95%
Student-t interval over seeds, and of the paired difference to NSGA-II (the same seeds).
Written to ``--out``: ``objectives.md``, ``objectives.json``, ``hypervolume.png``, and with
``--front-plot`` the table's exact front with every architecture.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genetic_cnn.config import OBJECTIVES, EvolutionConfig, config_from_dict
from genetic_cnn.errors import UserError
from genetic_cnn.progress import bar as progress_bar
from genetic_cnn.tables.pareto import ExactFront, cost_matrix, found_front, weighted_sum
from genetic_cnn.tables.simulate import TableLookup, simulate
from genetic_cnn.tables.table import Table, load_table

STRATEGIES = ("nsga2", "random", "weighted-sum")
COLOURS = {"nsga2": "#1f77b4", "random": "#d62728", "weighted-sum": "#2ca02c"}
PERCENT = 100.0


def evolution_config(table: Table, strategy: str, objectives: Sequence[str], population: int, generations: int) -> EvolutionConfig:
    """The preset's settings with ``strategy``'s: the weighted sum is the paper's GA on one scalar."""
    evolution: dict[str, Any] = {"population": population, "generations": generations}
    if strategy != "weighted-sum":
        evolution |= {"strategy": strategy, "objectives": list(objectives)}
    return config_from_dict({"space": {"preset": table.header["space"]["preset"]}, "evolution": evolution}).evolution


def interval(values: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its 95% interval (Student's t)."""
    from scipy.stats import t

    if len(values) < 2:
        return float(values.mean()), 0.0
    return float(values.mean()), float(t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))


def compare(
    table: Table, objectives: Sequence[str], seeds: Sequence[int], population: int, budgets: Sequence[int],
    progress: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Hypervolume ratio per strategy, budget and seed (``results[strategy][str(T)]`` lists one per seed)."""
    lookup = TableLookup(table)
    exact = ExactFront.of(table, objectives)
    costs = cost_matrix(table, objectives)
    scalarize = weighted_sum(lookup, exact)
    results: dict[str, dict[str, list[float]]] = {name: {} for name in STRATEGIES}
    bar = progress_bar(total=len(STRATEGIES) * len(budgets) * len(seeds), unit="run", disable=not progress)
    for strategy in STRATEGIES:
        for generations in budgets:
            config = evolution_config(table, strategy, objectives, population, generations)
            ratios = []
            for seed in seeds:
                trace = simulate(lookup, config, seed, scalarize=scalarize if strategy == "weighted-sum" else None)
                ratios.append(exact.hypervolume_ratio(found_front(trace, costs)))
                bar.update(1)
            results[strategy][str(generations)] = ratios
    bar.close()
    return {"results": results, "exact_front": exact.members.tolist(), "exact_hypervolume": exact.hypervolume}


def markdown(title: str, results: dict[str, dict[str, list[float]]], budgets: Sequence[int], population: int) -> str:
    lines = [f"### {title}", "",
             "Hypervolume of the found front as % of the exact front's (mean ± 95% interval over seeds); "
             "Δ: paired difference to NSGA-II, points.", "",
             "| strategy | " + " | ".join(f"T={t} ({population * (t + 1)} evaluations)" for t in budgets) + " |",
             "|---" * (len(budgets) + 1) + "|"]  # fmt: skip
    for strategy in STRATEGIES:
        cells = []
        for generations in budgets:
            values = np.array(results[strategy][str(generations)]) * PERCENT
            mean, half = interval(values)
            cell = f"{mean:.1f} ± {half:.1f}"
            if strategy != "nsga2":
                difference = values - np.array(results["nsga2"][str(generations)]) * PERCENT
                delta, delta_half = interval(difference)
                cell += f" (Δ {delta:+.1f} ± {delta_half:.1f})"
            cells.append(cell)
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_hypervolume(results: dict[str, dict[str, list[float]]], budgets: Sequence[int], population: int, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4), layout="constrained")
    evaluations = [population * (t + 1) for t in budgets]
    for strategy in STRATEGIES:
        stats = [interval(np.array(results[strategy][str(t)]) * PERCENT) for t in budgets]
        means = np.array([mean for mean, _ in stats])
        halves = np.array([half for _, half in stats])
        axis.plot(evaluations, means, marker="o", color=COLOURS[strategy], label=strategy)
        axis.fill_between(evaluations, means - halves, means + halves, color=COLOURS[strategy], alpha=0.2)
    axis.set_xlabel("evaluations")
    axis.set_ylabel("hypervolume, % of the exact front's")
    axis.set_title(title, fontsize=9)
    axis.legend()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_exact_front(table: Table, objectives: Sequence[str], path: Path) -> Path:
    """Every architecture of the table (mean accuracy against the cost) with its exact Pareto front."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exact = ExactFront.of(table, objectives)
    accuracy, cost = -exact.objectives[:, 0] * PERCENT, exact.objectives[:, 1]
    order = exact.members[np.argsort(cost[exact.members])]
    figure, axis = plt.subplots(figsize=(6, 4), layout="constrained")
    axis.scatter(cost, accuracy, s=6, color="#999999", label=f"all {len(cost):,} architectures")
    axis.step(cost[order], accuracy[order], where="post", color="#1f77b4", marker="o", label=f"exact front ({len(order)})")
    axis.set_xscale("log")
    axis.set_xlabel(f"{objectives[1]} per image" if objectives[1] == "flops" else objectives[1])
    axis.set_ylabel("mean validation accuracy over seeds (%)")
    low = min(np.percentile(accuracy, 5), accuracy[order].min())  # the worst few would squash the rest
    span = accuracy.max() - low
    axis.set_ylim(low - 0.05 * span, accuracy.max() + 0.1 * span)
    axis.set_title(f"{table.name}: accuracy against {objectives[1]}", fontsize=9)
    axis.legend(loc="upper left")
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


COUNTED = tuple(name for name in OBJECTIVES if name != "latency")
"""A table holds counts, not timings: a simulation has no latency to judge a front by."""


def parse_objectives(text: str) -> tuple[str, ...]:
    objectives = tuple(name.strip() for name in text.split(",") if name.strip())
    if len(objectives) < 2 or objectives[0] != "accuracy" or any(name not in COUNTED for name in objectives):
        raise UserError(
            f"--objectives {text}: give accuracy then costs a table holds, e.g. accuracy,flops (costs: "
            f"{', '.join(COUNTED[1:])}; latency is timed by a run, see docs/multi_objective.md)"
        )
    return objectives


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", required=True, help="a shipped table's name (digits-standalone, mnist-oneshot) or a table file")
    parser.add_argument("--objectives", default="accuracy,flops", help="accuracy then costs (default accuracy,flops)")
    parser.add_argument("--seeds", type=int, default=500, help="run seeds 0 .. S-1 per strategy (default 500)")
    parser.add_argument("--population", type=int, default=20, help="N (default 20, the paper's)")
    parser.add_argument("--generations", default="4,14,50", help="budgets T, comma-separated (default 4,14,50)")
    parser.add_argument("--out", type=Path, default=Path("runs/objectives"), help="output folder (default runs/objectives)")
    parser.add_argument("--front-plot", type=Path, help="also draw the table's exact front to this PNG")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # compare_strategies hands over its own arguments; only its strategy list means nothing here
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def wanted(argv: Sequence[str]) -> bool:
    """Whether ``compare_strategies``' arguments ask for two objectives or more (``--objectives a,b``)."""
    for index, item in enumerate(argv):
        value = item.partition("=")[2] if item.startswith("--objectives=") else None
        if item == "--objectives" and index + 1 < len(argv):
            value = argv[index + 1]
        if value is not None and len([name for name in value.split(",") if name.strip()]) > 1:
            return True
    return False


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        objectives = parse_objectives(args.objectives)
        budgets = [int(item) for item in args.generations.split(",")]
        if args.seeds < 1 or min(budgets) < 0:
            raise UserError(f"--seeds {args.seeds} / --generations {args.generations}: give at least one seed and T >= 0")
        table = load_table(args.table)
        started = time.perf_counter()
        payload = compare(table, objectives, range(args.seeds), args.population, budgets, progress=not args.quiet)
    except (UserError, ValueError) as error:
        print(f"compare_objectives: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    title = f"{table.name}: {', '.join(objectives)}; N={args.population}; {args.seeds} seeds"
    args.out.mkdir(parents=True, exist_ok=True)
    text = markdown(title, payload["results"], budgets, args.population)
    text += f"\nExact front: {len(payload['exact_front'])} architectures. {seconds:.0f} s.\n"
    (args.out / "objectives.md").write_text(text, encoding="utf-8")
    payload |= {"title": title, "table": table.name, "objectives": list(objectives), "budgets": budgets,
                "population": args.population, "seconds": seconds}  # fmt: skip
    (args.out / "objectives.json").write_text(json.dumps(payload) + "\n", encoding="utf-8")
    plot_hypervolume(payload["results"], budgets, args.population, args.out / "hypervolume.png", title)
    if args.front_plot is not None:
        plot_exact_front(table, objectives, args.front_plot)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
