"""Search strategies compared on a table, over hundreds of seeds: genetic (the paper), random, regularized.

    python experiments/compare_strategies.py --table digits-standalone --seeds 500 --out runs/strategies-digits

Each (strategy, seed) is a search driven through ask/tell with table fitness in memory
(``genetic_cnn.table_search.simulate``: the genomes and fitness a run folder with
``evaluation.method = "table"`` and that ``run.seed`` would hold, without the folder or torch).
Settings: the table's preset's defaults, which are the paper's (N = 20, T = 50, p_M/q_M, p_C/q_C,
roulette, re-evaluation averaged); regularized evolution with tournaments of ``--sample-size``.

Measured per evaluation: the best architecture found so far (the highest fitness the search has
observed; ``Trace.incumbents``) and the table's mean validation accuracy over its seeds, which is
what the architecture is worth, not what one lucky training showed; its regret is the table's best
mean minus that. Written to ``--out``: ``comparison.png`` (mean and 95% interval over seeds against
evaluations), ``comparison.md`` (the same at a few budgets; the paper's Table 1 columns, max / min /
mean / median / std of each generation's fitness, averaged over seeds) and ``comparison.json``.
The paper's Table 1 reports test accuracy; here the columns are the fitness the search was told
(validation accuracy, the mean over an individual's evaluations).
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

from genetic_cnn.config import EvolutionConfig, config_from_dict
from genetic_cnn.errors import UserError
from genetic_cnn.progress import bar as progress_bar
from genetic_cnn.table import Table, load_table
from genetic_cnn.table_search import TableLookup, Trace, simulate

STRATEGIES: dict[str, dict[str, Any]] = {
    "genetic": {"strategy": "genetic"},
    "random": {"strategy": "random"},
    "regularized": {"strategy": "regularized"},
    "genetic-tournament": {"strategy": "genetic", "selection": "tournament"},
}
"""Strategy name -> its ``evolution`` settings beside the preset's defaults."""
DEFAULT_STRATEGIES = ("genetic", "random", "regularized")
COLOURS = {"genetic": "#1f77b4", "random": "#d62728", "regularized": "#2ca02c", "genetic-tournament": "#9467bd"}
TABLE1_GENERATIONS = (0, 1, 5, 10, 20, 30, 50)
"""The generations of the paper's Table 1."""
PERCENT = 100.0


def evolution_config(table: Table, strategy: str, population: int, generations: int, sample_size: int) -> EvolutionConfig:
    """The paper's settings for the table's preset, with ``strategy``'s changes."""
    evolution = {**STRATEGIES[strategy], "population": population, "generations": generations, "sample_size": sample_size}
    return config_from_dict({"space": {"preset": table.header["space"]["preset"]}, "evolution": evolution}).evolution


