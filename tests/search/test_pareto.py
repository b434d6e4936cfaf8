"""Multi-objective search: NSGA-II's sorting and crowding by hand, costs counted without torch, the
front found on a table against the exact one, constraints that keep networks from training, resume."""

from __future__ import annotations

import argparse
import csv
import io
import json
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, count_trainings, drive_search, run_cli, set_args
from run_helpers import history, start_and_stop

from genetic_cnn.cli.train import genome_from_run
from genetic_cnn.config import ConfigError, load_config
from genetic_cnn.evolution import start_run
from genetic_cnn.history.export import export_front
from genetic_cnn.history.front import front_member, run_front
from genetic_cnn.history.rundata import RunData
from genetic_cnn.history.store import load_run
from genetic_cnn.report.markdown import write_run_report
from genetic_cnn.search import pareto
from genetic_cnn.search.strategies import NSGA2Search, make_search
from genetic_cnn.space.cost import cost_function, network_cost
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.presets import get_preset
from genetic_cnn.tables.pareto import ExactFront, cost_matrix, found_front
from genetic_cnn.tables.simulate import TableLookup, simulate
from genetic_cnn.tables.table import load_table

FLOPS = ["evolution.strategy=nsga2", 'evolution.objectives=["accuracy", "flops"]']

# ------------------------------------------------------------------ NSGA-II's parts, by hand
# Minimised (x, y):  A(1,5) B(2,3) C(3,1) are dominated by nothing; D(2,4) and F(3,3.5) only by B;
# E(4,4) by B, C, D and F.
POINTS = np.array([[1, 5], [2, 3], [3, 1], [2, 4], [4, 4], [3, 3.5]], dtype=float)


def test_non_dominated_sorting_gives_the_hand_computed_fronts() -> None:
    fronts = [front.tolist() for front in pareto.non_dominated_fronts(POINTS)]
    assert fronts == [[0, 1, 2], [3, 5], [4]]
    rank, _ = pareto.rank_and_crowding(POINTS)
    assert rank.tolist() == [0, 0, 0, 1, 2, 1]


def test_crowding_distance_is_the_hand_computed_one() -> None:
    # Front P0(0,6) P1(1,3) P2(2,1) P3(6,0); both objectives span 6. P1: x neighbours 0 and 2 (2/6),
    # y neighbours 1 and 6 (5/6); P2: x 1 and 6 (5/6), y 0 and 3 (3/6); averaged over the 2 objectives.
    front = np.array([[0, 6], [1, 3], [2, 1], [6, 0]], dtype=float)
    distance = pareto.crowding_distance(front)
    assert np.isinf(distance[[0, 3]]).all()
    assert distance[1] == pytest.approx(7 / 12) and distance[2] == pytest.approx(8 / 12)


def test_survival_keeps_whole_fronts_then_the_least_crowded() -> None:
    assert sorted(pareto.survivors(POINTS, 3).tolist()) == [0, 1, 2]
    assert sorted(pareto.survivors(POINTS, 5).tolist()) == [0, 1, 2, 3, 5]
    # Cutting the first front to 2: its extremes A and C have infinite distance, B a finite one.
    assert sorted(pareto.survivors(POINTS, 2).tolist()) == [0, 2]


def test_binary_tournament_prefers_the_lower_front_then_the_larger_distance() -> None:
    rank = np.array([0, 0, 1, 2])
    crowding = np.array([0.5, np.inf, 2.0, 9.0])
    winners = pareto.binary_tournament(rank, crowding, 200, np.random.default_rng(3))
    pairs = np.random.default_rng(3).integers(0, 4, size=(200, 2))
    for (first, second), winner in zip(pairs.tolist(), winners):
        assert winner in (first, second)
        loser = second if winner == first else first
        assert (rank[winner], -crowding[winner]) <= (rank[loser], -crowding[loser])


