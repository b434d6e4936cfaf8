"""Every user-facing entry point answers bad input with one line, exit status 2, nothing lost.

One row per bad input; grow the table whenever a new one is found, and give every new command rows.
"""

from __future__ import annotations

import argparse
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, run_cli, run_main, set_args
from own_data import class_image, npz_arrays, save_png, write_image_folder, write_npz

from genetic_cnn.cli.app import build_parser

Setup = Callable[[Path], list[str]]
"""Prepares what a row needs in the test's folder; returns the arguments after the command."""


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def config_file(text: str) -> Setup:
    return lambda tmp: ["--config", str(write(tmp / "bad.toml", text)), "--out", str(tmp / "run")]


def evolve_with(*overrides: str) -> Setup:
    return lambda tmp: ["--out", str(tmp / "run"), *set_args(TINY + list(overrides))]


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
    return [str(folder)]


def truncated_database(tmp: Path) -> list[str]:
    folder = a_finished_run(tmp)
    data = (folder / "run.db").read_bytes()
    (folder / "run.db").write_bytes(data[: len(data) // 3])
    return [str(folder)]


def existing_run(tmp: Path) -> list[str]:
    folder = a_finished_run(tmp)
    return ["--out", str(folder), *set_args(TINY)]


# Without a GPU, asking for one is the user's mistake; with one, only a GPU that is not there is.
if torch.cuda.is_available():
    MISSING_GPU = ("GPU index that is not there", "evolve", evolve_with("run.device='cuda:99'"), "GPU(s) are visible")
else:
    MISSING_GPU = ("GPU asked on a machine without", "evolve", evolve_with("run.device=cuda"), "no CUDA GPU")

def users_folder(tmp: Path) -> list[str]:
    write(tmp / "mine" / "config.toml", "# the user's own file\n")
    return ["--out", str(tmp / "mine"), *set_args(TINY)]


def resume_with(*overrides: str) -> Setup:
    return lambda tmp: [str(a_finished_run(tmp)), *set_args(list(overrides))]


def edited_config(tmp: Path) -> list[str]:
    folder = a_finished_run(tmp)
    path = folder / "config.toml"
    path.write_text(path.read_text().replace("population = 4", "population = 5"))
    return [str(folder)]


def export_onto_existing(tmp: Path) -> list[str]:
    return [str(a_finished_run(tmp)), "--out", str(write(tmp / "mine.csv", "my own numbers\n"))]


CALIBRATION = ["--genomes", "3", "--seeds", "2", "--quiet"]


def calibrate_with(*args: str) -> Setup:
    return lambda tmp: ["--out", str(tmp / "calibration"), *set_args(TINY), *CALIBRATION, *args]


def users_calibration_folder(tmp: Path) -> list[str]:
    write(tmp / "mine" / "notes.txt", "mine")
    return ["--out", str(tmp / "mine"), *set_args(TINY), *CALIBRATION]


def other_calibration(tmp: Path) -> list[str]:
    assert run_cli("calibrate", *calibrate_with()(tmp)).returncode == 0
    return calibrate_with("--fidelity", "data.subset=300")(tmp)


def table_of_another_space(tmp: Path) -> list[str]:
    from table_helpers import TINY_SPACE, write_synthetic_table

    path = write_synthetic_table(tmp / "tiny.json.gz", TINY_SPACE)  # nodes [2, 3]; TINY's are the preset's (3, 5)
    return evolve_with("evaluation.method=table", f"evaluation.table={str(path)!r}")(tmp)


def not_a_table(tmp: Path) -> list[str]:
    path = write(tmp / "notes.json.gz", "not gzip at all")
    return evolve_with("evaluation.method=table", f"evaluation.table={str(path)!r}")(tmp)


TINY_TABLE_SPACE = [*TINY, "space.nodes=[2, 3]"]


def tabulate_with(*args: str) -> Setup:
    return lambda tmp: ["--out", str(tmp / "t.json.gz"), "--quiet", *set_args(TINY_TABLE_SPACE), *args]


def users_table_file(tmp: Path) -> list[str]:
    write(tmp / "t.json.gz", "my own file")
    return tabulate_with()(tmp)


def other_tabulation(tmp: Path) -> list[str]:
    assert run_cli("tabulate", *tabulate_with("--seeds", "1")(tmp)).returncode == 0
    return tabulate_with("--seeds", "2")(tmp)


def image_folder_with(damage: str, command: str = "evolve", *extra: str) -> Setup:
    """A small PNG folder (3 classes of 4 images) with one kind of damage, and the command's arguments."""

    def setup(tmp: Path) -> list[str]:
        root = tmp / "images"
        classes = ("a",) if damage == "one class" else ("a", "b", "c")
        write_image_folder(root, per_class=1 if damage == "too few" else 4, test_per_class=1 if damage == "too few" else 0,
                           classes=classes, size=12)  # fmt: skip
        if damage == "empty class":
            (root / "train" / "d").mkdir()
        elif damage == "unreadable":
            write(root / "train" / "b" / "0002.png", b"\x89PNG but then nothing an image needs")
        elif damage == "mixed modes":
            save_png(root / "train" / "c" / "0001.png", class_image(2, 1, size=12, channels=1))
        overrides = [*TINY, "data.dataset=folder", f"data.root={str(root)!r}", "data.validation=0.5", *extra]
        if command == "evolve":
            return ["--out", str(tmp / "run"), *set_args(overrides)]
        return ["1-01|0-01-100-0111", "--out", str(tmp / "out"), *set_args(overrides)]

    return setup


def arrays_with(**changes: object) -> Setup:
    def setup(tmp: Path) -> list[str]:
        path = write_npz(tmp / "mine.npz", **{**npz_arrays(), **changes})
        return ["--out", str(tmp / "run"), *set_args([*TINY, "data.dataset=arrays", f"data.root={str(path)!r}"])]

    return setup


ROWS: list[tuple[str, str, Setup, str]] = [
    # (what, command, its arguments, a part of the one line expected)
    # genomes
    ("genome with a bad character", "show", lambda tmp: ["1-01|0-01-100-011x"], "is not 0 or 1"),
    ("genome group of wrong length", "show", lambda tmp: ["1-0|0-01-100-0111"], "group 2"),
    ("genome with an empty stage", "show", lambda tmp: ["1-01||0-01"], "stage 2 is empty"),
    ("genome for the wrong preset", "show", lambda tmp: ["1-01|0-01-100"], "nodes=(3, 5) was expected"),
    ("empty genome", "show", lambda tmp: [""], "empty genome string"),
    ("unknown preset", "show", lambda tmp: ["1-01", "--preset", "imagenet"], "unknown preset"),
    ("train a genome with a bad character", "train", lambda tmp: ["1-01|0-01-100-011x", "--out", str(tmp / "run")], "is not 0 or 1"),
    ("lr-find a genome with a bad character", "lr-find", lambda tmp: ["1-01|0-01-100-011x", "--out", str(tmp / "lr.png")], "is not 0 or 1"),
    ("lr-find with too few steps", "lr-find", lambda tmp: ["1-01|0-01-100-0111", "--steps", "0", "--out", str(tmp / "lr.png")], "too few"),
    # config files
    ("config file missing", "evolve", lambda tmp: ["--config", str(tmp / "nope.toml")], "does not exist"),
    ("config not TOML", "evolve", config_file("[evolution\npopulation = 3"), "is not valid TOML"),
    ("unknown section", "evolve", config_file("[evolve]\npopulation = 3\n"), "unknown config section [evolve]"),
    ("unknown key", "evolve", config_file("[evolution]\npopulaton = 3\n"), "unknown key evolution.populaton"),
    ("wrong type", "evolve", config_file('[evolution]\npopulation = "ten"\n'), "evolution.population must be an integer"),
    ("unknown fitness method", "evolve", evolve_with("evaluation.method=two-shot"), "evaluation.method = 'two-shot' is not one of"),
    ("supernet schedule without epochs", "evolve", evolve_with("evaluation.method=one-shot", "evaluation.supernet_schedule=[[0, 0.001]]"),
     "evaluation.supernet_schedule has no epochs"),
    ("balanced sampling of a 7-node stage", "evolve", evolve_with("evaluation.supernet_sampling=balanced", "space.nodes=[3, 7]"),
     "more than 6 nodes; use uniform"),
    ("probability above 1", "evolve", config_file("[evolution]\np_mutation = 1.5\n"), "must lie in [0, 1]"),
    ("negative probability", "evolve", config_file("[evolution]\nq_crossover = -0.1\n"), "must lie in [0, 1]"),
    ("population below 2", "evolve", config_file("[evolution]\npopulation = 1\n"), "must be at least 2"),
    ("schedule with no epochs", "evolve", config_file("[train]\nschedule = [[0, 0.001]]\n"), "has no epochs"),
    ("empty schedule", "evolve", config_file("[train]\nschedule = []\n"), "train.schedule is empty"),
    ("schedule entry malformed", "evolve", config_file("[train]\nschedule = [[10]]\n"), "list of 2 items"),
    ("negative learning rate", "evolve", config_file("[train]\nschedule = [[1, -0.1]]\n"), "must be positive"),
    ("unknown dataset", "evolve", config_file('[data]\ndataset = "imagenet"\n'), "data.dataset = 'imagenet' is not one of"),
    ("unknown optimizer", "evolve", config_file('[train]\noptimizer = "lbfgs"\n'), "train.optimizer"),
    ("stage of one node", "evolve", config_file("[space]\nnodes = [1, 5]\n"), "at least 2 nodes"),
    ("network too small for input", "evolve", config_file('[space]\npreset = "mnist"\nnodes = [3, 3, 3, 3]\nchannels = [4, 4, 4, 4]\n'), "shrinks"),
    # --set overrides
    ("override without =", "evolve", lambda tmp: ["--set", "evolution.population"], "section.key=value"),
    ("override of unknown key", "evolve", lambda tmp: ["--set", "evolution.size=3"], "unknown key evolution.size"),
    ("override of wrong type", "evolve", lambda tmp: ["--set", "run.seed=abc"], "run.seed must be an integer"),
    ("unknown device", "evolve", lambda tmp: ["--set", "run.device=tpu"], "run.device"),
    MISSING_GPU,
    # datasets
    ("MNIST files missing", "evolve", evolve_with("data.dataset=mnist", "data.root='nowhere'", "space.preset=mnist"), "MNIST"),
    ("MNIST file truncated", "evolve", mnist_root_with_truncated_file, "MNIST"),
    ("CIFAR-10 files missing", "evolve", evolve_with("data.dataset=cifar10", "data.root='nowhere'", "space.preset=cifar10", "space.channels=[4, 4, 8]"), "cifar-10-batches-py"),
    # issue 16: your own data
    ("image folder with an empty class folder", "evolve", image_folder_with("empty class"), "images/train/d holds no images"),
    ("image folder of one class", "evolve", image_folder_with("one class"), "one class only"),
    ("image folder with an unreadable image", "evolve", image_folder_with("unreadable"), "cannot read the image"),
    ("image folder with grayscale and colour images", "evolve", image_folder_with("mixed modes"), "mixed-mode images"),
    ("image folder with a class too small to validate", "evolve", image_folder_with("too few"), "the validation split"),
    ("train on an image folder with an empty class", "train", image_folder_with("empty class", "train"), "holds no images"),
    ("lr-find on an image folder of one class", "lr-find", image_folder_with("one class", "lr-find"), "one class only"),
    ("preset that shrinks a folder's images to nothing", "evolve", image_folder_with("none", "evolve", "space.preset=mnist"),
     "space.preset = 'mnist' is made for 1x28x28 images but data.dataset = 'folder' has 3x12x12"),
    ("train with a preset that shrinks a folder's images", "train", image_folder_with("none", "train", "space.preset=mnist"),
     "shrink them to nothing"),
    ("image folder that is not there", "evolve", evolve_with("data.dataset=folder", "data.root='nowhere'"), "nowhere does not exist"),
    ("arrays file that is not there", "evolve", evolve_with("data.dataset=arrays", "data.root='nowhere.npz'"), "does not exist"),
    ("label array of the wrong length", "evolve", arrays_with(y_train=np.zeros(47, dtype=np.int64)), "y_train has 47 labels but x_train has 48"),
    ("non-integer labels", "evolve", arrays_with(y_train=np.linspace(0, 3, 48)), "float64 labels"),
    ("arrays whose layout is ambiguous", "evolve", arrays_with(x_train=np.zeros((48, 3, 4, 3), dtype=np.uint8)), "set data.layout"),
    ("unknown array layout", "evolve", evolve_with("data.layout=hwcn"), "data.layout = 'hwcn' is not one of"),
    ("negative image size", "evolve", evolve_with("data.image_size=-1"), "data.image_size = -1"),
    # run folders and databases
    ("resume a folder that does not exist", "resume", lambda tmp: [str(tmp / "nothing")], "is not a folder"),
    ("resume a folder that is not a run", "resume", lambda tmp: [str(tmp)], "is not a run folder"),
    ("export a folder that is not a run", "export", lambda tmp: [str(tmp)], "is not a run folder"),
    ("report a folder that is not a run", "report", lambda tmp: [str(tmp)], "is not a run folder"),
    ("resume a corrupted database", "resume", corrupted_database, "run.db"),
    ("export a truncated database", "export", truncated_database, "run.db"),
    ("evolve onto an existing run", "evolve", existing_run, "already holds a run"),
    ("run folder under a file", "evolve", lambda tmp: ["--out", str(write(tmp / "file", "x") / "run")], "cannot create run folder"),
    # issue 13: checked before anything is written, files never overwritten, resume settings
    ("preset too large for the data", "evolve", evolve_with("space.preset=mnist"), "space.preset = 'mnist' is made for 1x28x28"),
    ("evolve into a folder of the user's files", "evolve", users_folder, "is not empty and holds no run"),
    ("resume changing what the run computes", "resume", resume_with("evolution.population=6"), "cannot change half-way"),
    ("resume after config.toml was edited", "resume", edited_config, "differs from the settings the run was started with"),
    ("validation written as 2.0", "evolve", lambda tmp: ["--set", "data.validation=2.0"], "neither a count nor a fraction"),
    ("genome cut at | by the shell", "show", lambda tmp: ["1-01"], "the shell cut it at '|'"),
    ("train a genome cut at | by the shell", "train", lambda tmp: ["1-01", "--out", str(tmp / "run")], "the shell cut it at '|'"),
    ("lr-find a genome cut at | by the shell", "lr-find", lambda tmp: ["1-01", "--out", str(tmp / "lr.png")], "the shell cut it at '|'"),
    ("lr-find with too few steps", "lr-find", lambda tmp: ["1-01|0-01-100-0111", "--steps", "5"], "too few"),
    ("export onto an existing file", "export", export_onto_existing, "pass --force"),
    ("show onto an existing drawing", "show", lambda tmp: ["1-01|0-01-100-0111", "--out", str(write(tmp / "g.png", "mine"))], "pass --force"),
    ("the same run twice in a report", "report", lambda tmp: [str(a_finished_run(tmp))] * 2, "given twice"),
    # the dashboard and the ONNX export (issue 28)
    ("dashboard of a folder that is not a run", "dashboard", lambda tmp: [str(tmp)], "is not a run folder"),
    ("dashboard of a folder that does not exist", "dashboard", lambda tmp: [str(tmp / "nothing")], "is not a folder"),
    ("onnx of a file that does not exist", "onnx", lambda tmp: [str(tmp / "seed0.pt")], "does not exist"),
    ("onnx of a state dict without its results.json", "onnx", lambda tmp: [str(write(tmp / "seed0.pt", b"junk"))], "results.json"),
    ("calibrate with one seed", "calibrate", calibrate_with("--seeds", "1"), "at least 2 seeds"),
    ("calibrate one architecture", "calibrate", calibrate_with("--genomes", "1"), "at least 2 architectures"),
    ("calibrate more architectures than the space has", "calibrate", calibrate_with("--genomes", "2000"), "has only 1812"),
    ("calibrate a fidelity that is no override", "calibrate", calibrate_with("--fidelity", "data.subset"), "section.key=value"),
    ("calibrate a fidelity that changes the search", "calibrate", calibrate_with("--fidelity", "evolution.population=8"), "not evolution.population"),
    ("calibrate a fidelity of an unknown key", "calibrate", calibrate_with("--fidelity", "train.epochs=3"), "train.epochs is not a config key"),
    ("calibrate an empty fidelity", "calibrate", calibrate_with("--fidelity", " ; "), "is empty"),
    ("calibrate into a folder of the user's files", "calibrate", users_calibration_folder, "holds no calibration"),
    ("calibrate other settings into a calibration", "calibrate", other_calibration, "holds a calibration with other settings"),
    # issue 15: tables, strategies
    ("table method without a table", "evolve", evolve_with("evaluation.method=table"), "needs evaluation.table"),
    ("unknown table name", "evolve", evolve_with("evaluation.method=table", "evaluation.table=cifar-everything"),
     "is neither a table file nor a shipped table"),
    ("table of another space", "evolve", table_of_another_space, "space.nodes = [3, 5]"),
    ("table file that is not a table", "evolve", not_a_table, "is not a readable table"),
    ("unknown selection", "evolve", evolve_with("evolution.selection=wheel"), "evolution.selection = 'wheel' is not one of"),
    ("tournament of nobody", "evolve", evolve_with("evolution.sample_size=0"), "evolution.sample_size = 0 must be at least 1"),
    ("tabulation strategy by hand", "evolve", evolve_with("evolution.strategy=tabulation"), "use genetic-cnn tabulate"),
    ("tabulate without --out", "tabulate", lambda tmp: set_args(TINY_TABLE_SPACE), "needs --out"),
    ("tabulate zero seeds", "tabulate", tabulate_with("--seeds", "0"), "at least 1 seed"),
    ("tabulate a table", "tabulate", tabulate_with("--set", "evaluation.method=table", "--set", "evaluation.table=x"),
     "a table holds fitness measured by standalone or one-shot"),
    ("tabulate onto the user's file", "tabulate", users_table_file, "exists and no tabulation of it"),
    ("tabulate other settings into a tabulation", "tabulate", other_tabulation, "holds a tabulation with other settings"),
    ("tabulate --partial before anything", "tabulate", tabulate_with("--partial"), "holds no tabulation yet"),
]  # fmt: skip


SQLITE_READER_FILES = ("run.db-wal", "run.db-shm")


def everything_under(folder: Path) -> dict[Path, bytes | None]:
    """Every file (with its bytes) and folder (None) under ``folder``."""
    return {path: path.read_bytes() if path.is_file() else None for path in folder.rglob("*")}


def assert_refused(result: subprocess.CompletedProcess[str], expected: str, folder: Path, before: dict[Path, bytes | None]) -> None:
    """The project's promise for bad input: exit status 2, one line naming ``expected``, no traceback; and
    nothing lost under ``folder`` (every file and folder that was there, unchanged) and nothing written (no
    run folder begun, no default runs/ or plot), but SQLite's own -wal and -shm files, which any reader of
    a database in WAL mode leaves beside it (a clean export does too)."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("genetic-cnn: error: ")
    assert expected in lines[0], lines[0]
    after = everything_under(folder)
    assert {path: after.get(path, "gone") for path in before} == before
    written = {path for path in after.keys() - before.keys() if not (path.name in SQLITE_READER_FILES and path.parent / "run.db" in before)}
    assert written == set()


# Every row runs twice: in this process, which is quick (make test-quick), and as the user runs it, a process
# of its own whose exit status, standard error and absence of a traceback are what the user sees (slow).
HOW = ["in-process", pytest.param("process", marks=pytest.mark.slow)]


@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize(("name", "command", "setup", "expected"), ROWS, ids=[row[0] for row in ROWS])
def test_bad_input(
    name: str, command: str, setup: Setup, expected: str, how: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    args = setup(tmp_path)
    before = everything_under(tmp_path)
    if how == "process":
        result = run_cli(command, *args, cwd=tmp_path)
    else:
        result = run_main(command, *args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert_refused(result, expected, tmp_path, before)


def test_every_command_has_rows() -> None:
    """A command added to the CLI needs its own bad-input rows here (the table covers every one)."""
    [commands] = [action.choices for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)]
    assert set(commands) - {command for _, command, _, _ in ROWS} == set()
