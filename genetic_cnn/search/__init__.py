"""search: the strategies behind ask/tell, their operators, Pareto ranking and the evaluation records.
Imports space/, config and errors only; no torch.

``Search`` and ``make_search`` are imported when first asked for: the records every other part reads
must not pull in pymoo and scipy (the strategies' Pareto ranking) with them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genetic_cnn.search.protocol import Search
    from genetic_cnn.search.strategies import make_search

__all__ = ["Search", "make_search"]


def __getattr__(name: str) -> Any:
    if name == "Search":
        from genetic_cnn.search.protocol import Search

        return Search
    if name == "make_search":
        from genetic_cnn.search.strategies import make_search

        return make_search
    raise AttributeError(f"module 'genetic_cnn.search' has no attribute {name!r}")
