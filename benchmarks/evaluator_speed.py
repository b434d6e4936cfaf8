"""How fast is the project's evaluator on real MNIST, against the ceiling and against a plain baseline?

For the MNIST preset and a fixed sample of genomes (all zeros plus ``--genomes`` drawn from a seeded
generator) this times, in one run and on the same genomes, images, epochs and batch size:

(a) the project's evaluation with its defaults (channels_last, ``run.reuse_memory``; in a process
    of its own, since the allocator setting is process-wide): ``build_network``, ``train_model`` for
    one epoch on the training images, then the validation and test measurements, the calls
    ``Evaluator`` makes; it reports
    training images/s and the FLOP/s achieved (forward and backward FLOPs per image counted with
    ``FlopCounterMode``), as a fraction of this machine's dense float32 matmul rate, measured in
    the same run (``torch.mm`` of two 2048 x 2048 matrices, repeated): the practical ceiling;
(b) a plain baseline written the way most PyTorch code does it: ``torchvision.datasets.MNIST`` with
    a per-sample ``Compose([ToTensor(), Normalize])``, a ``DataLoader`` that shuffles, a standard
    train loop (``loss.item()`` every batch) and a ``no_grad`` evaluation loop.

Prints a table and writes JSON to benchmarks/results/<name>.json (or ``--json PATH``).

    python benchmarks/evaluator_speed.py --root DIR        # DIR/MNIST/raw/ holds the IDX files
    python benchmarks/evaluator_speed.py --mnist-gz DIR    # DIR holds the four *.gz files
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from common import (
    add_data_arguments,
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
from genetic_cnn.data.datasets import Datasets, load_datasets
from genetic_cnn.nn.memory import reuse_freed_memory
from genetic_cnn.nn.network import build_network, count_flops
from genetic_cnn.nn.train import evaluate_model, train_model
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.presets import MNIST, NetworkPreset

LEARNING_RATE = 1e-3  # the MNIST preset's first phase (Adam)
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # what baseline code copies from tutorials


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser)
    parser.add_argument("--images", type=int, default=4000,
                        help="training images timed per genome (one epoch over them); 0 = the whole 50,000 (default 4000)")
    parser.add_argument("--eval-images", type=int, default=1000,
                        help="validation images and test images, each (default 1000; 10,000 each with --images 0)")
    parser.add_argument("--genomes", type=int, default=4, help="random genomes besides the all-zeros one (default 4)")
    parser.add_argument("--batch-size", type=int, default=128, help="training batch (default 128, the MNIST preset's)")
    parser.add_argument("--eval-batch-size", type=int, default=1000, help="evaluation batch of the project (default 1000)")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads; 0 = leave torch's default")
    parser.add_argument("--nchw", action="store_true",
                        help="train the project's networks in the default memory format (run.channels_last = false)")
    parser.add_argument("--system-allocator", action="store_true",
                        help="leave glibc's malloc as it is for the project too (run.reuse_memory = false)")
    parser.add_argument("--baseline-workers", type=int, default=0, help="DataLoader num_workers of the baseline (default 0)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="time each side this many times, alternating, and keep the fastest (default 1)")
    parser.add_argument("--no-baseline", action="store_true", help="time only the project's evaluator")
    parser.add_argument("--seed", type=int, default=0, help="genome sample, image subsets, weights and shuffles")
    parser.add_argument("--quiet-wait", type=float, default=0.0,
                        help="first wait up to this many seconds for other processes to leave the CPU (a shared machine)")
    parser.add_argument("--name", default="evaluator_speed", help="results file name (benchmarks/results/<name>.json)")
    parser.add_argument("--json", help="write the JSON here instead")
    return parser.parse_args(argv)


def sample_genomes(count: int, seed: int, preset: NetworkPreset = MNIST) -> list[Genome]:
    """All zeros, then ``count`` genomes of Bernoulli(0.5) bits from a seeded generator."""
    rng = np.random.default_rng(seed)
    return [Genome.zeros(preset.nodes)] + [Genome.random(preset.nodes, rng) for _ in range(count)]


@dataclass
class Timing:
    seconds: float
    """The whole evaluation: build, train, measure validation and test."""
    train_seconds: float
    eval_seconds: float
    accuracy: float
    """Validation accuracy: both sides must learn, or the timing means nothing."""


class ProjectSide:
    """The project's evaluations, in a process of their own: ``run.reuse_memory`` changes the whole
    process's allocator, and the baseline must keep the system's."""

    def __init__(self, data_config: DataConfig, seed: int, threads: int, reuse_memory: bool) -> None:
        context = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(1, mp_context=context, initializer=_project_worker,
                                        initargs=(data_config, seed, threads, reuse_memory))  # fmt: skip

    def warm_up(self, genome: Genome, batch: int, channels_last: bool) -> None:
        self.pool.submit(_project_warm_up, str(genome), batch, channels_last).result()

    def time(self, genome: Genome, config: TrainConfig, seed: int, channels_last: bool) -> Timing:
        return self.pool.submit(_project_time, str(genome), config, seed, channels_last).result()

    def close(self) -> None:
        self.pool.shutdown()


_worker_data: Datasets | None = None


def _project_worker(data_config: DataConfig, seed: int, threads: int, reuse_memory: bool) -> None:
    global _worker_data
    if threads:
        torch.set_num_threads(threads)
    if reuse_memory and not reuse_freed_memory():
        raise RuntimeError("run.reuse_memory has no effect here (it needs Linux with glibc); pass --system-allocator")
    _worker_data = load_datasets(data_config, seed=seed)


def _project_warm_up(genome: str, batch: int, channels_last: bool) -> None:
    assert _worker_data is not None
    warm_up(Genome.from_string(genome, MNIST.nodes), _worker_data.train.images, _worker_data.train.labels, batch, channels_last)


def _project_time(genome: str, config: TrainConfig, seed: int, channels_last: bool) -> Timing:
    assert _worker_data is not None
    return time_project(Genome.from_string(genome, MNIST.nodes), _worker_data, config, seed, channels_last)


def time_project(genome: Genome, data: Datasets, config: TrainConfig, seed: int, channels_last: bool) -> Timing:
    """The calls ``Evaluator._train`` makes, on the CPU."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    model = build_network(genome, MNIST)
    result = train_model(model, data.train, data.validation, config, seed=seed, device="cpu", channels_last=channels_last)
    trained = time.perf_counter()
    evaluate_model(model, data.test, config.eval_batch_size, "cpu", channels_last=channels_last)
    finished = time.perf_counter()
    # train_model ends with the validation measurement; time it again to split training from measuring.
    again = time.perf_counter()
    evaluate_model(model, data.validation, config.eval_batch_size, "cpu", channels_last=channels_last)
    validation_seconds = time.perf_counter() - again
    return Timing(
        seconds=finished - started,
        train_seconds=trained - started - validation_seconds,
        eval_seconds=finished - trained + validation_seconds,
        accuracy=result.accuracy,
    )