def test_hypervolume_of_a_staircase() -> None:
    # Against (5, 6): [1,2) x [5,6) + [2,3) x [3,6) + [3,5) x [1,6) = 1 + 3 + 10.
    assert pareto.hypervolume(POINTS[:3], [5, 6]) == pytest.approx(14.0)
    assert pareto.hypervolume(POINTS, [5, 6]) == pytest.approx(14.0)  # dominated points add nothing
    assert pareto.hypervolume(np.array([[6.0, 1.0]]), [5, 6]) == 0.0


def test_a_failed_individual_ranks_below_every_measured_one() -> None:
    matrix = pareto.objective_matrix([0.9, float("nan"), 0.5], [[10], [1], [10]])
    assert pareto.non_dominated_fronts(matrix)[0].tolist() == [0, 1]  # cheapest, so still not dominated
    assert matrix[1, 0] == -pareto.NO_ACCURACY


# ------------------------------------------------------------------ costs without torch
@pytest.mark.parametrize("name", ["digits-standalone", "mnist-oneshot"])
def test_costs_counted_from_the_genome_equal_the_tables_for_every_architecture(name: str) -> None:
    table = load_table(name)
    space = table.header["space"]
    preset = replace(get_preset(space["preset"]), nodes=tuple(space["nodes"]), channels=tuple(space["channels"]))
    for architecture in table.architectures:
        cost = network_cost(Genome.from_string(architecture.genome, nodes=preset.nodes), preset)
        assert (cost.parameters, cost.flops) == (architecture.parameters, architecture.flops), architecture.key


@pytest.mark.slow
def test_costs_equal_torchs_counts_on_a_padded_three_stage_preset() -> None:
    from genetic_cnn.nn.network import build_network, count_flops, count_parameters

    preset = get_preset("cifar10")
    rng = np.random.default_rng(0)
    for genome in [Genome.zeros(preset.nodes), Genome.ones(preset.nodes), Genome.random(preset.nodes, rng)]:
        model = build_network(genome, preset)
        cost = network_cost(genome, preset)
        assert (cost.parameters, cost.flops) == (count_parameters(model), count_flops(model, preset.input_shape))


# ------------------------------------------------------------------ the front found on a table
def test_nsga2_finds_most_of_the_exact_front_of_a_table_and_more_than_random() -> None:
    table = load_table("digits-standalone")
    lookup, objectives = TableLookup(table), ("accuracy", "flops")
    exact = ExactFront.of(table, objectives)
    costs = cost_matrix(table, objectives)
    base = load_config(overrides=["evolution.generations=30", *FLOPS]).evolution
    ratios = {}
    for strategy in ("nsga2", "random"):
        config = replace(base, strategy=strategy)
        ratios[strategy] = np.array([exact.hypervolume_ratio(found_front(simulate(lookup, config, seed), costs))
                                     for seed in range(12)])  # fmt: skip
    assert exact.hypervolume_ratio(exact.members) == pytest.approx(1.0)
    assert ratios["nsga2"].max() <= 1.0 + 1e-9
    assert ratios["nsga2"].mean() > 0.75
    difference = ratios["nsga2"] - ratios["random"]  # paired: the same seeds
    assert difference.mean() > 2 * difference.std(ddof=1) / np.sqrt(len(difference))


def test_nsga2_survivors_are_the_best_fronts_of_parents_and_children() -> None:
    config = load_config(overrides=[*FLOPS, "evolution.population=6", "evolution.generations=3"]).evolution
    preset = get_preset("digits")
    search = NSGA2Search(config, preset.nodes, seed=1, cost=cost_function(preset))
    pool: dict[str, float] = {}
    while not search.done():
        population = search.ask()
        fitness = [sum(genome.bits) / len(genome) for genome in population]  # more connections, more accurate
        pool.update({str(genome): value for genome, value in zip(population, fitness)})
        search.tell(fitness)
        if search.done():
            break
        kept = {str(genome) for genome, _ in search.survivors()}
        everything = [Genome.from_string(text, nodes=preset.nodes) for text in pool]
        matrix = pareto.objective_matrix([pool[str(g)] for g in everything], [search.costs(g) for g in everything])
        first = {str(everything[i]) for i in pareto.pareto_indices(matrix)}
        # elitist: the survivors hold the whole first front of everything seen, or are all in it
        assert first <= kept or kept <= first


