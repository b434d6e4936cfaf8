"""Genetic CNN against random search at the same budget N(T+1), over several seeds.

    python experiments/compare_random.py --config experiments/configs/compare_mnist.toml \
        --seeds 0 1 2 --root data --out runs/compare-mnist

A quick check on the bundled digits (no download, a minute or two on a CPU):

    python experiments/compare_random.py --config experiments/configs/compare_mnist.toml \
        --seeds 0 1 --out runs/compare-digits --set data.dataset=digits --set space.preset=digits \
        --set evolution.population=4 --set evolution.generations=2 --set "train.schedule=[[3, 0.003]]" \
        --set train.batch_size=64

Each (strategy, seed) is one run folder ``<out>/<strategy>-seed<k>`` made with the Python API
(``start_run``); a finished folder is reused and a stopped one resumed, so the script can be run
again after an interruption. Both strategies with the same seed start from the same random
generation 0, and each evaluation's training seed depends only on (run seed, generation, slot).

Measured, per run: the fitness the search was told for each evaluation (the individual's mean
validation accuracy over all its evaluations so far, the paper's rule), in evaluation order; its
running maximum is the best-so-far curve. The figure ``<out>/comparison.png`` shows the mean
best-so-far fitness against the number of evaluations per strategy, with a band from the lowest
to the highest seed. The table gives each run's best fitness, its genome, and that individual's
test accuracy (mean over its evaluations; the test set is never used to choose). Everything is
also written to ``<out>/comparison.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genetic_cnn.config import Config, load_config
from genetic_cnn.errors import UserError
from genetic_cnn.evolution import resume_run, settled, start_run
from genetic_cnn.history.store import DATABASE, load_run

STRATEGIES = ("genetic", "random")
COLOURS = {"genetic": "#1f77b4", "random": "#d62728"}


@dataclass(frozen=True)
class RunSummary:
    strategy: str
    seed: int
    folder: str
    curve: tuple[float, ...]
    """Best fitness so far after each evaluation."""
    best_fitness: float
    best_genome: str
    best_test_accuracy: float | None
    evaluations: int
    distinct_architectures: int
    train_seconds: float


def run_config(args: argparse.Namespace, strategy: str, seed: int) -> Config:
    overrides = list(args.set)
    if args.root is not None:
        overrides.append(f"data.root={json.dumps(str(args.root))}")
    overrides += [f"evolution.strategy={json.dumps(strategy)}", f"run.seed={seed}"]
    return load_config(args.config, overrides)


def ensure_run(config: Config, folder: Path, progress: bool) -> Path:
    """Run ``config`` into ``folder``: start it, resume it, or reuse it when it is finished."""
    label = f"[{config.evolution.strategy} seed {config.run.seed}]"

    def echo(line: str) -> None:
        from tqdm.auto import tqdm

        tqdm.write(f"{label} {line}", file=sys.stdout)

    if not (folder / DATABASE).is_file():
        print(f"{label} starting {folder}", flush=True)
        return start_run(config, out=folder, progress=progress, echo=echo)
    with load_run(folder) as run:
        stored, status = run.config, run.status
    if _comparable(stored) != _comparable(settled(config, folder)):  # as start_run recorded it
        raise UserError(f"{folder} holds a run with another config; remove it or choose another --out")
    if status == "finished":
        print(f"{label} reusing the finished run in {folder}", flush=True)
        return folder
    print(f"{label} resuming {folder} (status {status})", flush=True)
    return resume_run(folder, progress=progress, echo=echo)


def _comparable(config: Config) -> dict:
    values = config.to_dict()
    values["run"] = {
        key: value
        for key, value in values["run"].items()
        if key not in ("out", "device", "executor", "workers", "threads")
    }
    return values


def summarize(folder: Path, strategy: str, seed: int) -> RunSummary:
    with load_run(folder) as run:
        config = run.config
        generations = run.generations()
        evaluations = run.evaluations()
    fitness = [value for record in generations for value in record.fitness]
    genomes = [genome for record in generations for genome in record.genomes]
    if not fitness:
        raise UserError(f"{folder} has no completed generation")
    best = int(np.argmax(fitness))
    identity = config.evolution.identity
    by_genome = {e.genome: e.key for e in evaluations}
    best_identity = genomes[best] if identity == "string" else by_genome[genomes[best]]
    tests = [
        e.test_accuracy
        for e in evaluations
        if e.test_accuracy is not None and (e.genome if identity == "string" else e.key) == best_identity
    ]
    return RunSummary(
        strategy=strategy,
        seed=seed,
        folder=str(folder),
        curve=tuple(float(value) for value in np.maximum.accumulate(fitness)),
        best_fitness=float(fitness[best]),
        best_genome=genomes[best],
        best_test_accuracy=statistics.fmean(tests) if tests else None,
        evaluations=len(evaluations),
        distinct_architectures=len({e.key for e in evaluations}),
        train_seconds=sum(e.seconds for e in evaluations),
    )


def plot(summaries: Sequence[RunSummary], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for strategy in dict.fromkeys(summary.strategy for summary in summaries):
        curves = np.array([summary.curve for summary in summaries if summary.strategy == strategy]) * 100
        x = np.arange(1, curves.shape[1] + 1)
        colour = COLOURS.get(strategy)
        ax.plot(
            x,
            curves.mean(axis=0),
            color=colour,
            linewidth=2,
            label=f"{strategy} (mean of {len(curves)} seeds)",
            drawstyle="steps-post",
        )
        if len(curves) > 1:
            ax.fill_between(x, curves.min(axis=0), curves.max(axis=0), color=colour, alpha=0.2, linewidth=0, step="post",
                            label=f"{strategy}: lowest to highest seed")  # fmt: skip
    ax.set_xlabel("evaluations (networks trained)")
    ax.set_ylabel("best fitness so far (validation accuracy, %)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def table(summaries: Sequence[RunSummary]) -> str:
    lines = [
        f"{'strategy':<9} {'seed':>4} {'best fitness':>12} {'test acc. of best':>17} {'evals':>5} {'archs':>5}  best genome"
    ]
    for s in summaries:
        test = f"{100 * s.best_test_accuracy:.2f}%" if s.best_test_accuracy is not None else "-"
        lines.append(
            f"{s.strategy:<9} {s.seed:>4} {100 * s.best_fitness:>11.2f}% {test:>17} {s.evaluations:>5} "
            f"{s.distinct_architectures:>5}  {s.best_genome}"
        )
    lines.append("")
    for strategy in dict.fromkeys(s.strategy for s in summaries):
        mine = [s for s in summaries if s.strategy == strategy]
        best = [100 * s.best_fitness for s in mine]
        spread = f" ± {statistics.stdev(best):.2f}" if len(best) > 1 else ""
        tests = [100 * s.best_test_accuracy for s in mine if s.best_test_accuracy is not None]
        test = f"; test accuracy of the best {statistics.fmean(tests):.2f}%" if tests else ""
        lines.append(
            f"mean best fitness  {strategy:<8} {statistics.fmean(best):.2f}{spread}% over {len(mine)} seed(s){test}"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=Path(__file__).parent / "configs" / "compare_mnist.toml",
                        help="TOML config (default: configs/compare_mnist.toml)")  # fmt: skip
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="run seeds (default 0 1 2)")
    parser.add_argument("--root", type=Path, help="dataset folder (sets data.root)")
    parser.add_argument("--out", type=Path, default=Path("runs/compare"), help="output folder (default runs/compare)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summaries = []
        for strategy in args.strategies:
            for seed in args.seeds:
                config = run_config(args, strategy, seed)
                folder = ensure_run(config, args.out / f"{strategy}-seed{seed}", progress=not args.quiet)
                summaries.append(summarize(folder, strategy, seed))
    except UserError as error:
        print(f"compare_random: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    config = run_config(args, args.strategies[0], args.seeds[0])
    budget = config.evolution.population * (config.evolution.generations + 1)
    title = (
        f"{config.data.dataset} ({config.space.preset}): N={config.evolution.population}, "
        f"T={config.evolution.generations}, budget {budget} evaluations"
    )
    figure = plot(summaries, args.out / "comparison.png", title)
    report = {
        "title": title,
        "config": str(args.config),
        "overrides": args.set,
        "runs": [s.__dict__ for s in summaries],
    }
    (args.out / "comparison.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print()
    print(title)
    print(table(summaries))
    print(f"figure: {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
