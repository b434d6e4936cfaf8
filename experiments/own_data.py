"""Genetic CNN on data you already hold in memory: numpy arrays or torch tensors, or a torch Dataset.

    python experiments/own_data.py [--generations 2] [--out runs/own-data] [--set KEY=VALUE ...]

Here the "own data" are scikit-learn's 1,797 handwritten 8x8 digits as numpy arrays (bundled, no
download), with only four of the ten classes kept, to show that any number of classes works. Replace
``my_images_and_labels`` with your own (images (N, H, W), (N, H, W, C) or (N, C, H, W); integer
labels 0..K-1). Without a test set, a seeded 20% of every class is held out for testing. The run
keeps a copy of the data in RUN/data.npz, so that `genetic-cnn resume RUN` and `genetic-cnn report
RUN` need nothing from this script.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from genetic_cnn.config import load_config
from genetic_cnn.evolution import start_run
from genetic_cnn.history.store import load_run

HERE = Path(__file__).parent


def my_images_and_labels() -> tuple[np.ndarray, np.ndarray]:
    """(N, 8, 8) float images in [0, 1] and int64 labels 0..3: the digits 0, 1, 2 and 3."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = digits.target < 4
    return digits.images[keep] / 16.0, digits.target[keep].astype(np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generations", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="run folder (default runs/arrays-genetic-standalone-<time>)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    args = parser.parse_args()

    images, labels = my_images_and_labels()
    config = load_config(HERE / "configs" / "demo.toml", [f"evolution.generations={args.generations}", *args.set])
    folder = start_run(config, out=args.out, data=(images, labels))

    with load_run(folder) as run:
        last = run.generations()[-1]
        recorded = run.config.data
    best = max(range(len(last.fitness)), key=lambda index: last.fitness[index])
    print(f"{len(labels)} images of {len(np.unique(labels))} classes; data kept in {recorded.root}")
    print(f"best genome {last.genomes[best]}: fitness {100 * last.fitness[best]:.2f}%")
    print(f"run folder {folder}")


if __name__ == "__main__":
    main()
