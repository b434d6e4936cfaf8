"""Seconds to measure one architecture's one-shot fitness, with and without the first-stage cache.

Loads a one-shot run's trained supernet (``RUN/supernet/weights.pt``) and its data, then measures
``--archs`` architectures of a seeded stratified sample both ways, alternating architecture by
architecture so that other load on the machine hits both sides alike:

- whole path: recalibrate every batch norm of the path on the calibration images, then evaluate
  the whole path on the validation split (what one-shot evaluation did before the cache);
- cached: ``OneShotEvaluator.measure``, which keeps each first-stage string's outputs and runs only
  the later stages and the head per architecture (the first use of each first stage included).

Both must give the same (accuracy, loss); the script checks it. Example::

    python benchmarks/oneshot_speed.py --run runs/mnist-oneshot --archs 40 --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from common import machine

from genetic_cnn.data import load_datasets
from genetic_cnn.oneshot import OneShotEvaluator
from genetic_cnn.space import stratified_sample
from genetic_cnn.store import load_run
from genetic_cnn.supernet import recalibrate_batch_norm
from genetic_cnn.train import evaluate_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a one-shot run folder whose supernet is trained")
    parser.add_argument("--archs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: as each worker of the auto executor)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with load_run(args.run) as run:
        config = run.config
    datasets = load_datasets(config.data, seed=config.run.seed)
    evaluator = OneShotEvaluator(config, datasets, torch.device("cpu"))
    batch = config.train.eval_batch_size
    genomes = stratified_sample(config.preset().nodes, args.archs, np.random.default_rng(1))
    whole, cached = [], []
    for genome in genomes:
        start = time.perf_counter()
        recalibrate_batch_norm(evaluator.supernet, genome, evaluator.calibration, batch)
        expected = evaluate_model(evaluator.supernet, evaluator.validation, batch, "cpu", channels_last=False)
        whole.append(time.perf_counter() - start)
        start = time.perf_counter()
        measured = evaluator.measure(genome)
        cached.append(time.perf_counter() - start)
        if measured != expected:
            raise SystemExit(f"{genome}: cached {measured} != whole path {expected}")
    first_stages = len({genome.stages[0] for genome in genomes})
    figures = {
        "machine": machine(), "run": str(args.run), "archs": len(genomes), "first_stages": first_stages,
        "threads": args.threads, "calibration_images": len(evaluator.calibration),
        "validation_images": len(evaluator.validation), "eval_batch_size": batch,
        "whole_path_s": statistics.fmean(whole), "cached_s": statistics.fmean(cached),
        "speedup": statistics.fmean(whole) / statistics.fmean(cached),
        "per_arch_ratio_min_max": [min(w / c for w, c in zip(whole, cached)), max(w / c for w, c in zip(whole, cached))],
    }  # fmt: skip
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