@dataclass
class BaselineData:
    train: Any
    validation: Any
    test: Any


def baseline_data(root: Path, train_count: int, eval_count: int, seed: int) -> BaselineData:
    from torch.utils.data import Subset
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))])
    train_set = datasets.MNIST(str(root), train=True, transform=transform)
    test_set = datasets.MNIST(str(root), train=False, transform=transform)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(train_set))
    test_order = rng.permutation(len(test_set))
    return BaselineData(
        Subset(train_set, order[:train_count].tolist()),
        Subset(train_set, order[train_count : train_count + eval_count].tolist()),
        Subset(test_set, test_order[:eval_count].tolist()),
    )


def time_baseline(genome: Genome, data: BaselineData, batch: int, seed: int, workers: int) -> Timing:
    """Textbook PyTorch: DataLoader with per-sample transforms, zero_grad/backward/step, loss.item()."""
    from torch.utils.data import DataLoader

    started = time.perf_counter()
    torch.manual_seed(seed)
    model = build_network(genome, MNIST)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    criterion = torch.nn.CrossEntropyLoss()
    drop_last = len(data.train) % batch == 1  # batch norm cannot train on a single image
    loader = DataLoader(data.train, batch_size=batch, shuffle=True, num_workers=workers, drop_last=drop_last,
                        generator=torch.Generator().manual_seed(seed))  # fmt: skip
    model.train()
    running_loss = 0.0
    for images, labels in loader:
        optimizer.zero_grad()
        outputs = model(images)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
    trained = time.perf_counter()

    accuracy = 0.0
    model.eval()
    for split in (data.validation, data.test):
        correct, total, loss_sum = 0, 0, 0.0
        with torch.no_grad():
            for images, labels in DataLoader(split, batch_size=batch, shuffle=False, num_workers=workers):
                outputs = model(images)
                loss_sum += criterion(outputs, labels).item() * len(labels)
                correct += (outputs.argmax(dim=1) == labels).sum().item()
                total += len(labels)
        if split is data.validation:
            accuracy = correct / total
    finished = time.perf_counter()
    return Timing(finished - started, trained - started, finished - trained, accuracy)


