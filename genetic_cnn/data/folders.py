"""``data.dataset = "folder"``: your own images in torchvision's ImageFolder layout, decoded once, cached.

``root/train/<class>/*.png|jpg|...`` (and ``root/test/<class>/...`` when there is a test set) is
listed as torchvision's ``ImageFolder`` lists it, but that hidden files and folders are skipped and
symbolic links can never make an image count twice or under another class (see ``_listing``), and
every image decoded through an ``ImageFolder`` over that listing, with Pillow, into the uint8
tensors the trainer uses. Images may have any size, all the same unless ``data.image_size`` resizes them, and one
mode: grayscale (1 channel) or colour (3 channels; palette and alpha images become RGB).

Decoding thousands of files takes seconds to minutes, so the decoded tensors are kept in
``root/.genetic-cnn-cache/folder-<key>.pt``; the key hashes every file's name, size and modification
time and ``data.image_size``, so adding, removing or changing an image decodes the folder again. The
cache is written only by ``store`` after the whole dataset was checked, never over a user's file,
and can be deleted at any time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genetic_cnn.data.arrays import LabelledImages
from genetic_cnn.errors import DatasetError
from genetic_cnn.progress import bar as progress_bar
from genetic_cnn.progress import warn

CACHE_FOLDER = ".genetic-cnn-cache"
CACHE_VERSION = 1
"""Part of the cache key: a change to how images are decoded makes old caches unused."""
PROGRESS_FROM = 1000
"""Images from which decoding shows a progress bar."""
GRAY_MODES = ("1", "L", "LA")
COLOUR_MODES = ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
"""torchvision's ``IMG_EXTENSIONS``: the files ImageFolder lists (tests check that the two agree)."""


def load_folder(root: Path, image_size: int) -> tuple[LabelledImages, Callable[[], None]]:
    """The folder's images and labels, and a function that caches them (a no-op when read from the cache).

    The caller calls the function once everything else about the data checked out, so that bad
    data writes nothing.
    """
    seen: dict[tuple[int, int], str] = {}  # every listed file and folder, so that none counts twice
    splits = {"train": _listing(root, "train", seen)}
    if (root / "test").is_dir():
        splits["test"] = _listing(root, "test", seen)
        _check_same_classes(root, splits["train"].classes, splits["test"].classes)
    cache = root / CACHE_FOLDER / f"folder-{_cache_key(root, splits, image_size)}.pt"
    cached = _read_cache(cache)
    if cached is not None:
        return cached, lambda: None
    decoded = {name: _decode_all(folder, image_size) for name, folder in splits.items()}
    train_images, train_labels = decoded["train"]
    test_images, test_labels = decoded.get("test", (None, None))
    if test_images is not None and test_images.shape[1:] != train_images.shape[1:]:
        raise DatasetError(
            f"{root}/test holds {_describe(test_images)} images but {root}/train {_describe(train_images)}; "
            "give both the same mode and size, or set data.image_size to resize them all"
        )
    images = LabelledImages(train_images, train_labels, test_images, test_labels, tuple(splits["train"].classes))
    return images, partial(_write_cache, cache, images)


@dataclass(frozen=True)
class Listing:
    """The class folders and image files of one split, as torchvision's ImageFolder lists them."""

    folder: Path
    classes: list[str]
    samples: list[tuple[str, int]]
    """(path, class index), in ImageFolder's order."""


