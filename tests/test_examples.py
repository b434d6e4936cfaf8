"""The README's Python API snippet and the scripts in experiments/ run, and print what the run holds.

They run as a user runs them (a fresh interpreter, the working directory a temporary folder). Where
they read experiments/configs/demo.toml, a tiny config of the same shape stands in for it, so that
each run takes seconds instead of minutes; the code itself runs as written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import TINY, set_args

from genetic_cnn.config import load_config
from genetic_cnn.history.store import load_run
from genetic_cnn.nn.network import build_network, count_parameters
from genetic_cnn.space.genome import Genome
from genetic_cnn.space.graph import architecture_key

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"

# demo.toml's shape with TINY's values: synthetic 8x8 images, few channels, four networks of one epoch.
TINY_DEMO = """\
[data]
dataset = "synthetic"

[space]
preset = "digits"
channels = [4, 8]

[evolution]
population = 4
generations = 5

[train]
schedule = [[1, 0.003]]
batch_size = 64

[run]
seed = 0
device = "cpu"
threads = 1
"""


def python(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)


def readme_python_api() -> str:
    """The ```python block under the README's "## Python API" heading."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python API", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no python block under ## Python API"
    return match.group(1)


def write_tiny_demo(folder: Path) -> None:
    (folder / "configs").mkdir(parents=True)
    (folder / "configs" / "demo.toml").write_text(TINY_DEMO, encoding="utf-8")


def test_the_tiny_demo_has_the_shape_of_the_real_one() -> None:
    """Same sections and keys as experiments/configs/demo.toml, so the stand-in exercises the same settings."""
    import tomllib

    real = tomllib.loads((EXPERIMENTS / "configs" / "demo.toml").read_text(encoding="utf-8"))
    tiny = tomllib.loads(TINY_DEMO)
    assert set(real) == set(tiny)
    for section in real:
        assert set(real[section]) <= set(tiny[section])


@pytest.mark.slow
def test_readme_python_api_snippet_runs(tmp_path: Path) -> None:
    snippet = readme_python_api()
    assert 'load_config("experiments/configs/demo.toml"' in snippet  # the path the stand-in replaces
    write_tiny_demo(tmp_path / "experiments")
    (tmp_path / "snippet.py").write_text(snippet, encoding="utf-8")
    result = python("snippet.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = re.search(r'start_run\(config, out="([^"]+)"\)', snippet)
    folder = tmp_path / out.group(1) if out else next((tmp_path / "runs").iterdir())
    override = re.search(r'"evolution\.generations=(\d+)"', snippet)
    assert override, "the snippet sets evolution.generations"
    generations = int(override.group(1))
    with load_run(folder) as run:
        records = run.generations()
        assert run.status == "finished"
    assert len(records) == generations + 1
    # The loop at the end prints each generation and its best fitness, as stored.
    printed = result.stdout.strip().splitlines()
    assert printed[-len(records) :] == [f"{record.generation} {max(record.fitness)}" for record in records]
    # The first line decodes the genome: its nodes per stage come first.
    genome = Genome.from_string("1-01|0-01-100-0111")
    assert printed[0].startswith(str(genome.nodes)) and architecture_key(genome) in printed[0]


@pytest.mark.slow
def test_experiment_scripts_show_their_help() -> None:
    for script in sorted(EXPERIMENTS.glob("*.py")):
        result = python(str(script), "--help", cwd=ROOT)
        assert result.returncode == 0, (script.name, result.stderr)
        assert result.stdout.startswith("usage:"), script.name
        assert "--out" in result.stdout, script.name


@pytest.mark.slow
def test_run_from_python_runs_and_reports_the_best_genome(tmp_path: Path) -> None:
    experiments = tmp_path / "experiments"
    experiments.mkdir()
    shutil.copy(EXPERIMENTS / "run_from_python.py", experiments)
    write_tiny_demo(experiments)
    folder = tmp_path / "run"
    result = python(str(experiments / "run_from_python.py"), "--generations", "1", "--out", str(folder), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with load_run(folder) as run:
        last = run.generations()[-1]
        evaluations = run.evaluations()
        config = run.config
    assert last.generation == 1 and config.evolution.generations == 1
    best_index = max(range(len(last.fitness)), key=lambda i: last.fitness[i])
    best = last.genomes[best_index]
    tests = [e.test_accuracy or 0.0 for e in evaluations if e.genome == best and e.status == "ok"]
    model = build_network(Genome.from_string(best), config.preset().for_input((1, 8, 8), 10))
    lines = result.stdout.strip().splitlines()[-3:]
    assert (
        lines[0]
        == f"best genome {best}: fitness {100 * last.fitness[best_index]:.2f}%, test {100 * statistics.fmean(tests):.2f}%"
    )
    assert lines[1] == f"architecture key {architecture_key(best)}, {count_parameters(model):,} parameters"
    assert lines[2] == f"run folder {folder}"


COMPARE = TINY + ["evolution.generations=1"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], subprocess.CompletedProcess[str]]:
    """compare_random.py over two seeds at tiny settings; its output folder, arguments and output."""
    cwd = tmp_path_factory.mktemp("compare")
    out = cwd / "compare"
    args = [
        str(EXPERIMENTS / "compare_random.py"), "--config", str(EXPERIMENTS / "configs" / "compare_mnist.toml"),
        "--seeds", "0", "1", "--out", str(out), "--quiet", *set_args(COMPARE),
    ]  # fmt: skip
    return out, args, python(*args, cwd=cwd)


@pytest.mark.slow
def test_compare_random_runs_both_strategies_and_draws_the_curves(compared) -> None:  # type: ignore[no-untyped-def]
    out, _, result = compared
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    assert [(run["strategy"], run["seed"]) for run in report["runs"]] == [
        ("genetic", 0), ("genetic", 1), ("random", 0), ("random", 1)
    ]  # fmt: skip
    budget = 4 * (1 + 1)
    for summary in report["runs"]:
        folder = Path(summary["folder"])
        assert folder == out / f"{summary['strategy']}-seed{summary['seed']}"
        with load_run(folder) as run:
            fitness = [value for record in run.generations() for value in record.fitness]
            evaluations = run.evaluations()
            recorded = run.config
        expected = load_config(EXPERIMENTS / "configs" / "compare_mnist.toml", COMPARE + [
            f'evolution.strategy="{summary["strategy"]}"', f"run.seed={summary['seed']}"])  # fmt: skip
        for section in ("space", "evolution", "train"):
            assert getattr(recorded, section) == getattr(expected, section)
        assert replace(recorded.data, root=expected.data.root) == expected.data
        assert len(summary["curve"]) == len(fitness) == budget == summary["evaluations"] == len(evaluations)
        assert summary["curve"] == [max(fitness[: index + 1]) for index in range(len(fitness))]  # best so far
        assert summary["best_fitness"] == max(fitness)
        assert f"{100 * summary['best_fitness']:.2f}%" in result.stdout
    # Both strategies with the same seed start from the same generation 0.
    for seed in (0, 1):
        with load_run(out / f"genetic-seed{seed}") as genetic, load_run(out / f"random-seed{seed}") as random:
            assert genetic.generations()[0].genomes == random.generations()[0].genomes
    assert (out / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_compare_random_run_again_reuses_the_finished_runs(compared) -> None:  # type: ignore[no-untyped-def]
    """The script's docstring: "a finished folder is reused", so it can be run again after an interruption."""
    out, args, result = compared
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    times = {}
    for summary in report["runs"]:
        with load_run(summary["folder"]) as run:
            times[summary["folder"]] = run.evaluation_times()
    again = python(*args, cwd=out.parent)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("reusing the finished run") == 4
    for folder, before in times.items():
        with load_run(folder) as run:
            assert run.evaluation_times() == before  # nothing trained again
    assert json.loads((out / "comparison.json").read_text(encoding="utf-8"))["runs"] == report["runs"]
