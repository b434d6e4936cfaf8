"""Datasets as normalized in-memory tensors: train, validation (fitness) and test splits.

Every image is converted to a float tensor once, so training never runs per-sample transforms or a
DataLoader: a whole split is indexed by slices of a permutation (``genetic_cnn.nn.train``). Splits and
subsets come from numpy generators seeded with the run seed (or ``data.split_seed`` when set), one
independent stream per purpose, so e.g. changing ``test_subset`` never changes which images are held
out for validation.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from genetic_cnn.data.arrays import LabelledImages, load_npz
from genetic_cnn.config import DATASETS, DataConfig
from genetic_cnn.errors import DatasetError

PAPER_VALIDATION = 10_000  # the paper holds out 10,000 training images when there are at least 50,000
DIGITS_TEST_FRACTION = 0.2  # scikit-learn's digits come without an official test split
OWN_TEST_FRACTION = 0.2
"""The seeded test split of a folder without test/, or arrays without x_test: this share of every class."""
OWN_DATASETS = ("folder", "arrays")
"""The user's data: small or unbalanced sets are common, so its test and validation splits are
stratified (every class gives its share, at least one image) instead of drawn at random."""
TORCHVISION_DATASETS = ("mnist", "fashion-mnist", "cifar10", "cifar100", "svhn")
DIGIT_CLASSES = tuple(str(digit) for digit in range(10))

# Independent random streams (spawn keys of the seed), so each choice is stable on its own.
_STREAM_DIGITS_TEST, _STREAM_SUBSET, _STREAM_TEST_SUBSET, _STREAM_VALIDATION, _STREAM_SYNTHETIC, _STREAM_OWN_TEST = range(6)

_MNIST_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
_CIFAR100_FILES: tuple[str, ...] = ("train", "test", "meta")
_SVHN_FILES: tuple[str, ...] = ("train_32x32.mat", "test_32x32.mat")
_CIFAR_FILES: tuple[str, ...] = (
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
    "test_batch",
    "batches.meta",
)
# What torchvision raises on missing, truncated or corrupt files (asserts and views included).
_READ_ERRORS = (
    RuntimeError,
    OSError,
    ValueError,
    AssertionError,
    TypeError,
    KeyError,
    IndexError,
    EOFError,
    pickle.UnpicklingError,
)




@dataclass(frozen=True, eq=False)  # eq=False: comparing tensors element-wise has no single truth value
class Split:
    images: torch.Tensor
    """(N, C, H, W) float32, normalized with the training split's per-channel mean and std."""
    labels: torch.Tensor
    """(N,) int64 class indices."""

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class Datasets:
    name: str
    train: Split
    validation: Split
    """Held out of the training set; fitness is measured here."""
    test: Split
    """The official test set (digits: a seeded hold-out); measured and stored, never used for selection."""
    num_classes: int
    input_shape: tuple[int, int, int]
    classes: tuple[str, ...] = ()
    """The class names, in label order (folder: the class folders' names; arrays: "0", "1", ...)."""
    mean: tuple[float, ...] = ()
    """Per-channel mean of the training split, the images were normalized with it: in [0, 1] pixel units
    (files' uint8 / 255, digits' 0..16 / 16; synthetic data as generated)."""
    std: tuple[float, ...] = ()