def _listing(root: Path, split: str, seen: dict[tuple[int, int], str] | None = None) -> Listing:
    """``root/split``'s classes and images; class folders without images are refused.

    Listed here rather than by ImageFolder so that a run that finds its cache never imports
    torchvision (seconds), and so that symbolic links cannot relabel images: ImageFolder follows
    every linked folder, so ``train/a/loop -> ..`` would list every other class's images again as
    class ``a``. Here a linked file or folder counts once, under the class it lies in: a link to a
    folder above it, or a second path to a file or folder already listed (``seen``: every file's
    and folder's identity, shared with the other split), is refused with its name; so is a link to
    nothing. Hidden files and folders (``.DS_Store``, ``._name.png``, ``.ipynb_checkpoints``) are
    skipped. Otherwise the order and the files are ImageFolder's.
    """
    folder = root / split
    if not folder.is_dir():
        where = f"{root} does not exist" if not root.exists() else f"{root} is a file" if not root.is_dir() else f"{folder} is not a folder"
        if root.is_dir() and root.name in ("train", "test") and (root.parent / "train").is_dir():
            raise DatasetError(f"data.root = {root} is the {root.name}/ folder itself; set data.root to {root.parent}, the folder that holds train/")
        classes_here = root.is_dir() and any(entry.is_dir() for entry in _entries(root))
        raise DatasetError(
            f"data.dataset = 'folder' reads data.root/train/<class>/<images> and {where}; "
            "set data.root to the folder that holds train/ (and optionally test/)"
            + (f", or, if the folders in {root} are the classes, move them into {folder}/" if classes_here else "")
        )
    seen = {} if seen is None else seen
    entries = _entries(folder)
    for entry in entries:
        if entry.is_symlink() and not os.path.exists(entry.path):  # perhaps a class folder that was moved
            raise DatasetError(f"{entry.path} is a link to {os.readlink(entry.path)}, which does not exist; remove the link or restore its target")
    classes = sorted(entry.name for entry in entries if _is_folder(entry))
    if not classes:
        raise DatasetError(f"{folder} holds no class folders; put each class's images in {folder}/<class>/")
    for name in classes:
        if not name.isprintable():  # e.g. bytes that are no UTF-8, which Python keeps as unprintable surrogates
            raise DatasetError(
                f"{folder}/{name!a} is a class folder whose name is not printable UTF-8 text; a class's name is shown "
                "and stored, so rename the folder"
            )
    loose = [entry.name for entry in entries if not _is_folder(entry) and entry.name.lower().endswith(IMAGE_EXTENSIONS)]
    if loose:
        warn(f"{folder} holds {len(loose)} image(s) outside any class folder (e.g. {sorted(loose)[0]}); they are not used: "
             f"move them into {folder}/<class>/")  # fmt: skip
    samples: list[tuple[str, int]] = []
    empty: list[str] = []
    for label, name in enumerate(classes):
        found = _images_under(folder / name, folder, seen)
        samples += [(path, label) for path in found]
        if not found:
            empty.append(name)
    if empty:
        raise DatasetError(
            f"{folder}/{empty[0]} holds no images{f' (nor {len(empty) - 1} other class folders)' if len(empty) > 1 else ''}; "
            "add .png or .jpg images to it or remove the folder"
        )
    if split == "train" and len(classes) < 2:
        raise DatasetError(f"{folder} holds one class only ({classes[0]}); classification needs at least two class folders")
    return Listing(folder, classes, samples)


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    """The entries of ``folder`` but hidden ones, which are the system's or a tool's, never a user's images."""
    try:
        with os.scandir(folder) as scan:
            return [entry for entry in scan if not entry.name.startswith(".")]
    except OSError as error:
        raise DatasetError(f"cannot list {folder} ({error.strerror}); make it readable") from None


def _is_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows a link: a linked class folder is a class folder
    except OSError:
        return False


