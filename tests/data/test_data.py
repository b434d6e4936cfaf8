"""Dataset loading on small files written in the real formats (IDX, CIFAR-10 pickles), read by torchvision."""

from __future__ import annotations

import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from genetic_cnn.config import DataConfig
from genetic_cnn.data.datasets import DatasetError, Datasets, load_datasets, validation_count

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
TRAIN_SIZE, TEST_SIZE = 120, 30


def pixel_value(label: int, channel: int = 0) -> int:
    """Every image is filled with a value that encodes its label (and channel), so alignment can be checked."""
    return (label * 20 + channel * 50) % 256


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX: big-endian magic (0x08 = uint8, then the number of dimensions), the dimensions, the bytes."""
    magic = 0x0800 + array.ndim  # 2051 for images (3 dims), 2049 for labels (1 dim)
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", size) for size in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def labels_for(count: int) -> np.ndarray:
    return np.random.default_rng(count).integers(0, 10, size=count)


def write_mnist(root: Path, folder: str) -> Path:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, count in (("train", TRAIN_SIZE), ("t10k", TEST_SIZE)):
        labels = labels_for(count)
        images = np.stack([np.full((28, 28), pixel_value(label)) for label in labels])
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return raw


def write_cifar(root: Path, per_batch: int = 10) -> Path:
    """CIFAR-10 python batches: dicts with 'data' (N, 3072 uint8, channel-major rows) and 'labels'."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{index}" for index in range(1, 6)] + ["test_batch"]
    for offset, name in enumerate(names):
        labels = labels_for(per_batch + offset)[:per_batch]
        rows = np.stack([np.repeat([pixel_value(label, channel) for channel in range(3)], 1024) for label in labels])
        with open(folder / name, "wb") as file:
            pickle.dump({"data": rows.astype(np.uint8), "labels": [int(label) for label in labels]}, file)
    with open(folder / "batches.meta", "wb") as file:
        pickle.dump({"label_names": [f"class{index}" for index in range(10)]}, file)
    return folder


@pytest.fixture
def accept_test_cifar(monkeypatch: pytest.MonkeyPatch):
    """torchvision's CIFAR10 checks every batch against the md5 of the official files. Our small test
    files cannot match, so the expected checksums (class attributes) are set to theirs: the real
    integrity check and reader still run on the written files."""
    from torchvision.datasets import CIFAR10

    def accept(folder: Path) -> None:
        def md5(name: str) -> str:
            return hashlib.md5((folder / name).read_bytes()).hexdigest()

        monkeypatch.setattr(CIFAR10, "train_list", [[name, md5(name)] for name, _ in CIFAR10.train_list])
        monkeypatch.setattr(CIFAR10, "test_list", [[name, md5(name)] for name, _ in CIFAR10.test_list])
        monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5("batches.meta")})

    return accept


def check_aligned(data: Datasets) -> None:
    """Undo the normalization: every image must still hold its own label's pixel values, per channel."""
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    for split in (data.train, data.validation, data.test):
        pixels = torch.round((split.images * std + mean) * 255)
        expected = torch.tensor(
            [[pixel_value(int(label), channel) for channel in range(data.input_shape[0])] for label in split.labels]
        )
        assert torch.equal(pixels.amin(dim=(2, 3)), expected.float())
        assert torch.equal(pixels.amax(dim=(2, 3)), expected.float())


def check_normalized(data: Datasets) -> None:
    images = data.train.images
    assert images.dtype == torch.float32
    assert torch.allclose(images.mean(dim=(0, 2, 3)), torch.zeros(images.shape[1]), atol=1e-4)
    assert torch.allclose(images.std(dim=(0, 2, 3)), torch.ones(images.shape[1]), atol=1e-3)


