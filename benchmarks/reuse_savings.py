"""How many of the paper's N(T+1) trainings could be skipped by reusing earlier evaluations? No torch.

Simulates the paper's MNIST search (N = 20, T = 50, p_M 0.8, q_M 0.1, p_C 0.2, q_C 0.3, nodes
(3, 5)) with ``GeneticSearch`` and the run loop's bookkeeping (``FitnessLedger`` and the rule of
``Evolution._evaluate_generation``: with ``reevaluate = "reuse"`` an individual already evaluated,
or already planned earlier in its generation, is not trained and gets the mean of its evaluations).
Training is replaced by a synthetic fitness: a fixed accuracy per architecture (from a hash of
``Genome.architecture_key``, spread over ``--spread`` above ``--base``) plus Gaussian noise per
evaluation (``--noise``), seeded by the evaluation's own seed, so selection behaves like a real
run in which equivalent strings train to the same accuracy up to seed noise.

For each seed it runs three searches, which follow different paths because their fitness differs:

- retrain (the paper): every evaluation is trained; counts how many repeat an earlier string or
  architecture;
- reuse, identity = string: exact strings are trained once;
- reuse, identity = architecture: equivalent strings (the same decoded network) are trained once.

    python benchmarks/reuse_savings.py                  # seeds 0..9
    python benchmarks/reuse_savings.py --seeds 0 1 2 --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from common import write_json

from genetic_cnn.config import EvolutionConfig
from genetic_cnn.search.strategies import FitnessLedger, GeneticSearch, evaluation_seed
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.graph import architecture_key

PAPER_MNIST = EvolutionConfig(population=20, generations=50, p_mutation=0.8, q_mutation=0.1, p_crossover=0.2, q_crossover=0.3)
NODES = (3, 5)
POLICIES = (("retrain", "string"), ("reuse", "string"), ("reuse", "architecture"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)), help="run seeds (default 0..9)")
    parser.add_argument("--base", type=float, default=0.990, help="accuracy of the worst architecture (default 0.990)")
    parser.add_argument("--spread", type=float, default=0.006, help="best minus worst architecture (default 0.006)")
    parser.add_argument("--noise", type=float, default=0.001, help="standard deviation of one training's accuracy (default 0.001)")
    parser.add_argument("--name", default="reuse_savings", help="results file name (benchmarks/results/<name>.json)")
    parser.add_argument("--json", help="write the JSON here instead")
    return parser.parse_args(argv)


@dataclass(frozen=True)
class SyntheticFitness:
    """A fixed accuracy per architecture plus per-evaluation noise: a stand-in for training."""

    base: float
    spread: float
    noise: float

    def quality(self, genome: Genome) -> float:
        digest = hashlib.sha256(architecture_key(genome).encode()).digest()
        return self.base + self.spread * int.from_bytes(digest[:8], "big") / 2**64

    def train(self, genome: Genome, seed: int) -> float:
        noise = np.random.default_rng(seed).normal(0.0, self.noise)
        return float(min(1.0, max(0.0, self.quality(genome) + noise)))


@dataclass(frozen=True)
class Outcome:
    seed: int
    reevaluate: str
    identity: str
    evaluations: int
    trained: int
    distinct_strings: int
    distinct_architectures: int
    repeated_strings: int
    """Evaluations whose exact string had been evaluated before (earlier generation or slot)."""
    repeated_architectures: int
    best_quality: float
    """The true (noise-free) accuracy of the last generation's fittest individual."""

    @property
    def saved(self) -> float:
        return 1 - self.trained / self.evaluations