def _identity(path: str) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def _images_under(class_folder: Path, split_folder: Path, seen: dict[tuple[int, int], str]) -> list[str]:
    """The image files under ``class_folder``, in ImageFolder's order (``sorted(os.walk(...))``, files
    sorted), linked folders followed once; see ``_listing`` for what is refused."""
    walked: list[tuple[str, list[str]]] = []
    pending: list[tuple[str, tuple[str, ...]]] = [(str(class_folder), (os.path.realpath(split_folder),))]
    while pending:
        here, above = pending.pop()
        real = os.path.realpath(here)
        _claim(seen, _identity(here), here, "folder")
        files: list[str] = []
        for entry in _entries(Path(here)):
            path = os.path.join(here, entry.name)
            if _is_folder(entry):
                target = os.path.realpath(path)
                if any(target == folder or Path(folder).is_relative_to(target) for folder in (*above, real)):
                    raise DatasetError(
                        f"{path} is a link to {target}, a folder that holds it: its images would be read again, under "
                        f"class {class_folder.name!r}; remove the link"
                    )
                pending.append((path, (*above, real)))
            elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
                if not os.path.exists(path):
                    raise DatasetError(f"{path} is a link to {os.readlink(path)}, which does not exist; remove the link or restore the file")
                _claim(seen, _identity(path), path, "file")
                files.append(entry.name)
        walked.append((here, sorted(files)))
    return [os.path.join(parent, file) for parent, files in sorted(walked) for file in files]


def _claim(seen: dict[tuple[int, int], str], identity: tuple[int, int], path: str, what: str) -> None:
    """Record that ``path`` lists the file or folder ``identity``; a second path to it is refused,
    since its images would count twice, perhaps under two classes or in both train/ and test/."""
    first = seen.setdefault(identity, path)
    if first != path:
        raise DatasetError(
            f"{path} and {first} are the same {what} (a link, or a hard link): "
            f"{'it' if what == 'file' else 'its images'} would count twice, perhaps under two classes or in both train/ "
            "and test/; keep one of them"
        )


def _check_same_classes(root: Path, train: list[str], test: list[str]) -> None:
    if train != test:
        only_train, only_test = sorted(set(train) - set(test)), sorted(set(test) - set(train))
        parts = [f"only in train/: {', '.join(only_train[:3])}" if only_train else "",
                 f"only in test/: {', '.join(only_test[:3])}" if only_test else ""]  # fmt: skip
        raise DatasetError(
            f"{root}/train and {root}/test have different class folders ({'; '.join(p for p in parts if p)}); "
            "give both the same classes"
        )


