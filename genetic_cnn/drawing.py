"""Pictures of decoded stages (networkx + matplotlib), for `genetic-cnn show`, reports and notebooks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import networkx as nx

from genetic_cnn.genome import Genome

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ROLE_COLOURS = {"input": "#7fb3d5", "ordinary": "#f7dc6f", "output": "#82e0aa"}


def node_label(node: int, nodes: int) -> str:
    if node == 0:
        return "in"
    if node == nodes + 1:
        return "out"
    return f"v{node}"


def _layered_positions(graph: nx.DiGraph) -> dict[int, tuple[float, float]]:
    """Left-to-right layout by longest path from the input, so data flows one way on the page."""
    depth: dict[int, int] = {}
    for node in nx.topological_sort(graph):
        depth[node] = max((depth[pred] + 1 for pred in graph.predecessors(node)), default=0)
    layers: dict[int, list[int]] = {}
    for node, level in depth.items():
        layers.setdefault(level, []).append(node)
    positions: dict[int, tuple[float, float]] = {}
    for level in sorted(layers):
        members = sorted(layers[level])
        if level > 0:  # order by the mean height of predecessors: fewer crossing edges
            members.sort(key=lambda node: -sum(positions[p][1] for p in graph.predecessors(node)) / graph.in_degree(node))
        for rank, node in enumerate(members):
            positions[node] = (float(level), (len(members) - 1) / 2.0 - rank)
    return positions


def draw_stage(graph: nx.DiGraph, nodes: int, ax: Axes, title: str = "") -> None:
    positions = _layered_positions(graph)
    colours = [ROLE_COLOURS[graph.nodes[node]["role"]] for node in graph.nodes]
    labels = {node: node_label(node, nodes) for node in graph.nodes}
    nx.draw_networkx(
        graph,
        pos=positions,
        ax=ax,
        labels=labels,
        node_color=colours,
        node_size=900,
        edgecolors="#333333",
        arrowsize=16,
        font_size=10,
    )
    ax.set_title(title, fontsize=11)
    ax.set_axis_off()
    ax.margins(0.2)


def draw_genome(genome: Genome, title: str | None = None) -> Figure:
    """One panel per stage, input on the left, output on the right."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    graphs = genome.stage_graphs()
    fig, axes = plt.subplots(1, len(graphs), figsize=(4.2 * len(graphs), 3.6), squeeze=False)
    for index, (graph, ax) in enumerate(zip(graphs, axes[0])):
        bits = str(genome).split("|")[index]
        edges = genome.stage_edges(index)
        note = "all zero: one convolution" if not edges else f"{graph.number_of_nodes()} convolutions"
        draw_stage(graph, genome.nodes[index], ax, f"stage {index + 1}  ({bits})\n{note}")
    fig.suptitle(title if title is not None else f"genome {genome}", fontsize=12)
    fig.tight_layout()
    return fig


def save_genome_drawing(genome: Genome, path: str | Path, title: str | None = None) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = draw_genome(genome, title)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
