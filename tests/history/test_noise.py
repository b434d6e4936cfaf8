"""Fitness noise: the pooled seed sd and the population sd, per run and per generation, in summary.json,
the report and the CLI's closing lines.

Expected values are computed here independently (``statistics.variance`` and ``stdev`` on the groups
written out by hand) rather than with the module's own helpers.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, set_args

from genetic_cnn.cli import app as cli
from genetic_cnn.history.noise import FitnessNoise, fitness_noise, noise_by_generation, noise_verdict
from genetic_cnn.history.store import load_run
from genetic_cnn.report.markdown import write_report
from genetic_cnn.search.records import DIVERGED, FAILED, OK, REUSED, EvaluationResult
from genetic_cnn.space.graph import architecture_key

A, B, C, D = "1-11|0-00-000-1111", "1-01|1-10-010-1000", "0-00|0-00-111-0110", "1-11|1-11-101-1001"
# Two different strings of the mnist/digits space (nodes 3, 5) that decode to the same network: one edge in stage 1.
CHAIN_12, CHAIN_13 = "1-00|0-00-000-0000", "0-10|0-00-000-0000"


def result(genome: str, accuracy: float, generation: int = 0, status: str = OK) -> EvaluationResult:
    return EvaluationResult(generation, 0, genome, architecture_key(genome), 0, status, accuracy=accuracy)


def pooled(groups: Sequence[Sequence[float]]) -> float:
    """sqrt(sum of squared deviations within groups / sum of (n_i - 1)), from sample variances."""
    squares = sum(statistics.variance(g) * (len(g) - 1) for g in groups)
    return math.sqrt(squares / sum(len(g) - 1 for g in groups))


def core(noise: FitnessNoise) -> tuple:
    return noise.seed_sd, noise.population_sd, noise.repeated


def test_equivalent_strings_really_are_one_architecture() -> None:
    assert CHAIN_12 != CHAIN_13 and architecture_key(CHAIN_12) == architecture_key(CHAIN_13)


def test_pooled_seed_sd_and_population_sd_by_hand() -> None:
    a, b, c = [0.90, 0.92, 0.97], [0.80, 0.84], [0.85]
    evaluations = [result(A, v) for v in a] + [result(B, v) for v in b] + [result(C, v) for v in c]
    noise = fitness_noise(evaluations, "string")
    assert noise.repeated == 2
    assert noise.seed_sd == pytest.approx(100 * pooled([a, b]))
    assert noise.population_sd == pytest.approx(100 * statistics.stdev([statistics.fmean(g) for g in (a, b, c)]))
    # The pooled formula written out once, so that the helper above is checked too.
    mean_a = (0.90 + 0.92 + 0.97) / 3
    ss = sum((v - mean_a) ** 2 for v in a) + (0.80 - 0.82) ** 2 + (0.84 - 0.82) ** 2
    assert noise.seed_sd == pytest.approx(100 * math.sqrt(ss / 3))


def test_failed_diverged_and_reused_evaluations_measure_nothing() -> None:
    a, b = [0.90, 0.94], [0.80, 0.81, 0.86]
    clean = [result(A, v) for v in a] + [result(B, v) for v in b]
    noisy = clean + [
        result(A, 0.0, status=FAILED), result(A, 0.0, status=DIVERGED), result(B, statistics.fmean(b), status=REUSED),
        result(B, statistics.fmean(b), status=REUSED), result(C, 0.0, status=FAILED),  # C: never measured
    ]  # fmt: skip
    assert fitness_noise(noisy, "string") == fitness_noise(clean, "string")
    assert core(fitness_noise(noisy, "string")) == (
        pytest.approx(100 * pooled([a, b])), pytest.approx(100 * statistics.stdev([0.92, statistics.fmean(b)])), 2
    )
    assert fitness_noise(noisy, "string").mean_inverse_count == pytest.approx((1 / 2 + 1 / 3) / 2)  # C has no mean
    assert fitness_noise(noisy, "string").best_accuracy == pytest.approx(92.0)


def test_architecture_identity_groups_equivalent_strings() -> None:
    evaluations = [result(CHAIN_12, 0.70), result(CHAIN_13, 0.76), result(A, 0.90)]
    by_string = fitness_noise(evaluations, "string")
    assert by_string.seed_sd is None and by_string.repeated == 0
    assert by_string.population_sd == pytest.approx(100 * statistics.stdev([0.70, 0.76, 0.90]))
    by_architecture = fitness_noise(evaluations, "architecture")
    assert by_architecture.repeated == 1
    assert by_architecture.seed_sd == pytest.approx(100 * statistics.stdev([0.70, 0.76]))
    assert by_architecture.population_sd == pytest.approx(100 * statistics.stdev([0.73, 0.90]))


def test_nulls_when_nothing_is_repeated_or_nothing_differs() -> None:
    assert fitness_noise([], "string") == FitnessNoise(None, None, 0)
    assert fitness_noise([], "string").reliability() is None
    single = fitness_noise([result(A, 0.9), result(B, 0.8), result(C, 0.0, status=FAILED)], "string")
    assert single.seed_sd is None and single.repeated == 0 and single.population_sd == pytest.approx(100 * 0.1 / 2**0.5)
    one_genome = fitness_noise([result(A, 0.9), result(A, 0.8)], "string")
    assert one_genome.population_sd is None and one_genome.repeated == 1
    assert json.loads(json.dumps(single.to_dict())) == {"seed_sd": None, "population_sd": single.population_sd, "repeated": 0,
                                                         "mean_inverse_count": 1.0, "best_accuracy": 90.0, "chance": None}  # fmt: skip
    written_before = {"seed_sd": 1.0, "population_sd": 2.0, "repeated": 3}  # a summary.json of an older version
    assert FitnessNoise.from_dict(written_before) == FitnessNoise(1.0, 2.0, 3)
    assert FitnessNoise(1.0, 2.0, 3).reliability() == pytest.approx(3 / 4)  # mean(1/n) unknown: taken as 1
    assert FitnessNoise.from_dict(single.to_dict()) == single


def test_by_generation_is_cumulative_noise_and_the_spread_of_each_population() -> None:
    evaluations = [
        result(A, 0.90, 0), result(B, 0.80, 0), result(C, 0.70, 0),
        result(A, 0.94, 1), result(A, 0.92, 1), result(B, 0.0, 1, FAILED),
        result(A, 0.96, 2), result(D, 0.60, 2), result(B, 0.80, 2, REUSED),
    ]  # fmt: skip
    noise = noise_by_generation(evaluations, "string")
    assert list(noise) == [0, 1, 2]
    assert core(noise[0]) == (None, pytest.approx(100 * statistics.stdev([0.90, 0.80, 0.70])), 0)
    # Generation 1 holds A twice and B (failed now, but measured in generation 0): A and B count once each.
    a1 = [0.90, 0.94, 0.92]
    assert core(noise[1]) == (
        pytest.approx(100 * statistics.stdev(a1)), pytest.approx(100 * statistics.stdev([statistics.fmean(a1), 0.80])), 1
    )
    assert noise[1].mean_inverse_count == pytest.approx((1 / 3 + 1 / 1) / 2)
    a2 = [*a1, 0.96]
    spread = statistics.stdev([statistics.fmean(a2), 0.60, 0.80])  # B's reused evaluation still places it in the population
    assert core(noise[2]) == (pytest.approx(100 * statistics.stdev(a2)), pytest.approx(100 * spread), 1)


ADVICE = ("data.subset", "train.schedule", "data.validation", "genetic-cnn calibrate", "evaluation.method=one-shot")


def test_verdict_only_when_the_noise_reaches_the_spread() -> None:
    assert noise_verdict(FitnessNoise(0.5, 1.2, 3)) is None
    assert noise_verdict(FitnessNoise(None, 1.2, 0)) is None  # nothing measured, nothing to say
    assert noise_verdict(FitnessNoise(None, None, 0)) is None
    for seed, population in ((1.25, 0.8), (0.8, 0.8), (0.8, 0.0)):
        line = noise_verdict(FitnessNoise(seed, population, 2))
        assert line is not None and "\n" not in line
        assert f"seed sd {seed:.2f} pp" in line and f"population sd {population:.2f} pp" in line
        assert all(advice in line for advice in ADVICE), line
    alone = noise_verdict(FitnessNoise(1.5, None, 1))
    assert alone is not None and "seed sd 1.50 pp" in alone and "only one genome" in alone and "no spread" in alone


def evaluations_of_known_signal(reliability: float, genomes: int, rng: np.random.Generator, seed_sd: float = 0.01) -> list:
    """Genomes with a true worth of variance chosen so that one evaluation has ``reliability``, each
    evaluated 1 to 4 times with noise of ``seed_sd``: the situation of a real run, where survivors
    are re-evaluated and newcomers are not."""
    signal_sd = seed_sd * math.sqrt(reliability / (1 - reliability))
    out = []
    for index in range(genomes):
        worth = 0.9 + rng.normal(0, signal_sd)
        name = format(index, "013b")
        genome = f"{name[:3]}|{name[3:]}"
        out += [EvaluationResult(0, 0, genome, genome, 0, OK, accuracy=worth + rng.normal(0, seed_sd))
                for _ in range(int(rng.integers(1, 5)))]  # fmt: skip
    return out


@pytest.mark.parametrize("reliability", [0.2, 0.4, 0.7])
def test_reliability_is_recovered_on_evaluations_of_known_signal(reliability: float) -> None:
    rng = np.random.default_rng(int(reliability * 100))
    estimates, means, naive_silent = [], [], []
    for _ in range(30):
        noise = fitness_noise(evaluations_of_known_signal(reliability, 150, rng), "string")
        estimates.append(noise.reliability())
        counts = 1 / noise.mean_inverse_count
        true_signal = reliability / (1 - reliability)  # in units of the seed variance
        means.append((noise.reliability(counts), true_signal / (true_signal + 1 / counts)))
        naive_silent.append(noise.seed_sd < noise.population_sd)  # the former rule: warn only when seed sd >= population sd
    assert abs(np.mean(estimates) - reliability) < 0.05
    assert np.std(estimates) / math.sqrt(len(estimates)) < 0.03
    assert abs(np.mean([m for m, _ in means]) - np.mean([t for _, t in means])) < 0.05
    warned = [noise_verdict(fitness_noise(evaluations_of_known_signal(reliability, 150, rng), "string")) is not None
              for _ in range(20)]  # fmt: skip
    if reliability < 0.5:
        assert np.mean(warned) > 0.9
    else:
        assert not any(warned)
    if reliability == 0.4:
        # the population sd holds seed noise too (variance 0.67 + 0.52 seed variances here): the former rule
        # stayed silent although one evaluation is more noise than worth
        assert np.mean(naive_silent) > 0.75


def test_the_warning_gives_the_reliability_figures() -> None:
    noise = FitnessNoise(1.0, 1.1, 30, mean_inverse_count=0.5)
    signal = 1.1**2 - 0.5
    line = noise_verdict(noise)
    assert line is not None and f"reliability of one evaluation {signal / (signal + 1):.2f}" in line
    assert f"of a genome's mean of 2.0 evaluations {signal / (signal + 0.5):.2f}" in line
    assert f"signal sd {math.sqrt(signal):.2f} pp" in line


def test_a_run_at_chance_says_the_networks_did_not_learn() -> None:
    rng = np.random.default_rng(0)
    at_chance = [result(genome, 1 / 3 + rng.normal(0, 0.01)) for genome in (A, B, C, D) for _ in range(2)]
    line = noise_verdict(fitness_noise(at_chance, "string", classes=3))
    assert line is not None and "did not learn" in line and "33.33%" in line and "3 classes" in line
    assert "train" in line and "learning rate" in line and "follows noise" not in line
    learned = [result(genome, 0.6 + rng.normal(0, 0.01)) for genome in (A, B, C, D) for _ in range(2)]
    assert "did not learn" not in (noise_verdict(fitness_noise(learned, "string", classes=3)) or "")
    assert "did not learn" not in (noise_verdict(fitness_noise(at_chance, "string")) or "")  # K unknown: no claim


def print_outcome(folder: Path, noise: dict | None) -> list[str]:
    summary = {"best_genome": A, "best_fitness": 0.9, "best_test_accuracy": None, "best_evaluations": 2}
    if noise is not None:
        summary["fitness_noise"] = noise
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli._print_outcome(folder)
    return out.getvalue().splitlines()


def test_outcome_prints_the_verdict_between_the_best_genome_and_the_folder(tmp_path: Path) -> None:
    noisy = FitnessNoise(2.0, 1.0, 4)
    lines = print_outcome(tmp_path, noisy.to_dict())
    assert lines == [f"best genome {A}: fitness 90.00%", noise_verdict(noisy), f"results: {tmp_path}"]
    assert print_outcome(tmp_path, FitnessNoise(0.5, 1.0, 4).to_dict()) == [lines[0], lines[2]]
    assert print_outcome(tmp_path, None) == [lines[0], lines[2]]  # a summary.json written before fitness_noise


# ---------------------------------------------------------------------- a real run, end to end
def noise_from_database(folder: Path) -> dict:
    """seed sd, population sd and repeated straight from the run database's evaluations (percentage points)."""
    with load_run(folder) as run:
        by_architecture = run.config.evolution.identity == "architecture"
        groups: dict[str, list[float]] = defaultdict(list)
        for e in run.evaluations():
            if e.status == OK:
                groups[e.key if by_architecture else e.genome].append(e.accuracy)
    repeated = [g for g in groups.values() if len(g) >= 2]
    means = [statistics.fmean(g) for g in groups.values()]
    return {
        "seed_sd": 100 * pooled(repeated) if repeated else None,
        "population_sd": 100 * statistics.stdev(means) if len(means) >= 2 else None,
        "repeated": len(repeated),
        "mean_inverse_count": statistics.fmean(1 / len(g) for g in groups.values()),
        "best_accuracy": 100 * max(means),
        "chance": 10.0,  # synthetic data: 10 classes
    }


