"""A user's own data through every command: evolve, report, train and lr-find on a PNG image folder
(3 channels, 7 classes, 20x20) and on a .npz of 4 classes; the Python API with data in memory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, run_cli, set_args
from own_data import FOLDER_CLASSES, npz_arrays, write_image_folder, write_npz

from genetic_cnn.config import load_config
from genetic_cnn.data.datasets import load_datasets
from genetic_cnn.data.folders import CACHE_FOLDER
from genetic_cnn.errors import DatasetError
from genetic_cnn.evolution import OWN_DATA_FILE, resume_run, start_run
from genetic_cnn.history.store import load_run
from genetic_cnn.nn.saved import load_trained

GENOME = "1-01|0-01-100-0111"  # the digits preset's stages


def own_data(kind: str, tmp: Path) -> tuple[list[str], int, tuple[int, int, int]]:
    """Overrides that point at freshly written data of ``kind``, its classes and image shape."""
    if kind == "folder":
        root = write_image_folder(tmp / "images", per_class=10)
        return ["data.dataset=folder", f"data.root={str(root)!r}", "data.validation=0.25"], 7, (3, 20, 20)
    path = write_npz(tmp / "arrays.npz", **npz_arrays())
    return ["data.dataset=arrays", f"data.root={str(path)!r}"], 4, (1, 12, 12)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["folder", "arrays"])
def test_evolve_report_train_and_lr_find_on_own_data(tmp_path: Path, kind: str) -> None:
    data, classes, shape = own_data(kind, tmp_path)
    settings = TINY + ["evolution.generations=1"] + data
    run = tmp_path / "run"
    evolved = run_cli("evolve", "--out", str(run), "--quiet", *set_args(settings), cwd=tmp_path)
    assert evolved.returncode == 0, evolved.stderr
    with load_run(run) as stored:
        evaluations = stored.evaluations()
        assert stored.status == "finished" and stored.config.data.dataset == kind
    assert len(evaluations) == 8 and all(e.status in ("ok", "reused") for e in evaluations)
    # Accuracies are of a 7- or 4-way classifier: multiples of 1/len(validation), some of them nonzero.
    assert all(0.0 <= e.accuracy <= 1.0 for e in evaluations) and max(e.accuracy for e in evaluations) > 0

    reported = run_cli("report", str(run), cwd=tmp_path)
    assert reported.returncode == 0, reported.stderr
    report = (run / "report" / "report.md").read_text(encoding="utf-8")
    assert f"data: {kind}" in report

    trained = run_cli("train", GENOME, "--epochs", "1", "--out", str(tmp_path / "final"), "--quiet",
                      *set_args(TINY + data), cwd=tmp_path)  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    results = json.loads((tmp_path / "final" / "results.json").read_text(encoding="utf-8"))
    assert results["dataset"] == kind and results["network"]["num_classes"] == classes
    assert tuple(results["network"]["input_shape"]) == shape
    model = load_trained(tmp_path / "final" / "seed0.torchscript.pt")
    assert model(torch.zeros(2, *shape)).shape == (2, classes)

    found = run_cli("lr-find", GENOME, "--steps", "20", "--out", str(tmp_path / "lr.png"), "--quiet",
                    *set_args(TINY + data), cwd=tmp_path)  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if kind == "folder":  # evolve decoded the folder once; train and lr-find read the same cache
        assert len(list((tmp_path / "images" / CACHE_FOLDER).iterdir())) == 1


def tiny_config(tmp: Path, *extra: str):  # noqa: ANN201 - a Config
    return load_config(None, TINY + ["evolution.generations=1", f"run.out={str(tmp)!r}", *extra])


@pytest.mark.slow
def test_start_run_with_data_in_memory_is_the_run_of_the_same_npz(tmp_path: Path) -> None:
    arrays = npz_arrays()
    from_file = start_run(tiny_config(tmp_path / "file", "data.dataset=arrays",
                                      f"data.root={str(write_npz(tmp_path / 'a.npz', **arrays))!r}"), progress=False)  # fmt: skip
    # Torch tensors are NCHW; the same pixels as the file's NHWC arrays.
    tensors = tuple(torch.from_numpy(arrays[key].transpose(0, 3, 1, 2).copy()) if key.startswith("x")
                    else torch.from_numpy(arrays[key]) for key in ("x_train", "y_train", "x_test", "y_test"))  # fmt: skip
    in_memory = start_run(tiny_config(tmp_path / "memory"), data=tensors, progress=False)
    with load_run(from_file) as a, load_run(in_memory) as b:
        assert [g.genomes for g in a.generations()] == [g.genomes for g in b.generations()]
        assert [g.fitness for g in a.generations()] == [g.fitness for g in b.generations()]  # CPU: the same fitness
        recorded = b.config
    # The run keeps its copy of the data, so that workers and resume read the same images.
    assert recorded.data.dataset == "arrays" and Path(recorded.data.root) == (in_memory / OWN_DATA_FILE).resolve()
    again = load_datasets(recorded.data, seed=recorded.run.seed)
    assert again.num_classes == 4 and torch.equal(again.test.labels, torch.from_numpy(arrays["y_test"]))
    assert resume_run(in_memory, progress=False, echo=lambda line: None) == in_memory  # finished: nothing to do


@pytest.mark.slow
def test_start_run_takes_a_dataset_of_pil_images_and_holds_out_a_test_split(tmp_path: Path) -> None:
    from PIL import Image
    from torch.utils.data import Dataset

    arrays = npz_arrays(train=60)

    class Pictures(Dataset):
        classes = ["north", "east", "south", "west"]

        def __len__(self) -> int:
            return len(arrays["y_train"])

        def __getitem__(self, index: int):  # noqa: ANN204 - (PIL image, int)
            return Image.fromarray(arrays["x_train"][index, :, :, 0]), int(arrays["y_train"][index])

    folder = start_run(tiny_config(tmp_path / "run", "evaluation.method=one-shot",
                                   "evaluation.supernet_schedule=[[1, 0.003]]"), data=Pictures(), progress=False)  # fmt: skip
    with load_run(folder) as run:
        assert run.status == "finished" and len(run.evaluations()) == 8
        config = run.config
    data = load_datasets(config.data, seed=config.run.seed)
    assert data.classes == ("north", "east", "south", "west") and data.input_shape == (1, 12, 12)
    assert torch.bincount(data.test.labels).tolist() == [3, 3, 3, 3]  # 20% of each class's 15


def test_bad_data_in_memory_writes_nothing(tmp_path: Path) -> None:
    arrays = npz_arrays()
    with pytest.raises(DatasetError, match="y_train has 47 labels"):
        start_run(tiny_config(tmp_path / "run"), data=(arrays["x_train"], arrays["y_train"][:47]), progress=False)
    with pytest.raises(DatasetError, match="start_run\\(data=...\\) takes"):
        start_run(tiny_config(tmp_path / "run"), data="images/", progress=False)
    assert not (tmp_path / "run").exists()


def test_folder_classes_reach_the_network_head(tmp_path: Path) -> None:
    """The preset is fitted to the data: 7 outputs for 7 class folders."""
    from genetic_cnn.fitness.standalone import Evaluator

    root = write_image_folder(tmp_path, per_class=5)
    config = load_config(None, TINY + ["data.dataset=folder", f"data.root={str(root)!r}", "data.validation=7"])
    evaluator = Evaluator.from_config(config)
    assert evaluator.preset.num_classes == len(FOLDER_CLASSES) and evaluator.preset.input_shape == (3, 20, 20)
    assert np.array_equal(np.unique(evaluator.datasets.validation.labels.numpy()), np.arange(7))


@pytest.mark.slow
def test_the_own_data_example_runs(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "experiments" / "own_data.py"
    tiny = ["space.channels=[4, 8]", "evolution.population=4", "train.schedule=[[1, 0.003]]"]
    result = subprocess.run([sys.executable, str(script), "--generations", "1", "--out", str(tmp_path / "run"),
                             *set_args(tiny)], capture_output=True, text=True, timeout=300, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    with load_run(tmp_path / "run") as run:
        config, last = run.config, run.generations()[-1]
    data = load_datasets(config.data, seed=config.run.seed)
    assert data.num_classes == 4 and data.input_shape == (1, 8, 8)
    lines = result.stdout.strip().splitlines()[-3:]
    assert lines[0].startswith(f"{len(data.train) + len(data.validation) + len(data.test)} images of 4 classes")
    assert lines[1].endswith(f"fitness {100 * max(last.fitness):.2f}%")