def load_datasets(
    config: DataConfig, seed: int, own: LabelledImages | None = None, accept: Callable[[Datasets], object] | None = None
) -> Datasets:
    """Read ``config.dataset``, take the seeded subsets and validation split, and normalize.

    ``seed``: the run seed; the split follows it unless ``config.split_seed`` is set (``split_seed``).
    ``own``: images already in memory (``start_run(config, data=...)``), split and normalized like
    ``arrays``. ``accept``: a further check of the result (e.g. that the preset can take its images)
    that raises to refuse it. A folder's decoded images are cached only once everything, ``accept``
    included, has checked out, so that bad input writes nothing.
    """
    seed = split_seed(config, seed)
    store_cache: Callable[[], None] = lambda: None  # noqa: E731 - a no-op unless a folder was decoded
    root = Path(config.root).expanduser()
    if own is not None:
        source = own
    elif config.dataset == "folder":
        from genetic_cnn.data.folders import load_folder  # Pillow and the cache are only for folders

        source, store_cache = load_folder(root, config.image_size)
    elif config.dataset == "arrays":
        source = load_npz(root, config.layout)
    elif config.dataset == "digits":
        source = _load_digits(seed)
    elif config.dataset == "synthetic":
        source = _make_synthetic(seed)
    elif config.dataset in TORCHVISION_DATASETS:
        source = _load_torchvision(config.dataset, root, config.download)
    else:
        raise DatasetError(
            f"data.dataset = {config.dataset!r} is not one of {', '.join(DATASETS)}"
        )
    stratified = own is not None or config.dataset in OWN_DATASETS
    classes = source.classes
    train_x, train_y = source.train_images, source.train_labels
    if source.test_images is None or source.test_labels is None:  # the user's data without a test set
        count = int(round(OWN_TEST_FRACTION * len(train_y)))
        what = f"the seeded test split ({OWN_TEST_FRACTION:.0%} of every class: there is no test/ folder or x_test)"
        # keep=2: what is left must still give every class a validation and a training image.
        test, train = _stratified_holdout(train_y, count, _rng(seed, _STREAM_OWN_TEST), classes, what, "", keep=2)
        test_x, test_y, train_x, train_y = train_x[test], train_y[test], train_x[train], train_y[train]
    else:
        test_x, test_y = source.test_images, source.test_labels

    if config.subset:
        keep = _subset(len(train_y), config.subset, _rng(seed, _STREAM_SUBSET))
        train_x, train_y = train_x[torch.from_numpy(keep)], train_y[torch.from_numpy(keep)]
    if config.test_subset:
        keep = _subset(len(test_y), config.test_subset, _rng(seed, _STREAM_TEST_SUBSET))
        test_x, test_y = test_x[torch.from_numpy(keep)], test_y[torch.from_numpy(keep)]
    if config.image_size:
        train_x, test_x = _resized(train_x, config.image_size), _resized(test_x, config.image_size)

    count = validation_count(config.validation, len(train_y))
    if not 0 < count < len(train_y):
        raise DatasetError(
            f"data.validation = {config.validation:g} gives {count} validation images out of {len(train_y)} training "
            f"images; it must leave at least one on each side (use a smaller data.validation or a larger data.subset)"
        )
    validation_rng = _rng(seed, _STREAM_VALIDATION)
    if stratified:
        what = f"the validation split (data.validation = {config.validation:g})"
        after = f" after data.subset = {config.subset}" if config.subset else ""
        val_index, train_index = _stratified_holdout(train_y, count, validation_rng, classes, what, after)
    else:
        order = validation_rng.permutation(len(train_y))
        # Sorted indices read memory in order (faster gathers); training shuffles every epoch anyway.
        val_index, train_index = torch.from_numpy(np.sort(order[:count])), torch.from_numpy(np.sort(order[count:]))

    scale = _float_scale(train_x, test_x)

    def unit(images: torch.Tensor) -> torch.Tensor:
        return _to_unit_float(images) if scale == 1.0 else _to_unit_float(images).mul_(scale)

    train_images = unit(train_x[train_index])
    channels = train_images.shape[1]
    mean = train_images.mean(dim=(0, 2, 3))
    std = train_images.std(dim=(0, 2, 3))
    std = torch.where(std > 0, std, torch.ones_like(std))  # a constant channel stays constant, not NaN
    shape = (1, channels, 1, 1)

    def normalize(images: torch.Tensor) -> torch.Tensor:
        return images.sub_(mean.view(shape)).div_(std.view(shape))

    datasets = Datasets(
        name=config.dataset,
        train=Split(normalize(train_images), train_y[train_index].contiguous()),
        validation=Split(normalize(unit(train_x[val_index])), train_y[val_index].contiguous()),
        test=Split(normalize(unit(test_x)), test_y.contiguous()),
        num_classes=len(classes),
        input_shape=(channels, int(train_images.shape[2]), int(train_images.shape[3])),
        classes=classes,
        mean=tuple(float(value) / scale for value in mean),  # in the pixels' own units, whatever the scale
        std=tuple(float(value) / scale for value in std),
    )
    if accept is not None:
        accept(datasets)
    store_cache()
    return datasets


