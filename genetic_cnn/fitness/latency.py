"""The latency objective and limit: one forward pass timed on the run's device, once per architecture.

Latency is the median time of one forward pass, in eval mode and without autograd, of a batch of
``evolution.latency_batch`` images of the run's input shape, through the network the genome builds
(untrained: the time does not depend on the weights, so nothing is trained to measure it). It is
timed with ``torch.utils.benchmark.Timer.blocked_autorange`` (blocks of runs for at least
``MIN_RUN_TIME`` seconds, the median of the blocks; the Timer synchronizes a GPU around each block)
on ``run.device`` with ``THREADS`` CPU thread, in the run's memory format (``run.channels_last``).
``blocked_autorange`` rather than ``adaptive_autorange``: its time per network is bounded and known in
advance, where the adaptive one runs up to 10 s on a loaded machine that never gets its spread below
the threshold.

Measured in the driver process (the search only receives the numbers through its cost callback and
stays torch-free) and committed to the run database at once (``RunStore.add_latency``), keyed by the
architecture: equivalent strings build the same network. A resumed run reads them back, never times
an architecture twice, and so makes exactly the choices of the run it continues. A fresh run measures
again, and on a loaded machine can measure other latencies than an earlier run did.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genetic_cnn.config import Config, EvolutionConfig
from genetic_cnn.errors import UserError
from genetic_cnn.history.store import LatencyRecord, RunStore
from genetic_cnn.progress import bar as progress_bar
from genetic_cnn.space.cost import LATENCY, CostOf, NetworkCost, cost_function
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.graph import architecture_key
from genetic_cnn.space.presets import NetworkPreset

if TYPE_CHECKING:
    import torch

MIN_RUN_TIME = 0.2
"""Seconds of timed forward passes per network (``blocked_autorange``'s default)."""
THREADS = 1
"""CPU threads of a timed forward pass. One, not the run's evaluation thread count: that count follows
the executor and the machine (``run.threads = 0``) and may change on resume, and the latencies of one
run must compare with each other; one thread is also what one request gets on a busy server."""


def uses_latency(evolution: EvolutionConfig) -> bool:
    """Whether the run needs latencies: an objective or a limit."""
    return LATENCY in evolution.objectives or evolution.max_latency_ms > 0


@dataclass(frozen=True)
class Timing:
    milliseconds: float
    """The median time of one forward pass."""
    spread: float
    """The interquartile range of the timed blocks, in milliseconds."""
    runs: int


def time_forward(
    genome: Genome, preset: NetworkPreset, device: torch.device, batch: int, *, channels_last: bool = True,
    threads: int = THREADS, min_run_time: float | None = None,
) -> Timing:  # fmt: skip
    """Time one forward pass of ``batch`` images through the (untrained) network of ``genome`` (module docstring);
    ``min_run_time`` defaults to ``MIN_RUN_TIME``."""
    import torch

    from genetic_cnn.nn.network import build_network

    benchmark = _benchmark()
    model = build_network(genome, preset).eval().to(device)
    images = torch.zeros((batch, *preset.input_shape), device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    timer = benchmark.Timer(stmt="model(images)", globals={"model": model, "images": images}, num_threads=threads)
    with torch.inference_mode():  # the Timer runs in this thread, so its passes build no graph
        model(images)  # the first pass allocates and picks kernels: not part of any latency
        measured = timer.blocked_autorange(min_run_time=MIN_RUN_TIME if min_run_time is None else min_run_time)
    return Timing(measured.median * 1e3, measured.iqr * 1e3, measured.number_per_run * len(measured.times))


def _benchmark() -> Any:
    """``torch.utils.benchmark``, imported without the warning its C++-extension import logs on a machine
    with a CUDA toolkit but no GPU (it builds no extension here), which would break one-line errors."""
    import logging

    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        from torch.utils import benchmark
    finally:
        logger.setLevel(level)
    return benchmark


def measured_preset(config: Config) -> NetworkPreset:
    """The preset as the run's evaluations build it: fitted to the data's image shape and classes. A table
    run trains nothing and loads no data: its table was measured on the preset's own shape."""
    preset = config.preset()
    if config.evaluation.method == "table":
        return preset
    from genetic_cnn.data.datasets import load_datasets
    from genetic_cnn.space.presets import fit_to_data

    datasets = load_datasets(config.data, seed=config.run.seed)
    return fit_to_data(preset, datasets.name, datasets.input_shape, datasets.num_classes)


def hardware_name(device: torch.device) -> str:
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    with contextlib.suppress(OSError):  # Linux names the CPU model there; platform.processor() often says x86_64
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine() or "cpu"


class RunLatency:
    """The latencies of one run: read back from its database, timed (and committed at once) when missing."""

    def __init__(self, store: RunStore, config: Config, progress: bool = True) -> None:
        from genetic_cnn.nn.device import resolve_device

        self.store, self.config, self.progress = store, config, progress
        self.device = resolve_device(config.run.device)
        self.batch = config.evolution.latency_batch
        records = [record for record in store.latencies() if record.batch == self.batch]
        others = sorted({record.device for record in records} - {self.device.type})
        if others:
            raise UserError(
                f"run {store.folder} timed its latencies on {others[0]}, and run.device = {config.run.device!r} is "
                f"{self.device.type} here: resume it with --set run.device={others[0]}, since latencies timed on "
                f"{self.device.type} would not compare with the stored ones"
            )
        self._known = {record.key: record.milliseconds for record in records}
        self._preset: NetworkPreset | None = None
        self._bar: Any = None
        self._bar_total: int | None = None
        self.timed = 0
        """Networks timed by this object (not read back)."""

    def milliseconds(self, genome: Genome) -> float:
        """The stored latency of ``genome``'s architecture, timed and stored first when there is none."""
        key = architecture_key(genome)
        known = self._known.get(key)
        if known is None:
            known = self._known[key] = self._time(key, genome)
        return known

    def cost_function(self) -> CostOf:
        """``cost.cost_function`` on the run's preset, with each genome's latency."""
        counted = cost_function(self.config.preset())

        def cost(genome: Genome) -> NetworkCost:
            return replace(counted(genome), latency_ms=self.milliseconds(genome))

        return cost

    def measure_all(self, genomes: Iterable[Genome]) -> None:
        """Time every architecture of ``genomes`` not stored yet (a generation before it trains)."""
        missing = {architecture_key(genome): genome for genome in genomes}
        missing = {key: genome for key, genome in missing.items() if key not in self._known}
        if not missing:
            return
        with self.measuring(len(missing)):
            for genome in missing.values():
                self.milliseconds(genome)

    @contextlib.contextmanager
    def measuring(self, total: int | None = None) -> Iterator[None]:
        """One progress bar for the networks timed inside (shown only when one is timed)."""
        self._bar_total = total
        try:
            yield
        finally:
            if self._bar is not None:
                self._bar.close()
                self._bar = None

    def check_limit(self, nodes: Sequence[int]) -> None:
        """Refuse ``evolution.max_latency_ms`` below the time of the all-zero genome, the network with the
        fewest convolutions (and so the fastest): no network of the space would meet it."""
        limit = self.config.evolution.max_latency_ms
        if not limit:
            return
        with self.measuring(1):
            fastest = self.milliseconds(Genome.zeros(tuple(nodes)))
        if fastest > limit:
            raise UserError(
                f"evolution.max_latency_ms = {limit:g}: no network meets it on {self.device.type} here, the fastest "
                f"(the all-zero genome) takes {fastest:.3g} ms for a batch of {self.batch}; raise it above that"
            )

    def _time(self, key: str, genome: Genome) -> float:
        if self._preset is None:
            self._preset = measured_preset(self.config)
        if self._bar is None:
            self._bar = progress_bar(total=self._bar_total, desc=f"latency on {self.device.type}",
                                     unit="net", disable=not self.progress)  # fmt: skip
        started = time.perf_counter()
        timing = time_forward(
            genome, self._preset, self.device, self.batch, channels_last=self.config.run.channels_last
        )
        seconds = time.perf_counter() - started
        self.store.add_latency(LatencyRecord(
            key, self.device.type, self.batch, timing.milliseconds, timing.spread, timing.runs, THREADS,
            hardware_name(self.device), seconds,
        ))  # fmt: skip
        self.timed += 1
        self._bar.update(1)
        return timing.milliseconds