def generation_rows(folder: Path) -> list[list[str]]:
    """The report's noise table as the database gives it: for each generation g, the pooled sd over the
    evaluations of generations 0..g, the sd of the cumulative mean fitness of g's distinct genomes (a string run)."""
    with load_run(folder) as run:
        evaluations, generations = run.evaluations(), run.generations()
    rows = []
    for record in generations:
        groups: dict[str, list[float]] = defaultdict(list)
        for e in evaluations:
            if e.status == OK and e.generation <= record.generation:
                groups[e.genome].append(e.accuracy)
        repeated = [g for g in groups.values() if len(g) >= 2]
        means = [statistics.fmean(groups[genome]) for genome in set(record.genomes) if genome in groups]
        rows.append([
            str(record.generation), f"{100 * pooled(repeated):.2f}" if repeated else "–",
            f"{100 * statistics.stdev(means):.2f}" if len(means) >= 2 else "–", str(len(repeated)),
        ])  # fmt: skip
    return rows


def evolve(folder: Path, *extra: str) -> list[str]:
    """`genetic-cnn evolve` in this process (no second torch import): its stdout lines."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        patch.setattr(cli, "_interrupt_on_sigterm", lambda: None)  # leave pytest's SIGTERM handling alone
        assert cli.main(["evolve", "--quiet", "--out", str(folder), *set_args(TINY + list(extra))]) == 0
    return out.getvalue().splitlines()


LEARNS = ("train.schedule=[[3, 0.01]]",)
"""TINY's one epoch leaves the networks near chance (10% on 10 classes), which the verdict now says first;
three epochs at a higher rate learn (about 50%), so that the noise verdicts below are about noise."""


@pytest.fixture(scope="module")
def repeats(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Little mutation, no crossover: survivors are re-trained, and several genomes stay in the population."""
    folder = tmp_path_factory.mktemp("noise") / "run"
    return folder, evolve(folder, "evolution.p_mutation=0.2", "evolution.p_crossover=0.0", *LEARNS)


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Every individual of every generation is the all-zeros genome: only noise, no spread between genomes."""
    folder = tmp_path_factory.mktemp("noise") / "run"
    return folder, evolve(folder, "evolution.init=zeros", "evolution.p_mutation=0.0", "evolution.p_crossover=0.0", *LEARNS)


def test_summary_json_holds_the_noise_of_the_database(repeats: tuple[Path, list[str]]) -> None:
    folder, _ = repeats
    noise = json.loads((folder / "summary.json").read_text(encoding="utf-8"))["fitness_noise"]
    expected = noise_from_database(folder)
    assert expected["repeated"] >= 1 and expected["population_sd"] is not None  # the run does what it is meant to
    assert noise == pytest.approx(expected)


def test_report_shows_the_noise_per_generation_and_its_picture(repeats: tuple[Path, list[str]]) -> None:
    folder, _ = repeats
    report = write_report([folder])
    text = report.read_text(encoding="utf-8")
    section = text.split("## Fitness noise")[1].split("\n## ")[0]
    expected = noise_from_database(folder)
    assert f"seed sd {expected['seed_sd']:.2f} pp" in section
    assert f"population sd {expected['population_sd']:.2f} pp" in section
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in section.splitlines() if re.match(r"\| \d", line)]
    assert rows == generation_rows(folder)
    assert rows[-1][1] == f"{expected['seed_sd']:.2f}" and rows[-1][3] == str(expected["repeated"])
    assert "![fitness noise](noise.png)" in section
    picture = (report.parent / "noise.png").read_bytes()
    assert picture[:8] == b"\x89PNG\r\n\x1a\n" and len(picture) > 10_000


def test_one_genome_only_noise_the_cli_says_so(copies: tuple[Path, list[str]]) -> None:
    folder, stdout = copies
    noise = json.loads((folder / "summary.json").read_text(encoding="utf-8"))["fitness_noise"]
    assert noise == pytest.approx(noise_from_database(folder))
    assert noise["repeated"] == 1 and noise["population_sd"] is None  # one genome: no spread to rank
    verdict = noise_verdict(FitnessNoise.from_dict(noise))
    assert verdict is not None
    best, line, results = stdout[-3:]
    assert best.startswith("best genome ") and line == verdict and results == f"results: {folder}"
