"""How many of regularized evolution's children are their parent again, with one mutation draw and with redraws. No torch.

Regularized evolution (``search.RegularizedSearch``) mutates a copy of each tournament winner: each
of the L bits flips with probability q_M. One draw flips nothing with probability (1 - q_M)^L, 25.4%
at the paper's q_M = 0.1 on the digits/MNIST space's 13 bits, and that child is its parent again,
an evaluation spent on re-measuring it. Real et al. (2019)'s mutation always changes the
architecture, so the search draws the mutation again until a bit flips (``redraw_copies``). This
measures, over seeds of the paper's budget (N = 20, T = 50, tournaments of 5) on the digits table
(fitness: each architecture's mean over the table's seeds), the share of children whose string
equals their parent's, and whose architecture does (another string of the same network), both ways.

    python benchmarks/regularized_copies.py --seeds 100 --json benchmarks/measured/regularized_copies.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from common import write_json

from genetic_cnn.config import EvolutionConfig
from genetic_cnn.search.strategies import RegularizedSearch
from genetic_cnn.space.graph import architecture_key
from genetic_cnn.tables.simulate import TableLookup
from genetic_cnn.tables.table import load_table


def measure(lookup: TableLookup, config: EvolutionConfig, seeds: Sequence[int], redraw: bool) -> dict[str, float]:
    children = same_string = same_architecture = 0
    for seed in seeds:
        search = RegularizedSearch(config, lookup.nodes, seed)
        search.redraw_copies = redraw
        while not search.done():
            population = search.ask()
            log = search.tell([float(lookup.truth[lookup.index(genome)]) for genome in population])
            if log is None:
                continue
            queue = [genome for genome, _ in search._queue]
            for child, parent in zip(search.ask(), log.parents):
                children += 1
                same_string += child == queue[parent]
                same_architecture += architecture_key(child) == architecture_key(queue[parent])
    return {"children": children, "same_string": same_string / children, "same_architecture": same_architecture / children}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", default="digits-standalone", help="table whose means are the fitness (default digits-standalone)")
    parser.add_argument("--seeds", type=int, default=100, help="run seeds 0 .. S-1 (default 100)")
    parser.add_argument("--json", help="write the figures here (default benchmarks/results/regularized_copies.json)")
    args = parser.parse_args(argv)
    lookup = TableLookup(load_table(args.table))
    config = EvolutionConfig(strategy="regularized", population=20, generations=50, sample_size=5, q_mutation=0.1)
    bits = sum(n * (n - 1) // 2 for n in lookup.nodes)
    figures = {
        "table": args.table, "seeds": args.seeds, "q_mutation": config.q_mutation, "bits": bits,
        "expected_one_draw": (1 - config.q_mutation) ** bits,
        "one_draw": measure(lookup, config, range(args.seeds), redraw=False),
        "redrawn": measure(lookup, config, range(args.seeds), redraw=True),
    }  # fmt: skip
    print(json.dumps(figures, indent=2))
    print(f"wrote {write_json(figures, 'regularized_copies', args.json)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
