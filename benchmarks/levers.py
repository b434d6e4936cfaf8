"""Measure, one at a time, what each CPU speed lever does for training the MNIST preset's networks.

Every lever is measured against the project's defaults (``train_model``'s loop: NCHW, batch 128,
Adam with foreach, oneDNN convolutions, torch's thread count) on the same genome sample (all zeros
plus ``--genomes`` random ones): training images per second over ``--images`` images per genome,
after two warm-up steps, the best of ``--rounds`` rounds (the machine is shared; the best round is
the least disturbed). Evaluation levers (batch size, inference_mode vs no_grad, channels_last) are
timed on ``--eval-images`` forward passes.

Levers: threads (1, 2), batch size (64..512), channels_last, oneDNN off (im2col + MKL GEMM),
fused Adam, flush-denormal, two single-thread processes side by side (two evaluations at once),
torch.compile (compile time against the time it saves over a 25-epoch training), and the
evaluation levers.

    python benchmarks/levers.py --root DIR      # real MNIST (DIR/MNIST/raw/)
    python benchmarks/levers.py                 # random images of MNIST's shape: the speed is the same
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from common import load_average, machine, matmul_rate, mnist_root, table, write_json

from genetic_cnn.config import DataConfig, TrainConfig
from genetic_cnn.data import Split, load_datasets
from genetic_cnn.genome import Genome
from genetic_cnn.network import build_network, count_flops
from genetic_cnn.presets import MNIST
from genetic_cnn.train import batch_bounds, train_model

FULL_TRAINING_IMAGES = 25 * 50_000  # the paper's MNIST schedule: 25 epochs of 50,000 images


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--root", help="folder holding MNIST/raw/ (default: random images of MNIST's shape)")
    where.add_argument("--mnist-gz", help="folder holding the four MNIST *.gz files")
    parser.add_argument("--images", type=int, default=1024, help="training images timed per genome and lever (default 1024)")
    parser.add_argument("--eval-images", type=int, default=5000, help="images of each evaluation timing (default 5000)")
    parser.add_argument("--genomes", type=int, default=2, help="random genomes besides all zeros (default 2)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per lever; the best is kept (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-compile", action="store_true", help="do not measure torch.compile (slow to compile)")
    parser.add_argument("--skip-processes", action="store_true", help="do not measure two processes side by side")
    parser.add_argument("--only", nargs="*", help="measure only these levers (names as printed)")
    parser.add_argument("--name", default="levers", help="results file name (benchmarks/results/<name>.json)")
    parser.add_argument("--json", help="write the JSON here instead")
    return parser.parse_args(argv)


def images_and_labels(args: argparse.Namespace, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` normalized MNIST training images, or random ones of the same shape without --root."""
    if args.root or args.mnist_gz:
        temporary: list[tempfile.TemporaryDirectory] = []
        root = mnist_root(args, temporary)
        data = load_datasets(DataConfig(dataset="mnist", root=str(root), subset=count + 1, validation=1), args.seed)
        for folder in temporary:
            folder.cleanup()
        return data.train.images, data.train.labels
    generator = torch.Generator().manual_seed(args.seed)
    return torch.randn(count, *MNIST.input_shape, generator=generator), torch.randint(0, 10, (count,), generator=generator)


@dataclass(frozen=True)
class Setting:
    """One way of training: everything a lever may change."""

    threads: int = 0
    """0 = torch's default."""
    batch: int = 128
    channels_last: bool = False
    mkldnn: bool = True
    fused_adam: bool = False
    flush_denormal: bool = False
    compiled: bool = False


@contextlib.contextmanager
def applied(setting: Setting) -> Iterator[None]:
    threads = torch.get_num_threads()
    if setting.threads:
        torch.set_num_threads(setting.threads)
    torch.set_flush_denormal(setting.flush_denormal)
    try:
        with torch.backends.mkldnn.flags(enabled=setting.mkldnn):
            yield
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(False)


