"""Decoding a stage's bits into its DAG, and a canonical form for architecture identity.

Node labels in a decoded stage: 0 is the default input node v0, 1..K the ordinary nodes,
K+1 the default output node. Each node carries ``role`` = "input" | "ordinary" | "output".

Pure functions, no torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import networkx as nx

from genetic_cnn.space.genome import GROUP_SEPARATOR, STAGE_SEPARATOR, Genome, edge_list

INPUT, ORDINARY, OUTPUT = "input", "ordinary", "output"
EMPTY_STAGE_KEY = "empty"


def active_edges(bits: Sequence[int], nodes: int) -> list[tuple[int, int]]:
    return [edge for edge, bit in zip(edge_list(nodes), bits) if bit]


def decode_stage(bits: Sequence[int], nodes: int) -> nx.DiGraph:
    """The stage as the network computes it (paper, section 3.1).

    Isolated ordinary nodes are dropped; ordinary nodes without predecessors read from the
    input node, those without successors feed the output node. A stage with no edge at all
    is the input node alone: its convolution is performed once.
    """
    edges = active_edges(bits, nodes)
    graph = nx.DiGraph()
    graph.add_node(0, role=INPUT)
    if not edges:
        return graph
    used = sorted({node for edge in edges for node in edge})
    graph.add_nodes_from(used, role=ORDINARY)
    graph.add_node(nodes + 1, role=OUTPUT)
    graph.add_edges_from(edges)
    for node in used:
        if graph.in_degree(node) == 0:
            graph.add_edge(0, node)
    for node in used:
        if graph.out_degree(node) == 0:
            graph.add_edge(node, nodes + 1)
    return graph


def stage_graphs(genome: Genome) -> list[nx.DiGraph]:
    """One decoded DAG per stage of ``genome``, with default input/output nodes (``decode_stage``)."""
    return [decode_stage(bits, count) for bits, count in zip(genome.stages, genome.nodes)]


def architecture_key(genome: Genome | str) -> str:
    """Equal for two genomes exactly when their decoded networks are the same up to relabelling.

    The stages' canonical forms (``canonical_stage``) joined by ``|``, e.g. ``1-01|1`` for
    ``1-01|0-00-000-0000`` or any string equivalent to it. A string is parsed first.
    """
    parsed = Genome.from_string(genome) if isinstance(genome, str) else genome
    return STAGE_SEPARATOR.join(canonical_stage(bits, count) for bits, count in zip(parsed.stages, parsed.nodes))


def count_convolutions(bits: Sequence[int], nodes: int) -> int:
    """Convolutions the stage performs: one per node of its decoded graph."""
    return decode_stage(bits, nodes).number_of_nodes()


@lru_cache(maxsize=1 << 16)
def canonical_stage(bits: tuple[int, ...], nodes: int) -> str:
    """A canonical string for the stage's decoded DAG, with input/output roles fixed.

    The input and output edges follow from the ordinary edges, so two stages decode to
    isomorphic DAGs exactly when their non-isolated ordinary subgraphs are isomorphic. The
    key is the smallest encoding (in the paper's own bit notation, over the n non-isolated
    nodes) among an isomorphism-invariant set of topological orderings: at each position
    only the available nodes of the smallest refined colour are tried. Equal keys encode the
    same labelled DAG, so the key is exact, not a hash.
    """
    edges = active_edges(bits, nodes)
    if not edges:
        return EMPTY_STAGE_KEY
    used = sorted({node for edge in edges for node in edge})
    preds: dict[int, frozenset[int]] = {v: frozenset(s for s, t in edges if t == v) for v in used}
    succs: dict[int, frozenset[int]] = {v: frozenset(t for s, t in edges if s == v) for v in used}
    colour = _refine_colours(used, preds, succs)
    size = len(used)

    best: list[int] | None = None
    position: dict[int, int] = {}
    code: list[int] = []

    def extend(placed: list[int]) -> None:
        nonlocal best
        if len(placed) == size:
            if best is None or code < best:
                best = code.copy()
            return
        available = [v for v in used if v not in position and preds[v].issubset(position)]
        smallest = min(colour[v] for v in available)
        tried: set[tuple[frozenset[int], frozenset[int]]] = set()
        for v in available:
            if colour[v] != smallest:
                continue
            # Twins (same predecessors and successors) are interchangeable: try one of them.
            twin_signature = (preds[v], succs[v])
            if twin_signature in tried:
                continue
            tried.add(twin_signature)
            group = [1 if u in preds[v] else 0 for u in placed]
            code.extend(group)
            if best is None or code <= best[: len(code)]:
                position[v] = len(placed)
                placed.append(v)
                extend(placed)
                placed.pop()
                del position[v]
            del code[len(code) - len(group) :]

    extend([])
    assert best is not None
    return _format_code(best, size)


def _refine_colours(
    nodes: list[int], preds: dict[int, frozenset[int]], succs: dict[int, frozenset[int]]
) -> dict[int, int]:
    """Colour refinement (1-WL on in- and out-neighbours); the colours are invariant integers."""
    colour = {v: (len(preds[v]), len(succs[v])) for v in nodes}
    ranks = _rank(colour)
    while True:
        signature = {
            v: (ranks[v], tuple(sorted(ranks[u] for u in preds[v])), tuple(sorted(ranks[u] for u in succs[v])))
            for v in nodes
        }
        new_ranks = _rank(signature)
        if len(set(new_ranks.values())) == len(set(ranks.values())):
            return new_ranks
        ranks = new_ranks


def _rank(values: Mapping[int, Any]) -> dict[int, int]:
    order = {value: rank for rank, value in enumerate(sorted(set(values.values())))}
    return {node: order[value] for node, value in values.items()}


def _format_code(code: list[int], size: int) -> str:
    groups, start = [], 0
    for width in range(1, size):
        groups.append("".join(str(bit) for bit in code[start : start + width]))
        start += width
    return GROUP_SEPARATOR.join(groups)


def representative(key: str, nodes: Sequence[int]) -> Genome:
    """One genome whose architecture key is ``key``: each stage's canonical code placed on ordinary
    nodes 1..n, the remaining nodes isolated. Computations that depend on node labels (the one-shot
    supernet gives each label its own weights) use it to be a function of the architecture alone."""
    stage_keys = key.split(STAGE_SEPARATOR)
    if len(stage_keys) != len(nodes):
        raise ValueError(f"architecture key {key!r} has {len(stage_keys)} stages, the space {len(nodes)}")
    stages = []
    for stage_key, count in zip(stage_keys, nodes):
        groups = [] if stage_key == EMPTY_STAGE_KEY else stage_key.split(GROUP_SEPARATOR)
        if len(groups) > count - 1:
            raise ValueError(f"architecture key {key!r}: stage {stage_key!r} needs more than {count} nodes")
        groups += ["0" * width for width in range(len(groups) + 1, count)]
        stages.append(GROUP_SEPARATOR.join(groups))
    return Genome.from_string(STAGE_SEPARATOR.join(stages), nodes=nodes)
