"""Every user-facing entry point answers bad input with one line, exit status 2, nothing lost.

One row per bad input; grow the table whenever a new one is found.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import TINY, run_cli, set_args

Setup = Callable[[Path], list[str]]


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def config_file(text: str) -> Setup:
    return lambda tmp: ["evolve", "--config", str(write(tmp / "bad.toml", text)), "--out", str(tmp / "run")]


def evolve_with(*overrides: str) -> Setup:
    return lambda tmp: ["evolve", "--out", str(tmp / "run"), *set_args(TINY + list(overrides))]


def a_finished_run(tmp: Path) -> Path:
    folder = tmp / "done"
    assert run_cli("evolve", "--out", str(folder), "--quiet", *set_args(TINY)).returncode == 0
    return folder


def mnist_root_with_truncated_file(tmp: Path) -> list[str]:
    raw = tmp / "data" / "MNIST" / "raw"
    images = struct.pack(">iiii", 2051, 100, 28, 28) + bytes(28 * 28 * 10)  # says 100 images, holds 10
    write(raw / "train-images-idx3-ubyte", images)
    write(raw / "train-labels-idx1-ubyte", struct.pack(">ii", 2049, 100) + bytes(100))
    write(raw / "t10k-images-idx3-ubyte", struct.pack(">iiii", 2051, 10, 28, 28) + bytes(28 * 28 * 10))
    write(raw / "t10k-labels-idx1-ubyte", struct.pack(">ii", 2049, 10) + bytes(10))
    return evolve_with("data.dataset=mnist", f"data.root={str(tmp / 'data')!r}", "space.preset=mnist")(tmp)


def corrupted_database(tmp: Path) -> list[str]:
    folder = a_finished_run(tmp)
    for name in ("run.db-wal", "run.db-shm"):
        (folder / name).unlink(missing_ok=True)
    write(folder / "run.db", b"this is not a database" * 100)
    return ["resume", str(folder)]


def truncated_database(tmp: Path) -> list[str]:
    folder = a_finished_run(tmp)
    data = (folder / "run.db").read_bytes()
    (folder / "run.db").write_bytes(data[: len(data) // 3])
    return ["export", str(folder)]


def existing_run(tmp: Path) -> list[str]:
    folder = a_finished_run(tmp)
    return ["evolve", "--out", str(folder), *set_args(TINY)]


ROWS: list[tuple[str, Setup, str]] = [
    # genomes
    ("genome with a bad character", lambda tmp: ["show", "1-01|0-01-100-011x"], "is not 0 or 1"),
    ("genome group of wrong length", lambda tmp: ["show", "1-0|0-01-100-0111"], "group 2"),
    ("genome with an empty stage", lambda tmp: ["show", "1-01||0-01"], "stage 2 is empty"),
    ("genome for the wrong preset", lambda tmp: ["show", "1-01|0-01-100"], "nodes=(3, 5) was expected"),
    ("empty genome", lambda tmp: ["show", ""], "empty genome string"),
    ("unknown preset", lambda tmp: ["show", "1-01", "--preset", "imagenet"], "unknown preset"),
    # config files
    ("config file missing", lambda tmp: ["evolve", "--config", str(tmp / "nope.toml")], "does not exist"),
    ("config not TOML", config_file("[evolution\npopulation = 3"), "is not valid TOML"),
    ("unknown section", config_file("[evolve]\npopulation = 3\n"), "unknown config section [evolve]"),
    ("unknown key", config_file("[evolution]\npopulaton = 3\n"), "unknown key evolution.populaton"),
    ("wrong type", config_file('[evolution]\npopulation = "ten"\n'), "evolution.population must be an integer"),
    ("probability above 1", config_file("[evolution]\np_mutation = 1.5\n"), "must lie in [0, 1]"),
    ("negative probability", config_file("[evolution]\nq_crossover = -0.1\n"), "must lie in [0, 1]"),
    ("population below 2", config_file("[evolution]\npopulation = 1\n"), "must be at least 2"),
    ("schedule with no epochs", config_file("[train]\nschedule = [[0, 0.001]]\n"), "has no epochs"),
    ("empty schedule", config_file("[train]\nschedule = []\n"), "train.schedule is empty"),
    ("schedule entry malformed", config_file("[train]\nschedule = [[10]]\n"), "list of 2 items"),
    ("negative learning rate", config_file("[train]\nschedule = [[1, -0.1]]\n"), "must be positive"),
    ("unknown dataset", config_file('[data]\ndataset = "imagenet"\n'), "data.dataset = 'imagenet' is not one of"),
    ("unknown optimizer", config_file('[train]\noptimizer = "lbfgs"\n'), "train.optimizer"),
    ("stage of one node", config_file("[space]\nnodes = [1, 5]\n"), "at least 2 nodes"),
    ("network too small for input", config_file('[space]\npreset = "mnist"\nnodes = [3, 3, 3, 3]\nchannels = [4, 4, 4, 4]\n'), "shrinks"),
    # --set overrides
    ("override without =", lambda tmp: ["evolve", "--set", "evolution.population"], "section.key=value"),
    ("override of unknown key", lambda tmp: ["evolve", "--set", "evolution.size=3"], "unknown key evolution.size"),
    ("override of wrong type", lambda tmp: ["evolve", "--set", "run.seed=abc"], "run.seed must be an integer"),
    ("unknown device", lambda tmp: ["evolve", "--set", "run.device=tpu"], "run.device"),
    ("GPU asked on a machine without", evolve_with("run.device=cuda"), "no CUDA GPU"),
    # datasets
    ("MNIST files missing", evolve_with("data.dataset=mnist", "data.root='nowhere'", "space.preset=mnist"), "MNIST"),
    ("MNIST file truncated", mnist_root_with_truncated_file, "MNIST"),
    ("CIFAR-10 files missing", evolve_with("data.dataset=cifar10", "data.root='nowhere'", "space.preset=cifar10", "space.channels=[4, 4, 8]"), "cifar-10-batches-py"),
    # run folders and databases
    ("resume a folder that does not exist", lambda tmp: ["resume", str(tmp / "nothing")], "is not a folder"),
    ("resume a folder that is not a run", lambda tmp: ["resume", str(tmp)], "is not a run folder"),
    ("export a folder that is not a run", lambda tmp: ["export", str(tmp)], "is not a run folder"),
    ("resume a corrupted database", corrupted_database, "run.db"),
    ("export a truncated database", truncated_database, "run.db"),
    ("evolve onto an existing run", existing_run, "already holds a run"),
    ("run folder under a file", lambda tmp: ["evolve", "--out", str(write(tmp / "file", "x") / "run")], "cannot create run folder"),
]


@pytest.mark.parametrize(("name", "setup", "expected"), ROWS, ids=[row[0] for row in ROWS])
def test_bad_input(name: str, setup: Setup, expected: str, tmp_path: Path) -> None:
    args = setup(tmp_path)
    snapshot = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("genetic-cnn: error: ")
    assert expected in lines[0], lines[0]
    for path, content in snapshot.items():  # nothing that was there is lost or overwritten
        assert path.read_bytes() == content, path
    assert not (tmp_path / "run").exists() or name == "run folder under a file"
    assert not (tmp_path / "runs").exists()


def test_table_size() -> None:
    assert len(ROWS) >= 30


