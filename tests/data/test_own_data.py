"""A user's own data: PNG image folders, ``.npz`` arrays, data in memory, SVHN's .mat and CIFAR-100's
pickles, each written by the test in its real format and read by the real readers."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from own_data import FOLDER_CLASSES, class_colour, class_image, npz_arrays, save_png, write_image_folder, write_npz

from genetic_cnn.config import DataConfig
from genetic_cnn.data import folders as image_folder
from genetic_cnn.data.datasets import Datasets, load_datasets
from genetic_cnn.data.folders import CACHE_FOLDER
from genetic_cnn.errors import DatasetError


def unnormalized(data: Datasets, split: str) -> torch.Tensor:
    images = getattr(data, split).images
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    return torch.round((images * std + mean) * 255)


def check_folder_pixels_follow_labels(data: Datasets) -> None:
    """Each image's darkest value per channel is its class's colour: labels and pixels stayed together."""
    for split in ("train", "validation", "test"):
        darkest = unnormalized(data, split).amin(dim=(2, 3))
        labels = getattr(data, split).labels
        expected = torch.tensor([[class_colour(int(label), channel) for channel in range(3)] for label in labels])
        assert torch.equal(darkest, expected.float())


def class_counts(labels: torch.Tensor, classes: int) -> list[int]:
    return torch.bincount(labels, minlength=classes).tolist()


# --- image folders ------------------------------------------------------------------------------


def test_an_image_folder_loads_with_its_classes_and_stratified_splits(tmp_path: Path) -> None:
    write_image_folder(tmp_path, per_class=12)
    data = load_datasets(DataConfig(dataset="folder", root=str(tmp_path), validation=0.25), seed=0)
    assert data.classes == FOLDER_CLASSES and data.num_classes == 7 and data.input_shape == (3, 20, 20)
    # No test/ folder: 20% of every class (12 -> 2) is the test set, then 25% of the rest (10 -> 2 or 3) validates.
    assert class_counts(data.test.labels, 7) == [2] * 7
    assert all(count in (2, 3) for count in class_counts(data.validation.labels, 7))
    assert len(data.train) + len(data.validation) + len(data.test) == 7 * 12
    check_folder_pixels_follow_labels(data)
    again, other = (load_datasets(DataConfig(dataset="folder", root=str(tmp_path), validation=0.25), seed=s) for s in (0, 1))
    assert torch.equal(again.validation.images, data.validation.images) and torch.equal(again.test.labels, data.test.labels)
    assert not torch.equal(other.test.images, data.test.images)  # another seed, another split


def test_a_test_folder_is_the_test_set(tmp_path: Path) -> None:
    write_image_folder(tmp_path, per_class=6, test_per_class=3)
    data = load_datasets(DataConfig(dataset="folder", root=str(tmp_path)), seed=0)
    assert class_counts(data.test.labels, 7) == [3] * 7
    assert len(data.train) + len(data.validation) == 7 * 6
    check_folder_pixels_follow_labels(data)


def test_grayscale_images_of_any_size_are_resized_only_when_asked(tmp_path: Path) -> None:
    for label, name in enumerate(("a", "b")):
        for index in range(6):
            save_png(tmp_path / "train" / name / f"{index}.png", class_image(label, index, size=16 + 2 * (index % 2), channels=1))
    with pytest.raises(DatasetError, match=r"is 18x18 pixels but .* is 16x16; set data.image_size"):
        load_datasets(DataConfig(dataset="folder", root=str(tmp_path)), seed=0)
    data = load_datasets(DataConfig(dataset="folder", root=str(tmp_path), image_size=12, validation=2), seed=0)
    assert data.input_shape == (1, 12, 12) and data.classes == ("a", "b")


def test_the_decoded_folder_is_cached_until_a_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_image_folder(tmp_path, per_class=5)
    config = DataConfig(dataset="folder", root=str(tmp_path), validation=7)
    first = load_datasets(config, seed=0)
    [cache] = (tmp_path / CACHE_FOLDER).iterdir()
    decoded: list[str] = []
    real_decode = image_folder._decode

    def counting_decode(path: str, image_size: int = 0) -> np.ndarray:
        decoded.append(path)
        return real_decode(path, image_size)

    monkeypatch.setattr(image_folder, "_decode", counting_decode)
    second = load_datasets(config, seed=0)
    assert decoded == []  # read from the cache, not one image decoded
    assert torch.equal(first.train.images, second.train.images) and torch.equal(first.test.labels, second.test.labels)
    # One image changes (new pixels, a new modification time): the folder is decoded again, and the change is seen.
    changed = tmp_path / "train" / FOLDER_CLASSES[0] / "0000.png"
    save_png(changed, np.zeros((20, 20, 3), dtype=np.uint8))
    os.utime(changed, ns=(1, 1))
    third = load_datasets(config, seed=0)
    assert len(decoded) == 7 * 5
    assert unnormalized(third, "train").amin() == 0 or unnormalized(third, "validation").amin() == 0 or unnormalized(third, "test").amin() == 0
    assert len(list((tmp_path / CACHE_FOLDER).iterdir())) == 2 and cache.is_file()
    # Another image_size is another cache entry.
    load_datasets(DataConfig(dataset="folder", root=str(tmp_path), validation=7, image_size=10), seed=0)
    assert len(list((tmp_path / CACHE_FOLDER).iterdir())) == 3


def test_the_listing_is_imagefolders(tmp_path: Path) -> None:
    """The folder is listed without torchvision (so that a cached run never imports it), exactly as ImageFolder lists it."""
    from torchvision.datasets import ImageFolder

    write_image_folder(tmp_path, per_class=3, classes=("b", "a", "c"))
    save_png(tmp_path / "train" / "a" / "nested" / "deeper.PNG", class_image(0, 0))  # subfolders and upper case count
    (tmp_path / "train" / "c" / "notes.txt").write_text("not an image")
    (tmp_path / "train" / "b" / "x.jpeg").write_bytes((tmp_path / "train" / "b" / "0000.png").read_bytes())
    listing = image_folder._listing(tmp_path, "train")
    reference = ImageFolder(str(tmp_path / "train"))
    assert listing.classes == reference.classes == ["a", "b", "c"] and listing.samples == reference.samples
    assert len(listing.samples) == 3 * 3 + 2


def test_a_folder_that_cannot_be_written_to_still_loads(tmp_path: Path) -> None:
    write_image_folder(tmp_path, per_class=5)
    (tmp_path / CACHE_FOLDER).write_text("a user's file that happens to have the cache's name")
    data = load_datasets(DataConfig(dataset="folder", root=str(tmp_path), validation=7), seed=0)
    assert data.num_classes == 7
    assert (tmp_path / CACHE_FOLDER).read_text() == "a user's file that happens to have the cache's name"


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("empty class", "holds no images"),
        ("one class", "one class only"),
        ("unreadable", "Pillow does not recognise it as an image"),
        ("truncated", "cannot read the image"),
        ("mixed modes", "mixed-mode images"),
        ("too few", "the validation split"),
        ("test classes differ", "different class folders"),
        ("no train", "set data.root to the folder that holds train/"),
    ],
)
def test_bad_folders_are_refused_and_nothing_is_cached(tmp_path: Path, damage: str, expected: str) -> None:
    classes = ("a",) if damage == "one class" else ("a", "b", "c")
    write_image_folder(tmp_path, per_class=1 if damage == "too few" else 4, classes=classes,
                       test_per_class=1 if damage == "too few" else 0)  # fmt: skip
    if damage == "empty class":
        (tmp_path / "train" / "d").mkdir()
    elif damage == "unreadable":
        (tmp_path / "train" / "b" / "0002.png").write_bytes(b"not a png at all")
    elif damage == "truncated":
        path = tmp_path / "train" / "b" / "0002.png"
        path.write_bytes(path.read_bytes()[:60])
    elif damage == "mixed modes":
        save_png(tmp_path / "train" / "c" / "0001.png", class_image(2, 1, channels=1))
    elif damage == "test classes differ":
        write_image_folder(tmp_path, per_class=0, test_per_class=2, classes=("a", "b", "z"))
    elif damage == "no train":
        os.rename(tmp_path / "train", tmp_path / "training")
    with pytest.raises(DatasetError, match=expected) as error:
        load_datasets(DataConfig(dataset="folder", root=str(tmp_path), validation=0.5), seed=0)
    assert "\n" not in str(error.value)
    assert not (tmp_path / CACHE_FOLDER).exists()


# --- arrays -------------------------------------------------------------------------------------


def test_npz_arrays_in_either_layout(tmp_path: Path) -> None:
    arrays = npz_arrays()
    nhwc = load_datasets(DataConfig(dataset="arrays", root=str(write_npz(tmp_path / "a.npz", **arrays))), seed=0)
    assert nhwc.num_classes == 4 and nhwc.input_shape == (1, 12, 12) and nhwc.classes == ("0", "1", "2", "3")
    assert len(nhwc.test) == 16 and len(nhwc.train) + len(nhwc.validation) == 48
    assert class_counts(nhwc.validation.labels, 4) == [2] * 4  # 1/6 of 12 per class, stratified
    floats = {**arrays, "x_train": arrays["x_train"].transpose(0, 3, 1, 2) / 255.0, "x_test": arrays["x_test"].transpose(0, 3, 1, 2) / 255.0}
    nchw = load_datasets(DataConfig(dataset="arrays", root=str(write_npz(tmp_path / "b.npz", **floats))), seed=0)
    for split in ("train", "validation", "test"):
        assert torch.allclose(getattr(nhwc, split).images, getattr(nchw, split).images, atol=1e-4)
        assert torch.equal(getattr(nhwc, split).labels, getattr(nchw, split).labels)


def test_ambiguous_layouts_are_named_and_data_layout_settles_them(tmp_path: Path) -> None:
    arrays = npz_arrays(size=3)  # (N, 3, 3, 1): is axis 1 or the last one the channels?
    path = write_npz(tmp_path / "tiny.npz", **{**arrays, "x_train": np.repeat(arrays["x_train"], 3, axis=3)[:, :, :, :3],
                                               "x_test": np.repeat(arrays["x_test"], 3, axis=3)})  # fmt: skip
    with pytest.raises(DatasetError, match=r"could be axis 1 \(NCHW\) or axis 3 \(NHWC\); set data.layout"):
        load_datasets(DataConfig(dataset="arrays", root=str(path)), seed=0)
    data = load_datasets(DataConfig(dataset="arrays", root=str(path), layout="nhwc"), seed=0)
    assert data.input_shape == (3, 3, 3)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"y_train": np.zeros(47, dtype=np.int64)}, "y_train has 47 labels but x_train has 48 images"),
        ({"y_train": np.full(48, 0.5)}, "float64 labels; labels are integer class indices"),
        ({"y_train": np.eye(4)[np.arange(48) % 4]}, "not one-hot rows"),
        ({"y_train": np.zeros(48, dtype=np.int64), "y_test": np.zeros(16, dtype=np.int64)}, "one class only"),
        ({"y_test": np.full(16, 7)}, "the test labels reach 7"),
        ({"x_train": np.zeros((48, 12, 12, 1), dtype=np.int32)}, "pixels must be uint8"),
        ({"x_test": np.zeros((16, 10, 10, 1), dtype=np.uint8)}, "test images are 1x10x10 but training images 1x12x12"),
    ],
)
def test_bad_arrays_are_one_line_errors(tmp_path: Path, change: dict[str, np.ndarray], expected: str) -> None:
    path = write_npz(tmp_path / "bad.npz", **{**npz_arrays(), **change})
    with pytest.raises(DatasetError, match=expected) as error:
        load_datasets(DataConfig(dataset="arrays", root=str(path)), seed=0)
    assert "\n" not in str(error.value)


def test_arrays_without_a_test_set_hold_out_a_stratified_one(tmp_path: Path) -> None:
    arrays = npz_arrays(train=60)
    path = write_npz(tmp_path / "train-only.npz", x_train=arrays["x_train"], y_train=arrays["y_train"])
    data = load_datasets(DataConfig(dataset="arrays", root=str(path)), seed=0)
    assert class_counts(data.test.labels, 4) == [3] * 4  # 20% of 15 per class


# --- SVHN and CIFAR-100 through torchvision -------------------------------------------------------


def write_svhn(root: Path, count: int) -> dict[str, np.ndarray]:
    """SVHN's MATLAB files: X (32, 32, 3, N) uint8 and y (N, 1) with labels 1..10, where 10 is the digit 0."""
    labels = {}
    for split, size in (("train", count), ("test", count // 2)):
        digits = np.arange(size) % 10
        images = np.stack([np.full((32, 32, 3), 10 * digit + 3 * channel, dtype=np.uint8)[:, :, channel]
                           for digit in digits for channel in range(3)]).reshape(size, 3, 32, 32)  # fmt: skip
        scipy.io.savemat(root / f"{split}_32x32.mat", {"X": images.transpose(2, 3, 1, 0), "y": np.where(digits == 0, 10, digits)[:, None]})
        labels[split] = digits
    return labels


def test_svhn_mat_files_load_with_ten_classes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.datasets import SVHN

    labels = write_svhn(tmp_path, 60)
    # torchvision checks the md5 of the official files; the test's own files get their own md5s.
    monkeypatch.setattr(SVHN, "split_list", {split: [url, name, hashlib.md5((tmp_path / name).read_bytes()).hexdigest()]
                                             for split, (url, name, _) in SVHN.split_list.items() if split != "extra"})  # fmt: skip
    data = load_datasets(DataConfig(dataset="svhn", root=str(tmp_path), validation=10), seed=0)
    assert data.num_classes == 10 and data.input_shape == (3, 32, 32)
    assert torch.equal(data.test.labels, torch.from_numpy(labels["test"]))  # 10 became 0, order kept
    pixels = unnormalized(data, "test")[:, :, 0, 0]
    assert torch.equal(pixels[:, 0], torch.from_numpy(10 * labels["test"]).float())
    assert torch.equal(pixels[:, 2], torch.from_numpy(10 * labels["test"] + 6).float())  # channels in order


def test_cifar100_pickles_load_with_a_hundred_classes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.datasets import CIFAR100

    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, count in (("train", 300), ("test", 100)):
        fine = np.arange(count) % 100
        rows = np.repeat((2 * fine)[:, None], 3072, axis=1).astype(np.uint8)
        with open(folder / name, "wb") as file:
            pickle.dump({"data": rows, "fine_labels": fine.tolist(), "coarse_labels": (fine // 5).tolist()}, file)
    with open(folder / "meta", "wb") as file:
        pickle.dump({"fine_label_names": [f"c{index}" for index in range(100)]}, file)

    def md5(name: str) -> str:
        return hashlib.md5((folder / name).read_bytes()).hexdigest()

    monkeypatch.setattr(CIFAR100, "train_list", [["train", md5("train")]])
    monkeypatch.setattr(CIFAR100, "test_list", [["test", md5("test")]])
    monkeypatch.setattr(CIFAR100, "meta", {**CIFAR100.meta, "md5": md5("meta")})
    data = load_datasets(DataConfig(dataset="cifar100", root=str(tmp_path), validation=50), seed=0)
    assert data.num_classes == 100 and data.classes[:2] == ("c0", "c1") and data.input_shape == (3, 32, 32)
    assert (len(data.train), len(data.validation), len(data.test)) == (250, 50, 100)
    assert torch.equal(unnormalized(data, "train")[:, 0, 0, 0], 2 * data.train.labels.float())
