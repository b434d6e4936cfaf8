"""Tables for tests, without training: a synthetic table of any space, shaped as ``tabulate`` writes one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import TINY

from genetic_cnn.config import Config, load_config
from genetic_cnn.space.enumerate import architectures
from genetic_cnn.space.graph import representative
from genetic_cnn.tables.table import COLUMNS, FORMAT, VERSION, Architecture, Measurement, Table, write_table

TINY_SPACE = [*TINY, "space.nodes=[2, 3]"]
"""TINY on a space of 12 architectures: a table of it trains in seconds."""


def synthetic_table(config: Config, seeds: int = 3, seed: int = 0, name: str = "synthetic") -> Table:
    """Every architecture of ``config``'s space with ``seeds`` made-up measurements: accuracy grows with the
    convolutions, plus a per-architecture offset and per-seed noise (0.3 pp each)."""
    rng = np.random.default_rng(seed)
    nodes = config.preset().nodes
    space = architectures(nodes)
    largest = max(space.values())
    entries = []
    for key in sorted(space):
        quality = 0.9 + 0.005 * space[key] / largest + rng.normal(0, 0.003)
        results = tuple(
            Measurement(round(float(quality + rng.normal(0, 0.003)), 6), round(float(quality - 0.001), 6), 0.3, 10, 5.0, "ok")
            for _ in range(seeds)
        )
        entries.append(Architecture(key, str(representative(key, nodes)), space[key], 1000 + space[key], 2000, results))
    header = {
        "format": FORMAT, "version": VERSION, "name": name, "method": "standalone",
        "space": {"preset": config.space.preset, "nodes": list(nodes), "channels": list(config.preset().channels)},
        "data": {"dataset": config.data.dataset}, "config": config.to_dict(), "versions": {}, "created": "",
        "seeds": list(range(seeds)), "seeds_asked": seeds, "columns": list(COLUMNS),
    }  # fmt: skip
    return Table(header, tuple(entries))


def write_synthetic_table(path: Path, overrides: list[str], seeds: int = 3, seed: int = 0) -> Path:
    return write_table(synthetic_table(load_config(None, overrides), seeds, seed, name=path.name.split(".")[0]), path)