@pytest.mark.parametrize(("dataset", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_formats_load(tmp_path: Path, dataset: str, folder: str) -> None:
    write_mnist(tmp_path, folder)
    data = load_datasets(DataConfig(dataset=dataset, root=str(tmp_path)), seed=0)
    assert data.name == dataset and data.num_classes == 10 and data.input_shape == (1, 28, 28)
    assert (len(data.train), len(data.validation), len(data.test)) == (100, 20, 30)  # automatic: 1/6 held out
    assert data.train.images.shape == (100, 1, 28, 28) and data.test.images.shape == (30, 1, 28, 28)
    assert data.train.labels.dtype == torch.int64
    assert set(data.train.labels.tolist()) <= set(range(10))
    assert torch.equal(data.test.labels, torch.from_numpy(labels_for(TEST_SIZE)))  # the test set keeps its order
    check_normalized(data)
    check_aligned(data)


def test_cifar10_pickles_load(tmp_path: Path, accept_test_cifar) -> None:
    accept_test_cifar(write_cifar(tmp_path))
    data = load_datasets(DataConfig(dataset="cifar10", root=str(tmp_path), validation=10), seed=0)
    assert data.input_shape == (3, 32, 32)
    assert (len(data.train), len(data.validation), len(data.test)) == (40, 10, 10)
    assert data.train.images.shape == (40, 3, 32, 32)
    check_normalized(data)
    check_aligned(data)  # channels come out in R, G, B order from the channel-major rows


def test_cifar10_with_wrong_checksums_is_a_one_line_error(tmp_path: Path) -> None:
    folder = write_cifar(tmp_path)  # not the official bytes, so torchvision's md5 check fails
    with pytest.raises(DatasetError) as error:
        load_datasets(DataConfig(dataset="cifar10", root=str(tmp_path)), seed=0)
    message = str(error.value)
    assert "corrupt" in message and str(folder) in message and "\n" not in message


def test_missing_cifar10_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as error:
        load_datasets(DataConfig(dataset="cifar10", root=str(tmp_path)), seed=0)
    message = str(error.value)
    assert str(tmp_path / "cifar-10-batches-py") in message and "data_batch_1" in message and "\n" not in message


@pytest.mark.parametrize(("dataset", "folder"), [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_missing_files_name_the_expected_paths(tmp_path: Path, dataset: str, folder: str) -> None:
    with pytest.raises(DatasetError) as error:
        load_datasets(DataConfig(dataset=dataset, root=str(tmp_path)), seed=0)
    message = str(error.value)
    assert "\n" not in message
    assert str(tmp_path / folder / "raw") in message
    assert all(name in message for name in MNIST_FILES)
    assert "data.download = true" in message


def test_one_missing_file_is_named(tmp_path: Path) -> None:
    raw = write_mnist(tmp_path, "MNIST")
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError, match=r"missing: t10k-labels-idx1-ubyte;"):
        load_datasets(DataConfig(dataset="mnist", root=str(tmp_path)), seed=0)


@pytest.mark.parametrize("keep", [0, 3, 10, 5000])
def test_truncated_idx_file_is_a_one_line_error(tmp_path: Path, keep: int) -> None:
    raw = write_mnist(tmp_path, "MNIST")
    path = raw / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(DatasetError) as error:
        load_datasets(DataConfig(dataset="mnist", root=str(tmp_path)), seed=0)
    assert "truncated or corrupt" in str(error.value) and "\n" not in str(error.value)


def test_images_and_labels_of_different_lengths(tmp_path: Path) -> None:
    raw = write_mnist(tmp_path, "MNIST")
    write_idx(raw / "train-labels-idx1-ubyte", labels_for(TRAIN_SIZE - 1))
    with pytest.raises(DatasetError, match="images but"):
        load_datasets(DataConfig(dataset="mnist", root=str(tmp_path)), seed=0)


def test_splits_are_seeded(tmp_path: Path) -> None:
    write_mnist(tmp_path, "MNIST")
    config = DataConfig(dataset="mnist", root=str(tmp_path), validation=0.25)
    first, again, other = (load_datasets(config, seed=seed) for seed in (1, 1, 2))
    assert len(first.validation) == 30 and len(first.train) == 90
    for name in ("train", "validation", "test"):
        assert torch.equal(getattr(first, name).images, getattr(again, name).images)
        assert torch.equal(getattr(first, name).labels, getattr(again, name).labels)
    assert not torch.equal(first.validation.labels, other.validation.labels)


def test_subsets_and_validation_counts(tmp_path: Path) -> None:
    write_mnist(tmp_path, "MNIST")
    data = load_datasets(
        DataConfig(dataset="mnist", root=str(tmp_path), subset=60, test_subset=7, validation=15), seed=0
    )
    assert (len(data.train), len(data.validation), len(data.test)) == (45, 15, 7)
    check_aligned(data)
    # A seeded subset: the same seed picks the same images, another seed others.
    again = load_datasets(
        DataConfig(dataset="mnist", root=str(tmp_path), subset=60, test_subset=7, validation=15), seed=0
    )
    assert torch.equal(data.test.labels, again.test.labels) and torch.equal(data.train.images, again.train.images)
    # A subset larger than the data means all of it.
    whole = load_datasets(DataConfig(dataset="mnist", root=str(tmp_path), subset=10_000), seed=0)
    assert len(whole.train) + len(whole.validation) == TRAIN_SIZE


@pytest.mark.parametrize("validation", [TRAIN_SIZE, TRAIN_SIZE + 5, 0.999, 0.001])
def test_validation_leaving_no_training_images_is_an_error(tmp_path: Path, validation: float) -> None:
    write_mnist(tmp_path, "MNIST")
    with pytest.raises(DatasetError, match="data.validation"):
        load_datasets(DataConfig(dataset="mnist", root=str(tmp_path), validation=validation), seed=0)


def test_validation_count_rule() -> None:
    assert validation_count(0, 60_000) == 10_000  # the paper's hold-out
    assert validation_count(0, 50_000) == 10_000
    assert validation_count(0, 1_200) == 200
    assert validation_count(0.1, 1_000) == 100
    assert validation_count(300, 1_000) == 300


def test_digits_holds_out_a_seeded_test_split() -> None:
    data = load_datasets(DataConfig(dataset="digits"), seed=0)
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10
    assert len(data.train) + len(data.validation) + len(data.test) == 1797
    assert len(data.test) == 359  # 20%
    assert len(data.validation) == (1797 - 359) // 6
    assert data.train.images.shape[1:] == (1, 8, 8)
    check_normalized(data)
    again, other = (
        load_datasets(DataConfig(dataset="digits"), seed=0),
        load_datasets(DataConfig(dataset="digits"), seed=1),
    )
    assert torch.equal(data.test.images, again.test.images)
    assert not torch.equal(data.test.labels, other.test.labels)


def test_synthetic_is_small_deterministic_and_balanced() -> None:
    data = load_datasets(DataConfig(dataset="synthetic"), seed=0)
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10
    assert (len(data.train), len(data.validation), len(data.test)) == (500, 100, 200)
    assert data.train.images.shape == (500, 1, 8, 8)
    assert set(data.train.labels.tolist()) == set(range(10))
    check_normalized(data)
    again = load_datasets(DataConfig(dataset="synthetic"), seed=0)
    other = load_datasets(DataConfig(dataset="synthetic"), seed=1)
    assert torch.equal(data.train.images, again.train.images) and torch.equal(data.test.labels, again.test.labels)
    assert not torch.equal(data.train.images, other.train.images)


# ---------------------------------------------------------------------- the splits do not overlap
def rows(split) -> list[bytes]:  # type: ignore[no-untyped-def]
    """Each image's bytes; the splits are normalized alike, so identical images give identical bytes."""
    return [image.numpy().tobytes() for image in split.images]


@pytest.mark.parametrize("dataset", ["digits", "synthetic"])
@pytest.mark.parametrize("seed", [0, 7])
def test_training_validation_and_test_images_are_disjoint(dataset: str, seed: int) -> None:
    data = load_datasets(DataConfig(dataset=dataset), seed=seed)
    train, validation, test = rows(data.train), rows(data.validation), rows(data.test)
    assert len(set(train)) == len(train) and len(set(validation)) == len(validation)  # no image twice
    assert not set(train) & set(validation)
    assert not set(test) & (set(train) | set(validation))


@pytest.mark.parametrize("seed", [0, 7])
def test_digits_splits_partition_the_bundled_images(seed: int) -> None:
    """Every one of scikit-learn's 1,797 digits (all distinct) lands in exactly one split, with its label."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    original = {image.astype(np.int64).tobytes(): int(label) for image, label in zip(digits.images, digits.target)}
    assert len(original) == len(digits.target)
    data = load_datasets(DataConfig(dataset="digits"), seed=seed)
    mean, std = torch.tensor(data.mean).view(1, -1, 1, 1), torch.tensor(data.std).view(1, -1, 1, 1)
    seen: list[bytes] = []
    for split in (data.train, data.validation, data.test):
        pixels = torch.round((split.images * std + mean) * 16).to(torch.int64)[:, 0]  # back to 0..16
        for image, label in zip(pixels.numpy(), split.labels.tolist()):
            key = image.tobytes()
            assert original.get(key) == label
            seen.append(key)
    assert len(seen) == len(set(seen)) == len(original)


def test_the_validation_split_does_not_follow_the_test_subset(tmp_path: Path) -> None:
    """Changing which test images are used leaves the training and validation images alone."""
    write_mnist(tmp_path, "MNIST")
    base = DataConfig(dataset="mnist", root=str(tmp_path), validation=20)
    first = load_datasets(base, seed=3)
    for test_subset in (5, 11):
        other = load_datasets(DataConfig(dataset="mnist", root=str(tmp_path), validation=20, test_subset=test_subset), seed=3)
        assert len(other.test) == test_subset
        assert torch.equal(first.train.images, other.train.images) and torch.equal(first.train.labels, other.train.labels)
        assert torch.equal(first.validation.labels, other.validation.labels)
        assert torch.equal(first.validation.images, other.validation.images)
