"""Run an experiment through the Python API, then read the results back.

    python experiments/run_from_python.py [--generations 3] [--out runs/api-example]

The same as `genetic-cnn evolve --config experiments/configs/demo.toml`, written as a script a
user can adapt: change the config, drive the search, inspect the best genome.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from genetic_cnn import Genome, build_network
from genetic_cnn.config import load_config
from genetic_cnn.evolution import start_run
from genetic_cnn.history.store import load_run
from genetic_cnn.nn.network import count_parameters
from genetic_cnn.space.graph import architecture_key

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    config = load_config(HERE / "configs" / "demo.toml", [f"evolution.generations={args.generations}"])
    folder = start_run(config, out=args.out)

    with load_run(folder) as run:
        last = run.generations()[-1]
        best_index = max(range(len(last.fitness)), key=lambda i: last.fitness[i])
        best = Genome.from_string(last.genomes[best_index])
        trained = [e for e in run.evaluations() if e.genome == str(best) and e.status == "ok"]
    test = sum(e.test_accuracy or 0.0 for e in trained) / max(len(trained), 1)
    model = build_network(best, config.preset().for_input((1, 8, 8), 10))
    print(f"best genome {best}: fitness {100 * last.fitness[best_index]:.2f}%, test {100 * test:.2f}%")
    print(f"architecture key {architecture_key(best)}, {count_parameters(model):,} parameters")
    print(f"run folder {folder}")


if __name__ == "__main__":
    main()
