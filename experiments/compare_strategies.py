"""Search strategies compared on a table, over hundreds of paired seeds: genetic (the paper), random, regularized, oracle.

    python experiments/compare_strategies.py --table digits-standalone --seeds 1000 --out runs/strategies-digits

Each (strategy, seed) is a search driven through ask/tell with table fitness in memory
(``genetic_cnn.tables.simulate.simulate``: the genomes and fitness a run folder with
``evaluation.method = "table"`` and that ``run.seed`` would hold, without the folder or torch).
Settings: the table's preset's defaults, which are the paper's (N = 20, T = 50, p_M/q_M, p_C/q_C,
roulette, re-evaluation averaged); regularized evolution with tournaments of ``--sample-size``.

Judged with a truth the search did not see: run seed s searches on the table less one seed, the
held-out seed h(s) (``tables.simulate.held_out_column``, the same for every strategy), and its
incumbent is scored on seed h's validation accuracy (*held-out*) and on the mean test accuracy over
all seeds (*test*; tables that measure it), beside the mean validation accuracy over all seeds
(*all seeds*: partly the very seeds the search read, so flattering to whatever got lucky there).
The incumbent is named by both rules (``tables.simulate.INCUMBENT_RULES``): the best single observation
so far, and the best current mean. Strategies are compared by paired differences, arm minus random
on the same run seed, with 95% Student-t intervals over the seeds. *oracle*: the genetic search
told each architecture's mean over all the table's seeds, noiseless: how far the noise holds the
search back (it read the held-out seed inside that mean, so its held-out figure is not held out).
"Found the best": the final incumbent is one of the architectures with the table's highest mean
(ties count: several may share it).

Written to ``--out``: ``comparison.png`` (truth of the incumbent against evaluations, mean and 95%
interval over seeds), ``comparison.md`` (the tables; the paper's Table 1 columns, max / min / mean /
median / std of each generation's fitness, averaged over seeds) and ``comparison.json``.
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
from genetic_cnn.tables.simulate import INCUMBENT_RULES, TableLookup, Trace, held_out_column, simulate
from genetic_cnn.tables.table import Table, load_table

STRATEGIES: dict[str, dict[str, Any]] = {
    "genetic": {"strategy": "genetic"},
    "random": {"strategy": "random"},
    "regularized": {"strategy": "regularized"},
    "genetic-tournament": {"strategy": "genetic", "selection": "tournament"},
    "oracle": {"strategy": "genetic"},
}
"""Strategy name -> its ``evolution`` settings beside the preset's defaults (the oracle: noiseless fitness)."""
NOISELESS = {"oracle"}
DEFAULT_STRATEGIES = ("genetic", "random", "regularized", "oracle")
BASELINE = "random"
COLOURS = {"genetic": "#1f77b4", "random": "#d62728", "regularized": "#2ca02c", "genetic-tournament": "#9467bd",
           "oracle": "#7f7f7f"}  # fmt: skip
TABLE1_GENERATIONS = (0, 1, 5, 10, 20, 30, 50)
"""The generations of the paper's Table 1."""
PERCENT = 100.0
TRUTHS = ("held_out", "test", "all_seeds")
TRUTH_NAMES = {"held_out": "held-out seed", "test": "test (mean over seeds)", "all_seeds": "all seeds' mean"}
RULE_NAMES = {"observation": "best single observation", "mean": "best current mean"}


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


def truths(table: Table, incumbents: np.ndarray, held_out: np.ndarray) -> dict[str, np.ndarray | None]:
    """(seeds, evaluations) worth of each incumbent under every truth (None where the table has no test accuracy)."""
    test = table.mean_test
    return {
        "held_out": table.validation[incumbents, held_out[:, None]],
        "test": None if test is None else test[incumbents],
        "all_seeds": table.mean_validation[incumbents],
    }


