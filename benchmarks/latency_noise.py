"""How long timing one network's latency takes, and how much the timed latency varies (``genetic_cnn.fitness.latency``).

For each preset (digits, mnist) and each of three networks (the all-zero genome, a random one, the
all-one genome), the run's own ``time_forward`` (batch ``--batch``, one thread, channels_last,
``blocked_autorange`` for ``MIN_RUN_TIME`` s) is repeated ``--repeats`` times on the CPU, each time on
a freshly built network as a run does. Printed per network: the wall seconds of one measurement
(building the network included), the median latency over the repeats, and its spread: the relative
interquartile range and (max - min) / median of the repeats' medians. The load average is printed too.

    python benchmarks/latency_noise.py
    python benchmarks/latency_noise.py --repeats 20 --batch 8
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from genetic_cnn.fitness.latency import MIN_RUN_TIME, time_forward
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.presets import get_preset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args()
    device = torch.device("cpu")
    print(f"load average before: {os.getloadavg()[0]:.2f}; {MIN_RUN_TIME} s of timed passes per measurement")
    print("| preset | network | seconds per measurement | median latency (ms) | relative IQR | (max - min) / median |")
    print("|---|---|---|---|---|---|")
    for name in ("digits", "mnist"):
        preset = get_preset(name)
        genomes = {
            "all-zero": Genome.zeros(preset.nodes),
            "random": Genome.random(preset.nodes, np.random.default_rng(0)),
            "all-one": Genome.ones(preset.nodes),
        }
        for label, genome in genomes.items():
            seconds, medians = [], []
            for _ in range(args.repeats):
                started = time.perf_counter()
                medians.append(time_forward(genome, preset, device, args.batch).milliseconds)
                seconds.append(time.perf_counter() - started)
            middle = statistics.median(medians)
            low, high = np.percentile(medians, [25, 75])
            print(
                f"| {name} | {label} | {statistics.median(seconds):.2f} | {middle:.3f} | "
                f"{(high - low) / middle:.0%} | {(max(medians) - min(medians)) / middle:.0%} |"
            )
    print(f"load average after: {os.getloadavg()[0]:.2f}; the random genome: {Genome.random((3, 5), np.random.default_rng(0))}")


if __name__ == "__main__":
    main()
