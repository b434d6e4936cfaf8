"""Bad input in the user's own data and through the Python API: one line naming cause and fix, nothing lost.

Two tables, one row per bad input: ``CLI_ROWS`` run the command as a user does (exit status 2, one
line, no traceback, nothing written, checked by ``test_bad_input.test_bad_input``), ``API_ROWS``
call the Python API in-process (a ``UserError`` of one line, nothing written). Inputs that are odd
but valid get tests of what they do below the tables.
"""

from __future__ import annotations

import os
import pickle
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import test_bad_input as table
import torch
from conftest import TINY
from own_data import class_colour, class_image, npz_arrays, save_png, write_image_folder, write_npz
from PIL import Image
from test_bad_input import Setup, arrays_with, everything_under, evolve_with, write

from genetic_cnn.config import DataConfig, load_config
from genetic_cnn.data import folders as image_folder
from genetic_cnn.data.arrays import from_memory
from genetic_cnn.data.datasets import load_datasets
from genetic_cnn.errors import UserError
from genetic_cnn.evolution import resume_run, start_run
from genetic_cnn.history.store import load_run
from genetic_cnn.nn.network import build_network
from genetic_cnn.space.genome import Genome

GENOME = "1-01|0-01-100-0111"  # the digits preset's stages, as TINY's


# --- damaged image folders, arrays files and torchvision roots --------------------------------------


def folder_run(root: Path, tmp: Path, *extra: str) -> list[str]:
    return evolve_with("data.dataset=folder", f"data.root={str(root)!r}", "data.validation=0.5", *extra)(tmp)


def damaged_folder(damage: Callable[[Path], object], **layout: Any) -> Setup:
    """A 3-class folder of 12x12 PNGs (4 per class) with ``damage`` done to it."""

    def setup(tmp: Path) -> list[str]:
        root = write_image_folder(tmp / "images", **{"per_class": 4, "classes": ("a", "b", "c"), "size": 12, **layout})
        damage(root)
        return folder_run(root, tmp)

    return setup


def symlink(link: Path, target: str | Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link)


