"""What one-shot fitness is worth: its rank correlation with standalone accuracy on real data.

Trains ``--archs`` distinct architectures (stratified by convolution count, ``space.stratified_sample``)
standalone with ``--seeds`` seeds each at one stated fidelity, trains ``--supernets`` supernets (one
per seed) on the same training images and measures every architecture's path in each, then reports
Kendall tau and Spearman rho between one-shot accuracy (mean over supernets) and mean standalone
accuracy, and the tau between two standalone seeds: the agreement of two single trainings. That is
not the ceiling of a proxy compared with the mean of the seeds, which is more reliable than one seed
(``calibrate.reliability`` gives ICC(1,S) and the attenuated ceiling, (2/pi) asin(sqrt(ICC(1,S))).

Resumable: every measurement is appended to ``--work/measurements.jsonl`` as it completes, and the
supernets checkpoint every epoch, so running the same command again continues where a kill left it.
The summary goes to ``--out`` (JSON). Example (Fashion-MNIST gunzipped under ROOT/FashionMNIST/raw)::

    python benchmarks/oneshot_rank.py --dataset fashion-mnist --root ROOT --work /tmp/rank --out \\
        benchmarks/results/oneshot_rank_fashion.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import machine
from scipy.stats import kendalltau, spearmanr

from genetic_cnn.config import Config, load_config
from genetic_cnn.search.records import OK, EvaluationTask
from genetic_cnn.space.enumerate import stratified_sample
from genetic_cnn.space.graph import architecture_key


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="fashion-mnist", choices=["mnist", "fashion-mnist"])
    parser.add_argument("--root", required=True, help="torchvision root holding MNIST/raw or FashionMNIST/raw")
    parser.add_argument("--archs", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=2, help="standalone trainings per architecture")
    parser.add_argument("--supernets", type=int, default=2, help="supernets, one per seed")
    parser.add_argument("--subset", type=int, default=20000, help="data.subset: images before the validation split")
    parser.add_argument("--validation", type=int, default=10000)
    parser.add_argument("--test-subset", type=int, default=1000)
    parser.add_argument("--schedule", default="[[2, 0.001]]", help="standalone train.schedule (TOML)")
    parser.add_argument("--supernet-schedule", default="[[8, 0.001], [2, 0.0001]]")
    parser.add_argument("--calibration-images", type=int, default=1000)
    parser.add_argument("--sampling", nargs="+", default=["uniform", "balanced"], help="path sampling rules to compare")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--summary-only", action="store_true",
                        help="measure nothing: summarize what --work holds (a stopped study on the architectures it finished)")
    parser.add_argument("--work", type=Path, required=True, help="folder for measurements and supernets (resumable)")
    parser.add_argument("--out", type=Path, required=True, help="summary JSON")
    return parser.parse_args()


def study_config(args: argparse.Namespace, seed: int, out: Path | None = None, sampling: str = "uniform") -> Config:
    overrides = [
        f"data.dataset={args.dataset}", f"data.root={json.dumps(str(Path(args.root).resolve()))}",
        f"data.subset={args.subset}", f"data.validation={args.validation}", f"data.test_subset={args.test_subset}",
        "space.preset=mnist", f"train.schedule={args.schedule}", f"evaluation.supernet_schedule={args.supernet_schedule}",
        f"evaluation.calibration_images={args.calibration_images}", f"evaluation.supernet_sampling={sampling}",
        "run.device=cpu", "run.executor=serial",
        f"run.seed={seed}", f"run.out={json.dumps(str(out or ''))}",
    ]  # fmt: skip
    return load_config(None, overrides)


def load_measurements(path: Path) -> dict[tuple[str, int, str], dict[str, Any]]:
    done: dict[tuple[str, int, str], dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                done[(record["kind"], record["seed"], record["key"])] = record
    return done


def append(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write(json.dumps(record) + "\n")


def run_standalone(args: argparse.Namespace, genomes: list, seed: int, done: dict, log: Path) -> None:
    from genetic_cnn.fitness.standalone import Evaluator

    todo = [genome for genome in genomes if ("standalone", seed, architecture_key(genome)) not in done]
    if not todo:
        return
    evaluator = Evaluator.from_config(study_config(args, 0))  # one data split for all: seeds vary the training only
    for index, genome in enumerate(todo):
        result = evaluator.evaluate(EvaluationTask(0, index, str(genome), seed=1000 * seed + 17))
        record = {"kind": "standalone", "seed": seed, "key": result.key, "genome": str(genome), "status": result.status,
                  "accuracy": result.accuracy, "seconds": result.seconds}  # fmt: skip
        append(log, record)
        done[("standalone", seed, result.key)] = record
        print(f"standalone seed {seed} [{index + 1}/{len(todo)}] {genome}: {100 * result.accuracy:.2f}% "
              f"({result.seconds:.0f} s)", flush=True)  # fmt: skip


def oneshot_kind(sampling: str) -> str:
    return "one-shot" if sampling == "uniform" else f"one-shot-{sampling}"


def supernet_work(args: argparse.Namespace, seed: int, sampling: str) -> Path:
    return args.work / (f"supernet-{seed}" if sampling == "uniform" else f"supernet-{sampling}-{seed}")


def run_oneshot(args: argparse.Namespace, genomes: list, seed: int, done: dict, log: Path, sampling: str) -> None:
    from genetic_cnn.fitness import oneshot

    kind = oneshot_kind(sampling)
    todo = [genome for genome in genomes if (kind, seed, architecture_key(genome)) not in done]
    if not todo:
        return
    folder = supernet_work(args, seed, sampling)
    folder.mkdir(parents=True, exist_ok=True)
    # Data split as for standalone (seed 0); the supernet's weights and paths follow its own seed.
    config = study_config(args, seed, folder, sampling)
    data_config = study_config(args, 0, folder)
    from genetic_cnn.data.datasets import load_datasets

    datasets = load_datasets(data_config.data, seed=0)
    started = time.perf_counter()
    oneshot.prepare_with(config, datasets, progress=False, echo=lambda line: print(line, flush=True))
    print(f"supernet {sampling} {seed} ready ({time.perf_counter() - started:.0f} s this call)", flush=True)
    evaluator = oneshot.OneShotEvaluator(config, datasets, __import__("torch").device("cpu"))
    for index, genome in enumerate(todo):
        start = time.perf_counter()
        accuracy, loss = evaluator.measure(genome)
        record = {"kind": kind, "seed": seed, "key": architecture_key(genome), "genome": str(genome), "status": OK,
                  "accuracy": accuracy, "seconds": time.perf_counter() - start}  # fmt: skip
        append(log, record)
        done[(kind, seed, record["key"])] = record
        print(f"{kind} seed {seed} [{index + 1}/{len(todo)}] {genome}: {100 * accuracy:.2f}%", flush=True)


def summarize(args: argparse.Namespace, genomes: list, done: dict) -> dict[str, Any]:
    """Correlations over the architectures measured by every standalone seed and every supernet so far
    (all of them once the study is complete; a stopped study is summarized on what it measured)."""
    kinds = [("standalone", args.seeds)] + [(oneshot_kind(sampling), args.supernets) for sampling in args.sampling]
    keys = [
        key for key in (architecture_key(genome) for genome in genomes)
        if all((row := done.get((kind, seed, key))) is not None and row["status"] == OK
               for kind, count in kinds for seed in range(count))
    ]  # fmt: skip

    def accuracies(kind: str, seed: int) -> list[float] | None:
        rows = [done.get((kind, seed, key)) for key in keys]
        if any(row is None or row["status"] != OK for row in rows):
            return None
        return [100 * row["accuracy"] for row in rows]  # type: ignore[index]

    standalone = [a for seed in range(args.seeds) if (a := accuracies("standalone", seed)) is not None]
    result: dict[str, Any] = {"archs_compared": len(keys), "standalone_seeds_complete": len(standalone)}

    def tau_rho(x: list[float], y: list[float]) -> dict[str, float]:
        return {"kendall_tau": float(kendalltau(x, y).statistic), "spearman_rho": float(spearmanr(x, y).statistic)}

    if len(standalone) >= 2:
        pairs = list(itertools.combinations(range(len(standalone)), 2))
        result["standalone_seed_tau"] = statistics.fmean(tau_rho(standalone[i], standalone[j])["kendall_tau"] for i, j in pairs)
        within = [statistics.stdev(values) for values in zip(*standalone)]
        result["standalone_seed_sd"] = float(np.sqrt(np.mean(np.square(within))))
    mean_standalone = [statistics.fmean(values) for values in zip(*standalone)] if standalone else []
    if standalone:
        result["standalone_mean_range"] = [min(mean_standalone), max(mean_standalone)]
        result["standalone_spread_sd"] = statistics.stdev(mean_standalone)
    for sampling in args.sampling:
        kind = oneshot_kind(sampling)
        oneshot = [a for seed in range(args.supernets) if (a := accuracies(kind, seed)) is not None]
        rule: dict[str, Any] = {"supernets_complete": len(oneshot)}
        if len(oneshot) >= 2:
            rule["supernet_seed_tau"] = statistics.fmean(
                tau_rho(oneshot[i], oneshot[j])["kendall_tau"] for i, j in itertools.combinations(range(len(oneshot)), 2)
            )
        if oneshot:
            mean_oneshot = [statistics.fmean(values) for values in zip(*oneshot)]
            rule["oneshot_range"] = [min(mean_oneshot), max(mean_oneshot)]
        if standalone and oneshot:
            rule["oneshot_vs_standalone"] = tau_rho(mean_oneshot, mean_standalone)
            rule["per_supernet_vs_standalone"] = [tau_rho(values, mean_standalone) for values in oneshot]
        result[kind] = rule
    kinds = ["standalone", *(oneshot_kind(sampling) for sampling in args.sampling)]
    seconds = {kind: [row["seconds"] for (k, _, _), row in done.items() if k == kind] for kind in kinds}
    result["seconds_per_evaluation"] = {kind: statistics.fmean(values) for kind, values in seconds.items() if values}
    return result


def measure_all(args: argparse.Namespace, genomes: list, done: dict, log: Path) -> None:
    """Cheapest first, so that an early stop still leaves a supernet and a standalone seed to compare."""
    for sampling in args.sampling:
        run_oneshot(args, genomes, 0, done, log, sampling)
    run_standalone(args, genomes, 0, done, log)
    for seed in range(1, max(args.seeds, args.supernets)):
        if seed < args.seeds:
            run_standalone(args, genomes, seed, done, log)
        if seed < args.supernets:
            for sampling in args.sampling:
                run_oneshot(args, genomes, seed, done, log, sampling)


def main() -> None:
    args = parse_args()
    kinds = ["standalone", *(oneshot_kind(sampling) for sampling in args.sampling)]
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    log = args.work / "measurements.jsonl"
    done = load_measurements(log)
    genomes = stratified_sample((3, 5), args.archs, np.random.default_rng(0))
    if not args.summary_only:
        measure_all(args, genomes, done, log)
    supernet_training = {}
    from genetic_cnn.fitness import oneshot

    for sampling in args.sampling:
        for seed in range(args.supernets):
            trained = oneshot.supernet_training(study_config(args, seed, supernet_work(args, seed, sampling), sampling))
            supernet_training[f"{sampling}-{seed}"] = {"epochs": trained["epochs"], "seconds": trained["seconds"]}
    summary = {
        "fidelity": {key: getattr(args, key) for key in ("dataset", "subset", "validation", "test_subset", "schedule",
                                                         "supernet_schedule", "calibration_images", "sampling")},  # fmt: skip
        "archs": len(genomes), "seeds": args.seeds, "supernets": args.supernets,
        "machine": machine(), "statistics": summarize(args, genomes, done),
        "supernet_training": supernet_training,
        "architectures": [
            {"genome": str(genome), "key": architecture_key(genome),
             **{f"{kind}_{seed}": (done.get((kind, seed, architecture_key(genome))) or {}).get("accuracy")
                for kind in kinds for seed in range(max(args.seeds, args.supernets))}}
            for genome in genomes
        ],
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(summary["statistics"], indent=1))


if __name__ == "__main__":
    main()
