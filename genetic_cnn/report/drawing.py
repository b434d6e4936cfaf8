"""Pictures of decoded stages (networkx + matplotlib), for `genetic-cnn show`, reports and notebooks.

Figures use matplotlib's object API, never pyplot: no display is needed, and a notebook's
plotting backend is left alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx
from matplotlib.figure import Figure

from genetic_cnn.space.genome import Genome
from genetic_cnn.space.graph import stage_graphs

if TYPE_CHECKING:
    from matplotlib.axes import Axes

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


def _blocked(positions: dict[int, tuple[float, float]], source: int, target: int) -> bool:
    """Whether a straight edge from ``source`` to ``target`` would pass behind another node."""
    (x0, y0), (x1, y1) = positions[source], positions[target]
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    for node, (x, y) in positions.items():
        if node in (source, target):
            continue
        t = ((x - x0) * dx + (y - y0) * dy) / length2
        if 0 < t < 1 and abs((x - x0) * dy - (y - y0) * dx) / length2**0.5 < 0.25:
            return True
    return False


def draw_stage(graph: Any, nodes: int, ax: Axes, title: str) -> None:
    """A stage left to right; an edge that would pass behind a node is drawn as an arc,
    so that skip connections along a chain stay visible."""
    positions = _layered_positions(graph)
    style = {"ax": ax, "node_size": 900, "arrows": True, "arrowsize": 14, "width": 1.2, "edge_color": "#333333"}
    nx.draw_networkx_nodes(graph, positions, ax=ax, node_size=900, edgecolors="#333333",
                           node_color=[ROLE_COLOURS[graph.nodes[node]["role"]] for node in graph.nodes])  # fmt: skip
    nx.draw_networkx_labels(
        graph, positions, {node: node_label(node, nodes) for node in graph.nodes}, ax=ax, font_size=10
    )
    straight = [edge for edge in graph.edges if not _blocked(positions, *edge)]
    nx.draw_networkx_edges(graph, positions, edgelist=straight, **style)
    curved = [edge for edge in graph.edges if _blocked(positions, *edge)]
    for sign in (1, -1):  # alternate above and below, so arcs of equal length do not coincide
        edges = [(a, b) for a, b in curved if (1 if (a + b) % 2 else -1) == sign]
        if edges:
            nx.draw_networkx_edges(graph, positions, edgelist=edges, connectionstyle=f"arc3,rad={0.4 * sign}", **style)
    xs = [x for x, _ in positions.values()]
    ys = [y for _, y in positions.values()]
    reach = max([0.0] + [0.25 * abs(positions[b][0] - positions[a][0]) for a, b in curved])
    ax.set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    ax.set_ylim(min(ys) - 0.7 - reach, max(ys) + 0.7 + reach)
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()


def _stage_width(genome: str, stage: int) -> float:
    """Inches a stage needs: its drawing is laid out left to right by longest path from the input."""
    graph = stage_graphs(Genome.from_string(genome))[stage]
    return max(2.6, 0.72 * (nx.dag_longest_path_length(graph) + 1) + 0.8)


def _stage_height(genome: Genome) -> int:
    """The most nodes any stage of ``genome`` stacks in one column of its drawing."""
    columns = [Counter(x for x, _ in _layered_positions(graph).values()) for graph in stage_graphs(genome)]
    return max(max(column.values()) for column in columns)


def genomes_figure(rows: Sequence[tuple[str, str | Genome]], title: str | None = None) -> Figure:
    """One row per (heading, genome), one panel per stage, each stage column as wide as it needs."""
    genomes = [Genome.from_string(str(genome)) for _, genome in rows]
    stages = genomes[0].num_stages
    widths = [max(_stage_width(str(genome), stage) for genome in genomes) for stage in range(stages)]
    height = max(2.5, 1.7 + 0.45 * max(_stage_height(genome) for genome in genomes))
    fig = Figure(figsize=(sum(widths), height * len(rows)))
    subfigures: Any = fig.subfigures(len(rows), 1, squeeze=False)[:, 0]
    for number, ((heading, _), genome, sub) in enumerate(zip(rows, genomes, subfigures)):
        axes = sub.subplots(1, stages, squeeze=False, gridspec_kw={"width_ratios": widths})[0]
        for index, (graph, ax) in enumerate(zip(stage_graphs(genome), axes)):
            size = (
                f"{graph.number_of_nodes()} convolutions" if genome.stage_edges(index) else "1 convolution (all zero)"
            )
            draw_stage(
                graph, genome.nodes[index], ax, f"stage {index + 1}: {str(genome).split('|')[index]}  ({size})"
            )
        sub.suptitle(heading, fontsize=11, fontweight="bold", y=0.97)
        sub.subplots_adjust(top=1 - 0.7 / height, bottom=0.02, left=0.02, right=0.98, wspace=0.08)
        if len(rows) > 1:
            sub.set_facecolor("#f2f4f5" if number % 2 == 0 else "white")
    if title:
        fig.suptitle(title, fontsize=13, y=1.0 + 0.25 / fig.get_figheight())
    return fig


def draw_genome(genome: str | Genome, title: str | None = None) -> Figure:
    """A genome's stages side by side (a matplotlib Figure; no pyplot, so notebooks keep their backend)."""
    return genomes_figure([(title if title is not None else str(genome), genome)])


def save_genome_drawing(genome: str | Genome, path: str | Path, title: str | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    draw_genome(genome, title).savefig(path, dpi=110, bbox_inches="tight")
    return path
