"""Measure, one at a time, what each CPU speed lever does for training the MNIST preset's networks.

Every lever is measured against a plain loop (``train_model``'s inner loop in NCHW, batch 128,
Adam with foreach, oneDNN convolutions, torch's thread count) on the same genome sample (all zeros
plus ``--genomes`` random ones): training images per second over ``--images`` images per genome,
after two warm-up steps, the best of ``--rounds`` rounds taken round-robin over the levers (the
machine is shared; the best round is the least disturbed). Evaluation levers (batch size, inference_mode vs no_grad, channels_last) are
timed on ``--eval-images`` forward passes.

Levers: threads (1, 2), batch size (64..512), channels_last, reused freed memory (in fresh
processes: the setting cannot be undone), ``train_model`` with and without the project's defaults,
oneDNN off (im2col + MKL GEMM),
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
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from common import (
    cpu_sample,
    load_average,
    machine,
    matmul_rate,
    mnist_root,
    others_share,
    table,
    wait_until_quiet,
    write_json,
)

from genetic_cnn.config import DataConfig, TrainConfig
from genetic_cnn.data.datasets import Split, load_datasets
from genetic_cnn.nn.memory import reuse_freed_memory, reusing_freed_memory
from genetic_cnn.nn.network import build_network, count_flops
from genetic_cnn.nn.train import batch_bounds, train_model
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.presets import MNIST

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
    parser.add_argument("--only", nargs="*", help="measure only these levers (names as printed; the default row always)")
    parser.add_argument("--quiet-wait", type=float, default=0.0,
                        help="before each timing, wait up to this many seconds for other processes to leave the CPU")
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
    reuse_memory: bool = False
    """glibc keeps freed memory for reuse (``run.reuse_memory``); measured in a fresh process, because
    the setting cannot be undone."""


def in_fresh_process(function: Callable[..., float], *args: Any) -> float:
    """``function(*args)`` in a new process whose allocator keeps freed memory (``run.reuse_memory``)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_reusing_memory, args=(queue, function, args))
    process.start()
    result = queue.get()
    process.join()
    if isinstance(result, BaseException):
        raise result
    return float(result)


def _reusing_memory(queue: Any, function: Callable[..., float], args: tuple[Any, ...]) -> None:
    try:
        if not reuse_freed_memory():
            raise RuntimeError("run.reuse_memory has no effect here (it needs Linux with glibc)")
        function(*args)  # a new process warms up first: thread pools, oneDNN's kernels, the heap itself
        queue.put(function(*args))
    except BaseException as error:  # the parent re-raises it
        queue.put(error)


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


def train_rate(genomes: list[Genome], images: torch.Tensor, labels: torch.Tensor, setting: Setting, seed: int) -> float:
    """Images/s over all genomes (timed images / timed seconds, the two warm-up steps excluded)."""
    if setting.reuse_memory and not reusing_freed_memory():
        return in_fresh_process(train_rate, genomes, images, labels, setting, seed)
    timed_images = sum(stop - start for start, stop in batch_bounds(len(labels), setting.batch)[2:])
    seconds = 0.0
    with applied(setting):
        for genome in genomes:
            seconds += train_steps(genome, images, labels, setting, seed)[0]
    return timed_images * len(genomes) / seconds


def eval_rate(genomes: list[Genome], images: torch.Tensor, batch: int, mode: str, channels_last: bool, threads: int = 0,
              reuse_memory: bool = False) -> float:  # fmt: skip
    """Forward images/s in eval mode, as ``train._evaluate`` runs it (after one warm-up batch)."""
    if reuse_memory and not reusing_freed_memory():
        return in_fresh_process(eval_rate, genomes, images, batch, mode, channels_last, threads, True)
    grad_mode: Callable[[], Any] = torch.inference_mode if mode == "inference_mode" else torch.no_grad
    seconds = 0.0
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    with applied(Setting(threads=threads)):
        for genome in genomes:
            model: Any = build_network(genome, MNIST).eval()
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
            with grad_mode():
                model(images[:batch])  # warm-up
                started = time.perf_counter()
                for start in range(0, len(images), batch):
                    model(images[start : start + batch]).argmax(dim=1)
                seconds += time.perf_counter() - started
    return len(images) * len(genomes) / seconds


