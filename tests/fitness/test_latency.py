"""The latency objective and limit: timed once per architecture on the run's device, kept in the run
database, read back on resume; a network over the limit never trains; the front carries latency."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pytest
import torch
from conftest import TINY, count_trainings, drive_search, run_cli, set_args
from run_helpers import history

from genetic_cnn.config import ConfigError, load_config
from genetic_cnn.errors import UserError
from genetic_cnn.evolution import RunInterrupted, resume_run, start_run
from genetic_cnn.fitness import latency
from genetic_cnn.history.export import export_front
from genetic_cnn.history.rundata import RunData
from genetic_cnn.history.store import DATABASE, SCHEMA_VERSION, LatencyRecord, RunStore, load_run
from genetic_cnn.report.markdown import write_run_report
from genetic_cnn.search.strategies import make_search
from genetic_cnn.space.cost import cost_function
from genetic_cnn.space.enumerate import architectures
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.graph import architecture_key

LATENCY = ["evolution.strategy=nsga2", 'evolution.objectives=["accuracy", "latency"]']
QUIET = {"progress": False, "echo": lambda line: None}


@pytest.fixture
def timings(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count the networks timed, by architecture; time each for 20 ms instead of 200 (still real timing)."""
    monkeypatch.setattr(latency, "MIN_RUN_TIME", 0.02)
    timed: Counter[str] = Counter()
    real = latency.time_forward

    def time_forward(genome, *args, **kwargs):  # type: ignore[no-untyped-def]
        timed[architecture_key(genome)] += 1
        return real(genome, *args, **kwargs)

    monkeypatch.setattr(latency, "time_forward", time_forward)
    return timed


def stored(folder: Path) -> dict[str, float]:
    with load_run(folder) as store:
        return {record.key: record.milliseconds for record in store.latencies()}


def test_time_forward_measures_a_larger_network_as_slower() -> None:
    preset = load_config(overrides=TINY).preset()
    small, large = (latency.time_forward(genome, preset, torch.device("cpu"), 8, min_run_time=0.05)
                    for genome in (Genome.zeros(preset.nodes), Genome.ones(preset.nodes)))  # fmt: skip
    assert 0 < small.milliseconds < large.milliseconds  # 3 against 8 convolutions: about 3x the time
    assert small.runs >= 1 and small.spread >= 0


@pytest.mark.slow
def test_latency_is_timed_once_stored_and_read_back_on_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, timings: Counter[str]
) -> None:
    config = load_config(overrides=[*TINY, *LATENCY])
    folder = tmp_path / "run"
    trainings = count_trainings(monkeypatch, stop_at=6)  # Ctrl-C in generation 1
    with pytest.raises(RunInterrupted):
        start_run(config, folder, **QUIET)
    before = stored(folder)
    assert set(before) == set(timings) and all(value > 0 for value in before.values())
    assert architecture_key(Genome.ones(config.preset().nodes)) in before  # the hypervolume's scale
    timings.clear()
    trainings.stop_at = None
    resume_run(folder, **QUIET)
    after = stored(folder)
    assert not set(timings) & set(before)  # nothing stored is timed again
    assert all(count == 1 for count in timings.values()) and set(after) == set(before) | set(timings)
    assert {key: after[key] for key in before} == before  # the stored values are the ones read back
    with load_run(folder) as store:  # every network that trained has its latency stored
        assert {architecture_key(Genome.from_string(e.genome)) for e in store.evaluations()} <= set(after)
    # Resuming the finished run replays all of it with the stored latencies: the same genomes
    # (the replay checks them against the recorded ones), and nothing is timed.
    timings.clear()
    recorded = history(folder)
    resume_run(folder, **QUIET)
    assert not timings and history(folder) == recorded
    # The front, summary.json, the report and the export carry the stored latency.
    summary = json.loads((folder / "summary.json").read_text())
    front = summary["pareto"]["front"]
    assert summary["pareto"]["objectives"] == ["accuracy", "latency"] and summary["pareto"]["latency"]["batch"] == 1
    assert front and all(member["latency_ms"] == after[member["key"]] for member in front)
    assert [m["latency_ms"] for m in front] == sorted((m["latency_ms"] for m in front), reverse=True)
    with load_run(folder) as store:
        exported = list(csv.DictReader(io.StringIO(export_front(store, "csv"))))
    assert [float(row["latency_ms"]) for row in exported] == [m["latency_ms"] for m in front]
    report = write_run_report(folder, tmp_path / "report")
    assert "latency (ms)" in report.read_text() and (tmp_path / "report" / "front.png").stat().st_size > 0