# ------------------------------------------------------------------ constraints
def tiny_limit() -> int:
    """A FLOPs limit of the TINY space that about a third of random genomes meet."""
    preset = load_config(overrides=TINY).preset()
    rng = np.random.default_rng(0)
    flops = [network_cost(Genome.random(preset.nodes, rng), preset).flops for _ in range(300)]
    return int(np.percentile(flops, 33))


@pytest.mark.parametrize("strategy", ["genetic", "random", "regularized", "nsga2"])
def test_every_strategy_asks_only_for_feasible_genomes(strategy: str) -> None:
    limit = tiny_limit()
    overrides = [*TINY, f"evolution.strategy={strategy}", "evolution.population=10", "evolution.generations=8"]
    if strategy == "nsga2":
        overrides.append('evolution.objectives=["accuracy", "params"]')
    free = load_config(overrides=overrides)
    limited = load_config(overrides=[*overrides, f"evolution.max_flops={limit}"])
    cost = cost_function(free.preset())
    asked_free = drive_search(make_search(free.evolution, free.preset().nodes, 0, cost))
    asked = drive_search(make_search(limited.evolution, limited.preset().nodes, 0, cost))
    assert any(cost(genome).flops > limit for population in asked_free for genome in population)  # the limit bites
    assert all(cost(genome).flops <= limit for population in asked for genome in population)


def test_a_limit_random_drawing_cannot_meet_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from genetic_cnn.errors import UserError
    from genetic_cnn.search import strategies as search

    monkeypatch.setattr(search, "RANDOM_DRAWS", 50)
    preset = get_preset("cifar10")  # 19 bits: 1 string in 2^19 is the all-zero network
    least = network_cost(Genome.zeros(preset.nodes), preset).flops
    config = load_config(overrides=["space.preset=cifar10", "evolution.strategy=random", f"evolution.max_flops={least}"])
    with pytest.raises(UserError, match="evolution.init"):
        make_search(config.evolution, preset.nodes, 0, cost_function(preset))
    zeros = replace(config.evolution, strategy="genetic", init="zeros")  # no random drawing: children are repaired
    asked = drive_search(make_search(replace(zeros, generations=3), preset.nodes, 0, cost_function(preset)))
    assert all(network_cost(genome, preset).flops == least for population in asked for genome in population)


def test_infeasible_genomes_never_reach_the_evaluator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    limit = tiny_limit()
    trainings = count_trainings(monkeypatch)
    config = load_config(overrides=[*TINY, *FLOPS, f"evolution.max_flops={limit}"])
    folder = start_run(config, tmp_path / "run", progress=False, echo=lambda line: None)
    cost = cost_function(config.preset())
    assert trainings.count == 12
    assert all(cost(Genome.from_string(task.genome)).flops <= limit for task in trainings.tasks)
    summary = json.loads((folder / "summary.json").read_text())
    front = summary["pareto"]["front"]
    assert front and [member["rank"] for member in front] == list(range(1, len(front) + 1))
    assert [member["accuracy"] for member in front] == sorted((m["accuracy"] for m in front), reverse=True)
    assert [member["flops"] for member in front] == sorted((m["flops"] for m in front), reverse=True)
    assert len(summary["pareto"]["generations"]) == 3
    volumes = [row["hypervolume"] for row in summary["pareto"]["generations"]]
    assert all(0 < volume <= 1.1**2 for volume in volumes)  # not monotone: a re-evaluation can lower a mean
    data = RunData.load(folder)
    assert [m.genome for m in run_front(data)] == [m["genome"] for m in front]
    assert front_member(data, len(front)).genome == front[-1]["genome"]
    with load_run(folder) as store:
        exported = list(csv.DictReader(io.StringIO(export_front(store, "csv"))))
    assert [row["genome"] for row in exported] == [m["genome"] for m in front]
    report = write_run_report(folder, tmp_path / "report")
    assert "## Pareto front" in report.read_text() and "--front-rank K" in report.read_text()
    assert (tmp_path / "report" / "front.png").stat().st_size > 0 and (tmp_path / "report" / "hypervolume.png").is_file()
    assert (tmp_path / "report" / "front_networks.png").is_file()
    # genetic-cnn train --run RUN --front-rank K: that member, with the run's config
    chosen = genome_from_run(argparse.Namespace(run=folder, front_rank=len(front), genome=None, config=None))
    assert chosen == front[-1]["genome"]
    refused = run_cli("train", "--run", str(folder), "--front-rank", str(len(front) + 1), "--quiet", "--out", str(tmp_path / "final"))
    assert refused.returncode == 2 and f"has {len(front)} members" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and not (tmp_path / "final").exists()