def best_of(table: Table, held_out: np.ndarray) -> dict[str, np.ndarray | None]:
    """(seeds,) the best any architecture reaches under every truth (for regret)."""
    test = table.mean_test
    count = len(held_out)
    return {
        "held_out": table.validation.max(axis=0)[held_out],
        "test": None if test is None else np.full(count, float(test.max())),
        "all_seeds": np.full(count, float(table.mean_validation.max())),
    }


def summarize(table: Table, strategy: str, traces: Sequence[Trace], held_out: np.ndarray) -> tuple[dict[str, Any], dict]:
    """The arm's figures, and its (rule -> truth -> (seeds, evaluations)) worths for the paired differences."""
    best_mean = float(table.mean_validation.max())
    bests = np.flatnonzero(np.isclose(table.mean_validation, best_mean, rtol=0, atol=1e-12))
    maxima = best_of(table, held_out)
    rules: dict[str, Any] = {}
    worths: dict[str, dict[str, np.ndarray]] = {}
    for rule in INCUMBENT_RULES:
        incumbents = np.array([trace.incumbents(rule) for trace in traces])
        entry: dict[str, Any] = {"found_best": float(np.mean(np.isin(incumbents[:, -1], bests)))}
        worths[rule] = {}
        for truth, values in truths(table, incumbents, held_out).items():
            if values is None:
                continue
            worths[rule][truth] = values
            mean, half = interval(values)
            regret_mean, regret_half = interval(maxima[truth][:, None] - values)  # type: ignore[index]
            entry[truth] = {"accuracy_mean": mean.tolist(), "accuracy_half_width": half.tolist(),
                            "regret_mean": regret_mean.tolist(), "regret_half_width": regret_half.tolist()}  # fmt: skip
        rules[rule] = entry
    columns = np.array([population_columns(trace.told) for trace in traces])  # (seeds, generations, 5)
    return {
        "strategy": strategy,
        "seeds": len(traces),
        "noiseless": strategy in NOISELESS,
        "rules": rules,
        "distinct_architectures": float(np.mean([len(set(trace.architectures.tolist())) for trace in traces])),
        "table1": columns.mean(axis=0).tolist(),
        "best_architectures": bests.tolist(),
    }, worths


def paired(worths: dict[str, dict], points: Sequence[int]) -> list[dict[str, Any]]:
    """Arm minus random on the same seeds, at each budget of ``points``: mean and 95% half-width."""
    if BASELINE not in worths:
        return []
    rows = []
    for arm in worths:
        if arm == BASELINE:
            continue
        for rule in INCUMBENT_RULES:
            for truth in TRUTHS:
                if truth not in worths[arm][rule]:
                    continue
                difference = worths[arm][rule][truth] - worths[BASELINE][rule][truth]
                mean, half = interval(difference[:, [point - 1 for point in points]])
                rows.append({"arm": arm, "rule": rule, "truth": truth, "evaluations": list(points),
                             "difference_mean": mean.tolist(), "difference_half_width": half.tolist()})  # fmt: skip
    return rows


def checkpoints(budget: int, population: int) -> list[int]:
    return sorted({point for point in (population, 100, 200, 300, 500, budget) if point <= budget})


def _pm(mean: float, half: float, digits: int = 3) -> str:
    return f"{PERCENT * mean:.{digits}f} ± {PERCENT * half:.{digits}f}"


