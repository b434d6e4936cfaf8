"""Tables: `genetic-cnn tabulate` against its run databases, resume and partial tables, table fitness
in runs of every strategy, the in-memory simulation, loading by name, compare_strategies, speed."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import pytest
from conftest import count_trainings, run_cli, set_args
from table_helpers import TINY_SPACE, write_synthetic_table

from genetic_cnn import table as table_module
from genetic_cnn.config import load_config
from genetic_cnn.errors import UserError
from genetic_cnn.evolution import start_run
from genetic_cnn.graph import architecture_key
from genetic_cnn.records import OK, REUSED
from genetic_cnn.space import architectures
from genetic_cnn.store import RunStore
from genetic_cnn.table import SHIPPED, draw_position, load_table, read_table
from genetic_cnn.table_search import TableLookup, simulate
from genetic_cnn.tabulate import tabulate, work_folder

ROOT = Path(__file__).parent.parent
SEEDS = 2
COUNT = len(architectures((2, 3)))  # 12


@pytest.fixture(scope="module")
def tiny_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("table") / "tiny.json.gz"
    status = tabulate(load_config(None, TINY_SPACE), out, SEEDS, progress=False, echo=lambda line: None)
    assert (status.complete, status.asked, status.architectures) == (SEEDS, SEEDS, COUNT)
    return out


def test_the_table_holds_what_the_seed_runs_measured(tiny_table: Path) -> None:
    from genetic_cnn.graph import representative
    from genetic_cnn.network import build_network, count_flops, count_parameters

    table = read_table(tiny_table)
    assert table.name == "tiny" and table.method == "standalone" and table.seeds == (0, 1)
    assert table.header["space"] == {"preset": "digits", "nodes": [2, 3], "channels": [4, 8]}
    assert table.header["data"]["dataset"] == "synthetic" and table.header["data"]["validation"] > 0
    assert table.header["versions"]["torch"] and table.header["config"]["train"]["schedule"] == [[1, 0.003]]
    assert [a.key for a in table.architectures] == sorted(architectures((2, 3)))
    for k, seed in enumerate(table.seeds):
        with RunStore.open(work_folder(tiny_table) / f"seed-{seed}", readonly=True) as store:
            assert store.config.run.seed == seed and store.config.evolution.strategy == "tabulation"
            for result in store.evaluations():
                measured = table.architecture(result.key).results[k]
                assert measured.accuracy == pytest.approx(result.accuracy, abs=1e-6)
                assert measured.test_accuracy == pytest.approx(result.test_accuracy, abs=1e-6)
                assert (measured.epochs, measured.status) == (result.epochs, result.status)
    preset = load_config(None, TINY_SPACE).preset().for_input((1, 8, 8), 10)
    for arch in table.architectures[::5]:
        model = build_network(representative(arch.key, (2, 3)), preset)
        assert (arch.parameters, arch.flops) == (count_parameters(model), count_flops(model, (1, 8, 8)))
        assert architecture_key(arch.genome) == arch.key
    assert table.architecture(table.architectures[0].key).results[0] != table.architectures[0].results[1]  # seeds differ


def test_the_same_command_trains_nothing_and_a_kill_resumes_with_a_partial_table_between(
    tiny_table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(None, TINY_SPACE)
    quiet = {"progress": False, "echo": lambda line: None}
    trainings = count_trainings(monkeypatch)
    tabulate(config, tiny_table, SEEDS, **quiet)
    assert trainings.count == 0

    out = tmp_path / "again.json.gz"
    trainings.stop_at = COUNT + 3  # the 4th training of the second seed
    with pytest.raises(KeyboardInterrupt):
        tabulate(config, out, SEEDS, **quiet)
    partial = tabulate(config, out, SEEDS, partial=True, **quiet)
    assert (partial.complete, partial.asked) == (1, SEEDS)
    assert read_table(out).seeds == (0,)
    trainings.stop_at = None
    trainings.tasks.clear()
    tabulate(config, out, SEEDS, **quiet)
    assert trainings.count == COUNT - 3
    first, second = read_table(tiny_table), read_table(out)
    accuracies = lambda t: [[m.accuracy for m in a.results] for a in t.architectures]  # noqa: E731
    assert accuracies(first) == accuracies(second)  # the same seeds measure the same on CPU


STRATEGY_SETTINGS = [
    ["evolution.strategy=genetic"],
    ["evolution.strategy=genetic", "evolution.selection=tournament", "evolution.sample_size=2"],
    ["evolution.strategy=random"],
    ["evolution.strategy=regularized", "evolution.sample_size=2"],
]


@pytest.mark.parametrize("settings", STRATEGY_SETTINGS, ids=lambda s: "+".join(v.split("=")[1] for v in s))
def test_table_runs_of_every_strategy_read_the_table_as_simulated(tiny_table: Path, tmp_path: Path, settings: list[str]) -> None:
    overrides = [*TINY_SPACE, "evaluation.method=table", f"evaluation.table={str(tiny_table)!r}", "evolution.generations=4",
                 "run.seed=7", "run.executor=auto", *settings]  # fmt: skip
    config = load_config(None, overrides)
    folder = start_run(config, out=tmp_path / "run", progress=False, echo=lambda line: None)
    table = read_table(tiny_table)
    with RunStore.open(folder, readonly=True) as store:
        assert store.status == "finished"
        assert store.meta("executors")[-1]["executor"] == "serial"  # auto: lookups need no workers
        evaluations, generations = store.evaluations(), store.generations()
    for result in evaluations:
        position = draw_position(result.seed, SEEDS)
        measured = table.architecture(result.key).results[position]
        assert (result.accuracy, result.test_accuracy, result.status) == (measured.accuracy, measured.test_accuracy, "ok")
        assert result.extra["table_seed"] == table.seeds[position]
    assert len({r.extra["table_seed"] for r in evaluations}) == SEEDS  # both seeds are read
    trace = simulate(TableLookup(table), config.evolution, config.run.seed)
    assert [tuple(map(str, population)) for population in trace.populations] == [g.genomes for g in generations]
    told = [[0.0 if math.isnan(value) else value for value in row] for row in trace.told.tolist()]
    assert told == [list(g.fitness) for g in generations]
    report = run_cli("report", str(folder))
    assert report.returncode == 0, report.stderr


def test_loading_by_name_reads_the_package_data(tiny_table: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert str(table_module.shipped_path("digits-standalone")).endswith("genetic_cnn/tables/digits-standalone.json.gz")
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert '"tables/*.json.gz"' in pyproject
    for config in SHIPPED.values():
        assert (ROOT / config).is_file()
    monkeypatch.setattr(table_module, "shipped_path", lambda name: tiny_table)
    loaded = load_table("digits-standalone")
    assert loaded.source == "shipped:digits-standalone" and len(loaded.architectures) == COUNT


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_tables_match_their_configs(name: str) -> None:
    if not table_module.shipped_path(name).is_file():  # not built yet: loading it says how to build it
        with pytest.raises(UserError, match="tabulate"):
            load_table(name)
        return
    table = load_table(name)
    config = load_config(ROOT / SHIPPED[name], ["evaluation.method=table", f"evaluation.table={name}"])
    assert table.mismatch(config) is None
    assert len(table.architectures) == len(architectures(config.preset().nodes))


def test_compare_strategies_on_the_tiny_table(tiny_table: Path, tmp_path: Path) -> None:
    import subprocess

    out = tmp_path / "cmp"
    result = subprocess.run(
        [sys.executable, str(ROOT / "experiments" / "compare_strategies.py"), "--table", str(tiny_table), "--seeds", "6",
         "--population", "4", "--generations", "3", "--out", str(out), "--quiet",
         "--strategies", "genetic", "random", "regularized", "genetic-tournament"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    payload = json.loads((out / "comparison.json").read_text())
    table = read_table(tiny_table)
    best = float(table.mean_validation.max())
    for entry in payload["results"]:
        assert len(entry["accuracy_mean"]) == 16 and len(entry["table1"]) == 4
        # the incumbent is the best *observed*: its table worth may fall when noise crowns a worse one, never above the best
        assert all(min(table.mean_validation) - 1e-12 <= a <= best + 1e-12 for a in entry["accuracy_mean"])
        assert all(abs(r - (best - a)) < 1e-9 for r, a in zip(entry["regret_mean"], entry["accuracy_mean"]))
        assert all(row[1] <= row[2] <= row[0] for row in entry["table1"])  # min <= mean <= max
    assert (out / "comparison.png").stat().st_size > 10_000
    assert "| regularized | 16 |" in (out / "comparison.md").read_text()


@pytest.mark.slow
def test_the_paper_search_on_a_full_size_table(tmp_path: Path) -> None:
    """Issue 15: N=20, T=50 with table fitness on the digits space (1,812 architectures, 3 seeds): the shipped
    table when it is built, else a synthetic one of its size. Its time is printed, not asserted (a timed
    assertion fails on a slower machine; the README gives the measured time)."""
    overrides = ["run.device=cpu", "evolution.population=20", "evolution.generations=50"]
    shipped = table_module.shipped_path("digits-standalone")
    table = "digits-standalone" if shipped.is_file() else str(write_synthetic_table(tmp_path / "full.json.gz", overrides))
    started = time.perf_counter()
    result = run_cli("evolve", "--out", str(tmp_path / "run"), "--quiet",
                     *set_args([*overrides, "evaluation.method=table", f"evaluation.table={table!r}"]))  # fmt: skip
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    with RunStore.open(tmp_path / "run", readonly=True) as store:
        evaluations = store.evaluations()
    assert len(evaluations) == 1020 and all(e.status in (OK, REUSED) for e in evaluations)
    print(f"evolve N=20 T=50 on the table {table}: {seconds:.1f} s")


def test_incumbent_is_the_first_highest_observed_so_far() -> None:
    import numpy as np

    from genetic_cnn.table_search import Trace

    trace = Trace(np.array([5, 6, 7, 8, 9]), np.array([math.nan, 0.2, 0.1, 0.2, 0.3]), (), np.zeros((1, 5)))
    assert trace.incumbents().tolist() == [5, 6, 6, 6, 9]