def simulate(seed: int, reevaluate: str, identity: str, fitness: SyntheticFitness,
             config: EvolutionConfig = PAPER_MNIST, nodes: tuple[int, ...] = NODES) -> Outcome:  # fmt: skip
    """One search to the end, with the bookkeeping of ``Evolution._evaluate_generation``."""
    search = GeneticSearch(config, nodes, seed)
    ledger = FitnessLedger(identity)
    strings: set[str] = set()
    architectures: set[str] = set()
    evaluations = trained = repeated_strings = repeated_architectures = 0
    scores: list[float] = []
    population: list[Genome] = []
    while not search.done():
        generation, population = search.generation, search.ask()
        planned: set[str] = set()
        results: dict[int, float] = {}
        for slot, genome in enumerate(population):
            evaluations += 1
            repeated_strings += str(genome) in strings
            repeated_architectures += architecture_key(genome) in architectures
            strings.add(str(genome))
            architectures.add(architecture_key(genome))
            key = ledger.identity_of(genome)
            if reevaluate == "reuse" and (ledger.known(genome) or key in planned):
                continue  # reused: gets the mean of its evaluations once the generation is recorded
            planned.add(key)
            results[slot] = fitness.train(genome, evaluation_seed(seed, generation, slot))
            trained += 1
        for slot in sorted(results):
            ledger.record(population[slot], results[slot])
        scores = [ledger.mean(genome) or 0.0 for genome in population]
        search.tell(scores)
    best = population[int(np.argmax(scores))]
    return Outcome(seed, reevaluate, identity, evaluations, trained, len(strings), len(architectures),
                   repeated_strings, repeated_architectures, fitness.quality(best))  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    fitness = SyntheticFitness(args.base, args.spread, args.noise)
    outcomes = [simulate(seed, reevaluate, identity, fitness) for seed in args.seeds for reevaluate, identity in POLICIES]
    total = PAPER_MNIST.population * (PAPER_MNIST.generations + 1)

    header = (f"{'seed':>4}  {'policy':<22}  {'trained':>7}  {'distinct strings':>16}  {'distinct architectures':>22}  "
              f"{'share saved':>11}  {'best (true)':>11}")  # fmt: skip
    print(f"paper's MNIST setting: N={PAPER_MNIST.population}, T={PAPER_MNIST.generations}, {total} evaluations per run; "
          f"fitness = accuracy per architecture in [{args.base}, {args.base + args.spread}] + N(0, {args.noise}) per training")  # fmt: skip
    print(header)
    print("-" * len(header))
    for outcome in outcomes:
        policy = "retrain (paper)" if outcome.reevaluate == "retrain" else f"reuse, {outcome.identity}"
        print(f"{outcome.seed:>4}  {policy:<22}  {outcome.trained:>7}  {outcome.distinct_strings:>16}  "
              f"{outcome.distinct_architectures:>22}  {outcome.saved:>11.1%}  {outcome.best_quality:>11.4f}")  # fmt: skip

    summary: dict[str, Any] = {}
    print()
    for reevaluate, identity in POLICIES:
        chosen = [outcome for outcome in outcomes if (outcome.reevaluate, outcome.identity) == (reevaluate, identity)]
        saved = [outcome.saved for outcome in chosen]
        name = "retrain" if reevaluate == "retrain" else f"reuse_{identity}"
        summary[name] = {
            "share_saved_mean": statistics.fmean(saved),
            "share_saved_min": min(saved),
            "share_saved_max": max(saved),
            "trained_mean": statistics.fmean(outcome.trained for outcome in chosen),
            "distinct_strings_mean": statistics.fmean(outcome.distinct_strings for outcome in chosen),
            "distinct_architectures_mean": statistics.fmean(outcome.distinct_architectures for outcome in chosen),
            "best_quality_mean": statistics.fmean(outcome.best_quality for outcome in chosen),
        }
        if reevaluate == "retrain":
            repeats_string = statistics.fmean(outcome.repeated_strings / outcome.evaluations for outcome in chosen)
            repeats_arch = statistics.fmean(outcome.repeated_architectures / outcome.evaluations for outcome in chosen)
            summary[name] |= {"repeated_string_share_mean": repeats_string, "repeated_architecture_share_mean": repeats_arch}
            print(f"retrain (the paper): {repeats_string:.1%} of evaluations repeat an earlier string, "
                  f"{repeats_arch:.1%} an earlier architecture (mean over {len(chosen)} seeds)")  # fmt: skip
        else:
            print(f"reuse, identity = {identity:<12}: {statistics.fmean(saved):.1%} of the {total} evaluations not trained "
                  f"(min {min(saved):.1%}, max {max(saved):.1%}; mean over {len(chosen)} seeds)")  # fmt: skip

    result = {
        "benchmark": "reuse_savings",
        "setting": {"population": PAPER_MNIST.population, "generations": PAPER_MNIST.generations, "nodes": list(NODES),
                    "p_mutation": PAPER_MNIST.p_mutation, "q_mutation": PAPER_MNIST.q_mutation,
                    "p_crossover": PAPER_MNIST.p_crossover, "q_crossover": PAPER_MNIST.q_crossover,
                    "base": args.base, "spread": args.spread, "noise": args.noise},  # fmt: skip
        "runs": [vars(outcome) | {"share_saved": outcome.saved} for outcome in outcomes],
        "summary": summary,
    }
    target = write_json(result, args.name, args.json)
    print(f"\nwrote {target}")
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