def _stratified_holdout(
    labels: torch.Tensor, count: int, rng: np.random.Generator, classes: tuple[str, ...], what: str, after: str,
    keep: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted (held out, kept) indices: every class gives its share of ``count``, at least one image,
    and keeps at least ``keep``; a one-line error names the first class too small for that."""
    values = labels.numpy()
    share = count / len(values)
    held: list[np.ndarray] = []
    for label, name in enumerate(classes):
        members = np.flatnonzero(values == label)
        take = max(1, int(round(share * len(members))))
        if len(members) < take + keep:
            raise DatasetError(
                f"class {name!r} has {len(members)} training image(s){after}; {what} holds out {take} of them "
                f"and leaves {'training and validation' if keep == 2 else 'training'} at least one each: "
                f"give it at least {take + keep} images" + (", or lower data.validation" if take > 1 and keep == 1 else "")
            )
        held.append(rng.permutation(members)[:take])
    held_index = np.sort(np.concatenate(held))
    kept = np.ones(len(values), dtype=bool)
    kept[held_index] = False
    return torch.from_numpy(held_index), torch.from_numpy(np.flatnonzero(kept))


def _resized(images: torch.Tensor, size: int) -> torch.Tensor:
    """``images`` at size x size (bilinear, antialiased); uint8 pixels become floats in [0, 1]."""
    if tuple(images.shape[2:]) == (size, size):
        return images
    floats = _to_unit_float(images)
    return F.interpolate(floats, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def validation_count(validation: float, train_size: int) -> int:
    """Images to hold out: a count, a fraction when below 1, or 0 for the automatic rule."""
    if validation == 0:
        return PAPER_VALIDATION if train_size >= 50_000 else train_size // 6
    if validation < 1:
        return int(round(validation * train_size))
    return int(validation)


def split_seed(config: DataConfig, run_seed: int) -> int:
    """The seed of the data's random choices: ``data.split_seed``, or the run seed when it is -1."""
    return run_seed if config.split_seed < 0 else config.split_seed


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream,)))