def interval(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over axis 0 and the half-width of its 95% interval (Student's t; 0 for one seed)."""
    from scipy.stats import t

    mean = values.mean(axis=0)
    count = values.shape[0]
    if count < 2:
        return mean, np.zeros_like(mean)
    return mean, t.ppf(0.975, count - 1) * values.std(axis=0, ddof=1) / np.sqrt(count)


def population_columns(told: np.ndarray) -> np.ndarray:
    """(generations, 5): max, min, mean, median, std of each generation's fitness (NaN-aware, std over N)."""
    return np.stack([np.nanmax(told, 1), np.nanmin(told, 1), np.nanmean(told, 1), np.nanmedian(told, 1),
                     np.nanstd(told, 1)], axis=1)  # fmt: skip


def summarize(table: Table, strategy: str, traces: Sequence[Trace]) -> dict[str, Any]:
    lookup_mean = table.mean_validation
    best = float(lookup_mean.max())
    incumbents = np.array([trace.incumbents() for trace in traces])
    worth = lookup_mean[incumbents]  # (seeds, evaluations)
    mean, half = interval(worth)
    regret_mean, regret_half = interval(best - worth)
    columns = np.array([population_columns(trace.told) for trace in traces])  # (seeds, generations, 5)
    test = table.mean_test
    final_test = None if test is None else float(np.mean(test[incumbents[:, -1]]))
    return {
        "strategy": strategy,
        "seeds": len(traces),
        "accuracy_mean": mean.tolist(),
        "accuracy_half_width": half.tolist(),
        "regret_mean": regret_mean.tolist(),
        "regret_half_width": regret_half.tolist(),
        "found_best": float(np.mean(incumbents[:, -1] == int(lookup_mean.argmax()))),
        "final_test_accuracy": final_test,
        "distinct_architectures": float(np.mean([len(set(trace.architectures.tolist())) for trace in traces])),
        "table1": columns.mean(axis=0).tolist(),
    }


def checkpoints(budget: int, population: int) -> list[int]:
    return sorted({point for point in (population, 100, 200, 300, 500, budget) if point <= budget})


def markdown(table: Table, results: Sequence[dict[str, Any]], title: str, budget: int, population: int,
             seconds: float) -> str:  # fmt: skip
    best = PERCENT * float(table.mean_validation.max())
    lines = [
        f"# {title}", "",
        f"Table `{table.name}` ({table.method}, {len(table.architectures)} architectures, {len(table.seeds)} seeds each); "
        f"its best architecture has a mean validation accuracy of {best:.2f}%. Mean over seeds ± the half-width of "
        f"the 95% interval; *accuracy*: the table's mean validation accuracy of the best architecture found so far; "
        f"*regret*: the best's minus that, in percentage points. Simulated in {seconds:.1f} s.", "",
        "| strategy | evaluations | accuracy (%) | regret (pp) |", "|---|---|---|---|",
    ]  # fmt: skip
    for result in results:
        for point in checkpoints(budget, population):
            i = point - 1
            lines.append(
                f"| {result['strategy']} | {point} | {PERCENT * result['accuracy_mean'][i]:.3f} ± "
                f"{PERCENT * result['accuracy_half_width'][i]:.3f} | {PERCENT * result['regret_mean'][i]:.3f} ± "
                f"{PERCENT * result['regret_half_width'][i]:.3f} |"
            )
    lines += ["", "| strategy | seeds | found the best | distinct architectures evaluated | test accuracy of the final best (%) |",
              "|---|---|---|---|---|"]  # fmt: skip
    for result in results:
        test = "–" if result["final_test_accuracy"] is None else f"{PERCENT * result['final_test_accuracy']:.3f}"
        lines.append(f"| {result['strategy']} | {result['seeds']} | {PERCENT * result['found_best']:.1f}% | "
                     f"{result['distinct_architectures']:.0f} | {test} |")  # fmt: skip
    lines += ["", "The paper's Table 1 columns: each generation's fitness (validation accuracy, %), averaged over seeds.", ""]
    for result in results:
        lines += [f"**{result['strategy']}**", "", "| gen | max | min | mean | median | std |", "|---|---|---|---|---|---|"]
        rows = result["table1"]
        for generation in [g for g in TABLE1_GENERATIONS if g < len(rows)] or range(len(rows)):
            lines.append(f"| {generation} | " + " | ".join(f"{PERCENT * value:.2f}" for value in rows[generation]) + " |")
        lines.append("")
    lines += ["![best architecture found so far against evaluations](comparison.png)", ""]
    return "\n".join(lines)


def plot(table: Table, results: Sequence[dict[str, Any]], path: Path, title: str) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5), layout="constrained")  # room for the log axis' wide tick labels
    accuracy_ax, regret_ax = fig.subplots(1, 2)
    for result in results:
        colour = COLOURS.get(result["strategy"])
        x = np.arange(1, len(result["accuracy_mean"]) + 1)
        for ax, name in ((accuracy_ax, "accuracy"), (regret_ax, "regret")):
            mean = PERCENT * np.array(result[f"{name}_mean"])
            half = PERCENT * np.array(result[f"{name}_half_width"])
            ax.plot(x, mean, color=colour, lw=1.8, label=f"{result['strategy']} ({result['seeds']} seeds)")
            ax.fill_between(x, mean - half, mean + half, color=colour, alpha=0.25, lw=0)
    accuracy_ax.axhline(PERCENT * float(table.mean_validation.max()), color="#555555", lw=0.8, ls="--",
                        label="the table's best")  # fmt: skip
    accuracy_ax.set_ylabel("table accuracy of the best found so far (%)")
    regret_ax.set_ylabel("regret (percentage points)")
    regret_ax.set_yscale("log")
    for ax in (accuracy_ax, regret_ax):
        ax.set_xlabel("evaluations")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{title} (bands: 95% interval of the mean over seeds)", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def compare(table: Table, strategies: Sequence[str], seeds: Sequence[int], population: int, generations: int,
            sample_size: int, progress: bool = True) -> list[dict[str, Any]]:  # fmt: skip
    """Every strategy with every seed; seeds outermost, so each seed's evaluation seeds are computed once."""
    configs = {name: evolution_config(table, name, population, generations, sample_size) for name in strategies}
    lookup = TableLookup(table)
    traces: dict[str, list[Trace]] = {name: [] for name in strategies}
    runs = progress_bar(total=len(seeds) * len(strategies), desc="searches", unit="run", disable=not progress)
    for seed in seeds:
        for name in strategies:
            traces[name].append(simulate(lookup, configs[name], seed))
            runs.update(1)
    runs.close()
    return [summarize(table, name, traces[name]) for name in strategies]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", required=True, help="a shipped table's name (digits-standalone, mnist-oneshot) or a table file")
    parser.add_argument("--seeds", type=int, default=500, help="run seeds 0 .. S-1 per strategy (default 500)")
    parser.add_argument("--strategies", nargs="+", choices=list(STRATEGIES), default=list(DEFAULT_STRATEGIES))
    parser.add_argument("--population", type=int, default=20, help="N (default 20, the paper's)")
    parser.add_argument("--generations", type=int, default=50, help="T (default 50, the paper's)")
    parser.add_argument("--sample-size", type=int, default=EvolutionConfig.sample_size,
                        help=f"regularized evolution's tournament size (default {EvolutionConfig.sample_size})")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("runs/strategies"), help="output folder (default runs/strategies)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    import compare_objectives  # beside this script: multi-objective searches (--objectives accuracy,flops)

    if compare_objectives.wanted(sys.argv[1:] if argv is None else argv):
        return compare_objectives.main(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    try:
        if args.seeds < 1:
            raise UserError(f"--seeds {args.seeds}: give at least 1")
        table = load_table(args.table)
        started = time.perf_counter()
        results = compare(table, args.strategies, range(args.seeds), args.population, args.generations,
                          args.sample_size, progress=not args.quiet)  # fmt: skip
    except (UserError, ValueError) as error:
        print(f"compare_strategies: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    budget = args.population * (args.generations + 1)
    title = f"{table.name}: N={args.population}, T={args.generations}, budget {budget} evaluations, {args.seeds} seeds"
    args.out.mkdir(parents=True, exist_ok=True)
    figure = plot(table, results, args.out / "comparison.png", title)
    text = markdown(table, results, title, budget, args.population, seconds)
    (args.out / "comparison.md").write_text(text, encoding="utf-8")
    payload = {"title": title, "table": table.name, "source": table.source, "seconds": seconds, "results": results}
    (args.out / "comparison.json").write_text(json.dumps(payload) + "\n", encoding="utf-8")
    print(text)
    print(f"figure: {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