def test_the_default_keeps_one_objective_and_no_limit() -> None:
    config = load_config()
    assert config.evolution.objectives == ("accuracy",)
    assert (config.evolution.max_flops, config.evolution.max_params) == (0, 0)


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        (["evolution.max_flops=1000"], "no network"),
        (["evolution.max_params=10"], "no network"),
        (["evolution.strategy=nsga2"], "evolution.objectives"),
        (['evolution.objectives=["accuracy", "flops"]'], "nsga2"),
        (['evolution.objectives=["flops", "accuracy"]'], "accuracy first"),
        (['evolution.objectives=["accuracy", "latency_ms"]'], "evolution.objectives"),
        (["evolution.strategy=calibration", "evolution.max_flops=100000"], "fixed architectures"),
    ],
)
def test_impossible_settings_are_refused_with_one_line(overrides: list[str], names: str) -> None:
    with pytest.raises(ConfigError, match=names):
        load_config(overrides=overrides)


def test_a_limit_no_network_meets_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run_cli("evolve", "--out", str(tmp_path / "run"), "--quiet", *set_args([*TINY, "evolution.max_flops=1000"]))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "evolution.max_flops" in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ resume
LONGER_NSGA2 = [*TINY, *FLOPS, "evolution.generations=5", "train.schedule=[[3, 0.003]]"]


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_uninterrupted_nsga2_history(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    overrides = [*LONGER_NSGA2, f"evolution.max_flops={tiny_limit()}"]
    assert run_cli("evolve", "--out", str(whole), "--quiet", *set_args(overrides)).returncode == 0
    folder = tmp_path / "run"
    stopped = start_and_stop(folder, signal.SIGKILL, after_evaluations=10, overrides=overrides)  # generation 2
    assert stopped.returncode == -signal.SIGKILL
    done_before, _ = history(folder)
    assert 10 <= len(done_before) < 24
    resumed = run_cli("resume", str(folder), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert history(folder) == history(whole)
    assert json.loads((folder / "summary.json").read_text())["pareto"] == json.loads((whole / "summary.json").read_text())["pareto"]


# ------------------------------------------------------------------ the comparison script
def test_compare_objectives_scores_every_strategy_and_is_reached_through_compare_strategies(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parents[2] / "experiments"))
    try:
        import compare_objectives
    finally:
        sys.path.pop(0)
    assert compare_objectives.wanted(["--table", "x", "--objectives", "accuracy,flops"])
    assert compare_objectives.wanted(["--objectives=accuracy,params"])
    assert not compare_objectives.wanted(["--table", "x", "--objectives", "accuracy"])
    out = tmp_path / "out"
    code = compare_objectives.main(["--table", "digits-standalone", "--seeds", "3", "--generations", "1,3",
                                    "--out", str(out), "--quiet", "--front-plot", str(tmp_path / "front.png")])  # fmt: skip
    assert code == 0
    payload = json.loads((out / "objectives.json").read_text())
    for strategy in compare_objectives.STRATEGIES:
        for budget in ("1", "3"):
            ratios = payload["results"][strategy][budget]
            assert len(ratios) == 3 and all(0 <= ratio <= 1 + 1e-9 for ratio in ratios)
    assert (out / "hypervolume.png").is_file() and (tmp_path / "front.png").is_file()
    assert compare_objectives.main(["--table", "digits-standalone", "--objectives", "accuracy,latency", "--out", str(out)]) == 2
