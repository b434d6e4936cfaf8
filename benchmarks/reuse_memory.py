"""Does ``run.reuse_memory`` make the project's training faster? Page faults and images/s, A/B.

Each side runs in a fresh process, because the allocator setting is process-wide and cannot be
undone: *reuse* calls ``genetic_cnn.nn.memory.reuse_freed_memory()`` (what ``run.reuse_memory = true``
does), *glibc* leaves malloc at glibc's real defaults (nothing pinned: no ``mallopt``, and the
``MALLOC_*`` / ``GLIBC_TUNABLES`` environment variables are removed from the child's environment).
The sides alternate, one pair after another, and the side that goes first alternates too
(AB BA AB ...), so a drift in the machine's load hits both equally.

In each process, for every genome in turn (as an evaluation worker does), a fresh MNIST-preset
network is trained by the project's own ``genetic_cnn.nn.train.train_model`` with its defaults
(channels_last, Adam, batch 128) for one epoch of ``--warmup + --steps + 1`` batches. A forward
pre-hook on the network stamps the clock, the minor page faults (``getrusage().ru_minflt``) and the
CPU counters at the start of each training step, so the figures cover exactly ``--steps`` whole
steps after ``--warmup`` warm-up steps, inside the real training loop. Also recorded: the same for
the whole ``train_model`` call (warm-up, the copy to channels_last, the validation pass).

Images are random, of MNIST's shape (28x28x1): the speed does not depend on the pixels. ``--root
DIR`` uses real MNIST (DIR/MNIST/raw/, torchvision's layout) instead.

The load is recorded in every process: the load average before and after, and the share of the
machine's CPU time that other processes used during the timed steps (/proc/stat less this
process's own CPU time).

    python benchmarks/reuse_memory.py                       # 5 pairs, 2 and 1 threads
    python benchmarks/reuse_memory.py --pairs 8 --threads 2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import cpu_model, load_average, table, wait_until_quiet, write_json

GENOMES = ("0-00|0-00-000-0000", "1-11|1-11-101-1001", "1-01|0-01-100-0111")
SIDES = ("glibc", "reuse")
ALLOCATOR_ENVIRONMENT = ("MALLOC_ARENA_MAX", "MALLOC_ARENA_TEST", "MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_",
                         "MALLOC_TOP_PAD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_PERTURB_", "MALLOC_CHECK_",
                         "GLIBC_TUNABLES", "LD_PRELOAD")  # fmt: skip
# Student's t, two-sided 95%, by degrees of freedom (1..30); beyond 30, 2.0 is close enough.
T95 = (12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.20, 2.18, 2.16, 2.14, 2.13,
       2.12, 2.11, 2.10, 2.09, 2.09, 2.08, 2.07, 2.07, 2.06, 2.06, 2.06, 2.05, 2.05, 2.05, 2.04)  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--genomes", nargs="+", default=list(GENOMES), help=f"MNIST-preset genomes (default {' '.join(GENOMES)})"
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1], help="torch thread counts (default 2 1)")
    parser.add_argument(
        "--pairs", type=int, default=5, help="pairs of processes (one per side) per thread count (default 5)"
    )
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per genome (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed training steps before them (default 3)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--root", help="folder holding MNIST/raw/ (default: random images of MNIST's shape)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=120.0,
        help="before each process, wait up to this many seconds for other processes to leave the CPU (default 120)",
    )
    parser.add_argument(
        "--max-others",
        type=float,
        default=0.2,
        help="summarize only pairs whose contention (the share of the CPU that other processes used beyond the "
        "cores a side leaves free) stayed below this during every timed span of both sides (default 0.2); "
        "all pairs stay in the JSON",
    )
    parser.add_argument("--name", default="reuse_memory", help="results file name (benchmarks/results/<name>.json)")
    parser.add_argument("--json", help="write the JSON here instead")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # one side, run in this fresh process
    return parser.parse_args(argv)


# --- the child: one side, one thread count, every genome --------------------------------------


class Stamper:
    """A forward pre-hook: ``stamp()`` at the start of the training steps numbered in ``at`` (from 0)."""

    def __init__(self, at: tuple[int, ...], stamp: Callable[[], Any]) -> None:
        self.at, self.stamp, self.step = at, stamp, 0
        self.stamps: dict[int, Any] = {}

    def __call__(self, module: Any, inputs: Any) -> None:
        if module.training:  # training steps only, not the validation pass
            if self.step in self.at:
                self.stamps[self.step] = self.stamp()
            self.step += 1


def child(args: argparse.Namespace) -> dict[str, Any]:
    side = args.child
    threads = args.threads[0]
    import torch  # imported here: the parent never needs torch

    torch.set_num_threads(threads)
    from common import cpu_sample, others_share

    from genetic_cnn.config import DataConfig, TrainConfig
    from genetic_cnn.data.datasets import Split, load_datasets
    from genetic_cnn.nn.memory import reuse_freed_memory, reusing_freed_memory
    from genetic_cnn.nn.network import build_network
    from genetic_cnn.nn.train import train_model
    from genetic_cnn.space.presets import MNIST

    if side == "reuse" and not reuse_freed_memory():
        raise SystemExit("run.reuse_memory has no effect here (it needs Linux with glibc)")
    load_before = load_average()
    batches = args.warmup + args.steps + 1  # the last batch is only there to stamp the end of the timed steps
    count = batches * args.batch_size
    validation = 256
    if args.root:
        data = load_datasets(DataConfig(dataset="mnist", root=args.root, subset=count + validation,
                                        validation=validation), args.seed)  # fmt: skip
        train, held_out = data.train, data.validation
    else:
        generator = torch.Generator().manual_seed(args.seed)
        images = torch.randn(count + validation, *MNIST.input_shape, generator=generator)
        labels = torch.randint(0, MNIST.num_classes, (count + validation,), generator=generator)
        train, held_out = Split(images[:count], labels[:count]), Split(images[count:], labels[count:])
    config = TrainConfig(schedule=((1, 1e-3),), batch_size=args.batch_size)  # the MNIST schedule's first phase

    def stamp() -> tuple[float, int, Any]:
        return time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt, cpu_sample()

    results = []
    for genome in args.genomes:
        torch.manual_seed(args.seed)
        model = build_network(genome, MNIST)
        stamper = Stamper((args.warmup, args.warmup + args.steps), stamp)
        handle = model.register_forward_pre_hook(stamper)
        call_start = stamp()
        train_model(model, train, held_out, config, seed=args.seed)  # the project's defaults: channels_last
        call_end = stamp()
        handle.remove()
        (t0, f0, c0), (t1, f1, c1) = stamper.stamps[args.warmup], stamper.stamps[args.warmup + args.steps]
        results.append({
            "genome": genome,
            "images_per_s": args.steps * args.batch_size / (t1 - t0),
            "seconds": t1 - t0,
            "page_faults": f1 - f0,
            "others_cpu_share": others_share(c0, c1),
            # what other processes took beyond the cores this process leaves free: what competed with it
            "contention": max(0.0, others_share(c0, c1) - max(0.0, 1 - threads / (os.cpu_count() or 1))),
            "call_seconds": call_end[0] - call_start[0],
            "call_images": count,
            "call_page_faults": call_end[1] - call_start[1],
        })  # fmt: skip
    return {"side": side, "threads": threads, "reuse_applied": reusing_freed_memory(),
            "load_average": {"before": load_before, "after": load_average()}, "genomes": results}  # fmt: skip


# --- the parent: alternate the sides, summarize ------------------------------------------------


def run_side(args: argparse.Namespace, side: str, threads: int) -> dict[str, Any]:
    environment = {key: value for key, value in os.environ.items() if key not in ALLOCATOR_ENVIRONMENT}
    environment["OMP_NUM_THREADS"] = str(threads)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", side, "--threads", str(threads),
               "--genomes", *args.genomes, "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--batch-size", str(args.batch_size), "--seed", str(args.seed), *(["--root", args.root] if args.root else [])]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    if done.returncode != 0:
        raise SystemExit(f"the {side} process failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def interval(ratios: list[float]) -> tuple[float, float]:
    """95% t-interval of the mean of log ratios, as ratios (NaN below two pairs)."""
    if len(ratios) < 2:
        return math.nan, math.nan
    logs = [math.log(ratio) for ratio in ratios]
    mean, spread = statistics.fmean(logs), statistics.stdev(logs) / math.sqrt(len(logs))
    t = T95[len(logs) - 2] if len(logs) - 1 <= len(T95) else 2.0
    return math.exp(mean - t * spread), math.exp(mean + t * spread)


def per_pair(pairs: list[dict[str, dict[str, Any]]], side: str, genome: str, key: str) -> list[float]:
    """``key`` of ``genome`` on ``side`` in each pair; for "all", every genome's images over their total
    time (images/s) or the sum (page faults)."""
    out = []
    for pair in pairs:
        items = [g for g in pair[side]["genomes"] if genome in ("all", g["genome"])]
        if key == "call_images_per_s":  # the whole train_model call: every batch it trains over its seconds
            out.append(sum(g["call_images"] for g in items) / sum(g["call_seconds"] for g in items))
        elif key == "images_per_s":
            out.append(sum(g["images_per_s"] * g["seconds"] for g in items) / sum(g["seconds"] for g in items))
        else:
            out.append(sum(g[key] for g in items))
    return out


def summarize(records: list[dict[str, Any]], genomes: list[str], threads_list: list[int],
              max_others: float) -> tuple[list[list[str]], list[dict[str, Any]]]:  # fmt: skip
    rows, data = [], []
    for threads in threads_list:
        pairs: dict[int, dict[str, dict[str, Any]]] = {}
        for record in records:
            if record["threads"] == threads:
                pairs.setdefault(record["pair"], {})[record["side"]] = record
        complete = [pair for pair in pairs.values() if len(pair) == 2 and all(
            g["contention"] < max_others for side in SIDES for g in pair[side]["genomes"])]  # fmt: skip
        if not complete:
            rows.append([str(threads), f"no pair with contention below {max_others:.0%}", *[""] * 11])
            continue
        for genome in [*genomes, "all"]:
            rates = {side: per_pair(complete, side, genome, "images_per_s") for side in SIDES}
            faults = {side: per_pair(complete, side, genome, "page_faults") for side in SIDES}
            ratios = [r / g for r, g in zip(rates["reuse"], rates["glibc"])]
            calls = {side: per_pair(complete, side, genome, "call_images_per_s") for side in SIDES}
            call_ratios = [r / g for r, g in zip(calls["reuse"], calls["glibc"])]
            low, high = interval(ratios)
            spans = [
                g
                for pair in complete
                for side in SIDES
                for g in pair[side]["genomes"]
                if genome in ("all", g["genome"])
            ]
            others = [g["others_cpu_share"] for g in spans]
            contention = [g["contention"] for g in spans]
            entry = {
                "threads": threads, "genome": genome, "pairs": len(complete),
                "images_per_s": {side: rates[side] for side in SIDES},
                "page_faults": {side: faults[side] for side in SIDES},
                "ratios": ratios, "ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios),
                "ratio_ci95": [low, high], "others_cpu_share_max": max(others), "others_cpu_share_median": statistics.median(others),
                "contention_max": max(contention), "call_images_per_s": calls, "call_ratios": call_ratios,
            }  # fmt: skip
            data.append(entry)
            rows.append([
                str(threads), genome, str(len(complete)),
                f"{statistics.median(faults['glibc']):,.0f} ({min(faults['glibc']):,.0f}-{max(faults['glibc']):,.0f})",
                f"{statistics.median(faults['reuse']):,.0f} ({min(faults['reuse']):,.0f}-{max(faults['reuse']):,.0f})",
                f"{statistics.median(rates['glibc']):.0f} ({min(rates['glibc']):.0f}-{max(rates['glibc']):.0f})",
                f"{statistics.median(rates['reuse']):.0f} ({min(rates['reuse']):.0f}-{max(rates['reuse']):.0f})",
                f"{statistics.median(ratios):.3f}x", f"{min(ratios):.3f}-{max(ratios):.3f}", f"{low:.3f}-{high:.3f}",
                f"{statistics.median(call_ratios):.3f}x", f"{max(others):.0%}", f"{max(contention):.0%}",
            ])  # fmt: skip
    return rows, data


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return None
    import torch

    print(f"CPU: {cpu_model()}; {os.cpu_count()} cores; torch {torch.__version__}; load average {os.getloadavg()}")
    print(f"{args.pairs} pairs x threads {args.threads}; {args.steps} steps of batch {args.batch_size} after {args.warmup} "
          f"warm-up steps per genome; {'real MNIST' if args.root else 'random images of MNIST shape'}", flush=True)  # fmt: skip
    started = time.perf_counter()
    records = []
    for pair in range(args.pairs):
        order = SIDES if pair % 2 == 0 else SIDES[::-1]
        for threads in args.threads:
            for side in order:
                busy = wait_until_quiet(args.quiet_wait) if args.quiet_wait else math.nan
                record = run_side(args, side, threads) | {"pair": pair, "busy_before": busy}
                records.append(record)
                rates = ", ".join(f"{g['images_per_s']:.0f}/s {g['page_faults']:,} faults" for g in record["genomes"])
                others = max(g["others_cpu_share"] for g in record["genomes"])
                contention = max(g["contention"] for g in record["genomes"])
                print(f"  pair {pair + 1} {threads} thread(s) {side:<5} {rates}; load {record['load_average']['before']:.2f}, "
                      f"others <= {others:.1%}, contention <= {contention:.1%}", flush=True)  # fmt: skip
    rows, data = summarize(records, args.genomes, args.threads, args.max_others)
    print()
    print(
        f"minor page faults in {args.steps} steps and training images/s: median (min-max) over the pairs whose contention "
        f"stayed below {args.max_others:.0%} (column pairs); ratio = reuse / glibc images/s per pair (call ratio: the "
        "same for the whole train_model call, warm-up and validation included); others, contention: the most other "
        "processes used of the whole CPU, and beyond the cores a side leaves free, during a timed span"
    )
    print(table(rows, ["threads", "genome", "pairs", "faults glibc", "faults reuse", "images/s glibc", "images/s reuse",
                       "ratio", "min-max", "95% CI", "call ratio", "others", "contention"]))  # fmt: skip
    loads = [record["load_average"]["before"] for record in records]
    print(
        f"\nload average {min(loads):.2f}-{max(loads):.2f} at the start of the processes; "
        f"wall time {time.perf_counter() - started:.0f} s"
    )
    result = {
        "benchmark": "reuse_memory",
        "cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch.__version__, "python": sys.version.split()[0],
        "settings": {"genomes": args.genomes, "threads": args.threads, "pairs": args.pairs, "steps": args.steps,
                     "warmup": args.warmup, "batch_size": args.batch_size, "real_mnist": bool(args.root), "seed": args.seed,
                     "quiet_wait": args.quiet_wait, "max_others": args.max_others},
        "summary": data,
        "processes": records,
    }  # fmt: skip
    print(f"wrote {write_json(result, args.name, args.json)}")
    return result


if __name__ == "__main__":
    main()