def markdown(table: Table, results: Sequence[dict[str, Any]], differences: Sequence[dict[str, Any]], title: str,
             budget: int, population: int, seconds: float) -> str:  # fmt: skip
    best = PERCENT * float(table.mean_validation.max())
    ties = len(results[0]["best_architectures"]) if results else 0
    present = [truth for truth in TRUTHS if results and truth in results[0]["rules"]["mean"]]
    lines = [
        f"# {title}", "",
        f"Table `{table.name}` ({table.method}, {len(table.architectures)} architectures, {len(table.seeds)} seeds each; "
        f"{table.split_description()}). Its best mean validation accuracy over all seeds is {best:.4f}% "
        f"({ties} architecture{'s' if ties != 1 else ''} share{'s' if ties == 1 else ''} it). Each run seed searches "
        f"the table less one held-out seed (drawn from the run seed, the same for every arm) and its incumbent is "
        f"scored on: *held-out seed* (that seed's validation accuracy), *test* (mean test accuracy over all seeds, "
        f"never seen by any search), *all seeds' mean* (includes the seeds the search read). *oracle*: the genetic "
        f"search told each architecture's mean over all seeds, noiseless (its held-out seed is inside that mean). "
        f"Mean over seeds ± the half-width of the 95% interval (Student's t), in %, or percentage points for "
        f"differences. Simulated in {seconds:.1f} s.", "",
        f"## Incumbent after {budget} evaluations", "",
        "| arm | incumbent rule | " + " | ".join(TRUTH_NAMES[t] for t in present) + " | found a best | distinct architectures |",
        "|---|---|" + "---|" * len(present) + "---|---|",
    ]  # fmt: skip
    for result in results:
        for rule in INCUMBENT_RULES:
            entry = result["rules"][rule]
            cells = " | ".join(_pm(entry[t]["accuracy_mean"][-1], entry[t]["accuracy_half_width"][-1]) for t in present)
            lines.append(f"| {result['strategy']} | {RULE_NAMES[rule]} | {cells} | {PERCENT * entry['found_best']:.1f}% | "
                         f"{result['distinct_architectures']:.0f} |")  # fmt: skip
    if differences:
        points = differences[0]["evaluations"]
        lines += ["", f"## Paired differences, arm − {BASELINE} (percentage points, same run seeds)", "",
                  "| arm − random | incumbent rule | truth | " + " | ".join(f"{p} evaluations" for p in points) + " |",
                  "|---|---|---|" + "---|" * len(points)]  # fmt: skip
        for row in differences:
            cells = " | ".join(_pm(m, h) for m, h in zip(row["difference_mean"], row["difference_half_width"]))
            lines.append(f"| {row['arm']} | {RULE_NAMES[row['rule']]} | {TRUTH_NAMES[row['truth']]} | {cells} |")
    lines += ["", "## Held-out accuracy of the incumbent (best current mean) against evaluations", "",
              "| arm | " + " | ".join(str(p) for p in checkpoints(budget, population)) + " |",
              "|---|" + "---|" * len(checkpoints(budget, population))]  # fmt: skip
    for result in results:
        entry = result["rules"]["mean"]["held_out"]
        cells = " | ".join(_pm(entry["accuracy_mean"][p - 1], entry["accuracy_half_width"][p - 1])
                           for p in checkpoints(budget, population))  # fmt: skip
        lines.append(f"| {result['strategy']} | {cells} |")
    lines += ["", "The paper's Table 1 columns: each generation's fitness as told to the search (validation accuracy, "
              "%), averaged over seeds (regularized: each child's own evaluation; oracle: the noiseless means).", ""]  # fmt: skip
    for result in results:
        lines += [f"**{result['strategy']}**", "", "| gen | max | min | mean | median | std |", "|---|---|---|---|---|---|"]
        rows = result["table1"]
        for generation in [g for g in TABLE1_GENERATIONS if g < len(rows)] or range(len(rows)):
            lines.append(f"| {generation} | " + " | ".join(f"{PERCENT * value:.2f}" for value in rows[generation]) + " |")
        lines.append("")
    lines += ["![truth of the incumbent against evaluations](comparison.png)", ""]
    return "\n".join(lines)


