"""The config.toml a run writes into its folder loads back as the very config that made the run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import TINY

from genetic_cnn.config import Config, load_config, training_devices
from genetic_cnn.evolution import start_run
from genetic_cnn.history.store import load_run
from genetic_cnn.space.presets import PRESETS

ODD_ROOT = 'datasets/with space/\u00fc, "quotes", a \\ backslash and a # hash'
# A value other than the default for every key that a run on synthetic data can use.
MANY = [
    "data.dataset=synthetic",
    "data.root=" + json.dumps(ODD_ROOT),
    "data.download=true",
    "data.subset=400",
    "data.test_subset=150",
    "data.validation=0.25",
    "data.image_size=8",  # synthetic images are 8x8 already: a key set, nothing resized
    "data.layout=nhwc",  # read only for numpy arrays
    "data.split_seed=3",
    "space.preset=digits",
    "space.nodes=[3, 4]",
    "space.channels=[4, 6]",
    "evolution.strategy=random",
    "evolution.selection=tournament",  # read only by the genetic strategy
    "evolution.sample_size=3",
    "evolution.population=3",
    "evolution.generations=7",
    "evolution.p_crossover=0.55",
    "evolution.q_crossover=0.45",
    "evolution.p_mutation=0.65",
    "evolution.q_mutation=0.05",
    "evolution.init=zeros",
    "evolution.identity=architecture",
    "evolution.reevaluate=reuse",
    'evolution.objectives=["accuracy", "params", "flops", "latency"]',  # random search: a multi-objective baseline
    "evolution.max_flops=9000000",
    "evolution.max_params=9000000",
    "evolution.max_latency_ms=12.5",
    "evolution.latency_batch=8",
    "train.schedule=[[2, 0.003], [1, 3e-4], [1, 1e-7]]",
    "train.scheduler=cosine",
    "train.optimizer=sgd",
    "train.momentum=0.85",
    "train.weight_decay=5e-4",
    "train.batch_size=48",
    "train.eval_batch_size=333",
    "train.gamma=0.3",
    "train.step_epochs=3",
    "train.plateau_patience=4",
    "train.early_stopping=2",
    "evaluation.method=one-shot",
    "evaluation.supernet_schedule=[[3, 0.002], [1, 2e-5]]",
    "evaluation.calibration_images=77",
    "evaluation.supernet_sampling=balanced",
    "evaluation.table='a table.json.gz'",  # read only by evaluation.method = "table"
    "run.seed=12345",
    "run.device=cpu",
    "run.executor=processes",
    "run.workers=3",
    "run.threads=1",
    "run.ray_address=auto",
    "run.channels_last=false",
    "run.reuse_memory=true",
    "run.gpus_per_evaluation=0.25",
    "run.tensorboard=true",
    "train.learning_curves=false",
]


def written_by_start_run(config: Config, folder: Path | None) -> Path:
    """Start a run and stop it (Ctrl-C) at the table's header, before any training; its config.toml."""

    def stop(line: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        start_run(config, out=folder, progress=False, echo=stop)
    folder = folder or Path(config.run.out)
    with load_run(folder) as run:
        assert run.evaluations() == []  # stopped before training anything
        recorded = run.config
    path = folder / "config.toml"
    assert load_config(path) == recorded  # the file and the database hold the same config
    return path


def check_same_run(loaded: Config, config: Config, folder: Path) -> None:
    """``loaded`` is ``config``, key for key. The run may record its paths settled, so that it can be
    resumed from anywhere: ``data.root`` resolved (the same folder) and ``run.out`` naming the run's folder."""
    assert Path(loaded.data.root).expanduser().resolve() == Path(config.data.root).expanduser().resolve()
    assert loaded.run.out in (config.run.out, str(folder))
    assert (
        replace(loaded, data=replace(loaded.data, root=config.data.root), run=replace(loaded.run, out=config.run.out))
        == config
    )


@pytest.mark.parametrize(
    "overrides",
    [pytest.param([], id="defaults"), pytest.param(TINY, id="tiny"), pytest.param(MANY, id="many-overrides")],
)
def test_config_toml_loads_back_equal(tmp_path: Path, overrides: list[str]) -> None:
    config = load_config(None, overrides)
    path = written_by_start_run(config, tmp_path / "run")
    check_same_run(load_config(path), config, tmp_path / "run")


def test_every_key_of_the_many_overrides_differs_from_the_default() -> None:
    """So that the round trip above checks every key: none of them may be left at its default."""
    config, default = load_config(None, MANY).to_dict(), Config().to_dict()
    same = [
        f"{section}.{key}"
        for section in default
        for key in default[section]
        if config[section][key] == default[section][key]
    ]
    # The 8x8 data needs the digits preset (the default; the others are checked below); run.out is checked next.
    assert same == ["space.preset", "run.out"]


def test_run_out_round_trips_when_it_names_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "a run folder"
    config = load_config(None, MANY + [f"run.out={json.dumps(str(folder))}"])
    path = written_by_start_run(config, None)
    assert path.parent == folder
    check_same_run(load_config(path), config, folder)
    assert load_config(path).run.out == str(folder)


def test_the_demo_config_round_trips(tmp_path: Path) -> None:
    """`make demo` runs experiments/configs/demo.toml; its run's config.toml must give it back."""
    config = load_config(Path(__file__).parent.parent / "experiments" / "configs" / "demo.toml")
    check_same_run(load_config(written_by_start_run(config, tmp_path / "run")), config, tmp_path / "run")


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_training_defaults_survive_the_round_trip(tmp_path: Path, preset: str) -> None:
    """The TOML holds the preset's schedule and optimizer explicitly, so reading it gives the same training."""
    config = load_config(None, [f"space.preset={preset}"])
    path = tmp_path / "config.toml"
    path.write_text(config.to_toml(), encoding="utf-8")
    assert load_config(path) == config


def test_run_device_is_read_one_way_everywhere() -> None:
    """``training_devices``: auto follows the GPUs seen, cuda takes them all, cuda:N the one; cpu asks for no count."""
    def no_count() -> int:
        raise AssertionError("cpu and cuda:N must not look for GPUs")

    assert training_devices("cpu", no_count) == ("cpu",)
    assert training_devices("cuda:1", no_count) == ("cuda:1",)
    assert training_devices("auto", lambda: 0) == ("cpu",)
    assert training_devices("auto", lambda: 2) == ("cuda:0", "cuda:1")
    assert training_devices("cuda", lambda: 2) == ("cuda:0", "cuda:1")
    assert training_devices("cuda", lambda: 0) == ()  # asked for, none there: each caller refuses in its words
    with pytest.raises(ValueError, match="not one of auto, cpu, cuda, cuda:N"):
        training_devices("tpu", no_count)
