"""genetic-cnn: neural architecture search by genetic algorithm (Xie & Yuille, 2017).

The public API. Genomes, presets and configs import at once (no torch, no matplotlib); the rest is
imported when first asked for, so ``import genetic_cnn`` stays light: ``genetic_cnn.build_network``
loads torch, ``genetic_cnn.start_run`` the whole run machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from genetic_cnn.config import Config, load_config
from genetic_cnn.errors import UserError
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.presets import CIFAR10, CIFAR10_LARGE, DIGITS, MNIST, PRESETS, NetworkPreset, get_preset

if TYPE_CHECKING:
    from genetic_cnn.evolution import resume_run, start_run
    from genetic_cnn.history.rundata import RunData
    from genetic_cnn.history.store import load_run
    from genetic_cnn.nn.network import build_network
    from genetic_cnn.search.protocol import Search
    from genetic_cnn.search.strategies import make_search
    from genetic_cnn.space.graph import architecture_key
    from genetic_cnn.tables.table import load_table

__version__ = "0.1.0"

__all__ = [
    "CIFAR10",
    "CIFAR10_LARGE",
    "DIGITS",
    "MNIST",
    "PRESETS",
    "Config",
    "Genome",
    "NetworkPreset",
    "RunData",
    "Search",
    "UserError",
    "architecture_key",
    "build_network",
    "get_preset",
    "load_config",
    "load_run",
    "load_table",
    "make_search",
    "resume_run",
    "start_run",
]


def __getattr__(name: str) -> Any:  # noqa: C901 - one branch per lazily imported name
    """The names whose modules are heavy (torch, networkx, pymoo, the run machinery), imported on first use."""
    if name == "architecture_key":
        from genetic_cnn.space.graph import architecture_key

        return architecture_key
    if name == "build_network":
        from genetic_cnn.nn.network import build_network

        return build_network
    if name == "start_run":
        from genetic_cnn.evolution import start_run

        return start_run
    if name == "resume_run":
        from genetic_cnn.evolution import resume_run

        return resume_run
    if name == "load_run":
        from genetic_cnn.history.store import load_run

        return load_run
    if name == "RunData":
        from genetic_cnn.history.rundata import RunData

        return RunData
    if name == "make_search":
        from genetic_cnn.search.strategies import make_search

        return make_search
    if name == "Search":
        from genetic_cnn.search.protocol import Search

        return Search
    if name == "load_table":
        from genetic_cnn.tables.table import load_table

        return load_table
    raise AttributeError(f"module 'genetic_cnn' has no attribute {name!r}")
