"""The command line never surprises: one set of defaults, checks before anything is written, files
never overwritten, resumable settings, output fit for terminals and logs (observations of issue 13)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import TINY, cli_command, run_cli, set_args

from genetic_cnn.cli.args import resolve_config
from genetic_cnn.config import PRESET_TRAIN_DEFAULTS, load_config, parse_override
from genetic_cnn.space.presets import DIGITS, MNIST, size_warning

REFERENCE = Path(__file__).parents[2] / "docs" / "configuration.md"


def readme_defaults() -> dict[str, str]:
    """``key -> default`` from the configuration reference (docs/configuration.md), for rows with one literal default."""
    rows = {}
    for line in REFERENCE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| `([a-z]+\.[a-z_]+)` \| `([^`]*)` \|", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_the_readme_table_is_what_load_config_gives() -> None:
    defaults = readme_defaults()
    assert len(defaults) >= 20  # the table was read
    config = load_config(None, []).to_dict()
    for name, text in defaults.items():
        section, key = name.split(".")
        value = config[section][key]
        shown = parse_override(f"{name}={text}")[2]  # read as --set reads it: TOML, a bare word a string
        agrees = shown == value and isinstance(shown, bool) == isinstance(value, bool) and isinstance(shown, str) == isinstance(value, str)
        assert agrees, f"docs/configuration.md says {name} = {text}, load_config gives {value!r}"


@pytest.mark.slow
def test_evolve_without_a_config_uses_the_readme_defaults(tmp_path: Path) -> None:
    overrides = ["data.dataset=synthetic", "space.channels=[4, 8]", "evolution.population=2", "evolution.generations=0",
                 "run.device=cpu"]  # fmt: skip
    result = run_cli("evolve", "--out", str(tmp_path / "run"), "--quiet", *set_args(overrides), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    saved = load_config(tmp_path / "run" / "config.toml")
    expected = load_config(None, overrides)
    assert saved.train == expected.train and saved.evolution == expected.evolution
    assert saved.train.schedule == PRESET_TRAIN_DEFAULTS["digits"]["schedule"]  # the default preset decides
    assert saved.run.threads == 0 and saved.run.executor == expected.run.executor
    assert saved.run.out == str((tmp_path / "run").resolve())  # --out is recorded


@pytest.mark.slow
def test_train_and_show_default_to_the_configs_preset() -> None:
    config = resolve_config(None, [], None, None)
    assert config.space.preset == "digits" and config.data.dataset == "digits"
    assert config.train.schedule == PRESET_TRAIN_DEFAULTS["digits"]["schedule"] and config.train.batch_size == 64
    mnist = resolve_config(None, [], "mnist", None)
    assert mnist.train.schedule == PRESET_TRAIN_DEFAULTS["mnist"]["schedule"] and mnist.train.batch_size == 128
    shown = run_cli("show", "1-01|0-01-100-0111")
    assert shown.returncode == 0 and "preset            digits" in shown.stdout
    assert "1 convolution;" in run_cli("show", "0-00|0-00-000-0000").stdout  # not "1 convolutions"


def test_a_preset_too_small_for_the_data_is_warned_about() -> None:
    assert size_warning(DIGITS, "mnist", (1, 28, 28)) and "space.preset = 'mnist'" in size_warning(DIGITS, "mnist", (1, 28, 28))
    assert size_warning(MNIST, "mnist", (1, 28, 28)) is None and size_warning(DIGITS, "digits", (1, 8, 8)) is None


@pytest.mark.slow
def test_resume_may_change_where_a_run_trains_and_records_it(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    assert run_cli("evolve", "--out", str(folder), "--quiet", *set_args(TINY)).returncode == 0
    resumed = run_cli("resume", str(folder), "--quiet", "--set", "run.workers=2", "--set", "run.threads=1")
    assert resumed.returncode == 0, resumed.stderr
    from genetic_cnn.history.store import load_run

    with load_run(folder) as run:
        assert run.config.run.workers == 2 and run.meta("config_changes")[0]["set"] == ["run.workers=2", "run.threads=1"]
    assert load_config(folder / "config.toml").run.workers == 2  # the copy follows


@pytest.mark.slow
def test_a_relative_data_root_resumes_from_another_directory(tmp_path: Path) -> None:
    (tmp_path / "here").mkdir()
    result = run_cli("evolve", "--out", "run", "--quiet", *set_args([*TINY, "data.root=data"]), cwd=tmp_path / "here")
    assert result.returncode == 0, result.stderr
    saved = load_config(tmp_path / "here" / "run" / "config.toml")
    assert saved.data.root == str((tmp_path / "here" / "data").resolve())
    assert run_cli("resume", str(tmp_path / "here" / "run"), "--quiet", cwd=tmp_path).returncode == 0


@pytest.mark.slow
def test_export_format_follows_the_extension_and_creates_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    assert run_cli("evolve", "--out", str(folder), "--quiet", *set_args(TINY)).returncode == 0
    out = tmp_path / "new" / "deeper" / "x.json"
    result = run_cli("export", str(folder), "--out", str(out))
    assert result.returncode == 0 and result.stdout.strip() == f"wrote {out}"
    assert len(json.loads(out.read_text())) == 12  # JSON, not CSV
    forced_csv = tmp_path / "y.json"
    assert run_cli("export", str(folder), "--out", str(forced_csv), "--format", "csv").returncode == 0
    assert forced_csv.read_text().startswith("generation,")
    again = run_cli("export", str(folder), "--out", str(out))
    assert again.returncode == 2 and "--force" in again.stderr
    assert run_cli("export", str(folder), "--out", str(out), "--force").returncode == 0


@pytest.mark.slow
def test_show_prints_the_path_it_writes(tmp_path: Path) -> None:
    result = run_cli("show", "1-01|0-01-100-0111", "--out", str(tmp_path / "g"))
    assert result.returncode == 0 and f"drawing           {tmp_path / 'g.png'}" in result.stdout
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_train_refuses_to_overwrite_an_earlier_training(tmp_path: Path) -> None:
    args = ["train", "1-01|0-01-100-0111", "--dataset", "synthetic", "--set", "space.channels=[4, 8]",
            "--set", "train.schedule=[[1, 0.003]]", "--set", "run.device=cpu", "--out", str(tmp_path / "final"), "--quiet"]  # fmt: skip
    first = run_cli(*args)
    assert first.returncode == 0 and "1 epoch," in first.stdout, first.stderr
    weights = (tmp_path / "final" / "seed0.pt").read_bytes()
    second = run_cli(*args)
    assert second.returncode == 2 and "--force" in second.stderr and len(second.stderr.strip().splitlines()) == 1
    assert (tmp_path / "final" / "seed0.pt").read_bytes() == weights
    assert run_cli(*args, "--force").returncode == 0


@pytest.mark.slow
def test_a_comparison_tells_runs_of_the_same_name_apart(tmp_path: Path) -> None:
    for parent in ("a", "b"):
        assert run_cli("evolve", "--out", str(tmp_path / parent / "run"), "--quiet", *set_args(TINY)).returncode == 0
    result = run_cli("report", str(tmp_path / "a" / "run"), str(tmp_path / "b" / "run"), "--out", str(tmp_path / "cmp"))
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "cmp" / "report.md").read_text()
    assert "a/run" in text and "b/run" in text
    twice = run_cli("report", str(tmp_path / "a" / "run"), str(tmp_path / "a" / "run"), "--out", str(tmp_path / "x"))
    assert twice.returncode == 2 and "given twice" in twice.stderr


@pytest.mark.slow
def test_a_log_gets_plain_lines_not_progress_bars(tmp_path: Path) -> None:
    result = run_cli("evolve", "--out", str(tmp_path / "run"), *set_args(TINY))  # not --quiet; stderr is a pipe
    assert result.returncode == 0
    assert "\r" not in result.stderr and "\x1b[" not in result.stderr
    assert len(result.stderr) < 500, result.stderr


@pytest.mark.slow
def test_ctrl_c_says_once_how_to_resume(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    slow = [*TINY, "evolution.generations=30"]
    # A suite started as a background job without job control inherits SIGINT ignored, and so would
    # the run (POSIX); a terminal's Ctrl-C reaches a run whose SIGINT is the default, so restore it.
    process = subprocess.Popen(cli_command("evolve", "--out", str(folder), *set_args(slow)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip().startswith("1 "):  # generation 1 is in the table: the run is under way
            break
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert stderr.count("interrupted") == 1, stderr
    assert f"genetic-cnn resume {folder}" in stderr
    time.sleep(0.1)
    assert run_cli("resume", str(folder), "--quiet").returncode == 0
