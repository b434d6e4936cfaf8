"""Runs on disk, tables, one-shot folders, calibrate/tabulate outputs, export and report: bad input
gets one line and exit status 2 with nothing lost (the rows, checked as ``test_bad_input`` checks its
own), and a run folder copied, moved or made read-only still resumes, reports and exports.

Read-only places are real: ``chmod -R a-w`` for a user, and for root (whom permissions do not stop) a
read-only bind mount made in a private mount namespace of the command alone (``unshare``).
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import TINY, cli_command, run_cli, set_args
from test_bad_input import (
    CALIBRATION,
    TINY_TABLE_SPACE,
    Setup,
    assert_refused,
    everything_under,
    evolve_with,
    write,
)

from genetic_cnn.config import load_config
from genetic_cnn.evolution import start_run
from genetic_cnn.fitness.oneshot import CHECKPOINT, FITNESS_DB, SUPERNET_FOLDER, WEIGHTS
from genetic_cnn.history.export import export_evaluations
from genetic_cnn.history.store import load_run

ONE_SHOT = [*TINY, "evaluation.method=one-shot", "evaluation.supernet_schedule=[[2, 0.003]]",
            "evaluation.calibration_images=64", "evolution.generations=1"]  # fmt: skip
"""The smallest one-shot run: a supernet of 2 epochs, 2 generations."""

# ---------------------------------------------------------------------- runs made once, copied per test
_TEMPLATES: dict[str, Path] = {}
_TEMPLATE_ROOT: list[Path] = []


@pytest.fixture(autouse=True, scope="module")
def template_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    _TEMPLATE_ROOT.append(tmp_path_factory.mktemp("templates"))
    yield
    _TEMPLATE_ROOT.clear()
    _TEMPLATES.clear()


def _quiet(line: str) -> None:
    pass


def _interrupt_supernet(line: str) -> None:
    """Stops a one-shot run after its supernet's first epoch is checkpointed, as a kill would."""
    if line.startswith("supernet epoch 2/"):
        raise KeyboardInterrupt


def template(kind: str) -> Path:
    """A run made once per module: ``standalone`` or ``oneshot`` (finished) or ``killed-oneshot``
    (stopped during its supernet's training, a checkpoint and no weights)."""
    if kind not in _TEMPLATES:
        folder = _TEMPLATE_ROOT[0] / kind
        if kind == "standalone":
            start_run(load_config(None, TINY), out=folder, progress=False, echo=_quiet)
        elif kind == "oneshot":
            start_run(load_config(None, ONE_SHOT), out=folder, progress=False, echo=_quiet)
        else:
            with pytest.raises(KeyboardInterrupt):
                start_run(load_config(None, ONE_SHOT), out=folder, progress=False, echo=_interrupt_supernet)
            assert (folder / SUPERNET_FOLDER / CHECKPOINT).is_file() and not (folder / SUPERNET_FOLDER / WEIGHTS).exists()
        _TEMPLATES[kind] = folder
    return _TEMPLATES[kind]


def copy_of(kind: str, destination: Path) -> Path:
    """``cp -a`` of a template run: the copy must be a run of its own (what this file tests)."""
    subprocess.run(["cp", "-a", str(template(kind)), str(destination)], check=True)
    return destination


def set_meta(folder: Path, name: str, value: object) -> None:
    with sqlite3.connect(folder / "run.db") as db:
        db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, json.dumps(value)))
    db.close()


