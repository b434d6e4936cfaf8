"""Decoding stages to DAGs, and the exactness of the architecture key."""

import itertools
import subprocess
import sys

import networkx as nx
import numpy as np
import pytest

from genetic_cnn.space.genome import Genome, bits_per_stage, edge_list
from genetic_cnn.space.graph import (
    EMPTY_STAGE_KEY,
    architecture_key,
    canonical_stage,
    count_convolutions,
    decode_stage,
    stage_graphs,
)


def roles(graph: nx.DiGraph) -> dict[int, str]:
    return dict(graph.nodes(data="role"))


def same_network(a: nx.DiGraph, b: nx.DiGraph) -> bool:
    return nx.is_isomorphic(a, b, node_match=lambda x, y: x["role"] == y["role"])


def test_decode_adds_default_nodes_and_drops_isolated() -> None:
    # K=5: v1->v2 and v2->v4; v3 and v5 are isolated.
    bits = [1, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    graph = decode_stage(bits, 5)
    assert set(graph.nodes) == {0, 1, 2, 4, 6}
    assert set(graph.edges) == {(0, 1), (1, 2), (2, 4), (4, 6)}
    assert roles(graph) == {0: "input", 1: "ordinary", 2: "ordinary", 4: "ordinary", 6: "output"}


def test_sources_read_input_and_sinks_feed_output() -> None:
    graph = decode_stage(Genome.from_string("0-01-100-0111").stages[0], 5)
    assert set(graph.successors(0)) == {1, 2}
    assert set(graph.predecessors(6)) == {5}


def test_all_zero_stage_is_the_input_convolution_alone() -> None:
    graph = decode_stage((0, 0, 0), 3)
    assert list(graph.nodes) == [0] and graph.number_of_edges() == 0
    assert count_convolutions((0, 0, 0), 3) == 1
    assert canonical_stage((0, 0, 0), 3) == EMPTY_STAGE_KEY


def test_stage_graphs_per_stage() -> None:
    graphs = stage_graphs(Genome.from_string("1-01|0-00-000-0000"))
    assert [g.number_of_nodes() for g in graphs] == [5, 1]
    assert all(nx.is_directed_acyclic_graph(g) for g in graphs)


def key_classes(nodes: int) -> dict[str, list[tuple[int, ...]]]:
    classes: dict[str, list[tuple[int, ...]]] = {}
    for bits in itertools.product((0, 1), repeat=bits_per_stage(nodes)):
        classes.setdefault(canonical_stage(bits, nodes), []).append(bits)
    return classes


def invariant(graph: nx.DiGraph) -> tuple:
    """Cheap isomorphism invariant: different values prove two graphs differ."""
    return (
        graph.number_of_nodes(),
        graph.number_of_edges(),
        tuple(sorted((graph.in_degree(n), graph.out_degree(n)) for n in graph.nodes)),
    )


@pytest.mark.parametrize("nodes", [3, 4, 5])
def test_key_is_exact_exhaustively(nodes: int) -> None:
    classes = key_classes(nodes)
    representatives = []
    for members in classes.values():
        first = decode_stage(members[0], nodes)
        for bits in members[1:]:  # no false merges: one key, one network
            assert same_network(first, decode_stage(bits, nodes)), (members[0], bits)
        representatives.append(first)
    by_invariant: dict[tuple, list[nx.DiGraph]] = {}
    for graph in representatives:
        by_invariant.setdefault(invariant(graph), []).append(graph)
    for group in by_invariant.values():  # no missed merges: different keys, different networks
        for a, b in itertools.combinations(group, 2):
            assert not same_network(a, b)
    expected_classes = {3: 6, 4: 31, 5: 302}
    assert len(classes) == expected_classes[nodes]


def relabel_topologically(bits: tuple[int, ...], nodes: int, rng: np.random.Generator) -> tuple[int, ...]:
    """The same stage written with another valid numbering of its nodes."""
    edges = [edge for edge, bit in zip(edge_list(nodes), bits) if bit]
    dag = nx.DiGraph()
    dag.add_nodes_from(range(1, nodes + 1))
    dag.add_edges_from(edges)
    order = list(rng.permutation(np.arange(1, nodes + 1)))
    relabel: dict[int, int] = {}
    remaining = set(range(1, nodes + 1))
    while remaining:  # a random topological order: any available node, chosen by the shuffled rank
        available = [v for v in remaining if all(p in relabel for p in dag.predecessors(v))]
        chosen = min(available, key=order.index)
        relabel[chosen] = len(relabel) + 1
        remaining.remove(chosen)
    new_edges = {(relabel[s], relabel[t]) for s, t in edges}
    return tuple(1 if edge in new_edges else 0 for edge in edge_list(nodes))


@pytest.mark.parametrize("nodes", [6, 7, 8])
def test_key_is_exact_on_larger_stages(nodes: int) -> None:
    rng = np.random.default_rng(nodes)
    samples = [tuple(int(b) for b in rng.integers(0, 2, bits_per_stage(nodes))) for _ in range(150)]
    # Sparse stages have isolated nodes and many symmetric twins: the hard cases for a canonical form.
    samples += [tuple(int(b) for b in (rng.random(bits_per_stage(nodes)) < 0.15)) for _ in range(150)]
    for bits in samples:
        relabelled = relabel_topologically(bits, nodes, rng)
        assert canonical_stage(relabelled, nodes) == canonical_stage(bits, nodes)
    graphs = {bits: decode_stage(bits, nodes) for bits in samples}
    for a, b in itertools.combinations(samples[:120], 2):
        equal_keys = canonical_stage(a, nodes) == canonical_stage(b, nodes)
        if equal_keys or invariant(graphs[a]) == invariant(graphs[b]):
            assert equal_keys == same_network(graphs[a], graphs[b])


@pytest.mark.parametrize(
    "edges",
    [
        {(1, j) for j in range(2, 9)},  # a fan of seven twins
        {(1, 5), (2, 6), (3, 7), (4, 8)},  # four parallel chains
        {(i, j) for i in range(1, 5) for j in range(5, 9)},  # complete bipartite 4x4
        {(1, 5), (2, 6), (3, 7), (4, 8), (1, 6), (2, 7), (3, 8), (4, 5)},  # an 8-cycle of crossings
    ],
)
def test_key_of_symmetric_stages_of_eight(edges: set[tuple[int, int]]) -> None:
    bits = tuple(1 if edge in edges else 0 for edge in edge_list(8))
    rng = np.random.default_rng(0)
    key = canonical_stage(bits, 8)
    assert key.count("1") == len(edges)
    for _ in range(20):
        assert canonical_stage(relabel_topologically(bits, 8, rng), 8) == key


def test_genome_key_joins_stage_keys_and_merges_equivalent_strings() -> None:
    # Stage 2 relabelled: v1->v3 is the same network as v2->v3 (one edge, isolated rest).
    a = Genome.from_string("1-01|1-00-000-0000")
    b = Genome.from_string("1-01|0-00-000-0001")
    c = Genome.from_string("1-01|1-00-000-1000")
    assert architecture_key(a) == architecture_key(b)
    assert architecture_key(a) != architecture_key(c)
    assert architecture_key(a).split("|") == ["1-01", "1"]


def test_search_space_sizes() -> None:
    assert len(key_classes(3)) * len(key_classes(5)) == 1812  # MNIST: 8,192 strings
    assert len(key_classes(3)) * len(key_classes(4)) * len(key_classes(5)) == 56172  # CIFAR-10: 524,288


def test_core_modules_do_not_import_torch() -> None:
    code = (
        "import sys, genetic_cnn, genetic_cnn.space.genome, genetic_cnn.space.graph, genetic_cnn.space.presets, genetic_cnn.config;"
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