def _subset(size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of a seeded subset of ``count`` items (all of them when count >= size)."""
    if count >= size:
        return np.arange(size)
    return np.sort(rng.permutation(size)[:count])


FLOAT_RANGE = 2.0**16
"""Float pixels whose largest magnitude lies outside [1/FLOAT_RANGE, FLOAT_RANGE] are scaled into it."""


def _float_scale(*splits: torch.Tensor) -> float:
    """A power of two that brings float pixels of any scale near 1, or 1.0 when they are near enough.

    Pixels near float32's limits (1e38, or 1e-30) are valid input, but their sums and squares
    overflow or underflow in float32, which would make every statistic inf or 0; multiplying by a
    power of two is exact, and normalization by the scaled statistics gives the same images.
    """
    peak = 0.0
    for images in splits:
        if images.is_floating_point() and images.numel():
            low, high = torch.aminmax(images)
            peak = max(peak, abs(float(low)), abs(float(high)))
    if peak == 0.0 or 1 / FLOAT_RANGE <= peak <= FLOAT_RANGE:
        return 1.0
    return math.ldexp(1.0, -math.frexp(peak)[1])


def _to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """Pixels as float32 in [0, 1] (uint8 files) or as they are (already float); always a new tensor."""
    if images.dtype == torch.uint8:
        return images.to(torch.float32).div_(255.0)
    return images.to(torch.float32, copy=True)


# --- bundled and generated data ---------------------------------------------------------------


def _load_digits(seed: int) -> LabelledImages:
    from sklearn.datasets import load_digits  # imported here: scikit-learn is slow to import

    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)  # pixels are 0..16
    labels = torch.from_numpy(digits.target.astype(np.int64))
    order = _rng(seed, _STREAM_DIGITS_TEST).permutation(len(labels))
    test_count = int(round(DIGITS_TEST_FRACTION * len(labels)))
    test, train = torch.from_numpy(np.sort(order[:test_count])), torch.from_numpy(np.sort(order[test_count:]))
    return LabelledImages(images[train], labels[train], images[test], labels[test], DIGIT_CLASSES)


SYNTHETIC_TRAIN, SYNTHETIC_TEST, SYNTHETIC_NOISE = 600, 200, 0.6


def _make_synthetic(seed: int) -> LabelledImages:
    """Ten fixed 8x8 class patterns, shifted by up to a pixel, plus Gaussian noise: learnable in seconds.

    The patterns come from a fixed generator so the task is the same for every seed; the seed picks
    the samples, shifts and noise.
    """
    classes = len(DIGIT_CLASSES)
    patterns = np.random.default_rng(20170301).choice([-1.0, 1.0], size=(classes, 8, 8))
    rng = _rng(seed, _STREAM_SYNTHETIC)
    total = SYNTHETIC_TRAIN + SYNTHETIC_TEST
    labels = rng.permutation(np.arange(total) % classes)  # balanced classes
    images = patterns[labels]
    shifts = rng.integers(-1, 2, size=(total, 2))
    for axis in (0, 1):  # rolling by the same shift at once keeps this vectorized per shift value
        for shift in (-1, 1):
            rows = shifts[:, axis] == shift
            images[rows] = np.roll(images[rows], shift, axis=axis + 1)
    images = images + SYNTHETIC_NOISE * rng.standard_normal(images.shape)
    x = torch.from_numpy(images.astype(np.float32)).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return LabelledImages(x[:SYNTHETIC_TRAIN], y[:SYNTHETIC_TRAIN], x[SYNTHETIC_TRAIN:], y[SYNTHETIC_TRAIN:], DIGIT_CLASSES)


# --- torchvision files ------------------------------------------------------------------------


def _load_torchvision(name: str, root: Path, download: bool) -> LabelledImages:
    """Read the files with torchvision's own classes, then take ``.data``/``.targets`` once."""
    from torchvision import datasets  # imported here: only these datasets need torchvision

    if name in ("cifar10", "cifar100"):
        cls: Any = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        folder, files = root / cls.base_folder, _CIFAR_FILES if name == "cifar10" else _CIFAR100_FILES
        how = f"extract {cls.filename} into {root}"
    elif name == "svhn":
        cls, folder, files = datasets.SVHN, root, _SVHN_FILES
        how = f"put {' and '.join(_SVHN_FILES)} from ufldl.stanford.edu/housenumbers there"
    else:
        cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
        folder, files = root / cls.__name__ / "raw", _MNIST_FILES
        how = "put the files there, gunzipped"

    below = folder.relative_to(root) if folder != root else None
    if root.exists() and not root.is_dir():
        raise DatasetError(f"data.root = {root} is a file; {name} is read from a folder: set data.root to the folder that holds {below or 'the files'}")
    misplaced = any((root / file).is_file() for file in files) and not all((folder / file).is_file() for file in files)
    if below is not None and misplaced:  # data.root points at the files' own folder
        above = root.parents[len(below.parts) - 1]
        raise DatasetError(f"data.root = {root} holds {name}'s files themselves, which torchvision reads from data.root/{below}; set data.root to {above}")

    def read(train: bool) -> Any:
        if cls is datasets.SVHN:  # SVHN names its parts by split, the others by a flag
            return cls(str(root), split="train" if train else "test", download=download)
        return cls(str(root), train=train, download=download)

    try:
        parts = [read(train) for train in (True, False)]
    except _READ_ERRORS as error:
        missing = [file for file in files if not (folder / file).is_file()]
        reason = " ".join(str(error).split())[:300] or type(error).__name__  # one line, however long the error
        if missing:
            which = "none of them is there" if len(missing) == len(files) else f"missing: {', '.join(missing)}"
            if any((folder / f"{file}.gz").is_file() for file in missing):
                which += " (there are .gz files: gunzip them in place)"
            fix = (
                f"the download failed ({reason}); check the internet connection or {how}"
                if download
                else f"set data.download = true (needs internet) or {how}"
            )
            raise DatasetError(
                f"{name} files not found: expected {folder}/{{{', '.join(files)}}}, {which}; {fix}"
            ) from None
        raise DatasetError(
            f"{name} files in {folder} are truncated or corrupt ({type(error).__name__}: {reason}); "
            f"delete them and set data.download = true, or {how} again"
        ) from None

    classes = tuple(str(c) for c in getattr(parts[0], "classes", DIGIT_CLASSES))  # SVHN names none: digits
    tensors: list[torch.Tensor] = []
    for part in parts:
        if name in ("cifar10", "cifar100"):  # numpy (N, H, W, C) uint8 and a list of ints
            images = torch.from_numpy(np.ascontiguousarray(part.data.transpose(0, 3, 1, 2)))
            labels = torch.as_tensor(part.targets, dtype=torch.int64)
        elif name == "svhn":  # numpy (N, C, H, W) uint8 and numpy labels, 0..9 (torchvision maps 10 to 0)
            images = torch.from_numpy(np.ascontiguousarray(part.data))
            labels = torch.as_tensor(part.labels, dtype=torch.int64)
        else:  # uint8 tensor (N, H, W) and int64 tensor
            images, labels = part.data.unsqueeze(1), part.targets.to(torch.int64)
        if len(images) != len(labels) or len(labels) == 0:
            raise DatasetError(
                f"{name} files in {folder} hold {len(images)} images but {len(labels)} labels; replace them"
            )
        if int(labels.min()) < 0 or int(labels.max()) >= len(classes):
            raise DatasetError(f"{name} files in {folder} have labels outside 0..{len(classes) - 1}; replace them")
        tensors += [images, labels]
    return LabelledImages(tensors[0], tensors[1], tensors[2], tensors[3], classes)


# Augmentation: the standard CIFAR recipe, on whole batches of tensors on the device.
def augment_padding(height: int) -> int:
    """Crop padding for images ``height`` pixels high: 4 for CIFAR's 32 (and MNIST's 28), 1 for 8x8."""
    return max(1, math.floor(height / 8 + 0.5))


def augment_batch(
    images: torch.Tensor, generator: torch.Generator, padding: int = 4, flip: bool = True
) -> torch.Tensor:
    """Random crop after zero padding by ``padding`` pixels, then (``flip``) a random horizontal flip.

    One offset pair and one coin per image, all drawn from ``generator`` (on the images' device), so
    a seeded generator gives the same batch every time. Returns a new (N, C, H, W) tensor.
    """
    batch, _, height, width = images.shape
    device = images.device
    out = images
    if padding > 0:
        padded = F.pad(images, (padding, padding, padding, padding))
        dy = torch.randint(0, 2 * padding + 1, (batch,), generator=generator, device=device)
        dx = torch.randint(0, 2 * padding + 1, (batch,), generator=generator, device=device)
        rows = dy[:, None] + torch.arange(height, device=device)  # (N, H)
        cols = dx[:, None] + torch.arange(width, device=device)  # (N, W)
        index = torch.arange(batch, device=device)[:, None, None]
        # Advanced indices around a slice: the result is (N, H, W, C).
        out = padded[index, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()
    if flip:
        mirrored = torch.rand(batch, generator=generator, device=device) < 0.5
        out = torch.where(mirrored[:, None, None, None], out.flip(3), out)
    return out
