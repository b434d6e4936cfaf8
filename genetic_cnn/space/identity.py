"""What makes two evaluated genomes "the same individual": the one rule every counter of individuals uses.

``evolution.identity`` (``config.IDENTITIES``) chooses it: ``"string"``, the exact bits (two strings that decode to the same
network are two individuals), or ``"architecture"``, the decoded network (``graph.architecture_key``).
The search's fitness ledger, NSGA-II's pool, the run's history (ranking, test accuracy, fitness noise)
and the table simulation all key individuals with ``individual_key``.
"""

from __future__ import annotations

from functools import cache

from genetic_cnn.space.genome import Genome
from genetic_cnn.space.graph import architecture_key


@cache
def _stored_key(text: str) -> str:
    # Stored strings repeat across a run's generations and records: each is decoded once.
    return architecture_key(Genome.from_string(text))


def individual_key(genome: Genome | str, identity: str, key: str | None = None) -> str:
    """The individual ``genome`` is under ``identity``: its string, or its architecture key.

    ``genome`` may be a stored string (it is decoded at most once per process). ``key``: the genome's
    architecture key when already known (an evaluation record's), used as is."""
    if identity == "string":
        return str(genome)
    if identity == "architecture":
        if key:
            return key
        return _stored_key(genome) if isinstance(genome, str) else architecture_key(genome)
    raise ValueError(f"identity {identity!r} is not 'string' or 'architecture' (config.IDENTITIES)")