def replace_with_link(path: Path, target: Path) -> None:
    path.unlink()
    symlink(path, target)


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` grayscale pixels: what a decompression bomb declares."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def sixteen_bit_png(path: Path) -> None:
    Image.fromarray(np.full((12, 12), 4000, dtype=np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I")


def npy_named_npz(tmp: Path) -> list[str]:
    path = tmp / "mine.npz"
    with open(path, "wb") as file:
        np.save(file, npz_arrays()["x_train"])
    return evolve_with("data.dataset=arrays", f"data.root={str(path)!r}")(tmp)


def truncated_cifar_batch(tmp: Path) -> Path:
    folder = tmp / "data" / "cifar-10-batches-py"
    batch = {"data": np.zeros((10, 3072), dtype=np.uint8), "labels": list(range(10))}
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        write(folder / name, pickle.dumps(batch))
    write(folder / "batches.meta", pickle.dumps({"label_names": [str(index) for index in range(10)]}))
    data = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").write_bytes(data[: len(data) // 2])
    return tmp / "data"


def mnist_raw_folder(tmp: Path) -> Path:
    table.mnist_root_with_truncated_file(tmp)  # its files, in data/MNIST/raw
    return tmp / "data" / "MNIST" / "raw"


def huge_label() -> dict[str, np.ndarray]:
    labels = npz_arrays()["y_train"].copy()
    labels[0] = 2**32 - 1
    return {"y_train": labels}


CLI_ROWS: list[tuple[str, str, Setup, str]] = [
    # (what, command, its arguments, a part of the one line expected)
    ("image folder with a symlink loop", "evolve", damaged_folder(lambda root: symlink(root / "train" / "a" / "loop", "..")),
     "a folder that holds it: its images would be read again, under class 'a'; remove the link"),
    ("image folder with a dangling symlink", "evolve", damaged_folder(lambda root: symlink(root / "train" / "a" / "x.png", "gone.png")),
     "which does not exist; remove the link or restore the file"),
    ("image folder with a decompression bomb", "evolve",
     damaged_folder(lambda root: write(root / "train" / "b" / "bomb.png", png_header(20_000, 20_000))), "too large to decode safely"),
    ("image in two classes through a symlink", "evolve",
     damaged_folder(lambda root: symlink(root / "train" / "a" / "b0.png", root / "train" / "b" / "0000.png")), "are the same file"),
    ("test image that is a training image", "evolve",
     damaged_folder(lambda root: replace_with_link(root / "test" / "c" / "0000.png", root / "train" / "c" / "0000.png"), test_per_class=1),
     "perhaps under two classes or in both train/ and test/"),
    ("image folder root that is a file", "evolve", lambda tmp: folder_run(write(tmp / "images.zip", "zip"), tmp), "images.zip is a file"),
    (".npy file named .npz", "evolve", npy_named_npz, "is a .npy file (one array of shape (48, 12, 12, 1)), not a .npz archive"),
    ("arrays with a zero-size channel axis", "evolve",
     arrays_with(x_train=np.zeros((48, 0, 12, 12), dtype=np.uint8), x_test=np.zeros((16, 0, 12, 12), dtype=np.uint8)),
     "every image needs at least one channel and one pixel each way"),
    ("arrays with pixels beyond float32's range", "evolve",
     arrays_with(x_train=npz_arrays()["x_train"] * 1e300, x_test=npz_arrays()["x_test"] * 1e300), "beyond float32's range"),
    ("label 2**32-1", "evolve", arrays_with(**huge_label()),
     "labels run 0..4294967295 but only 5 distinct labels occur); labels must be class indices 0..K-1 without gaps, or class names"),
]  # fmt: skip


@pytest.mark.parametrize("how", table.HOW)
@pytest.mark.parametrize(("name", "command", "setup", "expected"), CLI_ROWS, ids=[row[0] for row in CLI_ROWS])
def test_bad_data_on_the_command_line(
    name: str, command: str, setup: Setup, expected: str, how: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    table.test_bad_input(name, command, setup, expected, how, tmp_path, monkeypatch, capsys)


# --- the Python API, in-process ---------------------------------------------------------------------

Call = Callable[[Path], Callable[[], object]]
"""Prepares what a row needs in the test's folder; returns the call that must raise."""


def tiny_config(*overrides: str) -> Any:
    return load_config(None, [*TINY, *overrides])


def run_with(data: Callable[[], Any], *overrides: str) -> Call:
    """``start_run(TINY config, out=tmp/run, data=data())``."""
    return lambda tmp: lambda: start_run(tiny_config(*overrides), out=tmp / "run", progress=False, data=data())


def arrays(**changes: Any) -> tuple[Any, Any, Any, Any]:
    """(x_train, y_train, x_test, y_test) of ``npz_arrays`` with ``changes``."""
    values = {**npz_arrays(), **changes}
    return values["x_train"], values["y_train"], values["x_test"], values["y_test"]


def loading(setup: Callable[[Path], Path], **config: Any) -> Call:
    """``load_datasets`` of what ``setup`` writes (a folder's or an arrays file's root)."""
    return lambda tmp: (lambda root: lambda: load_datasets(DataConfig(root=str(root), **config), seed=0))(setup(tmp))


def npz_file(**arrays_in_it: Any) -> Callable[[Path], Path]:
    def setup(tmp: Path) -> Path:
        path = tmp / "mine.npz"
        np.savez(path, **arrays_in_it)
        return path

    return setup


def folder_with(damage: Callable[[Path], object], **layout: Any) -> Callable[[Path], Path]:
    def setup(tmp: Path) -> Path:
        root = write_image_folder(tmp / "images", **{"per_class": 4, "classes": ("a", "b", "c"), "size": 12, **layout})
        damage(root)
        return root

    return setup


def nhwc_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    values = npz_arrays()
    return torch.from_numpy(values["x_train"]), torch.from_numpy(values["y_train"])  # (48, 12, 12, 1)


def labels_of(values: list[Any], count: int = 48) -> np.ndarray:
    return np.array([values[index % len(values)] for index in range(count)])


class FailingDataset(torch.utils.data.Dataset):
    """A map-style Dataset of 12x12 tensors whose item 5 cannot be read, as a Dataset over missing files."""

    def __init__(self, label: object = None) -> None:
        self.label = label

    def __len__(self) -> int:
        return 12

    def __getitem__(self, index: int) -> tuple[torch.Tensor, object]:
        if index == 5:
            raise FileNotFoundError(f"{index:04d}.png")
        return torch.zeros(1, 12, 12), index % 2 if self.label is None else self.label


def classes_at_the_root(tmp: Path) -> Path:
    root = write_image_folder(tmp / "download", per_class=2, classes=("a", "b"), size=12)
    for name in ("a", "b"):
        os.rename(root / "train" / name, root / name)
    (root / "train").rmdir()
    return root


def ragged_images() -> list[np.ndarray]:
    return [np.zeros((12, 12), dtype=np.uint8)] * 40 + [np.zeros((10, 10), dtype=np.uint8)] * 8


def a_finished_run(tmp: Path) -> Path:
    return start_run(tiny_config(), out=tmp / "done", progress=False, echo=lambda line: None)


FOLDER = {"dataset": "folder", "validation": 0.5}
ARRAYS = {"dataset": "arrays"}

API_ROWS: list[tuple[str, Call, str]] = [
    # (what, the call, a part of the one-line UserError expected)
    # reported: advice that misled
    ("NHWC tensors through start_run(data=...)", run_with(nhwc_tensors), "set data.layout = 'nhwc' in the config, or pass x_train.permute(0, 3, 1, 2)"),
    ("x_test None but y_test given", run_with(lambda: arrays(x_test=None)), "y_test is given but x_test is None; give both, or neither"),
    ("y_test None but x_test given", run_with(lambda: arrays(y_test=None)), "x_test is given but y_test is None"),
    ("label 2**32-1 in memory", run_with(lambda: arrays(**huge_label())), "labels run 0..4294967295"),
    ("sparse labels 0, 5, 9", run_with(lambda: (npz_arrays()["x_train"], labels_of([0, 5, 9]))),
     "class(es) 1, 2, 3, ... have no training image (labels run 0..9 but only 3 distinct labels occur)"),
    # labels
    ("uint64 label 2**64-1", run_with(lambda: arrays(y_train=np.where(np.arange(48) == 0, 2**64 - 1, np.arange(48) % 4).astype(np.uint64))),
     "y_train holds the label 18446744073709551615; labels are class indices 0..K-1"),
    ("NCHW arrays with data.layout = nhwc", run_with(lambda: arrays(x_train=npz_arrays()["x_train"].transpose(0, 3, 1, 2)), "data.layout=nhwc"),
     "data.layout = 'nhwc' reads x_train of shape (48, 1, 12, 12) as 12 channel(s) of 1x12 pixels, but its shape is plainly NCHW"),
    ("True/False labels", run_with(lambda: (npz_arrays()["x_train"], labels_of([True, False]))), "True/False labels"),
    ("negative labels", run_with(lambda: (npz_arrays()["x_train"], labels_of([-1, 0, 1]))), "negative label -1"),
    ("NaN labels", run_with(lambda: (npz_arrays()["x_train"], labels_of([0.0, 1.0, np.nan]))), "float64 labels"),
    ("labels of Python objects", run_with(lambda: (npz_arrays()["x_train"], labels_of([0, "a", None]))), "object labels"),
    ("class names for training, indices for test", run_with(lambda: arrays(y_train=labels_of(["cat", "dog", "eel", "fox"]))),
     "y_train holds class names but y_test class indices"),
    ("a test class no training label names", run_with(lambda: arrays(y_train=labels_of(["cat", "dog"]), y_test=labels_of(["cat", "cow"], 16))),
     "y_test holds the class(es) 'cow' that no training label names"),
    ("fewer labels than images", run_with(lambda: (npz_arrays()["x_train"], np.arange(40) % 4)), "y_train has 40 labels but x_train has 48 images"),
    ("labels as one string", run_with(lambda: (npz_arrays()["x_train"], "labels.csv")), "y_train has shape ()"),
    # images
    ("images of different sizes in a list", run_with(lambda: (ragged_images(), np.arange(48) % 4)), "x_train cannot be made one array"),
    ("images as an array of Python objects", run_with(lambda: (np.array(ragged_images() + [None], dtype=object)[:48], np.arange(48) % 4)),
     "x_train holds Python objects"),
    ("flattened images", run_with(lambda: arrays(x_train=npz_arrays()["x_train"].reshape(48, -1))), "x_train.reshape(-1, 12, 12)"),
    ("NaN pixels", run_with(lambda: arrays(x_train=np.where(np.arange(48)[:, None, None, None] == 3, np.nan, npz_arrays()["x_train"] / 255))),
     "x_train holds NaN or infinite pixel values"),
    ("int64 pixels beyond 255", run_with(lambda: arrays(x_train=npz_arrays()["x_train"].astype(np.int64) * 300)),
     "16-bit images: x_train.astype(np.float32)"),
    ("uint16 images", run_with(lambda: arrays(x_test=npz_arrays()["x_test"].astype(np.uint16) * 257)), "x_test has dtype uint16"),
    ("int32 pixels in 0..255", run_with(lambda: arrays(x_train=npz_arrays()["x_train"].astype(np.int32))), "x_train.astype(np.uint8)"),
    ("boolean masks as images", run_with(lambda: arrays(x_train=npz_arrays()["x_train"] > 100)), "x_train has dtype bool"),
    ("no training images", run_with(lambda: arrays(x_train=np.zeros((0, 12, 12, 1), np.uint8), y_train=np.zeros(0, np.int64))), "holds no images"),
    ("images of one pixel after data.image_size = 1", run_with(lambda: arrays(), "data.image_size=1"), "data.image_size = 1 resizes the images to 1x1, too small for the preset"),
    # the shapes data= takes
    ("a bare image array as data", run_with(lambda: npz_arrays()["x_train"]), "got ndarray"),
    ("a dict of arrays with a misnamed key", run_with(lambda: {"x_train": npz_arrays()["x_train"], "labels": npz_arrays()["y_train"]}),
     "missing: y_train"),
    ("three arrays", run_with(lambda: arrays()[:3]), "got a tuple of 3 (ndarray, ndarray, ndarray)"),
    ("a tensor without values", run_with(lambda: (torch.zeros(48, 1, 12, 12, device="meta"), np.arange(48) % 4)),
     "x_train is a tensor whose values cannot be read"),
    ("images of five axes", run_with(lambda: arrays(x_train=npz_arrays()["x_train"][:, None])), "x_train has shape (48, 1, 12, 12, 1)"),
    ("a Dataset whose items fail to load", run_with(lambda: FailingDataset()),
     "reading item 5 of the training Dataset failed (FileNotFoundError: 0005.png); fix the Dataset or its files"),
    ("a Dataset of float labels", run_with(lambda: FailingDataset(label=0.5)), "item 0 of the training Dataset has the label 0.5"),
    # .npz files
    (".npz holding an object array", loading(npz_file(x_train=np.zeros((4, 8, 8), np.uint8), y_train=np.array([0, 1, "x", None], dtype=object)),
                                             **ARRAYS), "y_train is an array of Python objects (dtype object), which is never unpickled"),
    (".npz that is a text file", loading(lambda tmp: write(tmp / "mine.npz", "x,y\n1,2\n"), **ARRAYS), "is not a readable .npz file"),
    (".npz cut short", loading(lambda tmp: write(tmp / "mine.npz", npz_file(**npz_arrays())(tmp).read_bytes()[:3000]), **ARRAYS),
     "is not a readable .npz file"),
    (".npz with Keras' key names in capitals", loading(npz_file(X_train=npz_arrays()["x_train"], Y_train=npz_arrays()["y_train"]), **ARRAYS),
     "holds no x_train or y_train (it holds X_train, Y_train)"),
    # image folders
    ("a 16-bit PNG", loading(folder_with(lambda root: sixteen_bit_png(root / "train" / "a" / "deep.png")), **FOLDER), "neither 8-bit grayscale nor colour"),
    ("a class folder of macOS ._ files only", loading(folder_with(lambda root: write(root / "train" / "d" / "._0000.png", b"\0\5\26\7"),), **FOLDER),
     "images/train/d holds no images"),
    ("a truncated JPEG", loading(folder_with(lambda root: write(root / "train" / "b" / "cut.jpg", jpeg_bytes()[:200])), **FOLDER), "cannot read the image"),
    ("images of mixed sizes", loading(folder_with(lambda root: save_png(root / "train" / "c" / "big.png", class_image(2, 0, size=16))), **FOLDER),
     "set data.image_size = N"),
    ("a class folder linked to another class", loading(folder_with(lambda root: symlink(root / "train" / "d", root / "train" / "a")), **FOLDER),
     "are the same folder"),
    ("a class folder linked into another class's subfolder", loading(folder_with(lambda root: (
        symlink(root / "train" / "d", root / "train" / "a" / "more"), save_png(root / "train" / "a" / "more" / "x.png", class_image(0, 0, 12)))),
        **FOLDER), "are the same folder"),
    ("a class folder that is a link to nothing", loading(folder_with(lambda root: symlink(root / "train" / "d", root / "moved-away")), **FOLDER),
     "train/d is a link to"),
    ("a link to the data root", loading(folder_with(lambda root: symlink(root / "train" / "b" / "all", root)), **FOLDER), "a folder that holds it"),
    ("a class folder named in no UTF-8", loading(folder_with(lambda root: os.rename(root / "train" / "b", os.fsdecode(os.fsencode(root / "train") + b"/\xe9t\xe9"))),
                                                 **FOLDER), "is a class folder whose name is not printable UTF-8 text; a class's name is shown and stored, so rename"),
    ("data.root pointing at train/", loading(lambda tmp: folder_with(lambda root: None)(tmp) / "train", **FOLDER),
     "is the train/ folder itself; set data.root to"),
    ("class folders without train/", loading(classes_at_the_root, **FOLDER), "are the classes, move them into"),
    ("test/ with a class train/ lacks", loading(folder_with(lambda root: write_image_folder(root, 0, 1, classes=("a", "b", "z"), size=12)), **FOLDER),
     "only in test/: z"),
    # torchvision roots
    ("MNIST root that is a file", loading(lambda tmp: write(tmp / "mnist.gz", "x"), dataset="mnist"),
     "is a file; mnist is read from a folder: set data.root to the folder that holds MNIST/raw"),
    ("MNIST root pointing at the raw files", loading(mnist_raw_folder, dataset="mnist"),
     "holds mnist's files themselves, which torchvision reads from data.root/MNIST/raw; set data.root to"),
    ("CIFAR-10 folder with a truncated batch", loading(truncated_cifar_batch, dataset="cifar10"), "cifar10 files in"),
    # genomes, networks and runs
    ("genome as bytes", lambda tmp: lambda: Genome.from_string(b"1-01|0-01-100-0111"), "a genome string is expected"),  # type: ignore[arg-type]
    ("genome with a letter O for a zero", lambda tmp: lambda: Genome.from_string("1-O1|0-01-100-0111"), "'O' at position 3"),
    ("network of a number", lambda tmp: lambda: build_network(101, "digits"), "takes a Genome or a genome string"),  # type: ignore[arg-type]
    ("network of an unknown preset", lambda tmp: lambda: build_network(GENOME, "imagenet"), "unknown preset 'imagenet'"),
    ("network of a genome for another preset", lambda tmp: lambda: build_network(Genome.from_string("1-01"), "mnist"), "preset 'mnist' expects"),
    ("start_run of a config file's name", lambda tmp: lambda: start_run("demo.toml", out=tmp / "run"), "start_run takes a Config"),  # type: ignore[arg-type]
    ("start_run of a dict of wrong types", lambda tmp: lambda: start_run({"evolution": {"population": "ten"}}, out=tmp / "run"),  # type: ignore[arg-type]
     "evolution.population must be an integer"),
    ("start_run with out a number", lambda tmp: lambda: start_run(tiny_config(), out=7, progress=False), "a str or pathlib.Path; got int"),  # type: ignore[arg-type]
    ("resume_run(None)", lambda tmp: lambda: resume_run(None), "a run folder is a path"),  # type: ignore[arg-type]
    ("load_run of a number", lambda tmp: lambda: load_run(3), "a run folder is a path"),  # type: ignore[arg-type]
    ("load_run of a data file", lambda tmp: (lambda path: lambda: load_run(path))(write(tmp / "mine.npz", "x")), "is not a folder; give the folder of a run"),
]  # fmt: skip


def jpeg_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.fromarray(class_image(1, 0, size=64)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize(("name", "call", "expected"), API_ROWS, ids=[row[0] for row in API_ROWS])
def test_bad_data_through_the_python_api(name: str, call: Call, expected: str, tmp_path: Path) -> None:
    attempt = call(tmp_path)
    before = everything_under(tmp_path)
    with pytest.raises(UserError) as error:
        attempt()
    assert "\n" not in str(error.value)
    assert expected in str(error.value), str(error.value)
    assert everything_under(tmp_path) == before  # nothing written, nothing lost (no cache, no run folder)


# --- odd but valid: what it does ----------------------------------------------------------------------


def bottom_right_colours(images: torch.Tensor) -> list[int]:
    """Channel 0 of every image's bottom-right pixel: its class's colour (``class_image``'s square never reaches it)."""
    return [int(value) for value in images[:, 0, -1, -1]]


def test_linked_images_count_once_under_the_class_they_lie_in(tmp_path: Path) -> None:
    """A class folder that is a link to a folder elsewhere, and an image that is a link to a file
    elsewhere, are read as that class; every label read is the image's true class."""
    classes = ("a", "b", "c")
    root = write_image_folder(tmp_path / "images", per_class=3, classes=classes, size=12)
    elsewhere = write_image_folder(tmp_path / "elsewhere", per_class=2, classes=classes, size=12)
    os.rename(root / "train" / "c", tmp_path / "c-moved")
    symlink(root / "train" / "c", tmp_path / "c-moved")  # the whole class lives elsewhere
    symlink(root / "train" / "a" / "linked.png", elsewhere / "train" / "a" / "0001.png")
    symlink(root / "train" / "b" / "more", elsewhere / "train" / "b")  # a linked subfolder: its images are b's
    images, store_cache = image_folder.load_folder(root, 0)
    assert images.classes == classes
    assert torch.bincount(images.train_labels).tolist() == [4, 5, 3]
    assert bottom_right_colours(images.train_images) == [class_colour(int(label)) for label in images.train_labels]
    # The same through the whole pipeline: normalized, split, each label still its image's class.
    data = load_datasets(DataConfig(dataset="folder", root=str(root), validation=0.25), seed=0)
    for split in (data.train, data.validation, data.test):
        pixels = split.images[:, 0, -1, -1] * data.std[0] + data.mean[0]
        assert torch.allclose(pixels * 255, torch.tensor([float(class_colour(int(label))) for label in split.labels]), atol=1e-3)


def test_a_symlink_loop_is_refused_rather_than_relabelling(tmp_path: Path) -> None:
    """ImageFolder itself follows the loop and lists the other classes' images again as class a."""
    from torchvision.datasets import ImageFolder

    root = write_image_folder(tmp_path, per_class=4, classes=("a", "b", "c"), size=12)
    symlink(root / "train" / "a" / "loop", "..")
    relabelled = ImageFolder(str(root / "train"))
    assert any(label == 0 and "/loop/b/" in path for path, label in relabelled.samples)  # what is refused here
    with pytest.raises(UserError, match="a folder that holds it"):
        image_folder.load_folder(root, 0)


def test_hidden_files_and_folders_are_skipped(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path, per_class=3, classes=("a", "b"), size=12)
    write(root / "train" / "a" / "._0000.png", b"\0\5\26\7 AppleDouble")  # what macOS archives add
    write(root / "train" / ".DS_Store", b"\0")
    write(root / "train" / "b" / "Thumbs.db", b"\0")
    save_png(root / "train" / ".ipynb_checkpoints" / "0000-checkpoint.png", class_image(0, 0, 12))
    save_png(root / "train" / "b" / ".hidden" / "x.png", class_image(0, 0, 12))
    images, _ = image_folder.load_folder(root, 0)
    assert images.classes == ("a", "b") and len(images.train_labels) == 6


def test_images_outside_the_class_folders_are_named_in_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_image_folder(tmp_path, per_class=3, classes=("a", "b"), size=12)
    save_png(root / "train" / "stray.png", class_image(0, 0, 12))
    images, _ = image_folder.load_folder(root, 0)
    assert len(images.train_labels) == 6
    assert "holds 1 image(s) outside any class folder (e.g. stray.png)" in capsys.readouterr().err


def test_palette_and_alpha_images_are_read_as_colour(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path, per_class=3, classes=("a", "b"), size=12)
    rgb = class_image(1, 0, 12)
    Image.fromarray(rgb).convert("RGBA").save(root / "train" / "b" / "alpha.png")
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(root / "train" / "b" / "palette.png")
    images, _ = image_folder.load_folder(root, 0)
    assert images.train_images.shape == (8, 3, 12, 12)
    assert bottom_right_colours(images.train_images) == [class_colour(int(label)) for label in images.train_labels]


@pytest.mark.parametrize("scale", [1e36, 3e-31, 1e-6])
def test_float_pixels_of_any_scale_give_the_same_normalized_images(tmp_path: Path, scale: float) -> None:
    values = npz_arrays()
    unit = {key: value / 255.0 if key.startswith("x") else value for key, value in values.items()}
    scaled = {key: (value * scale).astype(np.float32) if key.startswith("x") else value for key, value in unit.items()}
    reference = load_datasets(DataConfig(dataset="arrays", root=str(write_npz(tmp_path / "unit.npz", **unit))), seed=0)
    data = load_datasets(DataConfig(dataset="arrays", root=str(write_npz(tmp_path / "scaled.npz", **scaled))), seed=0)
    for split in ("train", "validation", "test"):
        assert torch.isfinite(getattr(data, split).images).all()
        assert torch.allclose(getattr(data, split).images, getattr(reference, split).images, atol=1e-4)
    # Mean and std are in the pixels' own units, as a user applies them to new images.
    assert data.mean[0] == pytest.approx(reference.mean[0] * scale, rel=1e-5)
    assert data.std[0] == pytest.approx(reference.std[0] * scale, rel=1e-5)


def test_class_names_as_labels(tmp_path: Path) -> None:
    values = npz_arrays()
    names = np.array(["owl", "cat", "eel", "dog"])  # sorted: cat, dog, eel, owl
    path = write_npz(tmp_path / "named.npz", x_train=values["x_train"], y_train=names[values["y_train"]],
                     x_test=values["x_test"], y_test=names[values["y_test"]])  # fmt: skip
    data = load_datasets(DataConfig(dataset="arrays", root=str(path)), seed=0)
    assert data.classes == ("cat", "dog", "eel", "owl")
    assert [data.classes[int(label)] for label in data.test.labels] == list(names[values["y_test"]])


def test_no_test_set_can_be_said_with_none(tmp_path: Path) -> None:
    x, y = npz_arrays()["x_train"], npz_arrays()["y_train"]
    for data in ((x, y, None, None), ((x, y), None), {"x_train": x, "y_train": y}, {"x_train": x, "y_train": y, "x_test": None}):
        images = from_memory(data, "auto")
        assert images.test_images is None and len(images.train_labels) == 48 and images.classes == ("0", "1", "2", "3")


def test_nhwc_tensors_load_with_data_layout_nhwc() -> None:
    x, y = nhwc_tensors()
    images = from_memory((x, y), "nhwc")
    assert images.train_images.shape == (48, 1, 12, 12)
    assert torch.equal(images.train_images[:, 0], x[..., 0])


def test_extra_npz_arrays_are_named_in_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = npz_arrays()
    path = write_npz(tmp_path / "extra.npz", **values, x_val=values["x_test"], y_val=values["y_test"])
    assert load_datasets(DataConfig(dataset="arrays", root=str(path)), seed=0).num_classes == 4
    assert "ignoring x_val, y_val" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["1\u201301|0\u201301\u2013100\u20130111", " 1-01 | 0-01-100-0111\n", "1-01\uff5c0-01-100-0111", "1‐01|0‐01‐100‐0111"])
def test_genomes_copied_with_lookalike_dashes_or_spaces_parse(text: str) -> None:
    assert Genome.from_string(text) == Genome.from_string(GENOME)


def test_an_upscaled_image_size_is_kept(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path, per_class=4, classes=("a", "b"), size=8)
    data = load_datasets(DataConfig(dataset="folder", root=str(root), validation=0.5, image_size=16), seed=0)
    assert data.input_shape == (3, 16, 16)


@pytest.mark.slow
def test_start_run_takes_a_dict_config_and_resume_run_one_override(tmp_path: Path) -> None:
    raw = tiny_config().to_dict()
    folder = start_run(raw, out=tmp_path / "run", progress=False, echo=lambda line: None)
    with load_run(folder) as run:
        assert {key: run.config.to_dict()[key] for key in ("evolution", "space", "train")} == {
            key: tiny_config().to_dict()[key] for key in ("evolution", "space", "train")
        }
    with pytest.raises(UserError, match="cannot change half-way"):  # one string is one override, not its letters
        resume_run(folder, progress=False, overrides="evolution.population=6")
    assert resume_run(folder, progress=False, echo=lambda line: None, overrides="run.threads=1") == folder


def test_file_names_in_no_utf8_are_read(tmp_path: Path) -> None:
    """Names from a Windows zip may be Latin-1 bytes; the image is read, and cached, like any other."""
    root = write_image_folder(tmp_path, per_class=3, classes=("a", "b"), size=12)
    os.rename(root / "train" / "a" / "0000.png", os.fsdecode(os.fsencode(root / "train" / "a") + b"/caf\xe9.png"))
    images, store_cache = image_folder.load_folder(root, 0)
    store_cache()
    assert len(images.train_labels) == 6 and (root / image_folder.CACHE_FOLDER).is_dir()


def test_a_dataset_of_class_names(tmp_path: Path) -> None:
    class Named(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 10

        def __getitem__(self, index: int) -> tuple[torch.Tensor, str]:
            return torch.full((1, 8, 8), float(index % 2)), ("dog", "cat")[index % 2]

    images = from_memory(Named(), "auto")
    assert images.classes == ("cat", "dog")
    assert [images.classes[int(label)] for label in images.train_labels] == ["dog", "cat"] * 5
    assert torch.equal(images.train_images[:, 0, 0, 0], (images.train_labels == 0).float())


@pytest.mark.parametrize("exponent", [120, -120])
def test_float_pixels_scaled_by_a_power_of_two_give_identical_tensors(tmp_path: Path, exponent: int) -> None:
    """Scaling by a power of two is exact, so data at 2**120 (1.3e36) or 2**-120 is the very same training
    data as at 1: the same tensors, bit for bit, hence the same training."""
    values = {key: value / np.float32(255) if key.startswith("x") else value for key, value in npz_arrays().items()}
    scaled = {key: value * np.float32(2.0**exponent) if key.startswith("x") else value for key, value in values.items()}
    reference = load_datasets(DataConfig(dataset="arrays", root=str(write_npz(tmp_path / "unit.npz", **values))), seed=0)
    data = load_datasets(DataConfig(dataset="arrays", root=str(write_npz(tmp_path / "scaled.npz", **scaled))), seed=0)
    for split in ("train", "validation", "test"):
        assert torch.equal(getattr(data, split).images, getattr(reference, split).images)


@pytest.mark.slow
def test_a_run_on_pixels_near_float32s_limit_is_the_run_at_scale_one(tmp_path: Path) -> None:
    values = {key: value / np.float32(255) if key.startswith("x") else value for key, value in npz_arrays(train=160).items()}
    huge = {key: value * np.float32(2.0**126) if key.startswith("x") else value for key, value in values.items()}  # up to 8.5e37
    folders = [start_run(tiny_config("train.schedule=[[4, 0.01]]"), out=tmp_path / name, progress=False, echo=lambda line: None,
                         data=tuple(data[key] for key in ("x_train", "y_train", "x_test", "y_test")))
               for name, data in (("unit", values), ("huge", huge))]  # fmt: skip
    with load_run(folders[0]) as unit, load_run(folders[1]) as scaled:
        fitness = [g.fitness for g in unit.generations()]
        assert fitness == [g.fitness for g in scaled.generations()]
        assert max(max(row) for row in fitness) > 0.25  # learnt something: 4 classes