def project_rate(genomes: list[Genome], images: torch.Tensor, labels: torch.Tensor, seed: int, channels_last: bool = True,
                 reuse_memory: bool = False) -> float:  # fmt: skip
    """``train_model`` itself for one epoch (its final validation is one batch of 128 images)."""
    if reuse_memory and not reusing_freed_memory():
        return in_fresh_process(project_rate, genomes, images, labels, seed, channels_last, True)
    config = TrainConfig(schedule=((1, 1e-3),), batch_size=128, eval_batch_size=1000)
    holdout = 128
    train = Split(images[holdout:], labels[holdout:])
    validation = Split(images[:holdout], labels[:holdout])
    seconds = 0.0
    for genome in genomes:
        torch.manual_seed(seed)
        model = build_network(genome, MNIST)
        seconds += train_model(model, train, validation, config, seed=seed, channels_last=channels_last).seconds
    return len(train) * len(genomes) / seconds


def _process_worker(genomes: list[str], images: torch.Tensor, labels: torch.Tensor, setting: Setting, seed: int,
                    barrier: Any, queue: Any) -> None:  # fmt: skip
    torch.set_num_threads(setting.threads)
    parsed = [Genome.from_string(text, nodes=MNIST.nodes) for text in genomes]
    for genome in parsed:  # warm up every shape before the common start
        train_steps(genome, images[: 2 * setting.batch], labels[: 2 * setting.batch], setting, seed)
    barrier.wait()
    started = time.time()
    for genome in parsed:
        train_steps(genome, images, labels, setting, seed)
    queue.put((started, time.time()))


def processes_rate(genomes: list[Genome], images: torch.Tensor, labels: torch.Tensor, seed: int, workers: int = 2,
                   channels_last: bool = False) -> float:  # fmt: skip
    """Aggregate images/s of ``workers`` single-thread processes training at once (two evaluations in parallel)."""
    context = multiprocessing.get_context("spawn")
    barrier, queue = context.Barrier(workers), context.Queue()
    texts = [str(genome) for genome in genomes]
    setting = Setting(threads=1, channels_last=channels_last)
    processes = [context.Process(target=_process_worker, args=(texts, images, labels, setting, seed, barrier, queue))
                 for _ in range(workers)]  # fmt: skip
    for process in processes:
        process.start()
    spans = [queue.get() for _ in processes]
    for process in processes:
        process.join()
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    return workers * len(labels) * len(genomes) / wall  # every step: the workers warmed up before the barrier


def compile_payoff(genome: Genome, images: torch.Tensor, labels: torch.Tensor, seed: int, eager_rate: float) -> dict[str, Any]:
    """torch.compile's one-off cost in one evaluation against what it saves over a 25-epoch training.

    The cost: compiling the training step (first batch), the last, shorter batch of an epoch
    (50,000 = 390 x 128 + 80) and the evaluation forward (eval mode, batch 1000); each network of
    the search is a new graph, so every evaluation pays it.
    """
    torch._dynamo.reset()
    # A cold cache: a new architecture in a search finds nothing to reuse (a repeated one is not retrained).
    cache = tempfile.mkdtemp(prefix="inductor-")
    previous = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
    try:
        return _compiled_run(genome, images, labels, seed, eager_rate)
    finally:
        if previous is None:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = previous
        shutil.rmtree(cache, ignore_errors=True)


def _compiled_run(genome: Genome, images: torch.Tensor, labels: torch.Tensor, seed: int, eager_rate: float) -> dict[str, Any]:
    torch.manual_seed(seed)
    model: Any = torch.compile(build_network(genome, MNIST))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(count: int) -> float:
        started = time.perf_counter()
        loss = F.cross_entropy(model(images[:count]), labels[:count])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        float(loss.detach())
        return time.perf_counter() - started

    model.train()
    first = step(128)
    second = step(128)
    short = step(80)
    bounds = batch_bounds(len(labels), 128)
    started = time.perf_counter()
    for start, stop in bounds:
        if stop - start == 128:
            step(128)
    timed = time.perf_counter() - started
    rate = sum(1 for start, stop in bounds if stop - start == 128) * 128 / timed
    model.eval()
    with torch.inference_mode():
        started = time.perf_counter()
        model(images[:1000])
        eval_compile = time.perf_counter() - started
    compile_seconds = first + short + eval_compile - 2 * second  # less the two steps' own work
    saved = FULL_TRAINING_IMAGES / eager_rate - FULL_TRAINING_IMAGES / rate
    return {"compile_seconds": compile_seconds, "first_step_seconds": first, "short_batch_seconds": short,
            "eval_first_forward_seconds": eval_compile, "images_per_s": rate, "eager_images_per_s": eager_rate,
            "seconds_saved_over_25_epochs": saved, "pays": bool(saved > compile_seconds)}  # fmt: skip