def inject(folder: Path, values: dict[str, float]) -> None:
    """Store ``values`` (architecture key -> ms) as the run's latencies on this machine's CPU."""
    rows = [(key, "cpu", 1, ms, 0.0, 1, 1, "injected", 0.0, time.time()) for key, ms in values.items()]
    with sqlite3.connect(folder / DATABASE) as db:
        db.execute("DELETE FROM latency")
        db.executemany("INSERT INTO latency VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def test_a_network_over_max_latency_ms_never_trains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, timings: Counter[str]
) -> None:
    # Started, then stopped before the first training; then every architecture of the space gets a
    # stored latency proportional to its FLOPs, half of them over the limit: the resumed run times
    # nothing and chooses by the stored values alone.
    limit = 1000.0
    config = load_config(overrides=[*TINY, "evolution.strategy=genetic", f"evolution.max_latency_ms={limit}"])
    folder = tmp_path / "run"
    trainings = count_trainings(monkeypatch, stop_at=0)
    with pytest.raises(RunInterrupted):
        start_run(config, folder, **QUIET)
    assert timings and trainings.count == 0
    nodes, cost = config.preset().nodes, cost_function(config.preset())
    free = load_config(overrides=[*TINY, "evolution.strategy=genetic"])
    asked = drive_search(make_search(free.evolution, nodes, free.run.seed, cost))  # what it asks without the limit
    distinct = sorted({cost(genome).flops for population in asked for genome in population})
    middle = distinct[-2]  # the largest of those are over the limit
    flops = {
        key: cost(Genome.from_string(representative)).flops for key, representative in _representatives(nodes).items()
    }
    injected = {key: limit * value / middle for key, value in flops.items()}
    inject(folder, injected)
    timings.clear()
    trainings.stop_at = None
    resume_run(folder, **QUIET)
    assert not timings and trainings.count == 12
    trained = {architecture_key(Genome.from_string(task.genome)) for task in trainings.tasks}
    assert all(injected[key] <= limit for key in trained)
    with load_run(folder) as store:
        assert all(injected[e.key] <= limit for e in store.evaluations())
    assert any(injected[architecture_key(genome)] > limit for population in asked for genome in population)


def _representatives(nodes: tuple[int, ...]) -> dict[str, str]:
    from genetic_cnn.space.graph import representative

    return {key: str(representative(key, nodes)) for key in architectures(nodes)}


def test_a_table_run_times_its_networks_on_this_machine(tmp_path: Path, timings: Counter[str]) -> None:
    config = load_config(overrides=[
        "evaluation.method=table", "evaluation.table=digits-standalone", *LATENCY, "evolution.population=4",
        "evolution.generations=1", "run.device=cpu",
    ])  # fmt: skip
    folder = start_run(config, tmp_path / "run", **QUIET)
    data = RunData.load(folder)
    evaluated = {architecture_key(Genome.from_string(e.genome)) for e in data.evaluations}
    assert evaluated <= set(stored(folder)) and sum(timings.values()) == len(stored(folder))
    assert all(member.latency_ms is not None for member in latency_front(data))


def latency_front(data: RunData) -> list:  # type: ignore[type-arg]
    from genetic_cnn.history.front import run_front

    return run_front(data)


def test_an_older_run_database_opens_and_gains_the_latency_table(tmp_path: Path) -> None:
    config = load_config(overrides=TINY)
    RunStore.create(tmp_path, config, {}).close()
    with sqlite3.connect(tmp_path / DATABASE) as db:  # as a version-2 database was written
        db.execute("DROP TABLE latency")
        db.execute("UPDATE meta SET value = '2' WHERE name = 'schema_version'")
    with load_run(tmp_path) as store:
        assert store.latencies() == [] and RunData.load(store).latency_ms("0-00|0-00-000-0000") is None
    with RunStore.open(tmp_path) as store:
        assert store.meta("schema_version") == SCHEMA_VERSION
        record = LatencyRecord("k", "cpu", 1, 0.5, 0.1, 10, 1, "cpu", 0.2)
        store.add_latency(record)
        assert store.latencies() == [record]


def test_a_run_timed_on_another_device_is_refused_on_resume(tmp_path: Path) -> None:
    config = load_config(overrides=[*TINY, *LATENCY])
    with RunStore.create(tmp_path, config, {}) as store:
        store.add_latency(LatencyRecord("k", "cuda", 1, 0.5, 0.1, 10, 1, "a GPU", 0.2))
        with pytest.raises(UserError, match="--set run.device=cuda"):
            latency.RunLatency(store, config, progress=False)


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        (["evolution.max_latency_ms=-1"], "evolution.max_latency_ms = -1 must be 0"),
        (["evolution.latency_batch=0"], "evolution.latency_batch = 0 must be at least 1"),
        (["evolution.strategy=calibration", "evolution.max_latency_ms=5"], "fixed architectures"),
        (['evolution.objectives=["accuracy", "latency"]'], "nsga2"),
        (['evolution.objectives=["accuracy", "latency", "latency"]', "evolution.strategy=nsga2"], "distinct"),
    ],
)
def test_bad_latency_settings_are_refused_with_one_line(overrides: list[str], names: str) -> None:
    with pytest.raises(ConfigError, match=names) as refused:
        load_config(overrides=overrides)
    assert "\n" not in str(refused.value)


def test_a_latency_limit_no_network_meets_exits_2_with_one_line(tmp_path: Path) -> None:
    result = run_cli(
        "evolve", "--out", str(tmp_path / "run"), "--quiet", *set_args([*TINY, "evolution.max_latency_ms=1e-6"])
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "evolution.max_latency_ms" in lines[0] and "all-zero genome" in lines[0]
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists()
