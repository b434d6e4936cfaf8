"""Wall time of one generation, serial against ``run.executor = "auto"`` (the default), on real MNIST.

Each timing is a fresh ``genetic-cnn evolve`` process (start-up, dataset loading and worker spawning
included, as a user pays them) that evaluates generation 0 of N MNIST-preset networks: 5,000
training images, one epoch, seed 1. The two settings alternate (serial first in odd repeats, auto
first in even ones) so drift in the machine's speed hits both alike. For each pair the exported
histories are compared: the same genomes, seeds, statuses and accuracies?

    python benchmarks/executors.py --mnist-gz path/to/mnist-gz-folder --sizes 4 10 20 --repeats 2

Also measured: the time from the start of ``evolve`` to the first evaluation's start, with one worker
process and with the workers auto starts (the start-up a run pays once: its workers live for the
whole run).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import add_data_arguments, cpu_sample, load_average, machine, mnist_root, others_share, table, write_json

GENETIC_CNN = [sys.executable, "-m", "genetic_cnn.cli"]


def overrides(root: Path, population: int, images: int) -> list[str]:
    settings = [
        "data.dataset=mnist", f"data.root={str(root)!r}", f"data.subset={images + 1000}", "data.validation=1000",
        "data.test_subset=1000", "space.preset=mnist", f"evolution.population={population}",
        "evolution.generations=0", "train.schedule=[[1, 0.001]]", "run.seed=1", "run.device=cpu",
    ]  # fmt: skip
    return [item for setting in settings for item in ("--set", setting)]


def evolve(folder: Path, settings: list[str]) -> dict[str, Any]:
    """One fresh ``genetic-cnn evolve``: wall seconds, seconds to the first evaluation's start, history."""
    before = cpu_sample()
    started = time.time()
    result = subprocess.run([*GENETIC_CNN, "evolve", "--out", str(folder), "--quiet", *settings],
                            capture_output=True, text=True)  # fmt: skip
    wall = time.time() - started
    if result.returncode != 0:
        raise SystemExit(f"evolve failed: {result.stderr.strip()}")
    exported = subprocess.run([*GENETIC_CNN, "export", str(folder)], capture_output=True, text=True, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(exported)))
    history = [(r["slot"], r["genome"], r["seed"], r["status"], r["accuracy"], r["test_accuracy"]) for r in rows]
    history.sort()
    from genetic_cnn.history.store import load_run

    with load_run(folder) as run:
        evaluations, finished = run.evaluations(), run.evaluation_times()
        chosen = run.meta("executors")[-1]
    first_start = min(end - e.seconds for e, end in zip(evaluations, finished))
    return {
        "wall": wall, "to_first_evaluation": first_start - started, "history": history,
        "executor": f"{chosen['executor']} {chosen['workers']}x{chosen['threads'] or 'all'}",
        "others_cpu_share": others_share(before, cpu_sample()),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_data_arguments(parser)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 10, 20], help="individuals per generation")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--images", type=int, default=5000, help="training images per evaluation")
    parser.add_argument("--serial-threads", type=int, default=0,
                        help="torch threads of the serial side (default 0: torch's own, all cores)")
    parser.add_argument("--json", help="write results here (default benchmarks/results/executors.json)")
    args = parser.parse_args()
    stack: list[tempfile.TemporaryDirectory] = []
    root = mnist_root(args, stack)
    info = machine()
    print(f"CPU: {info['cpu']} ({os.cpu_count()} cores, {info['cpu_capability']}), torch {info['torch']}")
    print(f"load average before: {load_average():.2f}")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="executors-") as scratch:
        for size in args.sizes:
            for repeat in range(args.repeats):
                order = ["serial", "auto"] if repeat % 2 == 0 else ["auto", "serial"]
                pair: dict[str, dict[str, Any]] = {}
                for mode in order:
                    extra = ["--set", "run.executor=serial"] if mode == "serial" else []
                    extra += ["--set", f"run.threads={args.serial_threads}"] if mode == "serial" and args.serial_threads else []
                    folder = Path(scratch) / f"n{size}-r{repeat}-{mode}"
                    pair[mode] = evolve(folder, overrides(root, size, args.images) + extra)
                    print(f"N={size:>2} repeat {repeat + 1} {mode:>6} ({pair[mode]['executor']}): "
                          f"{pair[mode]['wall']:6.1f} s", flush=True)  # fmt: skip
                runs.append({
                    "size": size, "repeat": repeat,
                    "serial": {k: v for k, v in pair["serial"].items() if k != "history"},
                    "auto": {k: v for k, v in pair["auto"].items() if k != "history"},
                    "same_history": pair["serial"]["history"] == pair["auto"]["history"],
                    "max_accuracy_difference": max(
                        abs(float(a[4]) - float(b[4])) for a, b in zip(pair["serial"]["history"], pair["auto"]["history"])
                    ),
                })  # fmt: skip
        one = ["--set", "run.executor=processes", "--set", "run.workers=1", "--set", "run.threads=1"]
        one_worker = evolve(Path(scratch) / "one-worker", overrides(root, 2, 500) + one)
        auto_start = evolve(Path(scratch) / "auto-start", overrides(root, 2, 500) + ["--set", "run.workers=2"])
    rows = []
    for size in args.sizes:
        mine = [run for run in runs if run["size"] == size]
        serial = [run["serial"]["wall"] for run in mine]
        auto = [run["auto"]["wall"] for run in mine]
        ratios = [s / a for s, a in zip(serial, auto)]
        rows.append([
            str(size), " / ".join(f"{value:.1f}" for value in serial), " / ".join(f"{value:.1f}" for value in auto),
            mine[0]["auto"]["executor"], f"{statistics.fmean(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})",
            "yes" if all(run["same_history"] for run in mine)
            else f"no (accuracy up to {100 * max(run['max_accuracy_difference'] for run in mine):.2f} points apart)",
            f"{100 * max(max(run['serial']['others_cpu_share'], run['auto']['others_cpu_share']) for run in mine):.1f}%",
        ])  # fmt: skip
    print()
    print(table(rows, ["N", "serial s", "auto s", "auto chose", "speed-up", "same history", "others' CPU"]))
    print(f"\nstart of evolve to the first evaluation: 1 worker {one_worker['to_first_evaluation']:.1f} s, "
          f"2 workers {auto_start['to_first_evaluation']:.1f} s")  # fmt: skip
    path = write_json({"machine": info, "runs": runs, "start_up": {
        "one_worker": one_worker["to_first_evaluation"], "two_workers": auto_start["to_first_evaluation"]}},
        "executors", args.json)  # fmt: skip
    print(f"results: {path}")


if __name__ == "__main__":
    main()
