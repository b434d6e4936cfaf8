"""What the run loop (``evolution.Evolution.run``) and a table simulation (``tables.simulate``) ask of a
search: every strategy of ``make_search`` has this shape, and so may one written outside the package."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from genetic_cnn.search.operators import GenerationLog
from genetic_cnn.space.genome import Genome


@runtime_checkable
class Search(Protocol):
    generation: int
    """The generation ``ask()`` returns: 0 first, T + 1 once ``done()``."""

    tells_own_evaluation: bool
    """False: ``tell`` takes each individual's mean over all its evaluations (the paper's rule); True:
    each slot's own evaluation of this generation (regularized evolution)."""

    def ask(self) -> list[Genome]:
        """The current generation, to evaluate; the same list until ``tell``."""
        ...

    def tell(self, fitness: Sequence[float]) -> GenerationLog | None:
        """Fitness of each individual of ``ask()``, in order (NaN = no fitness); breeds the next generation."""
        ...

    def done(self) -> bool:
        """True once every generation has been told."""
        ...

    def rng_state(self) -> dict[str, Any]:
        """The random state after the last step (JSON-serialisable), stored in the run database."""
        ...