def train_steps(genome: Genome, images: torch.Tensor, labels: torch.Tensor, setting: Setting, seed: int) -> tuple[float, float]:
    """(seconds of the timed steps, seconds of the two warm-up steps): ``train_model``'s inner loop."""
    torch.manual_seed(seed)
    model: Any = build_network(genome, MNIST)
    if setting.channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=setting.fused_adam or None)
    if setting.compiled:
        model = torch.compile(model)
    model.train()
    bounds = batch_bounds(len(labels), setting.batch)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    total = torch.zeros(())

    def step(start: int, stop: int) -> None:
        nonlocal total
        index = order[start:stop]
        loss = F.cross_entropy(model(images[index]), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach() * len(index)
        if not torch.isfinite(loss):
            raise FloatingPointError("diverged")

    started = time.perf_counter()
    for start, stop in bounds[:2]:
        step(start, stop)
    warmed = time.perf_counter()
    for start, stop in bounds[2:]:
        step(start, stop)
    float(total)
    return time.perf_counter() - warmed, warmed - started


def train_rate(genomes: list[Genome], images: torch.Tensor, labels: torch.Tensor, setting: Setting, args: argparse.Namespace) -> dict[str, float]:
    """Best-of-rounds images/s over all genomes (timed images / timed seconds, warm-up excluded)."""
    timed_images = sum(stop - start for start, stop in batch_bounds(len(labels), setting.batch)[2:])
    best = 0.0
    warmups = []
    with applied(setting):
        for _ in range(args.rounds):
            seconds = 0.0
            for genome in genomes:
                timed, warm = train_steps(genome, images, labels, setting, args.seed)
                seconds += timed
                warmups.append(warm)
            best = max(best, timed_images * len(genomes) / seconds)
    return {"images_per_s": best, "warmup_seconds": max(warmups)}


def eval_rate(genomes: list[Genome], images: torch.Tensor, batch: int, mode: str, channels_last: bool, args: argparse.Namespace) -> float:
    """Best-of-rounds forward images/s in eval mode, as ``train._evaluate`` runs it."""
    best = 0.0
    grad_mode: Callable[[], Any] = torch.inference_mode if mode == "inference_mode" else torch.no_grad
    models = []
    for genome in genomes:
        model: Any = build_network(genome, MNIST).eval()
        models.append(model.to(memory_format=torch.channels_last) if channels_last else model)
    for _ in range(args.rounds):
        seconds = 0.0
        for model in models:
            with grad_mode():
                model(images[:batch])  # warm-up
                started = time.perf_counter()
                for start in range(0, len(images), batch):
                    model(images[start : start + batch]).argmax(dim=1)
                seconds += time.perf_counter() - started
        best = max(best, len(images) * len(models) / seconds)
    return best


def project_rate(genomes: list[Genome], images: torch.Tensor, labels: torch.Tensor, args: argparse.Namespace) -> float:
    """``train_model`` itself for one epoch (with its final validation on 1 batch): checks ``train_steps``."""
    config = TrainConfig(schedule=((1, 1e-3),), batch_size=128, eval_batch_size=1000)
    best = 0.0
    holdout = 128
    train = Split(images[holdout:], labels[holdout:])
    validation = Split(images[:holdout], labels[:holdout])
    for _ in range(args.rounds):
        seconds = 0.0
        for genome in genomes:
            torch.manual_seed(args.seed)
            model = build_network(genome, MNIST)
            seconds += train_model(model, train, validation, config, seed=args.seed).seconds
        best = max(best, len(train) * len(genomes) / seconds)
    return best


def _process_worker(genomes: list[str], images: torch.Tensor, labels: torch.Tensor, seed: int, barrier: Any, queue: Any) -> None:
    torch.set_num_threads(1)
    parsed = [Genome.from_string(text, nodes=MNIST.nodes) for text in genomes]
    for genome in parsed:  # warm up every shape before the common start
        train_steps(genome, images[: 2 * 128], labels[: 2 * 128], Setting(threads=1), seed)
    barrier.wait()
    started = time.time()
    for genome in parsed:
        train_steps(genome, images, labels, Setting(threads=1), seed)
    queue.put((started, time.time()))


def processes_rate(genomes: list[Genome], images: torch.Tensor, labels: torch.Tensor, args: argparse.Namespace, workers: int = 2) -> float:
    """Aggregate images/s of ``workers`` single-thread processes training at once (two evaluations in parallel)."""
    context = multiprocessing.get_context("spawn")
    timed_images = sum(stop - start for start, stop in batch_bounds(len(labels), 128)[2:]) * len(genomes)
    best = 0.0
    for _ in range(args.rounds):
        barrier, queue = context.Barrier(workers), context.Queue()
        texts = [str(genome) for genome in genomes]
        processes = [context.Process(target=_process_worker, args=(texts, images, labels, args.seed, barrier, queue))
                     for _ in range(workers)]  # fmt: skip
        for process in processes:
            process.start()
        spans = [queue.get() for _ in processes]
        for process in processes:
            process.join()
        wall = max(end for _, end in spans) - min(start for start, _ in spans)
        best = max(best, workers * timed_images / wall)  # the timed steps only (two warm-up steps per genome excluded)
    return best


def compile_payoff(genome: Genome, images: torch.Tensor, labels: torch.Tensor, args: argparse.Namespace, eager_rate: float) -> dict[str, float]:
    """Compile time against the time the compiled steps save over a full 25-epoch training (train mode only)."""
    torch._dynamo.reset()
    timed, warm = train_steps(genome, images, labels, Setting(compiled=True), args.seed)
    timed_images = sum(stop - start for start, stop in batch_bounds(len(labels), 128)[2:])
    rate = timed_images / timed
    saved = FULL_TRAINING_IMAGES / eager_rate - FULL_TRAINING_IMAGES / rate
    return {"compile_seconds": warm, "images_per_s": rate, "eager_images_per_s": eager_rate,
            "seconds_saved_over_25_epochs": saved, "pays": saved > warm}  # fmt: skip


@dataclass
class Report:
    rows: list[list[str]] = field(default_factory=list)
    data: list[dict[str, Any]] = field(default_factory=list)

    def add(self, lever: str, setting: str, rate: float, reference: float | None, note: str = "", **extra: Any) -> None:
        ratio = f"{rate / reference:.2f}x" if reference else "-"
        self.rows.append([lever, setting, f"{rate:.0f}", ratio, note])
        self.data.append({"lever": lever, "setting": setting, "images_per_s": rate, "vs_default": rate / reference if reference else None, "note": note, **extra})
        print(f"  {lever:<16} {setting:<28} {rate:8.0f} images/s  {ratio:>6}  {note}", flush=True)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    wanted = set(args.only or [])

    def want(lever: str) -> bool:
        return not wanted or lever in wanted

    rng = np.random.default_rng(args.seed)
    genomes = [Genome.zeros(MNIST.nodes)] + [Genome.random(MNIST.nodes, rng) for _ in range(args.genomes)]
    count = max(args.images, args.eval_images)
    images, labels = images_and_labels(args, count)
    train_images, train_labels = images[: args.images], labels[: args.images]
    default_threads = torch.get_num_threads()
    flops = {str(genome): count_flops(build_network(genome, MNIST), MNIST.input_shape, backward=True) for genome in genomes}
    mean_flops = sum(flops.values()) / len(flops)
    load_before = load_average()
    print(f"torch {torch.__version__}, {default_threads} threads by default, load average {load_before:.2f}")
    print(f"genomes: {', '.join(str(genome) for genome in genomes)} ({mean_flops / 1e6:.1f} MFLOP/image on average, "
          f"forward and backward)", flush=True)  # fmt: skip
    ceiling = {threads: matmul_rate(seconds=0.5)["best"] for threads in sorted({1, default_threads})}
    for threads, rate in ceiling.items():
        torch.set_num_threads(threads)
        print(f"  matmul ceiling at {threads} thread(s): {rate / 1e9:.1f} GFLOP/s", flush=True)
    torch.set_num_threads(default_threads)

    report = Report()
    default = Setting()
    reference = train_rate(genomes, train_images, train_labels, default, args)["images_per_s"]
    report.add("default", f"{default_threads} threads, batch 128, NCHW", reference, None,
               f"{reference * mean_flops / 1e9:.1f} GFLOP/s, {reference * mean_flops / ceiling[default_threads]:.0%} of matmul")  # fmt: skip
    if want("train_model"):
        rate = project_rate(genomes, train_images, train_labels, args)
        report.add("train_model", "the project's own loop", rate, reference, "includes a 128-image validation")
    if want("threads"):
        for threads in sorted({1, 2, default_threads}):
            rate = train_rate(genomes, train_images, train_labels, Setting(threads=threads), args)["images_per_s"]
            report.add("threads", f"{threads} thread(s)", rate, reference)
    if want("batch"):
        for batch in (64, 256, 512):
            if batch * 3 <= len(train_labels):
                rate = train_rate(genomes, train_images, train_labels, Setting(batch=batch), args)["images_per_s"]
                report.add("batch", f"batch {batch}", rate, reference, "changes the optimization")
    if want("channels_last"):
        for threads in sorted({1, default_threads}):
            rate = train_rate(genomes, train_images, train_labels, Setting(threads=threads, channels_last=True), args)["images_per_s"]
            report.add("channels_last", f"{threads} thread(s)", rate, reference)
        if 256 * 3 <= len(train_labels):
            rate = train_rate(genomes, train_images, train_labels, Setting(batch=256, channels_last=True), args)["images_per_s"]
            report.add("channels_last", "batch 256", rate, reference)
    if want("mkldnn_off"):
        rate = train_rate(genomes, train_images, train_labels, Setting(mkldnn=False), args)["images_per_s"]
        report.add("mkldnn_off", "im2col + MKL GEMM", rate, reference)
    if want("fused_adam"):
        rate = train_rate(genomes, train_images, train_labels, Setting(fused_adam=True), args)["images_per_s"]
        report.add("fused_adam", "Adam(fused=True)", rate, reference)
    if want("flush_denormal"):
        rate = train_rate(genomes, train_images, train_labels, Setting(flush_denormal=True), args)["images_per_s"]
        report.add("flush_denormal", "torch.set_flush_denormal", rate, reference)
    if want("processes") and not args.skip_processes:
        rate = processes_rate(genomes, train_images, train_labels, args)
        report.add("processes", "2 processes x 1 thread", rate, reference, "aggregate: two evaluations at once")
    if want("compile") and not args.skip_compile:
        genome = genomes[-1]
        eager = train_rate([genome], train_images, train_labels, default, args)["images_per_s"]
        payoff = compile_payoff(genome, train_images, train_labels, args, eager)
        report.add("compile", f"torch.compile, {genome}", payoff["images_per_s"], eager,
                   f"compile {payoff['compile_seconds']:.0f} s, saves {payoff['seconds_saved_over_25_epochs']:.0f} s "
                   f"over 25 epochs", **payoff)  # fmt: skip
    if want("eval"):
        eval_images = images[: args.eval_images]
        base = eval_rate(genomes, eval_images, 1000, "inference_mode", False, args)
        report.add("eval", "batch 1000, inference_mode", base, None, "forward only; the project's default")
        for batch, mode, channels_last in ((1000, "no_grad", False), (128, "inference_mode", False),
                                           (250, "inference_mode", False), (5000, "inference_mode", False),
                                           (1000, "inference_mode", True)):  # fmt: skip
            if batch <= len(eval_images):
                rate = eval_rate(genomes, eval_images, batch, mode, channels_last, args)
                report.add("eval", f"batch {batch}, {mode}{', channels_last' if channels_last else ''}", rate, base)

    load_after = load_average()
    print()
    print(table(report.rows, ["lever", "setting", "images/s", "vs default", "note"]))
    print(f"\nload average {load_before:.2f} before, {load_after:.2f} after")
    result = {
        "benchmark": "levers",
        "machine": machine(),
        "load_average": {"before": load_before, "after": load_after},
        "settings": {"images": args.images, "eval_images": args.eval_images, "rounds": args.rounds, "seed": args.seed,
                     "genomes": [str(genome) for genome in genomes], "real_mnist": bool(args.root or args.mnist_gz)},  # fmt: skip
        "train_flops_per_image": flops,
        "matmul_flops_per_s": {str(threads): rate for threads, rate in ceiling.items()},
        "levers": report.data,
    }
    print(f"wrote {write_json(result, args.name, args.json)}")
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
