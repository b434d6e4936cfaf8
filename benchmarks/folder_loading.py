"""Time to load an image folder (``data.dataset = "folder"``) the first time (list, decode, cache) and
the second time (list, hash, read the cache).

    python benchmarks/folder_loading.py [--images 10000] [--mnist-raw DIR] [--json PATH]

Writes ``--images`` PNG files, 10 class folders, into a temporary folder: real MNIST digits when
``--mnist-raw`` names a folder of the uncompressed IDX files (``train-images-idx3-ubyte``...), else
random 28x28 grayscale images (which compress worse, so they decode a little slower). Then loads the
folder twice with ``load_datasets``, each in a fresh process so that nothing but the cache and the
operating system's file cache carries over, with one torch thread.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine, table, write_json

LOAD = """
import json, sys, time
import torch
torch.set_num_threads(1)
from genetic_cnn.config import DataConfig
from genetic_cnn.data.datasets import load_datasets
started = time.perf_counter()
data = load_datasets(DataConfig(dataset="folder", root=sys.argv[1]), seed=0)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "images": len(data.train) + len(data.validation) + len(data.test)}))
"""


def digits(count: int, mnist_raw: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) uint8 images and their labels 0..9."""
    if mnist_raw:
        raw = Path(mnist_raw)
        images = np.frombuffer((raw / "train-images-idx3-ubyte").read_bytes(), np.uint8, offset=16).reshape(-1, 28, 28)
        labels = np.frombuffer((raw / "train-labels-idx1-ubyte").read_bytes(), np.uint8, offset=8)
        return images[:count], labels[:count].astype(np.int64)
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8), np.arange(count) % 10


def write_folder(root: Path, images: np.ndarray, labels: np.ndarray) -> None:
    from PIL import Image

    for index, (pixels, label) in enumerate(zip(images, labels)):
        folder = root / "train" / f"digit{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{index:05d}.png")


def load_once(root: Path) -> dict[str, float]:
    package = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", LOAD, str(root)], capture_output=True, text=True, check=True,
                            env={**os.environ, "PYTHONPATH": str(package), "OMP_NUM_THREADS": "1"})  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--mnist-raw", help="folder of the uncompressed MNIST IDX files (default: random images)")
    parser.add_argument("--json", help="output file (default benchmarks/results/folder_loading.json)")
    args = parser.parse_args()

    images, labels = digits(args.images, args.mnist_raw)
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        started = time.perf_counter()
        write_folder(root, images, labels)
        written = time.perf_counter() - started
        files = sorted(root.rglob("*.png"))
        megabytes = sum(path.stat().st_size for path in files) / 1e6
        first = load_once(root)
        second = load_once(root)
        cache = sum(path.stat().st_size for path in (root / ".genetic-cnn-cache").iterdir()) / 1e6
    rows = [
        ["first load (list, decode, cache)", f"{first['seconds']:.2f}", f"{first['images'] / first['seconds']:,.0f}"],
        ["second load (list, hash, read cache)", f"{second['seconds']:.2f}", f"{second['images'] / second['seconds']:,.0f}"],
    ]
    source = "real MNIST digits" if args.mnist_raw else "random 28x28 images"
    print(f"{len(files):,} PNG files of {source}, {megabytes:.1f} MB, written in {written:.1f} s; cache {cache:.1f} MB")
    print(table(rows, ["load", "seconds", "images/s"]))
    print(f"second / first: {second['seconds'] / first['seconds']:.3f}")
    path = write_json({"machine": machine(), "images": len(files), "source": source, "png_megabytes": megabytes,
                       "cache_megabytes": cache, "first": first, "second": second}, "folder_loading", args.json)  # fmt: skip
    print(f"results: {path}")


if __name__ == "__main__":
    main()
