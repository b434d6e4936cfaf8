"""`genetic-cnn calibrate`: the calibration strategy, the figures against the run databases, resume."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, count_trainings, run_cli, set_args
from scipy.stats import kendalltau

from genetic_cnn.config import EvolutionConfig, load_config
from genetic_cnn.history.store import RunStore
from genetic_cnn.report.markdown import write_report
from genetic_cnn.search.strategies import CalibrationSearch, make_search
from genetic_cnn.space.enumerate import architectures
from genetic_cnn.space.graph import architecture_key, count_convolutions
from genetic_cnn.tools.calibrate import RANKS, WEAK, calibrate, kendall_error, load_results, parse_fidelity, verdict

NODES = (3, 5)
FIDELITIES = [(), ("data.subset=400", "train.schedule=[[2, 0.003]]")]


def test_calibration_search_repeats_distinct_architectures_spread_over_sizes() -> None:
    search = make_search(EvolutionConfig(strategy="calibration", population=12, generations=3), NODES, seed=5)
    assert isinstance(search, CalibrationSearch)
    generations = []
    while not search.done():
        population = search.ask()
        generations.append(population)
        search.tell([float(i) for i in range(len(population))])  # fitness changes nothing
    assert len(generations) == 4 and all(g == generations[0] for g in generations)
    keys = [architecture_key(genome) for genome in generations[0]]
    assert len(set(keys)) == 12
    assert not any(generations[0][0].bits)  # the base network first
    sizes = {sum(count_convolutions(bits, n) for bits, n in zip(g.stages, g.nodes)) for g in generations[0]}
    assert sizes == set(architectures(NODES).values())  # every convolution count of the space (9 of them) is there
    again = make_search(EvolutionConfig(strategy="calibration", population=12, generations=3), NODES, seed=5).ask()
    other = make_search(EvolutionConfig(strategy="calibration", population=12, generations=3), NODES, seed=6).ask()
    assert again == generations[0] and other != generations[0]


def test_kendall_error_is_the_scatter_of_tau_between_unrelated_orders() -> None:
    rng = np.random.default_rng(0)
    for count in (6, 12, 40):
        taus = [kendalltau(np.arange(count), rng.permutation(count)).statistic for _ in range(3000)]
        assert abs(float(np.mean(taus))) < 0.03
        assert float(np.std(taus)) == pytest.approx(kendall_error(count), rel=0.06)


def test_verdict_follows_tau_and_its_error() -> None:
    assert verdict(None, None, None, None).startswith("not measured")
    assert verdict(RANKS, 0.1, 0.5, 1.0).startswith("ranks architectures")
    assert verdict(RANKS, 0.3, 0.5, 1.0).startswith("undecided")  # within 2 errors of unrelated orders
    assert verdict(WEAK, 0.05, 1.0, 1.0).startswith("ranks weakly")
    assert verdict(WEAK, 0.15, 1.0, 1.0).startswith("undecided")
    assert verdict(WEAK - 0.01, 0.05, 1.0, 1.0).startswith("cannot rank")
    assert "seed sd 1.20 pp against a spread of 0.80 pp" in verdict(-0.1, 0.2, 1.2, 0.8)


def test_a_tau_within_the_scatter_of_unrelated_orders_is_undecided_whatever_its_value() -> None:
    twelve = kendall_error(12)
    assert twelve == pytest.approx(0.22, abs=0.005)  # 12 genomes, the default
    for tau in (0.0, 0.1, 0.19, 0.2, 0.3, 0.44, -0.3):  # below WEAK, too, is no evidence of anything with 12
        assert verdict(tau, twelve, 1.0, 1.0).startswith("undecided"), tau
    assert verdict(0.19, kendall_error(400), 1.0, 1.0).startswith("cannot rank")  # 400 genomes: 0.19 is told apart
    assert verdict(-0.5, twelve, 1.0, 1.0).startswith("cannot rank")
    # Statistically: tau between unrelated orders of 12 falls inside the band about 95% of the time.
    rng = np.random.default_rng(3)
    taus = [kendalltau(np.arange(12), rng.permutation(12)).statistic for _ in range(4000)]
    undecided = np.mean([verdict(t, twelve, None, None).startswith("undecided") for t in taus])
    assert 0.93 < undecided < 0.99


def test_reliability_recovers_a_known_intra_class_correlation() -> None:
    from genetic_cnn.tools.calibrate import reliability

    rng = np.random.default_rng(11)
    icc, seeds, inside_one, inside_mean, estimates = 0.5, 2, 0, 0, []
    true_mean = seeds * icc / (1 + (seeds - 1) * icc)  # Spearman-Brown: 0.67 for the mean of 2
    for _ in range(400):
        worth = rng.normal(0, 1, size=(30, 1))
        table = worth + rng.normal(0, 1, size=(30, seeds))  # equal variances: ICC(1) = 0.5
        found = reliability(table)
        assert found is not None
        estimates.append(found.icc)
        inside_one += found.icc_interval[0] <= icc <= found.icc_interval[1]
        inside_mean += found.icc_of_mean_interval[0] <= true_mean <= found.icc_of_mean_interval[1]
    assert abs(np.mean(estimates) - icc) < 0.03
    assert 0.92 < inside_one / 400 < 0.98 and 0.92 < inside_mean / 400 < 0.98  # 95% intervals cover 95% of the time
    # Seed Pearson 0.50: a perfect proxy reaches tau ~ 0.6 against the mean of two seeds, above seed-to-seed tau (0.33)
    perfect = reliability(np.array([[0.0, 0.0], [1.0, 1.0]]) + 0)  # no within variance: undefined
    assert perfect is None
    from genetic_cnn.tools.calibrate import Reliability

    ceiling = Reliability(0.5, (0.4, 0.6), true_mean, (0.5, 0.8)).tau_ceiling_of_mean
    assert ceiling == pytest.approx(0.61, abs=0.01) and ceiling > 2 / math.pi * math.asin(0.5)
    worth = rng.normal(0, 1, 20_000)
    first, second = worth + rng.normal(0, 1, 20_000), worth + rng.normal(0, 1, 20_000)
    assert kendalltau(worth[:3000], ((first + second) / 2)[:3000]).statistic == pytest.approx(ceiling, abs=0.03)


def test_the_closing_line_agrees_with_the_table() -> None:
    from genetic_cnn.tools.calibrate import FidelityResult, closing_line

    def fidelity(name: str, tau: float, error: float) -> FidelityResult:
        return FidelityResult(name, (), "", 12, 2, 24, 0, 90.0, 1.0, 1.0, tau, (tau,), error, 3.0,
                              verdict(tau, error, 1.0, 1.0))  # fmt: skip

    undecided = fidelity("few", 0.67, 0.4)  # tau 0.67 listed, but within twice the scatter
    line = closing_line([undecided, fidelity("noisy", 0.05, 0.02)])
    assert "was shown to rank" in line and "few: undecided (tau 0.67)" in line and "noisy: cannot rank" in line
    assert closing_line([undecided, fidelity("good", 0.67, 0.1)]).startswith("cheapest fidelity that ranks: good")


def test_parse_fidelity() -> None:
    assert parse_fidelity(" data.subset=400 ;train.schedule=[[2, 0.003]]; ") == ("data.subset=400", "train.schedule=[[2, 0.003]]")


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("calibration") / "out"
    config = load_config(None, TINY)
    calibrate(config, out, genomes=5, seeds=3, fidelities=FIDELITIES, progress=False)
    return out


def test_figures_are_those_of_the_run_databases(calibrated: Path) -> None:
    results = load_results(calibrated)
    assert [r.overrides for r in results] == [tuple(f) for f in FIDELITIES]
    for index, result in enumerate(results):
        folder = calibrated / f"fidelity-{index + 1}"
        with RunStore.open(folder, readonly=True) as store:
            config, evaluations = store.config, store.evaluations()
        assert config.evolution.strategy == "calibration" and config.evolution.population == 5
        assert config.data.subset == (400 if index else 0)
        # seed s = generation s: accuracy[key][s]
        accuracy: dict[str, dict[int, float]] = {}
        for e in evaluations:
            assert e.status == "ok"
            accuracy.setdefault(e.key, {})[e.generation] = 100 * e.accuracy
        assert len(accuracy) == 5 and all(sorted(seeds) == [0, 1, 2] for seeds in accuracy.values())
        table = np.array([[seeds[s] for s in range(3)] for seeds in accuracy.values()])
        within = np.sqrt(np.sum((table - table.mean(axis=1, keepdims=True)) ** 2) / (5 * 2))
        assert result.seed_sd == pytest.approx(within)
        assert result.spread == pytest.approx(np.std(table.mean(axis=1), ddof=1))
        taus = [kendalltau(table[:, a], table[:, b]).statistic for a, b in itertools.combinations(range(3), 2)]
        taus = [t for t in taus if math.isfinite(t)]
        assert result.kendall_tau == pytest.approx(np.mean(taus))
        assert result.seconds_per_evaluation == pytest.approx(np.mean([e.seconds for e in evaluations]))
        assert (result.architectures, result.seeds, result.evaluations, result.failed) == (5, 3, 15, 0)
        grand, means = table.mean(), table.mean(axis=1)
        between = 3 * np.sum((means - grand) ** 2) / 4
        within_ms = np.sum((table - means[:, None]) ** 2) / 10
        assert result.icc == pytest.approx((between - within_ms) / (between + 2 * within_ms))
        assert result.icc_of_mean == pytest.approx((between - within_ms) / between)
        assert result.icc_interval[0] < result.icc < result.icc_interval[1]
    text = (calibrated / "calibration.md").read_text()
    assert all(r.name in text for r in results)
    assert json.loads((calibrated / "calibration.json").read_text())["fidelities"][1]["overrides"] == list(FIDELITIES[1])


def test_the_picture_is_drawn(calibrated: Path) -> None:
    from matplotlib.image import imread

    pixels = imread(calibrated / "calibration.png")[..., :3]
    coloured = (pixels.max(axis=-1) - pixels.min(axis=-1)) > 0.2
    assert coloured.sum() > 200  # the points, bars and threshold lines, not a blank canvas


def test_each_fidelity_is_a_run_the_report_reads(calibrated: Path) -> None:
    report = write_report([calibrated / "fidelity-1"])
    text = report.read_text()
    assert "calibration" in text and "## Fitness noise" in text


def test_the_same_command_again_trains_nothing_and_a_kill_resumes(
    calibrated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(None, TINY)
    trainings = count_trainings(monkeypatch)
    again = calibrate(config, calibrated, genomes=5, seeds=3, fidelities=FIDELITIES, progress=False)
    assert trainings.count == 0
    assert again == load_results(calibrated)

    # Interrupted at the 4th training of the second fidelity, then continued: the same figures.
    out = tmp_path / "out"
    trainings.stop_at = 15 + 3
    with pytest.raises(KeyboardInterrupt):
        calibrate(config, out, genomes=5, seeds=3, fidelities=FIDELITIES, progress=False)
    trainings.stop_at = None
    trainings.tasks.clear()
    resumed = calibrate(config, out, genomes=5, seeds=3, fidelities=FIDELITIES, progress=False)
    assert trainings.count == 15 - 3  # only what the kill left
    strip = lambda r: (r.seed_sd, r.spread, r.kendall_tau, r.mean_accuracy, r.tau_pairs)  # noqa: E731 - seconds differ
    assert [strip(r) for r in resumed] == [strip(r) for r in again]


@pytest.mark.slow
def test_cli_prints_each_verdict_and_where_the_results_are(tmp_path: Path) -> None:
    result = run_cli("calibrate", "--out", str(tmp_path / "c"), "--genomes", "3", "--seeds", "2", "--quiet",
                     "--fidelity", "data.subset=300", "--fidelity", "data.subset=500", *set_args(TINY))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("per evaluation;") == 2
    assert "fidelity 2/2: data.subset=500" in result.stdout
    assert f"results: {tmp_path / 'c' / 'calibration.md'}" in result.stdout
    assert ("cheapest fidelity that ranks" in result.stdout) != ("no fidelity measured here was shown" in result.stdout)


def test_a_calibration_begun_before_a_config_key_was_added_continues(calibrated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    request = json.loads((calibrated / "calibration-request.json").read_text())
    del request["config"]["evolution"]["selection"]  # as an older version wrote it
    del request["config"]["data"]["split_seed"]
    (calibrated / "calibration-request.json").write_text(json.dumps(request))
    trainings = count_trainings(monkeypatch)
    results = calibrate(load_config(None, TINY), calibrated, genomes=5, seeds=3, fidelities=FIDELITIES, progress=False)
    assert trainings.count == 0
    # the verdicts are measured again from the run databases: a calibration made before gets today's
    for result in results:
        assert result.verdict == verdict(result.kendall_tau, result.tau_error, result.seed_sd, result.spread)
        assert result.icc is not None
