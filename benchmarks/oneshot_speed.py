"""Seconds to measure one architecture's one-shot fitness, with and without the kept node outputs.

Loads a one-shot run's trained supernet (``RUN/supernet/weights.pt``) and its data, then measures
``--archs`` architectures both ways, alternating architecture by architecture so that other load on
the machine hits both sides alike:

- whole path: recalibrate every batch norm of the path on the calibration images, then evaluate
  the whole path on the validation split (what one-shot evaluation did first);
- kept: ``OneShotEvaluator.measure``, which keeps node outputs per provenance (``NodeMemo``) and
  computes only the nodes no earlier architecture computed the same way.

``--order key`` takes the architectures as ``genetic-cnn tabulate`` does (in key order, from
``--start``, every ``--stride``-th: 2 is what each of two workers sees); ``--order stratified`` a
seeded sample spread over convolution counts, as a search's scattered architectures. Both ways must
give the same (accuracy, loss); the script checks it. Example::

    python benchmarks/oneshot_speed.py --run runs/mnist-oneshot --archs 40 --threads 1 --order key --stride 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from common import machine, write_json

from genetic_cnn.data.datasets import load_datasets
from genetic_cnn.fitness.oneshot import OneShotEvaluator
from genetic_cnn.fitness.supernet import recalibrate_batch_norm
from genetic_cnn.history.store import load_run
from genetic_cnn.nn.train import evaluate_model
from genetic_cnn.space.enumerate import architectures, stratified_sample
from genetic_cnn.space.graph import representative


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a one-shot run folder whose supernet is trained")
    parser.add_argument("--archs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: as each worker of the auto executor)")
    parser.add_argument("--order", choices=("key", "stratified"), default="key")
    parser.add_argument("--start", type=int, default=0, help="key order: the first architecture's position")
    parser.add_argument("--stride", type=int, default=1, help="key order: every STRIDE-th architecture")
    parser.add_argument("--json", help="write the figures here (default benchmarks/results/oneshot_speed.json)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with load_run(args.run) as run:
        config = run.config
    datasets = load_datasets(config.data, seed=config.run.seed)
    evaluator = OneShotEvaluator(config, datasets, torch.device("cpu"))
    batch = config.train.eval_batch_size
    nodes = config.preset().nodes
    if args.order == "key":
        keys = list(architectures(nodes))[args.start :: args.stride][: args.archs]
        genomes = [representative(key, nodes) for key in keys]
    else:
        genomes = stratified_sample(nodes, args.archs, np.random.default_rng(1))
    whole, kept = [], []
    for genome in genomes:
        start = time.perf_counter()
        recalibrate_batch_norm(evaluator.supernet, genome, evaluator.calibration, batch)
        expected = evaluate_model(evaluator.supernet, evaluator.validation, batch, "cpu", channels_last=False)
        whole.append(time.perf_counter() - start)
        start = time.perf_counter()
        measured = evaluator.measure(genome)
        kept.append(time.perf_counter() - start)
        if measured != expected:
            raise SystemExit(f"{genome}: kept {measured} != whole path {expected}")
    first_stages = len({genome.stages[0] for genome in genomes})
    figures = {
        "machine": machine(), "run": str(args.run), "archs": len(genomes), "first_stages": first_stages,
        "order": args.order, "start": args.start, "stride": args.stride, "threads": args.threads,
        "values_computed": evaluator.memo.computed,
        "values_used": sum(len(order) + 1 for genome in genomes for order, _ in evaluator.supernet.plans(genome)), "calibration_images": len(evaluator.calibration),
        "validation_images": len(evaluator.validation), "eval_batch_size": batch,
        "whole_path_s": statistics.fmean(whole), "kept_s": statistics.fmean(kept),
        "speedup": statistics.fmean(whole) / statistics.fmean(kept),
        "per_arch_ratio_min_max": [min(w / c for w, c in zip(whole, kept)), max(w / c for w, c in zip(whole, kept))],
    }  # fmt: skip
    print(json.dumps(figures, indent=1))
    print(f"wrote {write_json(figures, 'oneshot_speed', args.json)}")


if __name__ == "__main__":
    main()