@dataclass
class Lever:
    lever: str
    setting: str
    measure: Callable[[], float]
    """One timing, images/s."""
    kind: str = "train"
    """train (reference: the default training) | eval (reference: the default evaluation)."""
    threads: int = 0
    note: str = ""
    rates: list[float] = field(default_factory=list)


def levers(args: argparse.Namespace, genomes: list[Genome], images: torch.Tensor, labels: torch.Tensor,
           eval_images: torch.Tensor, default_threads: int) -> list[Lever]:  # fmt: skip
    """Everything to measure; the first train and the first eval lever are the references."""
    seed = args.seed
    other_threads = 1 if default_threads != 1 else 2

    def train(**changes: Any) -> Callable[[], float]:
        return lambda: train_rate(genomes, images, labels, Setting(**changes), seed)

    def evaluate(batch: int, mode: str = "inference_mode", channels_last: bool = False, threads: int = 0,
                 reuse_memory: bool = False) -> Callable[[], float]:  # fmt: skip
        return lambda: eval_rate(genomes, eval_images, batch, mode, channels_last, threads, reuse_memory)

    items = [
        Lever("default", f"{default_threads} threads, batch 128, NCHW", train(), threads=default_threads),
        Lever("train_model", "NCHW (channels_last=False)", lambda: project_rate(genomes, images, labels, seed, False),
              note="the project's loop before channels_last; includes a 128-image validation"),  # fmt: skip
        Lever("train_model", "channels_last", lambda: project_rate(genomes, images, labels, seed, True)),
        Lever("train_model", "channels_last + reuse_memory", lambda: project_rate(genomes, images, labels, seed, True, True),
              note="the project's defaults (run.channels_last, run.reuse_memory)"),  # fmt: skip
        Lever("threads", f"{other_threads} thread(s)", train(threads=other_threads), threads=other_threads),
        Lever("batch", "batch 64", train(batch=64), note="changes the optimization"),
        Lever("batch", "batch 256", train(batch=256), note="changes the optimization"),
        Lever("batch", "batch 512", train(batch=512), note="changes the optimization"),
        Lever("channels_last", f"{default_threads} threads", train(channels_last=True)),
        Lever("channels_last", f"{other_threads} thread(s)", train(channels_last=True, threads=other_threads), threads=other_threads),
        Lever("channels_last", "batch 256", train(channels_last=True, batch=256), note="changes the optimization"),
        Lever("reuse_memory", f"{default_threads} threads, NCHW", train(reuse_memory=True), note="in a fresh process"),
        Lever("reuse_memory", "channels_last", train(reuse_memory=True, channels_last=True), note="in a fresh process"),
        Lever("mkldnn_off", "im2col + MKL GEMM", train(mkldnn=False)),
        Lever("fused_adam", "Adam(fused=True)", train(fused_adam=True)),
        Lever("flush_denormal", "set_flush_denormal(True)", train(flush_denormal=True)),
        Lever("eval", f"batch 1000, inference_mode, {default_threads} threads, NCHW", evaluate(1000), kind="eval",
              note="the reference"),  # fmt: skip
        Lever("eval", "batch 1000, no_grad", evaluate(1000, "no_grad"), kind="eval"),
        Lever("eval", "batch 128", evaluate(128), kind="eval"),
        Lever("eval", "batch 250", evaluate(250), kind="eval"),
        Lever("eval", "batch 5000", evaluate(5000), kind="eval"),
        Lever("eval", "batch 1000, channels_last", evaluate(1000, channels_last=True), kind="eval"),
        Lever("eval", "batch 250, channels_last", evaluate(250, channels_last=True), kind="eval"),
        Lever("eval", "batch 5000, channels_last", evaluate(5000, channels_last=True), kind="eval"),
        Lever("eval", "batch 1000, channels_last, reuse_memory", evaluate(1000, channels_last=True, reuse_memory=True),
              kind="eval", note="the project's defaults"),  # fmt: skip
        Lever("eval", "batch 250, channels_last, reuse_memory", evaluate(250, channels_last=True, reuse_memory=True),
              kind="eval", note="in a fresh process"),  # fmt: skip
        Lever("eval", f"batch 1000, channels_last, {other_threads} thread(s)",
              evaluate(1000, channels_last=True, threads=other_threads), kind="eval", threads=other_threads),  # fmt: skip
    ]
    if not args.skip_processes:
        items.append(Lever("processes", "2 processes x 1 thread", lambda: processes_rate(genomes, images, labels, seed),
                           note="aggregate: two evaluations at once"))  # fmt: skip
        items.append(Lever("processes", "2 processes x 1 thread, channels_last",
                           lambda: processes_rate(genomes, images, labels, seed, channels_last=True),
                           note="aggregate: two evaluations at once"))  # fmt: skip
    usable = [item for item in items if "batch 512" not in item.setting or 3 * 512 <= len(labels)]  # two warm-up steps
    wanted = set(args.only or [])
    return [item for item in usable if not wanted or item.lever in wanted or item.lever == "default"
            or (item.kind == "eval" and item.note == "the reference" and "eval" in wanted)]  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    genomes = [Genome.zeros(MNIST.nodes)] + [Genome.random(MNIST.nodes, rng) for _ in range(args.genomes)]
    images, labels = images_and_labels(args, max(args.images, args.eval_images))
    train_images, train_labels = images[: args.images], labels[: args.images]
    default_threads = torch.get_num_threads()
    train_flops = {str(g): count_flops(build_network(g, MNIST), MNIST.input_shape, backward=True) for g in genomes}
    eval_flops = {str(g): count_flops(build_network(g, MNIST), MNIST.input_shape, backward=False) for g in genomes}
    mean_flops = {"train": sum(train_flops.values()) / len(genomes), "eval": sum(eval_flops.values()) / len(genomes)}
    load_before = load_average()
    print(f"torch {torch.__version__}, {default_threads} threads by default, load average {load_before:.2f}")
    print(f"genomes: {', '.join(str(genome) for genome in genomes)}; {mean_flops['train'] / 1e6:.1f} MFLOP/image "
          f"forward and backward on average", flush=True)  # fmt: skip

    cpu_before = cpu_sample()
    ceiling: dict[int, float] = {}
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        wait_until_quiet(args.quiet_wait)
        ceiling[threads] = matmul_rate()["best"]
        print(f"  matmul ceiling at {threads} thread(s): {ceiling[threads] / 1e9:.1f} GFLOP/s", flush=True)
    torch.set_num_threads(default_threads)

    items = levers(args, genomes, train_images, train_labels, images[: args.eval_images], default_threads)
    busy_seen = []
    for round_ in range(args.rounds):  # round-robin: a burst of load hurts one round of every lever, not one lever
        print(f"round {round_ + 1}/{args.rounds}", flush=True)
        for item in items:
            if args.quiet_wait:
                busy_seen.append(wait_until_quiet(args.quiet_wait))
            item.rates.append(item.measure())
            print(f"  {item.lever:<15} {item.setting:<40} {item.rates[-1]:8.0f} images/s", flush=True)

    compiled = []
    if not args.skip_compile and (not args.only or "compile" in args.only):
        for genome in genomes:  # per genome: compiling is per network, and its cost differs
            wait_until_quiet(args.quiet_wait)
            eager = max(train_rate([genome], train_images, train_labels, Setting(), args.seed) for _ in range(args.rounds))
            last = max(train_rate([genome], train_images, train_labels, Setting(channels_last=True), args.seed)
                       for _ in range(args.rounds))  # fmt: skip
            payoff = compile_payoff(genome, train_images, train_labels, args.seed, eager)
            payoff |= {"genome": str(genome), "channels_last_images_per_s": last,
                       "seconds_saved_over_25_epochs_vs_channels_last": FULL_TRAINING_IMAGES / last - FULL_TRAINING_IMAGES / payoff["images_per_s"]}  # fmt: skip
            compiled.append(payoff)
            print(f"  compile {genome}: {payoff['images_per_s']:.0f} images/s, eager {eager:.0f}, channels_last {last:.0f}, "
                  f"compile {payoff['compile_seconds']:.0f} s", flush=True)  # fmt: skip

    for threads in sorted({1, default_threads}):  # again at the end: the best of both is the ceiling
        torch.set_num_threads(threads)
        wait_until_quiet(args.quiet_wait)
        ceiling[threads] = max(ceiling[threads], matmul_rate()["best"])
    torch.set_num_threads(default_threads)
    machine_ceiling = max(ceiling.values())

    references = {kind: next(item for item in items if item.kind == kind) for kind in ("train", "eval") if any(i.kind == kind for i in items)}
    rows, data = [], []
    for item in items:
        best = max(item.rates)
        reference = max(references[item.kind].rates)
        flops = best * mean_flops[item.kind]
        ratio = best / reference
        rows.append([item.lever, item.setting, f"{best:.0f}", f"{flops / 1e9:.1f}", f"{flops / machine_ceiling:.0%}",
                     "-" if item is references[item.kind] else f"{ratio:.2f}x", item.note])  # fmt: skip
        data.append({"lever": item.lever, "setting": item.setting, "kind": item.kind, "images_per_s": best,
                     "rates": item.rates, "flops_per_s": flops, "fraction_of_matmul": flops / machine_ceiling,
                     "vs_default": ratio, "note": item.note})  # fmt: skip
    for payoff in compiled:
        rate, flops = payoff["images_per_s"], payoff["images_per_s"] * train_flops[payoff["genome"]]
        rows.append(["compile", f"torch.compile, {payoff['genome']}", f"{rate:.0f}", f"{flops / 1e9:.1f}",
                     f"{flops / machine_ceiling:.0%}", f"{rate / payoff['eager_images_per_s']:.2f}x",
                     f"vs this genome eager; channels_last {payoff['channels_last_images_per_s'] / payoff['eager_images_per_s']:.2f}x; "
                     f"compile {payoff['compile_seconds']:.0f} s, saves {payoff['seconds_saved_over_25_epochs']:.0f} s over 25 "
                     f"epochs ({payoff['seconds_saved_over_25_epochs_vs_channels_last']:.0f} s vs channels_last)"])  # fmt: skip

    load_after = load_average()
    others = others_share(cpu_before, cpu_sample())
    print()
    print(f"training: {len(train_labels)} images per genome (reference: the first row); evaluation: "
          f"{args.eval_images} images (reference: the first eval row); best of {args.rounds} rounds")  # fmt: skip
    print(table(rows, ["lever", "setting", "images/s", "GFLOP/s", "of matmul", "vs default", "note"]))
    print(f"\nmatmul ceiling {machine_ceiling / 1e9:.1f} GFLOP/s ({', '.join(f'{t} thread(s) {r / 1e9:.1f}' for t, r in ceiling.items())}); "
          f"load average {load_before:.2f} before; other processes used {others:.1%} of the CPU during the run")  # fmt: skip
    result = {
        "benchmark": "levers",
        "machine": machine(),
        "load_average": {"before": load_before, "after": load_after},
        "others_cpu_share": others,
        "others_busy_max_before_timings": max(busy_seen) if busy_seen else None,
        "settings": {"images": args.images, "eval_images": args.eval_images, "rounds": args.rounds, "seed": args.seed,
                     "genomes": [str(genome) for genome in genomes], "real_mnist": bool(args.root or args.mnist_gz)},  # fmt: skip
        "train_flops_per_image": train_flops,
        "eval_flops_per_image": eval_flops,
        "matmul_flops_per_s": {str(threads): rate for threads, rate in ceiling.items()},
        "levers": data,
        "compile": compiled or None,
    }
    print(f"wrote {write_json(result, args.name, args.json)}")
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
