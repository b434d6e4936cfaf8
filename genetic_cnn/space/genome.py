"""The binary genome of Genetic CNN (Xie & Yuille 2017, section 3.1).

A genome is a value: for each stage, the number of ordinary nodes K_s and the
K_s(K_s-1)/2 connection bits, grouped by target node as in the paper: first the
bit for v1->v2, then v1->v3, v2->v3, then v1->v4, v2->v4, v3->v4, ...

Written form: groups joined by ``-``, stages joined by ``|``, e.g.
``1-01|0-01-100-0111`` for K = (3, 5).

A genome is data only: decoding it into stage graphs and its architecture key live in
``genetic_cnn.space.graph`` (``stage_graphs(genome)``, ``architecture_key(genome)``). No torch here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from genetic_cnn.errors import UserError

STAGE_SEPARATOR = "|"
GROUP_SEPARATOR = "-"
LOOKALIKES = str.maketrans({**dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d", GROUP_SEPARATOR),
                            **dict.fromkeys("\u00a6\u2223\u01c0\uff5c", STAGE_SEPARATOR)})  # fmt: skip
"""Dashes and bars that a PDF, a word processor or a chat turns ``-`` and ``|`` into."""
SHELL_CUT_HINT = "if you typed it unquoted, the shell cut it at '|': quote the genome, e.g. '1-01|0-01-100-0111'"


class GenomeError(UserError, ValueError):
    """A genome string or value that is no genome; the message says where and why."""


def bits_per_stage(nodes: int) -> int:
    """Number of connection bits encoding a stage of ``nodes`` ordinary nodes."""
    return nodes * (nodes - 1) // 2


def edge_list(nodes: int) -> list[tuple[int, int]]:
    """The (source, target) ordinary-node pair behind each bit of a stage, 1-based, in bit order."""
    return [(source, target) for target in range(2, nodes + 1) for source in range(1, target)]


def _check_nodes(nodes: Sequence[int]) -> tuple[int, ...]:
    checked = tuple(nodes)
    if not checked:
        raise GenomeError("a genome needs at least one stage: nodes is empty")
    for index, count in enumerate(checked, start=1):
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
            raise GenomeError(f"stage {index}: node count {count!r} is not an integer")
        if count < 2:
            raise GenomeError(
                f"stage {index} has {count} node(s); a stage needs at least 2 nodes (one connection bit)"
            )
    return tuple(int(count) for count in checked)


@dataclass(frozen=True)
class Genome:
    """Connection bits of every stage; immutable, hashable, compared by value."""

    nodes: tuple[int, ...]
    stages: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        nodes = _check_nodes(self.nodes)
        if len(self.stages) != len(nodes):
            raise GenomeError(f"{len(nodes)} node counts given for {len(self.stages)} stages")
        stages = []
        for index, (count, bits) in enumerate(zip(nodes, self.stages), start=1):
            bits = tuple(bits)
            expected = bits_per_stage(count)
            if len(bits) != expected:
                raise GenomeError(
                    f"stage {index}: {len(bits)} bits given, a stage of {count} nodes needs {expected}"
                )
            for position, bit in enumerate(bits, start=1):
                if bit not in (0, 1) or isinstance(bit, float):
                    raise GenomeError(f"stage {index}, bit {position}: {bit!r} is not 0 or 1")
            stages.append(tuple(int(bit) for bit in bits))
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "stages", tuple(stages))

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_bits(cls, bits: Iterable[int], nodes: Sequence[int]) -> Genome:
        """Split a flat bit sequence (the paper's order) into stages of ``nodes``."""
        nodes = _check_nodes(nodes)
        flat = tuple(int(bit) if isinstance(bit, (np.integer,)) else bit for bit in bits)
        total = sum(bits_per_stage(count) for count in nodes)
        if len(flat) != total:
            raise GenomeError(f"{len(flat)} bits given; nodes={nodes} needs {total}")
        stages, start = [], 0
        for count in nodes:
            stages.append(flat[start : start + bits_per_stage(count)])
            start += bits_per_stage(count)
        return cls(nodes, tuple(stages))

    @classmethod
    def from_string(cls, text: str, nodes: Sequence[int] | None = None) -> Genome:
        """Parse the paper's notation, e.g. ``"1-01|0-01-100-0111"``: the one genome parser, so every
        command and the API give the same errors.

        The node counts follow from the number of groups per stage; when ``nodes`` is
        given it is checked against them, and a string with fewer stages than ``nodes`` that fails
        gets a hint: a genome typed unquoted is cut at its first ``|`` by the shell.
        """
        if not isinstance(text, str):
            raise GenomeError(f"a genome string is expected, e.g. '1-01|0-01-100-0111'; got {type(text).__name__}")
        if nodes is None:
            return cls._parse(text, None)
        try:
            return cls._parse(text, nodes)
        except GenomeError as error:
            if text.count(STAGE_SEPARATOR) < len(nodes) - 1:
                raise GenomeError(f"{error}; {SHELL_CUT_HINT}") from None
            raise

    @classmethod
    def _parse(cls, text: str, nodes: Sequence[int] | None) -> Genome:
        # Spaces carry no meaning, and look-alike dashes and bars are what copying a genome from a
        # paper or a chat gives: both are read as the plain characters they stand for.
        stripped = "".join(text.translate(LOOKALIKES).split())
        if not stripped:
            raise GenomeError("empty genome string: expected e.g. '1-01|0-01-100-0111'")
        parsed_nodes: list[int] = []
        stages: list[tuple[int, ...]] = []
        offset = 0
        for stage_index, stage_text in enumerate(stripped.split(STAGE_SEPARATOR), start=1):
            if not stage_text:
                raise GenomeError(
                    f"genome {stripped!r}: stage {stage_index} is empty; "
                    "a stage needs at least 2 nodes (one bit)"
                )
            bits: list[int] = []
            groups = stage_text.split(GROUP_SEPARATOR)
            for group_index, group in enumerate(groups, start=1):
                if len(group) != group_index:
                    raise GenomeError(
                        f"genome {stripped!r}: stage {stage_index}, group {group_index} "
                        f"(edges into node v{group_index + 1}) is {group!r} with {len(group)} "
                        f"bit(s); it needs {group_index}"
                    )
                for char in group:
                    if char not in "01":
                        raise GenomeError(
                            f"genome {stripped!r}: character {char!r} at position "
                            f"{offset + 1} (stage {stage_index}, group {group_index}) is not 0 or 1"
                        )
                    bits.append(int(char))
                    offset += 1
                offset += 1  # the separator after the group
            parsed_nodes.append(len(groups) + 1)
            stages.append(tuple(bits))
        if nodes is not None:
            expected = _check_nodes(nodes)
            if tuple(parsed_nodes) != expected:
                raise GenomeError(
                    f"genome {stripped!r} has nodes {tuple(parsed_nodes)} per stage "
                    f"but nodes={expected} was expected"
                )
        return cls(tuple(parsed_nodes), tuple(stages))

    @classmethod
    def random(cls, nodes: Sequence[int], rng: np.random.Generator) -> Genome:
        """Each bit drawn independently from Bernoulli(0.5), as the paper initializes."""
        nodes = _check_nodes(nodes)
        total = sum(bits_per_stage(count) for count in nodes)
        return cls.from_bits(rng.integers(0, 2, size=total).tolist(), nodes)

    @classmethod
    def zeros(cls, nodes: Sequence[int]) -> Genome:
        nodes = _check_nodes(nodes)
        return cls(nodes, tuple((0,) * bits_per_stage(count) for count in nodes))

    @classmethod
    def ones(cls, nodes: Sequence[int]) -> Genome:
        nodes = _check_nodes(nodes)
        return cls(nodes, tuple((1,) * bits_per_stage(count) for count in nodes))

    # ----------------------------------------------------------------- views
    @property
    def bits(self) -> tuple[int, ...]:
        """All bits as one flat tuple, stage after stage."""
        return tuple(bit for stage in self.stages for bit in stage)

    @property
    def num_stages(self) -> int:
        return len(self.nodes)

    def __len__(self) -> int:
        return sum(len(stage) for stage in self.stages)

    def __str__(self) -> str:
        return STAGE_SEPARATOR.join(_format_stage(bits, count) for bits, count in zip(self.stages, self.nodes))

    def __repr__(self) -> str:
        return f"Genome.from_string({str(self)!r})"

    def stage_edges(self, index: int) -> list[tuple[int, int]]:
        """The encoded ordinary-node edges (1-based) of stage ``index`` (0-based)."""
        return [edge for edge, bit in zip(edge_list(self.nodes[index]), self.stages[index]) if bit]


def _format_stage(bits: Sequence[int], nodes: int) -> str:
    groups, start = [], 0
    for width in range(1, nodes):
        groups.append("".join(str(bit) for bit in bits[start : start + width]))
        start += width
    return GROUP_SEPARATOR.join(groups)


def parse_genome(genome: Genome | str, nodes: Sequence[int] | None = None, preset: str | None = None) -> Genome:
    """A genome given as a string (``Genome.from_string``, the one parser) or as a value, checked against
    ``nodes`` when given (``preset``: the name of the preset they come from, for the message)."""
    if not isinstance(genome, Genome):
        return Genome.from_string(genome, nodes)  # a string, or anything else refused by its type
    if nodes is None:
        return genome
    expected = _check_nodes(nodes)
    if genome.nodes != expected:
        wanted = f"preset {preset!r} expects {expected}" if preset else f"nodes={expected} was expected"
        raise GenomeError(f"genome {genome} has nodes {genome.nodes} per stage, {wanted}")
    return genome
