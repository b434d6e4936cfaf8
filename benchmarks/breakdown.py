"""Where a training step's time goes, and the most the convolution kernels allow.

For the MNIST preset and a seeded sample of genomes, with the project's defaults (channels_last,
``run.reuse_memory``), this profiles training steps with ``torch.profiler`` and groups the time by
kind of operator: convolutions, batch normalization, ReLU, pooling, the fully connected layers,
and the rest (optimizer, loss, indexing, node sums). FLOPs per operator come from
``FlopCounterMode``, so each kind's achieved FLOP/s is put against the dense fp32 matmul rate
measured in the same run. The last line is the ceiling of the whole step with these kernels: its
FLOPs over the time of the convolutions and matmuls alone, as if everything else were free.

    python benchmarks/breakdown.py                   # project defaults
    python benchmarks/breakdown.py --nchw --system-allocator
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from common import load_average, machine, matmul_rate, table, write_json
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from genetic_cnn.nn.memory import reuse_freed_memory
from genetic_cnn.nn.network import build_network
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.presets import MNIST

# Operators (as the profiler names them) by kind; everything else is "other".
KINDS = {
    "convolution": ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::_convolution", "aten::convolution",
                    "aten::_slow_conv2d_forward", "aten::_slow_conv2d_backward"),  # fmt: skip
    "batch norm": ("aten::native_batch_norm", "aten::native_batch_norm_backward", "aten::_batch_norm_with_update",
                   "aten::batch_norm_backward", "aten::_native_batch_norm_legit"),  # fmt: skip
    "relu": ("aten::relu_", "aten::relu", "aten::clamp_min_", "aten::clamp_min", "aten::threshold_backward"),
    "max pooling": ("aten::max_pool2d_with_indices", "aten::max_pool2d_with_indices_backward"),
    "linear": ("aten::mm", "aten::addmm"),
}
FLOP_KINDS = {"convolution": ("convolution", "convolution_backward"), "linear": ("mm", "addmm")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--genomes", type=int, default=3, help="random genomes besides all zeros and all ones (default 3)")
    parser.add_argument("--steps", type=int, default=20, help="profiled training steps per genome (default 20)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    parser.add_argument("--nchw", action="store_true", help="the default memory format instead of channels_last")
    parser.add_argument("--system-allocator", action="store_true", help="leave glibc's malloc settings as they are")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="breakdown", help="results file name (benchmarks/results/<name>.json)")
    parser.add_argument("--json", help="write the JSON here instead")
    return parser.parse_args(argv)


def kind_of(name: str) -> str:
    return next((kind for kind, names in KINDS.items() if name in names), "other")


def flops_by_kind(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(images), labels).backward()
    model.zero_grad(set_to_none=True)
    by_op = {str(op).split(".")[-1]: count for op, count in counter.get_flop_counts()["Global"].items()}
    totals = {kind: float(sum(by_op.get(op, 0) for op in ops)) for kind, ops in FLOP_KINDS.items()}
    totals["total"] = float(sum(by_op.values()))
    return totals


def profile_genome(genome: Genome, args: argparse.Namespace) -> dict[str, Any]:
    generator = torch.Generator().manual_seed(args.seed)
    images = torch.randn(args.batch_size, *MNIST.input_shape, generator=generator)
    labels = torch.randint(0, MNIST.num_classes, (args.batch_size,), generator=generator)
    torch.manual_seed(args.seed)
    model = build_network(genome, MNIST)
    if not args.nchw:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    flops = flops_by_kind(model, images, labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    started = time.perf_counter()
    for _ in range(args.steps):
        step()
    unprofiled = (time.perf_counter() - started) / args.steps
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(args.steps):
            step()
    seconds: dict[str, float] = defaultdict(float)
    for event in profiler.key_averages():
        seconds[kind_of(event.key)] += event.self_cpu_time_total / 1e6 / args.steps
    return {"genome": str(genome), "seconds_per_step": unprofiled, "profiled_seconds_per_step": sum(seconds.values()),
            "seconds": dict(seconds), "flops_per_step": flops}  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    reused = False if args.system_allocator else reuse_freed_memory()
    rng = np.random.default_rng(args.seed)
    genomes = [Genome.zeros(MNIST.nodes), Genome.ones(MNIST.nodes)] + [Genome.random(MNIST.nodes, rng) for _ in range(args.genomes)]
    load_before = load_average()
    ceiling = matmul_rate()["best"]
    print(f"float32 matmul rate: {ceiling / 1e9:.1f} GFLOP/s on {torch.get_num_threads()} threads; "
          f"{'NCHW' if args.nchw else 'channels_last'}, reuse_memory {reused}", flush=True)  # fmt: skip
    results = []
    for genome in genomes:
        results.append(profile_genome(genome, args))
        row = results[-1]
        print(f"  {genome}: {args.batch_size / row['seconds_per_step']:.0f} images/s, "
              f"{row['flops_per_step']['total'] / row['seconds_per_step'] / ceiling:.0%} of the matmul rate", flush=True)  # fmt: skip
    ceiling = max(ceiling, matmul_rate()["best"])

    kinds = [*KINDS, "other"]
    time_total = {kind: sum(row["seconds"].get(kind, 0.0) for row in results) for kind in kinds}
    profiled = sum(time_total.values())
    flop_total = {kind: sum(row["flops_per_step"].get(kind, 0.0) for row in results) for kind in [*FLOP_KINDS, "total"]}
    unprofiled = sum(row["seconds_per_step"] for row in results)
    rows = []
    for kind in kinds:
        rate = flop_total[kind] / time_total[kind] if kind in FLOP_KINDS and time_total[kind] else None
        rows.append([kind, f"{time_total[kind] * 1e3 / len(results):.1f}", f"{time_total[kind] / profiled:.0%}",
                     f"{rate / 1e9:.1f}" if rate else "-", f"{rate / ceiling:.0%}" if rate else "-"])  # fmt: skip
    step_rate = flop_total["total"] / unprofiled
    bound = flop_total["total"] / (time_total["convolution"] + time_total["linear"])
    summary = {
        "benchmark": "breakdown",
        "machine": machine(),
        "load_average": {"before": load_before, "after": load_average()},
        "settings": {"batch_size": args.batch_size, "steps": args.steps, "threads": torch.get_num_threads(),
                     "channels_last": not args.nchw, "reuse_memory": reused, "seed": args.seed},  # fmt: skip
        "matmul_flops_per_s": ceiling,
        "genomes": results,
        "share_of_time": {kind: time_total[kind] / profiled for kind in kinds},
        "convolution_fraction_of_matmul": flop_total["convolution"] / time_total["convolution"] / ceiling,
        "step_fraction_of_matmul": step_rate / ceiling,
        "step_bound_fraction_of_matmul": bound / ceiling,
    }
    print()
    print(table(rows, ["kind", "ms/step", "share", "GFLOP/s", "of matmul"]))
    print(f"\nwhole step: {step_rate / 1e9:.1f} GFLOP/s = {step_rate / ceiling:.0%} of the {ceiling / 1e9:.1f} GFLOP/s matmul rate "
          f"(mean over {len(results)} genomes, unprofiled)")  # fmt: skip
    print(f"if everything but convolutions and matmuls were free: {bound / 1e9:.1f} GFLOP/s = {bound / ceiling:.0%}")
    print(f"load average {summary['load_average']['before']:.2f} before, {summary['load_average']['after']:.2f} after")
    print(f"wrote {write_json(summary, args.name, args.json)}")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
