"""Helpers shared by the torch benchmarks: the MNIST folder, the machine's matmul rate, JSON output.

Not part of the package: the scripts next to this file import it by name (Python puts the script's
folder on ``sys.path``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import resource
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--root", help="folder holding MNIST/raw/<the four uncompressed IDX files> (torchvision's layout)")
    where.add_argument("--mnist-gz", help="folder holding the four *-ubyte.gz files; they are gunzipped into a temporary root")


def mnist_root(args: argparse.Namespace, stack: list[tempfile.TemporaryDirectory]) -> Path:
    """The ``--root`` folder, or a temporary one filled from ``--mnist-gz`` (kept alive by ``stack``)."""
    if args.root:
        root = Path(args.root).expanduser()
        missing = [name for name in MNIST_FILES if not (root / "MNIST" / "raw" / name).is_file()]
        if missing:
            raise SystemExit(f"--root {root}: missing {', '.join(missing)} in {root / 'MNIST' / 'raw'}")
        return root
    source = Path(args.mnist_gz).expanduser()
    temporary = tempfile.TemporaryDirectory(prefix="mnist-")
    stack.append(temporary)
    raw = Path(temporary.name) / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES:
        packed = source / f"{name}.gz"
        if not packed.is_file():
            raise SystemExit(f"--mnist-gz {source}: {packed.name} is missing")
        with gzip.open(packed, "rb") as src, open(raw / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return Path(temporary.name)


def matmul_rate(size: int = 2048, seconds: float = 1.0, rounds: int = 3) -> dict[str, float]:
    """Dense float32 ``torch.mm`` of two size x size matrices, repeated: FLOP/s (best and median of rounds).

    The practical ceiling of this machine at the current thread count: a large GEMM keeps every
    core's FMA units busy, which no small convolution does better.
    """
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    torch.mm(a, b, out=out)  # warm up the threads and MKL's buffers
    flops_each = 2.0 * size**3
    rates = []
    for _ in range(rounds):
        count, started = 0, time.perf_counter()
        while True:
            torch.mm(a, b, out=out)
            count += 1
            elapsed = time.perf_counter() - started
            if elapsed >= seconds:
                break
        rates.append(flops_each * count / elapsed)
    return {"best": max(rates), "median": statistics.median(rates), "size": size}


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what ``platform`` knows. No torch."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    import torch

    return {
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


@dataclass(frozen=True)
class CpuSample:
    total: float
    """CPU-seconds of all cores since boot (Linux /proc/stat), NaN elsewhere."""
    idle: float
    own: float
    """CPU-seconds of this process and its finished children."""


def cpu_sample() -> CpuSample:
    own = sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
              for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))  # fmt: skip
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return CpuSample(math.nan, math.nan, own)
    ticks = os.sysconf("SC_CLK_TCK")
    return CpuSample(sum(fields[:8]) / ticks, (fields[3] + fields[4]) / ticks, own)


def others_share(before: CpuSample, after: CpuSample) -> float:
    """Share of the machine's CPU time that other processes used between two samples: what disturbed
    the timings (the load average counts this benchmark's own threads too)."""
    total = after.total - before.total
    if not total > 0:
        return math.nan
    busy = total - (after.idle - before.idle)
    return min(1.0, max(0.0, (busy - (after.own - before.own)) / total))


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def write_json(data: dict[str, Any], name: str, path: str | None) -> Path:
    """Write to ``path`` when given, else benchmarks/results/<name>.json; returns where."""
    target = Path(path) if path else RESULTS / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return target


def table(rows: list[list[str]], header: list[str]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            str(cell).rjust(width) if _numeric(str(cell)) else str(cell).ljust(width)
            for cell, width in zip(cells, widths)
        ).rstrip()

    return "\n".join([line(header), line(["-" * width for width in widths]), *(line(row) for row in rows)])


def _numeric(text: str) -> bool:
    try:
        float(text.rstrip("%x"))
    except ValueError:
        return False
    return True


def busy_fraction(seconds: float = 1.0) -> float:
    """Share of all cores busy over ``seconds`` (Linux /proc/stat; 0.0 elsewhere): other processes' load
    while this one sleeps."""
    def sample() -> tuple[int, int]:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]), idle

    try:
        total_before, idle_before = sample()
        time.sleep(seconds)
        total_after, idle_after = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    total = total_after - total_before
    return 1.0 - (idle_after - idle_before) / total if total > 0 else 0.0


def wait_until_quiet(max_seconds: float, threshold: float = 0.1) -> float:
    """Sleep until other processes use less than ``threshold`` of the cores, at most ``max_seconds``;
    returns the busy fraction last seen. The machine is shared: a timing taken while others run is
    pessimistic, and for multi-threaded runs very much so."""
    deadline = time.monotonic() + max_seconds
    busy = busy_fraction(0.5)
    while busy >= threshold and time.monotonic() < deadline:
        time.sleep(2.0)
        busy = busy_fraction(0.5)
    return busy