def plot(table: Table, results: Sequence[dict[str, Any]], path: Path, title: str) -> Path:
    from matplotlib.figure import Figure

    shown = [truth for truth in ("held_out", "test") if results and truth in results[0]["rules"]["mean"]]
    fig = Figure(figsize=(11, 4.2 * len(shown)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(shown), len(INCUMBENT_RULES), squeeze=False))
    for row, truth in enumerate(shown):
        for column, rule in enumerate(INCUMBENT_RULES):
            ax = axes[row, column]
            for result in results:
                entry = result["rules"][rule][truth]
                colour = COLOURS.get(result["strategy"])
                x = np.arange(1, len(entry["accuracy_mean"]) + 1)
                mean = PERCENT * np.array(entry["accuracy_mean"])
                half = PERCENT * np.array(entry["accuracy_half_width"])
                ax.plot(x, mean, color=colour, lw=1.6, ls="--" if result["noiseless"] else "-",
                        label=f"{result['strategy']} ({result['seeds']} seeds)")  # fmt: skip
                ax.fill_between(x, mean - half, mean + half, color=colour, alpha=0.25, lw=0)
            ax.set_title(f"incumbent: {RULE_NAMES[rule]}; truth: {TRUTH_NAMES[truth]}", fontsize=9)
            ax.set_xlabel("evaluations")
            ax.set_ylabel("accuracy of the incumbent (%)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(f"{title} (bands: 95% interval of the mean over seeds)", fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def compare(table: Table, strategies: Sequence[str], seeds: Sequence[int], population: int, generations: int,
            sample_size: int, progress: bool = True) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:  # fmt: skip
    """Every strategy with every seed, each seed searching the table less its held-out seed; returns the
    arms' figures and the paired differences against random."""
    if len(table.seeds) < 2:
        raise UserError(f"table {table.name} has {len(table.seeds)} seed; judging on a held-out seed needs two or more")
    configs = {name: evolution_config(table, name, population, generations, sample_size) for name in strategies}
    lookup = TableLookup(table)
    searched = {column: lookup.without(column) for column in range(len(table.seeds))}
    held_out = np.array([held_out_column(seed, len(table.seeds)) for seed in seeds])
    traces: dict[str, list[Trace]] = {name: [] for name in strategies}
    runs = progress_bar(total=len(seeds) * len(strategies), desc="searches", unit="run", disable=not progress)
    for seed, column in zip(seeds, held_out):
        for name in strategies:
            noiseless = name in NOISELESS
            traces[name].append(simulate(lookup if noiseless else searched[int(column)], configs[name], seed, noiseless))
            runs.update(1)
    runs.close()
    results, worths = [], {}
    for name in strategies:
        result, worths[name] = summarize(table, name, traces[name], held_out)
        results.append(result)
    budget = population * (generations + 1)
    points = sorted({point for point in (100, 300, budget) if point <= budget})
    return results, paired(worths, points)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", required=True, help="a shipped table's name (digits-standalone, mnist-oneshot) or a table file")
    parser.add_argument("--seeds", type=int, default=1000, help="run seeds 0 .. S-1 per strategy, paired (default 1000)")
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
        results, differences = compare(table, args.strategies, range(args.seeds), args.population, args.generations,
                                       args.sample_size, progress=not args.quiet)  # fmt: skip
    except (UserError, ValueError) as error:
        print(f"compare_strategies: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    budget = args.population * (args.generations + 1)
    title = f"{table.name}: N={args.population}, T={args.generations}, budget {budget} evaluations, {args.seeds} seeds"
    args.out.mkdir(parents=True, exist_ok=True)
    figure = plot(table, results, args.out / "comparison.png", title)
    text = markdown(table, results, differences, title, budget, args.population, seconds)
    (args.out / "comparison.md").write_text(text, encoding="utf-8")
    payload = {"title": title, "table": table.name, "source": table.source, "split": table.split_description(),
               "seconds": seconds, "results": results, "paired_differences": differences}  # fmt: skip
    (args.out / "comparison.json").write_text(json.dumps(payload) + "\n", encoding="utf-8")
    print(text)
    print(f"figure: {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