def listing(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder``: its hash and modification time (what 'untouched' means)."""
    return {
        str(path.relative_to(folder)): (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


# ---------------------------------------------------------------------- read-only places
_READ_ONLY: list[Path] = []
"""Folders the row being set up wants read-only while its command runs."""


def read_only(folder: Path) -> Path:
    _READ_ONLY.append(folder)
    return folder


def command_line(args: list[str], folders: list[Path]) -> list[str]:
    """The CLI command, run with ``folders`` read-only: for root, a read-only bind mount of each in a
    mount namespace of its own (nothing outside the command sees it); for others, ``chmod -R a-w``
    (``writable_again`` undoes it)."""
    command = cli_command(*args)
    if not folders:
        return command
    if os.geteuid() != 0:
        for folder in folders:
            subprocess.run(["chmod", "-R", "a-w", str(folder)], check=True)
        return command
    mounts = " && ".join(f'mount --bind "${i + 1}" "${i + 1}" && mount -o remount,ro,bind "${i + 1}" "${i + 1}"'
                         for i in range(len(folders)))  # fmt: skip
    script = f'{mounts} && shift {len(folders)} && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *map(str, folders), *command]


def run_read_only(folders: list[Path], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        return subprocess.run(command_line(list(args), folders), capture_output=True, text=True, timeout=300, cwd=cwd, env=env)
    finally:
        writable_again(folders)


def writable_again(folders: list[Path]) -> None:
    if os.geteuid() != 0:
        for folder in folders:
            subprocess.run(["chmod", "-R", "u+w", str(folder)], check=True)


# ---------------------------------------------------------------------- row setups
def table_run_with(payload_change: str) -> Setup:
    """An evolve on a synthetic table of TINY_TABLE_SPACE damaged as ``payload_change`` says."""

    def setup(tmp: Path) -> list[str]:
        from table_helpers import synthetic_table

        payload = synthetic_table(load_config(None, TINY_TABLE_SPACE)).to_json()
        if payload_change == "list":
            payload = [payload["name"], 1, 2]
        elif payload_change == "header only":
            del payload["architectures"]
        elif payload_change == "missing architectures":
            payload["architectures"] = payload["architectures"][:5]
        elif payload_change == "empty results":
            for entry in payload["architectures"]:
                entry["results"] = []
        elif payload_change == "nan":
            payload["architectures"][3]["results"][0][0] = float("nan")
        elif payload_change == "unknown status":
            payload["architectures"][0]["results"][1][-1] = "great"
        elif payload_change == "short row":
            payload["architectures"][0]["results"][0] = [0.5]
        elif payload_change == "twice":
            payload["architectures"].append(payload["architectures"][0])
        elif payload_change == "other dataset":
            payload["data"]["dataset"] = "mnist"
        path = tmp / "table.json.gz"
        raw = json.dumps(payload).encode()
        if payload_change == "truncated gzip":
            write(path, gzip.compress(raw)[:40])
        else:
            write(path, gzip.compress(raw))
        return ["--out", str(tmp / "run"), *set_args([*TINY_TABLE_SPACE, "evaluation.method=table", f"evaluation.table={str(path)!r}"])]

    return setup


def resume_table_run_whose_table_lost_architectures(tmp: Path) -> list[str]:
    from table_helpers import write_synthetic_table

    table = write_synthetic_table(tmp / "table.json.gz", TINY_TABLE_SPACE)
    folder = tmp / "run"
    config = load_config(None, [*TINY_TABLE_SPACE, "evaluation.method=table", f"evaluation.table={str(table)!r}"])
    start_run(config, out=folder, progress=False, echo=_quiet)
    set_meta(folder, "status", "interrupted")  # as a run stopped half-way: resume checks its inputs
    payload = json.loads(gzip.decompress(table.read_bytes()))
    payload["architectures"] = payload["architectures"][:-2]
    table.write_bytes(gzip.compress(json.dumps(payload).encode()))
    return [str(folder)]


def oneshot_run_with(damage: str) -> Setup:
    def setup(tmp: Path) -> list[str]:
        folder = copy_of("killed-oneshot" if damage == "truncated checkpoint" else "oneshot", tmp / "run")
        supernet = folder / SUPERNET_FOLDER
        if damage == "truncated checkpoint":
            data = (supernet / CHECKPOINT).read_bytes()
            (supernet / CHECKPOINT).write_bytes(data[: len(data) // 2])
        elif damage == "truncated weights":
            data = (supernet / WEIGHTS).read_bytes()
            (supernet / WEIGHTS).write_bytes(data[: len(data) // 2])
            set_meta(folder, "status", "interrupted")
        elif damage == "garbage fitness cache":
            (supernet / FITNESS_DB).write_bytes(b"not a database at all " * 200)
        elif damage == "supernet is a file":
            shutil.rmtree(supernet)
            supernet.write_text("mine")
        return [str(folder), "--quiet"]

    return setup


def standalone_copy(tmp: Path) -> Path:
    return copy_of("standalone", tmp / "run")


def newer_schema(command: str) -> Setup:
    def setup(tmp: Path) -> list[str]:
        folder = standalone_copy(tmp)
        set_meta(folder, "schema_version", 99)
        return [str(folder)]

    return setup


def damaged_config_in_database(tmp: Path) -> list[str]:
    folder = standalone_copy(tmp)
    set_meta(folder, "config", ["not", "a", "config"])
    return [str(folder)]


_HELD_LOCKS: list[object] = []


def run_in_use(tmp: Path) -> list[str]:
    """A run another process is resuming: it holds the lock (this test process stands for it)."""
    folder = standalone_copy(tmp)
    set_meta(folder, "status", "interrupted")
    holder = open(folder / ".lock", "a")  # noqa: SIM115 - held while the row's command runs
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    holder.write("4242")
    holder.flush()
    _HELD_LOCKS.append(holder)
    return [str(folder), "--quiet"]


def lock_that_is_a_folder(tmp: Path) -> list[str]:
    folder = standalone_copy(tmp)
    set_meta(folder, "status", "interrupted")
    (folder / ".lock").unlink()
    (folder / ".lock").mkdir()
    return [str(folder), "--quiet"]


def garbage_config_file(tmp: Path) -> list[str]:
    folder = standalone_copy(tmp)
    (folder / "config.toml").write_bytes(b"\x00\xff\xfe not toml \x00")
    return [str(folder)]


def own_data_run_without_its_copy(tmp: Path) -> list[str]:
    import numpy as np

    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 255, (120, 8, 8), dtype=np.uint8), np.arange(120) % 3
    folder = tmp / "run"
    start_run(load_config(None, TINY), out=folder, progress=False, echo=_quiet, data=(images, labels))
    set_meta(folder, "status", "interrupted")
    (folder / "data.npz").unlink()
    return [str(folder), "--quiet"]


def read_only_run(*extra: str) -> Setup:
    return lambda tmp: [str(read_only(standalone_copy(tmp))), *extra]


def into_read_only(command: str) -> Setup:
    def setup(tmp: Path) -> list[str]:
        place = read_only(write(tmp / "shared" / "readme.txt", "read-only place").parent)
        if command == "calibrate":
            return ["--out", str(place / "calibration"), *set_args(TINY), *CALIBRATION]
        if command == "export":
            return [str(standalone_copy(tmp)), "--out", str(place / "runs.csv")]
        return ["--out", str(place / "t.json.gz"), "--quiet", *set_args(TINY_TABLE_SPACE)]

    return setup


def under_a_file(command: str) -> Setup:
    def setup(tmp: Path) -> list[str]:
        target = str(write(tmp / "notes.txt", "mine") / "x")
        if command == "calibrate":
            return ["--out", target, *set_args(TINY), *CALIBRATION]
        if command == "tabulate":
            return ["--out", target + ".json.gz", "--quiet", *set_args(TINY_TABLE_SPACE)]
        if command == "report":
            return [str(standalone_copy(tmp)), "--out", target]
        if command == "train":
            return ["1-01|0-01-100-0111", "--out", target, *set_args(TINY)]
        if command == "lr-find":
            return ["1-01|0-01-100-0111", "--out", target + "/lr.png", *set_args(TINY)]
        return [str(standalone_copy(tmp)), "--out", target + "/runs.csv"]

    return setup


def diverging_supernet(tmp: Path) -> list[str]:
    return ["--out", str(tmp / "run"), "--quiet", *set_args([*ONE_SHOT, "evaluation.supernet_schedule=[[1, 1e30]]"])]


def calibrate_into_current_folder(tmp: Path) -> list[str]:
    write(tmp / "mine.txt", "the user's file in the folder the command runs in")
    return ["--out", "", *set_args(TINY), *CALIBRATION]


def export_to_full_disk(tmp: Path) -> list[str]:
    return [str(standalone_copy(tmp)), "--out", "/dev/full", "--force"]


SLOW = {"diverging one-shot supernet",
        "resume with a truncated supernet checkpoint", "resume with truncated supernet weights",
        "resume with a garbage fitness cache", "resume a one-shot run whose supernet folder is a file",
        "resume a run whose own data copy was deleted"}  # fmt: skip
"""Rows that train a supernet or a run of their own (a few seconds each)."""

ROWS: list[tuple[str, str, Setup, str]] = [
    # (what, command, its arguments, a part of the one line expected)
    # the cases reported (issue 24)
    ("table file that is a JSON list", "evolve", table_run_with("list"), "is not a genetic-cnn table"),
    ("table file with a header only", "evolve", table_run_with("header only"), "missing 'architectures'"),
    ("table that lacks architectures of the space", "evolve", table_run_with("missing architectures"), "lacks 7 of the space's 12"),
    ("table with empty results", "evolve", table_run_with("empty results"), "has 0 results for 3 seeds"),
    ("resume a table run whose table lost architectures", "resume", resume_table_run_whose_table_lost_architectures, "lacks 2 of"),
    ("resume with a truncated supernet checkpoint", "resume", oneshot_run_with("truncated checkpoint"), "checkpoint.pt is damaged"),
    ("resume with truncated supernet weights", "resume", oneshot_run_with("truncated weights"), "weights.pt is damaged"),
    ("resume with a garbage fitness cache", "resume", oneshot_run_with("garbage fitness cache"), "fitness.db is not the run's fitness cache"),
    ("calibrate --out under a file", "calibrate", under_a_file("calibrate"), "notes.txt is a file"),
    ("calibrate --out in a read-only folder", "calibrate", into_read_only("calibrate"), "is read-only; choose another --out"),
    ("tabulate --out under a file", "tabulate", under_a_file("tabulate"), "notes.txt is a file"),
    ("tabulate --out in a read-only folder", "tabulate", into_read_only("tabulate"), "is read-only; choose another --out"),
    ("tabulate --out ''", "tabulate", lambda tmp: ["--out", "", *set_args(TINY_TABLE_SPACE)], "names no file"),
    ("export to a full disk", "export", export_to_full_disk, "No space left on device"),
    ("export into a read-only folder", "export", into_read_only("export"), "choose another --out"),
    ("report a read-only run without --out", "report", read_only_run(), "is read-only, so its report cannot go into"),
    ("resume a read-only run", "resume", read_only_run(), "make the run folder writable"),
    ("diverging one-shot supernet", "evolve", diverging_supernet, "NaN or infinite"),
    # more, found by trying (issue 24)
    ("resume a folder that is a file", "resume", lambda tmp: [str(write(tmp / "run", "x"))], "is not a folder"),
    ("resume a run database of a newer schema", "resume", newer_schema("resume"), "written by a newer genetic-cnn"),
    ("export a run database of a newer schema", "export", newer_schema("export"), "upgrade genetic-cnn"),
    ("report a run whose stored config is damaged", "report", damaged_config_in_database, "cannot read"),
    ("two resumes of one run at once", "resume", run_in_use, "in use by another genetic-cnn process"),
    ("resume with a lock file that is a folder", "resume", lock_that_is_a_folder, ".lock is a folder; remove it"),
    ("resume after config.toml was overwritten with bytes", "resume", garbage_config_file, "no longer loads"),
    ("resume a one-shot run whose supernet folder is a file", "resume", oneshot_run_with("supernet is a file"),
     "is a file, not the run's supernet folder"),
    ("resume a run whose own data copy was deleted", "resume", own_data_run_without_its_copy, "data.npz"),
    ("report --out an existing file", "report", lambda tmp: [str(standalone_copy(tmp)), "--out", str(write(tmp / "r.md", "mine"))],
     "it is a file"),
    ("report --out under a file", "report", under_a_file("report"), "it is a file"),
    ("export --out under a file", "export", under_a_file("export"), "cannot create the folder of --out"),
    ("train --out under a file", "train", under_a_file("train"), "cannot create output folder"),
    ("lr-find --out under a file", "lr-find", under_a_file("lr-find"), "cannot create the folder of --out"),
    ("table with a NaN accuracy", "evolve", table_run_with("nan"), "accuracy nan"),
    ("table with an unknown status", "evolve", table_run_with("unknown status"), "status 'great'"),
    ("table with a result row of the wrong length", "evolve", table_run_with("short row"), "is not a complete table"),
    ("table listing an architecture twice", "evolve", table_run_with("twice"), "listed twice"),
    ("table of another dataset", "evolve", table_run_with("other dataset"), "this config has data.dataset = synthetic"),
    ("table gzip cut short", "evolve", table_run_with("truncated gzip"), "is not a readable table"),
    ("table path that is a folder", "evolve", lambda tmp: evolve_with("evaluation.method=table", f"evaluation.table={str(tmp)!r}")(tmp),
     "is neither a table file nor a shipped table"),
    ("tabulate --out a folder", "tabulate", lambda tmp: ["--out", str(tmp), *set_args(TINY_TABLE_SPACE)], "is a folder"),
    ("export format unknown", "export", lambda tmp: [str(standalone_copy(tmp)), "--format", "xlsx"], "--format xlsx: unknown export format"),
    ("export --out of an unknown extension", "export", lambda tmp: [str(standalone_copy(tmp)), "--out", str(tmp / "runs.xlsx")],
     ".xlsx is no export format"),
    ("calibrate --out '' (the current folder, not empty)", "calibrate", calibrate_into_current_folder, "holds no calibration"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "command", "setup", "expected"),
    [pytest.param(*row, marks=[pytest.mark.slow] if row[0] in SLOW else [], id=row[0]) for row in ROWS],
)
def test_bad_input_on_disk(name: str, command: str, setup: Setup, expected: str, tmp_path: Path) -> None:
    _READ_ONLY.clear()
    args = setup(tmp_path)
    before = everything_under(tmp_path)
    try:
        result = run_read_only(list(_READ_ONLY), command, *args, cwd=tmp_path)
    finally:
        while _HELD_LOCKS:
            _HELD_LOCKS.pop().close()  # type: ignore[attr-defined]
    assert_refused(result, expected, tmp_path, before)
    assert not list(Path("/dev").glob("full.partial"))


# ---------------------------------------------------------------------- relocation
def cli_ok(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = run_cli(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result


def history(folder: Path) -> list[tuple[str, str, float]]:
    with load_run(folder) as run:
        return [(e.genome, e.status, round(e.accuracy, 6)) for e in run.evaluations()]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["cp -a", "mv"])
def test_a_killed_oneshot_run_resumes_reports_and_exports_where_it_was_copied_or_moved(how: str, tmp_path: Path) -> None:
    """The supernet, the fitness cache and config.toml follow the run folder; the folder it came
    from is never read or written (its files' hashes and times are unchanged)."""
    finished = template("oneshot")
    first = copy_of("killed-oneshot", tmp_path / "first")
    witness = copy_of("killed-oneshot", tmp_path / "witness")  # stands for `first` when `first` is moved away
    destination = tmp_path / "the run # moved? ünïcode"
    if how == "cp -a":
        subprocess.run(["cp", "-a", str(first), str(destination)], check=True)
        untouched = first
    else:
        subprocess.run(["mv", str(first), str(destination)], check=True)
        untouched = witness
    before = listing(untouched)
    cli_ok("resume", str(destination), "--quiet", cwd=tmp_path)
    assert listing(untouched) == before
    assert first.exists() == (how == "cp -a")  # a moved run's old place is not made again
    assert (destination / SUPERNET_FOLDER / WEIGHTS).is_file() and (destination / SUPERNET_FOLDER / FITNESS_DB).is_file()
    assert history(destination) == history(finished)  # the checkpoint it carried was resumed, to the same end
    assert load_config(destination / "config.toml").run.out == str(destination.resolve())
    cli_ok("report", str(destination), cwd=tmp_path)
    assert (destination / "report" / "report.md").is_file()
    exported = cli_ok("export", str(destination), cwd=tmp_path).stdout
    with load_run(destination) as run:
        assert exported == export_evaluations(run, "csv") and len(exported.splitlines()) == 1 + len(history(finished))
    assert listing(untouched) == before
    # Nothing else made: no stray file named after the part of the path before '#' or '?'.
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(["witness", destination.name] + (["first"] if how == "cp -a" else []))


@pytest.mark.slow
def test_a_standalone_run_copied_then_moved_resumes_into_itself(tmp_path: Path) -> None:
    original = copy_of("standalone", tmp_path / "original")
    set_meta(original, "status", "interrupted")
    with sqlite3.connect(original / "run.db") as db:  # the last generation undone, as a kill would have left it
        db.execute("DELETE FROM evaluations WHERE generation = 2")
        db.execute("DELETE FROM generations WHERE generation = 2")
    db.close()
    subprocess.run(["cp", "-a", str(original), str(tmp_path / "copy")], check=True)
    subprocess.run(["mv", str(tmp_path / "copy"), str(tmp_path / "moved")], check=True)
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "moved")
    before = listing(original)
    cli_ok("resume", str(link), "--quiet")
    assert listing(original) == before
    assert history(tmp_path / "moved") == history(template("standalone"))
    with load_run(tmp_path / "moved") as run:
        assert run.config.run.out == str((tmp_path / "moved").resolve())
        assert run.meta("config_changes")[-1]["moved_from"] == str(template("standalone").resolve())


# ---------------------------------------------------------------------- read-only runs
def test_a_read_only_finished_run_reports_and_exports(tmp_path: Path) -> None:
    folder = copy_of("standalone", tmp_path / "archive")
    before, names = listing(folder), sorted(path.name for path in folder.iterdir())
    exported = run_read_only([folder], "export", str(folder))
    assert exported.returncode == 0, exported.stderr
    with load_run(template("standalone")) as run:
        assert exported.stdout == export_evaluations(run, "csv")
    reported = run_read_only([folder], "report", str(folder), "--out", str(tmp_path / "elsewhere"))
    assert reported.returncode == 0, reported.stderr
    assert (tmp_path / "elsewhere" / "report.md").is_file()
    assert listing(folder) == before
    assert sorted(path.name for path in folder.iterdir()) == names  # no -shm, no report folder


def test_a_read_only_run_left_with_a_write_ahead_log_is_read_whole(tmp_path: Path) -> None:
    """A killed run's last evaluations may lie in run.db-wal only: a read-only reader sees them."""
    folder = copy_of("standalone", tmp_path / "source")
    keep = sqlite3.connect(folder / "run.db")
    keep.execute("PRAGMA wal_autocheckpoint=0")
    keep.execute("PRAGMA journal_mode=WAL")
    keep.execute("DELETE FROM evaluations WHERE generation = 2")
    keep.commit()
    snapshot = tmp_path / "killed"
    subprocess.run(["cp", "-a", str(folder), str(snapshot)], check=True)  # while the writer is alive: the log is there
    keep.close()
    (snapshot / "run.db-shm").unlink()
    assert (snapshot / "run.db-wal").stat().st_size > 0
    before = listing(snapshot)
    exported = run_read_only([snapshot], "export", str(snapshot), "--format", "json")
    assert exported.returncode == 0, exported.stderr
    assert {row["generation"] for row in json.loads(exported.stdout)} == {0, 1}
    assert listing(snapshot) == before


def test_export_to_a_full_standard_output_is_one_line(tmp_path: Path) -> None:
    folder = copy_of("standalone", tmp_path / "run")
    with open("/dev/full", "w") as full:
        result = subprocess.run(cli_command("export", str(folder)), stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["genetic-cnn: error: cannot write to standard output: No space left on device; "
                                                  "write to a file with --out"]  # fmt: skip


def test_export_over_an_existing_file_is_atomic(tmp_path: Path) -> None:
    """--force replaces the file whole; no .partial is left beside it."""
    folder = copy_of("standalone", tmp_path / "run")
    out = write(tmp_path / "runs.json", "old")
    cli_ok("export", str(folder), "--out", str(out), "--force")
    assert json.loads(out.read_text())[0]["generation"] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "runs.json"]


def test_a_failed_write_leaves_the_previous_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """summary.json, config.toml, exports...: a disk that fills while the new file is written."""
    import errno

    from genetic_cnn.errors import UserError
    from genetic_cnn.files import write_atomically

    path = write(tmp_path / "summary.json", "the previous summary")

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(UserError, match="No space left on device; free disk space"):
        write_atomically(path, "the new summary " * 1000, "free disk space")
    assert path.read_text() == "the previous summary"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
