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

from genetic_cnn.calibrate import RANKS, WEAK, calibrate, kendall_error, load_results, parse_fidelity, verdict
from genetic_cnn.config import EvolutionConfig, load_config
from genetic_cnn.graph import architecture_key, count_convolutions
from genetic_cnn.report import write_report
from genetic_cnn.search import CalibrationSearch, make_search
from genetic_cnn.space import architectures
from genetic_cnn.store import RunStore

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
    assert verdict(WEAK - 0.01, 0.3, 1.0, 1.0).startswith("cannot rank")
    assert "seed sd 1.20 pp against a spread of 0.80 pp" in verdict(-0.1, 0.2, 1.2, 0.8)


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


def test_cli_prints_each_verdict_and_where_the_results_are(tmp_path: Path) -> None:
    result = run_cli("calibrate", "--out", str(tmp_path / "c"), "--genomes", "3", "--seeds", "2", "--quiet",
                     "--fidelity", "data.subset=300", "--fidelity", "data.subset=500", *set_args(TINY))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("per evaluation;") == 2
    assert "fidelity 2/2: data.subset=500" in result.stdout
    assert f"results: {tmp_path / 'c' / 'calibration.md'}" in result.stdout
    assert ("cheapest fidelity that ranks" in result.stdout) != ("no fidelity measured here ranks" in result.stdout)


def test_a_calibration_begun_before_a_config_key_was_added_continues(calibrated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    request = json.loads((calibrated / "calibration-request.json").read_text())
    del request["config"]["evolution"]["selection"]  # as an older version wrote it
    (calibrated / "calibration-request.json").write_text(json.dumps(request))
    trainings = count_trainings(monkeypatch)
    calibrate(load_config(None, TINY), calibrated, genomes=5, seeds=3, fidelities=FIDELITIES, progress=False)
    assert trainings.count == 0