def warm_up(genome: Genome, images: torch.Tensor, labels: torch.Tensor, batch: int, channels_last: bool) -> None:
    """A few untimed steps, so neither side pays oneDNN's first-call costs for this genome's shapes."""
    model = build_network(genome, MNIST)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    for step in range(2):
        index = slice(step * batch, (step + 1) * batch)
        loss = F.cross_entropy(model(images[index]), labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.inference_mode():
        model(images[: 2 * batch])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    temporary: list[tempfile.TemporaryDirectory] = []
    root = mnist_root(args, temporary)
    load_before = load_average()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {load_before:.2f}", flush=True)

    full = args.images == 0
    eval_count = 10_000 if full else args.eval_images
    data_config = DataConfig(dataset="mnist", root=str(root)) if full else DataConfig(
        dataset="mnist", root=str(root), subset=args.images + eval_count, validation=eval_count, test_subset=eval_count
    )
    data = load_datasets(data_config, seed=args.seed)
    train_count = len(data.train)
    channels_last = not args.nchw
    project_side = ProjectSide(data_config, args.seed, args.threads, reuse_memory=not args.system_allocator)
    config = TrainConfig(schedule=((1, LEARNING_RATE),), batch_size=args.batch_size, eval_batch_size=args.eval_batch_size)
    baseline = None if args.no_baseline else baseline_data(root, train_count, eval_count, args.seed)
    genomes = sample_genomes(args.genomes, args.seed)

    if args.quiet_wait:
        wait_until_quiet(args.quiet_wait)
    cpu_before = cpu_sample()
    ceiling_before = matmul_rate()
    print(f"float32 matmul rate: {ceiling_before['best'] / 1e9:.1f} GFLOP/s", flush=True)

    rows: list[dict[str, Any]] = []
    for genome in genomes:
        model = build_network(genome, MNIST)
        train_flops = count_flops(model, MNIST.input_shape, backward=True)
        eval_flops = count_flops(model, MNIST.input_shape, backward=False)
        project_side.warm_up(genome, args.batch_size, channels_last)
        warm_up(genome, data.train.images, data.train.labels, args.batch_size, False)
        project, plain = None, None
        for _ in range(args.repeats):  # alternating, so a burst of load hits both sides; the fastest of each is kept
            timing = project_side.time(genome, config, args.seed, channels_last)
            project = timing if project is None or timing.seconds < project.seconds else project
            if baseline:
                timing = time_baseline(genome, baseline, args.batch_size, args.seed, args.baseline_workers)
                plain = timing if plain is None or timing.seconds < plain.seconds else plain
        assert project is not None
        row = {
            "genome": str(genome),
            "train_flops_per_image": train_flops,
            "eval_flops_per_image": eval_flops,
            "project": vars(project),
            "baseline": vars(plain) if plain else None,
        }
        rows.append(row)
        line = (f"{genome}: {train_flops / 1e6:.1f} MFLOP/image, project {train_count / project.train_seconds:.0f} "
                f"images/s training, {project.seconds:.2f} s in all")  # fmt: skip
        if plain:
            line += f"; baseline {plain.seconds:.2f} s, {plain.seconds / project.seconds:.2f}x"
        print(line, flush=True)

    project_side.close()
    ceiling_after = matmul_rate()
    ceiling = max(ceiling_before["best"], ceiling_after["best"])
    load_after = load_average()
    others = others_share(cpu_before, cpu_sample())

    def summary(side: str) -> dict[str, float]:
        train_seconds = sum(row[side]["train_seconds"] for row in rows)
        seconds = sum(row[side]["seconds"] for row in rows)
        train_flops = sum(row["train_flops_per_image"] * train_count for row in rows)
        all_flops = train_flops + sum(row["eval_flops_per_image"] * 2 * eval_count for row in rows)
        return {
            "seconds": seconds,
            "train_seconds": train_seconds,
            "train_images_per_s": train_count * len(rows) / train_seconds,
            "train_flops_per_s": train_flops / train_seconds,
            "train_fraction_of_matmul": train_flops / train_seconds / ceiling,
            "evaluator_images_per_s": train_count * len(rows) / seconds,
            "evaluator_flops_per_s": all_flops / seconds,
            "evaluator_fraction_of_matmul": all_flops / seconds / ceiling,
        }

    result: dict[str, Any] = {
        "benchmark": "evaluator_speed",
        "machine": machine(),
        "load_average": {"before": load_before, "after": load_after},
        "others_cpu_share": others,
        "settings": {
            "images": train_count,
            "eval_images": eval_count,
            "batch_size": args.batch_size,
            "eval_batch_size": args.eval_batch_size,
            "threads": torch.get_num_threads(),
            "channels_last": channels_last,
            "reuse_memory": not args.system_allocator,
            "baseline_workers": args.baseline_workers,
            "repeats": args.repeats,
            "seed": args.seed,
        },
        "matmul_flops_per_s": {"before": ceiling_before, "after": ceiling_after, "ceiling": ceiling},
        "genomes": rows,
        "project": summary("project"),
    }
    if baseline:
        result["baseline"] = summary("baseline")
        result["speedup_vs_baseline"] = result["baseline"]["seconds"] / result["project"]["seconds"]
        result["train_speedup_vs_baseline"] = result["baseline"]["train_seconds"] / result["project"]["train_seconds"]

    print()
    print(report(result))
    print(f"\nwrote {write_json(result, args.name, args.json)}")
    for folder in temporary:
        folder.cleanup()
    return result


def report(result: dict[str, Any]) -> str:
    ceiling = result["matmul_flops_per_s"]["ceiling"]
    train_count = result["settings"]["images"]
    header = ["genome", "MFLOP/img", "images/s", "GFLOP/s", "of matmul", "val acc", "base images/s", "base acc", "speedup"]
    rows = []
    for row in result["genomes"]:
        project, plain = row["project"], row["baseline"]
        rate = train_count / project["train_seconds"]
        cells = [row["genome"], f"{row['train_flops_per_image'] / 1e6:.1f}", f"{rate:.0f}",
                 f"{rate * row['train_flops_per_image'] / 1e9:.1f}",
                 f"{rate * row['train_flops_per_image'] / ceiling:.0%}", f"{project['accuracy']:.3f}"]  # fmt: skip
        if plain:
            cells += [f"{train_count / plain['train_seconds']:.0f}", f"{plain['accuracy']:.3f}",
                      f"{plain['seconds'] / project['seconds']:.2f}x"]  # fmt: skip
        else:
            cells += ["-", "-", "-"]
        rows.append(cells)
    project = result["project"]
    lines = [
        f"training only (images/s, GFLOP/s are training; speedup is the whole evaluation), {train_count} images, "
        f"batch {result['settings']['batch_size']}, {result['settings']['threads']} threads:",
        table(rows, header),
        "",
        f"matmul ceiling          {ceiling / 1e9:8.1f} GFLOP/s (float32 2048x2048 torch.mm, best of before/after)",
        f"project, training       {project['train_images_per_s']:8.0f} images/s  {project['train_flops_per_s'] / 1e9:6.1f} GFLOP/s"
        f"  {project['train_fraction_of_matmul']:6.1%} of matmul",
        f"project, whole evaluator{project['evaluator_images_per_s']:8.0f} images/s  {project['evaluator_flops_per_s'] / 1e9:6.1f} GFLOP/s"
        f"  {project['evaluator_fraction_of_matmul']:6.1%} of matmul",
    ]
    if "baseline" in result:
        plain = result["baseline"]
        lines += [
            f"baseline, training      {plain['train_images_per_s']:8.0f} images/s  {plain['train_flops_per_s'] / 1e9:6.1f} GFLOP/s"
            f"  {plain['train_fraction_of_matmul']:6.1%} of matmul",
            f"baseline, whole         {plain['evaluator_images_per_s']:8.0f} images/s",
            f"speedup over baseline   {result['speedup_vs_baseline']:.2f}x whole evaluation, "
            f"{result['train_speedup_vs_baseline']:.2f}x training",
        ]
    load, others = result["load_average"], result["others_cpu_share"]
    lines.append(f"load average            {load['before']:.2f} before, {load['after']:.2f} after (this run's threads included); "
                 f"other processes used {others:.1%} of the CPU during the run")  # fmt: skip
    # The load average lags by a minute and counts this run's threads; the CPU share of others does not.
    if others > 0.05 or (math.isnan(others) and load["before"] > 0.5):
        lines.append("(the machine was busy: timings are pessimistic; rerun when it is quiet)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
