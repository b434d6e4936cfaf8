"""``run.tensorboard = true``: event files under RUN/tensorboard, read back with TensorBoard's own reader,
hold the run database's numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TINY, count_trainings
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from genetic_cnn.config import load_config
from genetic_cnn.evolution import resume_run, start_run
from genetic_cnn.history.rundata import RunData
from genetic_cnn.report.tensorboard import FOLDER, HPARAMS_RUN


def silent(line: str) -> None:
    pass


def read(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = load_config(None, TINY + ["run.tensorboard=true"])
    return start_run(config, out=tmp_path_factory.mktemp("tb") / "run", progress=False, echo=silent)


def values(events: EventAccumulator, tag: str) -> tuple[list[int], list[float]]:
    scalars = events.Scalars(tag)
    return [s.step for s in scalars], [s.value for s in scalars]


@pytest.mark.slow  # the run of the module's fixture: about 10 s
def test_scalars_per_evaluation_and_generation_agree_with_the_database(run: Path) -> None:
    data = RunData.load(run)
    events = read(run / FOLDER)
    committed = [e for e, _ in sorted(zip(data.evaluations, data.finished_at), key=lambda pair: pair[1])]
    steps, accuracy = values(events, "evaluation/validation_accuracy")
    assert steps == list(range(1, len(committed) + 1))
    assert accuracy == pytest.approx([e.fitness_input for e in committed], abs=1e-7)  # stored as float32
    assert values(events, "evaluation/best_so_far")[1] == pytest.approx(data.best_so_far()[2], abs=1e-7)
    assert values(events, "evaluation/test_accuracy")[1] == pytest.approx([e.test_accuracy for e in committed], abs=1e-7)
    rows = [row.summary for row in data.generation_rows()]
    for tag, field in (("max", "maximum"), ("min", "minimum"), ("mean", "mean"), ("median", "median"), ("std", "std")):
        steps, got = values(events, f"generation/{tag}")
        assert steps == [s.generation for s in rows]
        assert got == pytest.approx([getattr(s, field) for s in rows], abs=1e-7)
    images = events.Images("best_genome")
    assert [image.step for image in images] == [s.generation for s in rows]
    assert all(image.encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n" and image.width > 200 for image in images)


@pytest.mark.slow
def test_hyperparameters_and_best_as_metrics(run: Path) -> None:
    data = RunData.load(run)
    events = read(run / FOLDER / HPARAMS_RUN)
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["evolution.population"].number_value == 4
    assert start.hparams["evolution.strategy"].string_value == "genetic"
    assert start.hparams["train.batch_size"].number_value == 64
    best = data.ranking()[0]
    assert values(events, "hparam/best_fitness")[1] == pytest.approx([best.fitness], abs=1e-7)
    assert values(events, "hparam/best_test_accuracy")[1] == pytest.approx([best.test_accuracy], abs=1e-7)


def test_off_by_default(tmp_path: Path) -> None:
    folder = start_run(load_config(None, TINY + ["evolution.generations=0"]), out=tmp_path / "run", progress=False,
                       echo=silent)  # fmt: skip
    assert not (folder / FOLDER).exists()


@pytest.mark.slow
def test_a_resumed_run_appends_without_writing_anything_twice(
    run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "run"
    stopper = count_trainings(monkeypatch, stop_at=6)  # in generation 1, slot 2
    with pytest.raises(KeyboardInterrupt):
        start_run(load_config(None, TINY + ["run.tensorboard=true"]), out=folder, progress=False, echo=silent)
    assert stopper.count == 6
    monkeypatch.undo()
    resume_run(folder, progress=False, echo=silent)
    resumed, uninterrupted = read(folder / FOLDER), read(run / FOLDER)
    for tag in ("evaluation/validation_accuracy", "evaluation/best_so_far", "generation/max", "generation/mean"):
        assert values(resumed, tag) == values(uninterrupted, tag), tag  # each step once, the same values
    assert [image.step for image in resumed.Images("best_genome")] == [0, 1, 2]
    resume_run(folder, progress=False, echo=silent)  # finished: replays only, and writes nothing again
    again = read(folder / FOLDER)
    assert values(again, "evaluation/validation_accuracy") == values(uninterrupted, "evaluation/validation_accuracy")
    assert len(read(folder / FOLDER / HPARAMS_RUN).Scalars("hparam/best_fitness")) == 1