def _cache_key(root: Path, splits: dict[str, Listing], image_size: int) -> str:
    """A hash of every image's path, size and modification time, the classes and ``image_size``."""
    digest = hashlib.sha256(json.dumps({"version": CACHE_VERSION, "image_size": image_size}).encode())
    prefix = len(str(root))  # names relative to the root: a moved folder keeps its cache
    for name, listing in splits.items():
        digest.update(json.dumps([name, listing.classes]).encode())
        for path, label in listing.samples:
            stat = os.stat(path)
            # surrogateescape: a file name that is no UTF-8 (e.g. from a Windows zip) is hashed by its bytes
            digest.update(f"{path[prefix:]}\0{label}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:24]


def _read_cache(path: Path) -> LabelledImages | None:
    if not path.is_file():
        return None
    try:
        saved = torch.load(path, weights_only=True)
        return LabelledImages(
            saved["train_images"], saved["train_labels"], saved.get("test_images"), saved.get("test_labels"),
            tuple(saved["classes"]),
        )  # fmt: skip
    except Exception:  # noqa: BLE001 - a cache file we cannot read is decoded again, whatever the reason
        return None


def _write_cache(path: Path, images: LabelledImages) -> None:
    """Save the decoded tensors atomically; a folder we may not write to only costs the next run time."""
    saved: dict[str, Any] = {
        "train_images": images.train_images, "train_labels": images.train_labels, "classes": list(images.classes)
    }  # fmt: skip
    if images.test_images is not None:
        saved |= {"test_images": images.test_images, "test_labels": images.test_labels}
    partial_path = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        path.parent.mkdir(exist_ok=True)
        torch.save(saved, partial_path)
        os.replace(partial_path, path)  # another process writing the same key writes the same bytes
    except OSError as error:
        with contextlib.suppress(OSError):
            partial_path.unlink(missing_ok=True)
        warn(f"could not cache the decoded images in {path.parent} ({error.strerror}); the next run decodes them again")


def _decode_all(listing: Listing, image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image of ``listing`` decoded by torchvision's ImageFolder (with ``_decode`` as its loader)
    into one (N, C, H, W) uint8 tensor."""
    images_of = _image_folder(listing, partial(_decode, image_size=image_size))
    count = len(images_of)
    first_path = listing.samples[0][0]
    first, _ = images_of[0]
    images = np.empty((count, *first.shape), dtype=np.uint8)
    bar = progress_bar(total=count, desc=f"decoding {listing.folder.name}/ images", unit="img",
                       disable=count < PROGRESS_FROM)  # fmt: skip
    for index in range(count):
        image, _ = images_of[index] if index else (first, None)
        if image.shape != first.shape:
            raise DatasetError(_mismatch(listing.samples[index][0], image, first_path, first))
        images[index] = image
        bar.update(1)
    bar.close()
    tensor = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    return tensor, torch.as_tensor(images_of.targets, dtype=torch.int64)


def _image_folder(listing: Listing, loader: Callable[[str], np.ndarray]) -> Any:
    """torchvision's ImageFolder over ``listing``'s classes and files (its documented way to list
    files otherwise: overriding ``find_classes`` and ``make_dataset``), decoding with ``loader``."""
    from torchvision.datasets import ImageFolder

    class ListedImageFolder(ImageFolder):
        def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
            return list(listing.classes), {name: index for index, name in enumerate(listing.classes)}

        def make_dataset(self, directory: str, *args: Any, **kwargs: Any) -> list[tuple[str, int]]:  # type: ignore[override]
            return list(listing.samples)

    return ListedImageFolder(str(listing.folder), loader=loader)


def _mismatch(path: str, image: np.ndarray, first_path: str, first: np.ndarray) -> str:
    if image.shape[2] != first.shape[2]:
        return (
            f"mixed-mode images: {path} is {_mode(image)} but {first_path} is {_mode(first)}; "
            "convert them all to RGB or all to grayscale"
        )
    return (
        f"{path} is {image.shape[1]}x{image.shape[0]} pixels but {first_path} is {first.shape[1]}x{first.shape[0]}; "
        "set data.image_size = N to resize every image to NxN"
    )


def _mode(image: np.ndarray) -> str:
    return "grayscale" if image.shape[2] == 1 else "colour (RGB)"


def _describe(images: torch.Tensor) -> str:
    channels, height, width = images.shape[1:]
    return f"{'grayscale' if channels == 1 else 'colour'} {height}x{width}"


def _decode(path: str, image_size: int = 0) -> np.ndarray:
    """One image file as an (H, W, C) uint8 array, C = 1 (grayscale) or 3 (colour), resized when asked."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; both are refused alike.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                opened.load()
                mode = opened.mode
                if mode in GRAY_MODES:
                    image = opened.convert("L")
                elif mode in COLOUR_MODES:
                    image = opened.convert("RGB")
                else:
                    raise DatasetError(
                        f"{path} has the image mode {mode}, which is neither 8-bit grayscale nor colour; save it as RGB or 8-bit grayscale"
                    )
                if image_size and image.size != (image_size, image_size):
                    image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
                pixels = np.asarray(image, dtype=np.uint8)
    except DatasetError:
        raise
    except UnidentifiedImageError:
        raise DatasetError(f"cannot read the image {path}: Pillow does not recognise it as an image; replace or delete it") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        reason = " ".join(str(error).split())[:150]
        raise DatasetError(f"{path} is too large to decode safely ({reason}); shrink it or delete it") from None
    except Exception as error:  # noqa: BLE001 - whatever a decoder raises on a damaged file, the file is to blame
        reason = " ".join(str(error).split())[:150] or type(error).__name__
        raise DatasetError(f"cannot read the image {path} ({reason}); replace or delete it") from None
    return pixels[:, :, None] if pixels.ndim == 2 else pixels
