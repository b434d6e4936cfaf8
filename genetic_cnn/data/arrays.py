"""A user's own images as arrays: checked once, put in one layout, their classes counted.

Every form a user's data comes in (a ``.npz`` file for ``data.dataset = "arrays"``, numpy arrays or
torch tensors, a map-style torch ``Dataset`` given to ``start_run(config, data=...)``, the decoded
pixels of an image folder) becomes one ``LabelledImages``: (N, C, H, W) images, uint8 (0..255) or
float32, and int64 labels 0..K-1. The checks here answer malformed data with one line that names the
array and the fix, so nothing downstream meets a label out of range or an image of another shape.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genetic_cnn.errors import DatasetError
from genetic_cnn.progress import bar as progress_bar
from genetic_cnn.progress import warn

ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")
PROGRESS_FROM = 2000
"""Items of a ``Dataset`` from which converting them shows a progress bar."""


@dataclass(frozen=True, eq=False)  # eq=False: tensors compare element-wise
class LabelledImages:
    """Training images and labels, and the test ones when the data has a test set of its own."""

    train_images: torch.Tensor
    """(N, C, H, W), uint8 (0..255) or float32 (any scale: the training split's statistics normalize it)."""
    train_labels: torch.Tensor
    """(N,) int64 in 0..K-1."""
    test_images: torch.Tensor | None
    test_labels: torch.Tensor | None
    classes: tuple[str, ...]
    """The K class names, in label order."""

    @property
    def num_classes(self) -> int:
        return len(self.classes)


# --- arrays ------------------------------------------------------------------------------------


def images_array(name: str, array: Any, layout: str) -> torch.Tensor:
    """``array`` (N, H, W), (N, C, H, W) or (N, H, W, C) as an (N, C, H, W) uint8 or float32 tensor.

    ``layout`` is auto, nchw or nhwc; torch tensors are NCHW by torch's convention unless it says nhwc.
    """
    is_tensor = isinstance(array, torch.Tensor)
    values = _numeric(name, _tensor_values(name, array) if is_tensor else array)
    if values.dtype != np.uint8 and values.dtype.kind != "f":
        raise DatasetError(f"{name} has dtype {values.dtype}; pixels must be uint8 (0..255) or floating point ({_pixel_fix(name, values)})")
    if values.ndim == 3:
        values = values[:, None]
    elif values.ndim == 4:
        if is_tensor and layout == "auto":
            _refuse_channels_last_tensor(name, values.shape)
        elif layout != "auto":
            _refuse_contrary_layout(name, values.shape, layout)
        order = layout if layout != "auto" else "nchw" if is_tensor else _guess_layout(name, values.shape)
        if order == "nhwc":
            values = values.transpose(0, 3, 1, 2)
    else:
        raise DatasetError(
            f"{name} has shape {tuple(values.shape)}; give images as (N, H, W), (N, C, H, W) or (N, H, W, C)"
            + _flat_hint(name, values.shape)
        )
    if values.shape[0] == 0:
        raise DatasetError(f"{name} holds no images; give at least one image per class")
    if 0 in values.shape[1:]:
        channels, height, width = values.shape[1:]
        raise DatasetError(
            f"{name} has shape {tuple(array.shape)}: {channels} channel(s) of {height}x{width} pixels (read as NCHW); "
            "every image needs at least one channel and one pixel each way: check the array's shape (and data.layout)"
        )
    if values.dtype.kind == "f":
        if not np.isfinite(values).all():
            raise DatasetError(f"{name} holds NaN or infinite pixel values; replace or drop those images")
        peak = float(np.abs(values).max())
        if peak > FLOAT32_MAX:
            raise DatasetError(
                f"{name} holds pixel values up to {peak:.3g}, beyond float32's range ({FLOAT32_MAX:.3g}) that training "
                f"uses; scale them first (e.g. {name} / np.abs({name}).max())"
            )
        values = values.astype(np.float32, copy=False)
    return torch.from_numpy(np.ascontiguousarray(values))


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _tensor_values(name: str, tensor: torch.Tensor) -> np.ndarray:
    try:
        return tensor.detach().cpu().numpy()
    except (RuntimeError, NotImplementedError, TypeError) as error:  # e.g. a meta tensor, which holds no values
        reason = " ".join(str(error).split())[:120]
        raise DatasetError(f"{name} is a tensor whose values cannot be read ({reason}); give a tensor that holds its values") from None


def _numeric(name: str, array: Any) -> np.ndarray:
    """``array`` as a numpy array of numbers; a ragged list or an array of Python objects is refused."""
    if array is None:
        raise DatasetError(f"{name} is None; give an array of images (or leave out both x_test and y_test)")
    try:
        values = np.asarray(array)
    except (ValueError, TypeError) as error:  # e.g. a list of images of different sizes
        reason = "its items differ in shape" if "inhomogeneous" in str(error) else " ".join(str(error).split())[:120]
        raise DatasetError(f"{name} cannot be made one array ({reason}); give images of one size and mode in one array") from None
    if values.dtype.kind in "OUSV":
        what = "text" if values.dtype.kind in "US" else "Python objects (e.g. images of different sizes, or None)"
        raise DatasetError(f"{name} holds {what}, dtype {values.dtype}; give a numeric array of images of one size")
    return values


def _pixel_fix(name: str, values: np.ndarray) -> str:
    if values.dtype.kind in "iu" and values.size and values.min() >= 0 and values.max() <= 255:
        return f"its values lie in 0..255: {name}.astype(np.uint8)"
    if values.dtype.kind in "iu":
        return f"e.g. 16-bit images: {name}.astype(np.float32), floats of any scale are normalized"
    return f"e.g. {name}.astype(np.float32)"


def _flat_hint(name: str, shape: tuple[int, ...]) -> str:
    side = int(round(float(shape[-1]) ** 0.5)) if len(shape) == 2 else 0
    if side > 1 and side * side == shape[-1]:
        return f" (flattened {side}x{side} images? {name}.reshape(-1, {side}, {side}))"
    return ""


def _refuse_contrary_layout(name: str, shape: tuple[int, ...], layout: str) -> None:
    """``data.layout`` set against what the shape plainly is (e.g. nhwc for (N, 1, 28, 28)) would read
    images a pixel wide; the setting is named rather than the preset that cannot take them."""
    try:
        guessed = _guess_layout(name, shape)
    except DatasetError:  # ambiguous: data.layout decides
        return
    if guessed != layout:
        channels, height, width = (shape[3], shape[1], shape[2]) if layout == "nhwc" else shape[1:]
        raise DatasetError(
            f"data.layout = {layout!r} reads {name} of shape {tuple(shape)} as {channels} channel(s) of {height}x{width} "
            f"pixels, but its shape is plainly {guessed.upper()}; set data.layout = {guessed!r} or 'auto'"
        )


def _refuse_channels_last_tensor(name: str, shape: tuple[int, ...]) -> None:
    """A tensor is read as NCHW, torch's convention; one whose last axis is plainly the channels
    (e.g. (N, 28, 28, 1)) would be read as images 1 pixel wide, so the fix is asked for instead."""
    try:
        guessed = _guess_layout(name, shape)
    except DatasetError:  # ambiguous: torch's convention decides
        return
    if guessed == "nhwc":
        raise DatasetError(
            f"{name} is a tensor of shape {tuple(shape)}: tensors are read as NCHW, which would be {shape[1]} channels of "
            f"{shape[2]}x{shape[3]} pixels, but its last axis looks like the channels; set data.layout = 'nhwc' in the "
            f"config, or pass {name}.permute(0, 3, 1, 2)"
        )


def _guess_layout(name: str, shape: tuple[int, ...]) -> str:
    """nchw when axis 1 is smaller than both image sides, nhwc when the last axis is; else ambiguous."""
    _, first, middle, last = shape
    channels_first = first < min(middle, last)
    channels_last = last < min(first, middle)
    if channels_first == channels_last:
        raise DatasetError(
            f"{name} has shape {tuple(shape)}: its channels could be axis 1 (NCHW) or axis 3 (NHWC); "
            'set data.layout = "nchw" or "nhwc"'
        )
    return "nchw" if channels_first else "nhwc"


def labels_array(name: str, array: Any, count: int, images_name: str) -> torch.Tensor | np.ndarray:
    """``array`` as (N,) int64 class indices >= 0, one per image; text labels (class names) stay a
    numpy array of str, for ``class_names_as_labels``."""
    if array is None:
        raise DatasetError(f"{name} is None; give one label per image of {images_name}")
    values = _tensor_values(name, array) if isinstance(array, torch.Tensor) else np.asarray(array)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]  # Keras gives (N, 1)
    if values.ndim == 2:
        raise DatasetError(
            f"{name} has shape {tuple(values.shape)}; give one class index per image, not one-hot rows "
            f"(e.g. {name}.argmax(axis=1))"
        )
    if values.ndim != 1:
        raise DatasetError(f"{name} has shape {tuple(values.shape)}; give one class index per image, shape (N,)")
    if len(values) != count:
        raise DatasetError(f"{name} has {len(values)} labels but {images_name} has {count} images; give one label per image")
    if values.dtype.kind in "US" or (values.dtype.kind == "O" and all(isinstance(value, str) for value in values)):
        return values.astype(str)  # class names
    if values.dtype.kind == "b":
        raise DatasetError(f"{name} holds True/False labels; labels are class indices 0..K-1 or names ({name}.astype(np.int64))")
    if values.dtype.kind not in "iu":
        raise DatasetError(
            f"{name} holds {values.dtype} labels; labels are integer class indices 0..K-1 "
            f"(convert whole-number labels with {name}.astype(np.int64), map names to indices)"
        )
    if len(values) and values.min() < 0:
        raise DatasetError(f"{name} holds the negative label {int(values.min())}; labels are class indices 0..K-1")
    if len(values) and int(values.max()) > np.iinfo(np.int64).max:
        raise DatasetError(f"{name} holds the label {int(values.max())}; labels are class indices 0..K-1")
    return torch.from_numpy(values.astype(np.int64))


def class_names_as_labels(
    train: torch.Tensor | np.ndarray, test: torch.Tensor | np.ndarray | None
) -> tuple[torch.Tensor, torch.Tensor | None, list[str] | None]:
    """Text labels are class names: the sorted names of the training labels, and both label arrays
    as indices into them. Integer labels pass through (with no names)."""
    if isinstance(train, torch.Tensor):
        if test is not None and not isinstance(test, torch.Tensor):
            raise DatasetError("y_train holds class indices but y_test class names; give both the same kind of labels")
        return train, test, None
    if test is not None and isinstance(test, torch.Tensor):
        raise DatasetError("y_train holds class names but y_test class indices; give both the same kind of labels")
    names, indices = np.unique(train, return_inverse=True)
    test_indices = None
    if test is not None:
        unknown = sorted(set(test.tolist()) - set(names.tolist()))
        if unknown:
            raise DatasetError(
                f"y_test holds the class(es) {', '.join(repr(name) for name in unknown[:3])} that no training label names; "
                "every class needs training images"
            )
        test_indices = torch.from_numpy(np.searchsorted(names, test).astype(np.int64))
    return torch.from_numpy(indices.astype(np.int64)), test_indices, [str(name) for name in names]


def check_classes(
    train_labels: torch.Tensor, test_labels: torch.Tensor | None, names: Sequence[str] | None, where: str
) -> tuple[str, ...]:
    """The class names (``names`` or "0".."K-1"); every class must have a training image, and there must be two."""
    present = np.unique(train_labels.numpy())  # sorted; never one entry per possible label, which may be billions
    largest = int(present[-1])
    if test_labels is not None and len(test_labels) and int(test_labels.max()) > largest:
        raise DatasetError(
            f"{where}: the test labels reach {int(test_labels.max())} but the training labels only {largest}; "
            "every class needs training images"
        )
    count = largest + 1
    if count > len(present):
        missing = np.setdiff1d(np.arange(len(present) + 3), present)[:3]
        shown = ", ".join(names[index] if names is not None and len(names) == count else str(index) for index in missing)
        raise DatasetError(
            f"{where}: class(es) {shown}{', ...' if count - len(present) > 3 else ''} have no training image (labels run "
            f"0..{largest} but only {len(present)} distinct labels occur); labels must be class indices 0..K-1 without "
            "gaps, or class names: number the classes without gaps (e.g. y = np.unique(y_train, return_inverse=True)[1], "
            "the same mapping for y_test), or give every class training images"
        )
    if names is not None and len(names) != count:
        names = None  # names that do not fit the labels say nothing reliable
    classes = tuple(names) if names is not None else tuple(str(index) for index in range(count))
    if count < 2:
        raise DatasetError(f"{where} has one class only ({classes[0]}); classification needs at least two")
    return classes


def labelled_arrays(
    train: tuple[Any, Any], test: tuple[Any, Any] | None, layout: str, where: str, names: Sequence[str] | None = None
) -> LabelledImages:
    """Check (x_train, y_train) and the optional (x_test, y_test) and make them ``LabelledImages``."""
    train_images = images_array("x_train", train[0], layout)
    train_labels = labels_array("y_train", train[1], len(train_images), "x_train")
    test_images = test_labels = None
    if test is not None:
        test_images = images_array("x_test", test[0], layout)
        test_labels = labels_array("y_test", test[1], len(test_images), "x_test")
    train_labels, test_labels, label_names = class_names_as_labels(train_labels, test_labels)
    names = label_names or names
    if test_images is not None:
        if test_images.shape[1:] != train_images.shape[1:]:
            raise DatasetError(
                f"{where}: test images are {_shape(test_images)} but training images {_shape(train_images)}; "
                "give both the same channels and size"
            )
    classes = check_classes(train_labels, test_labels, names, where)
    return LabelledImages(train_images, train_labels, test_images, test_labels, classes)


def _shape(images: torch.Tensor) -> str:
    return "x".join(str(size) for size in images.shape[1:])


# --- .npz files --------------------------------------------------------------------------------


def load_npz(path: Path, layout: str) -> LabelledImages:
    """The arrays of a ``.npz`` file: x_train, y_train and, optionally, x_test and y_test."""
    fix = "set data.root to a .npz file holding x_train, y_train, x_test, y_test (numpy.savez)"
    if not path.exists():
        raise DatasetError(f"data.dataset = 'arrays' reads data.root = {path}, which does not exist; {fix}")
    if path.is_dir():
        raise DatasetError(f"data.dataset = 'arrays' reads a .npz file, and data.root = {path} is a folder; {fix}")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        if "pickle" in reason:  # numpy's guess for a file that is neither .npy nor a zip of arrays
            reason = "it is no zip archive of arrays"
        raise DatasetError(f"{path} is not a readable .npz file ({reason}); {fix}") from None
    if isinstance(loaded, np.ndarray):
        raise DatasetError(
            f"{path} is a .npy file (one array of shape {loaded.shape}), not a .npz archive of named arrays; {fix}"
        )
    arrays = {}
    with loaded:
        for key in loaded.files:
            try:
                arrays[key] = loaded[key]
            except ValueError as error:  # an array of Python objects, which reading would unpickle
                if "pickle" in str(error) or "Object arrays" in str(error):
                    raise DatasetError(
                        f"{path}: {key} is an array of Python objects (dtype object), which is never unpickled; "
                        "save numeric arrays (images of one size, integer or text labels)"
                    ) from None
                raise DatasetError(f"{path}: {key} cannot be read ({' '.join(str(error).split())[:150]}); {fix}") from None
            except (OSError, EOFError, zipfile.BadZipFile) as error:
                reason = " ".join(str(error).split())[:150] or type(error).__name__
                raise DatasetError(f"{path} is truncated or corrupt ({key}: {reason}); {fix}") from None
    missing = [key for key in ("x_train", "y_train") if key not in arrays]
    if missing:
        raise DatasetError(f"{path} holds no {' or '.join(missing)} (it holds {', '.join(sorted(arrays)) or 'nothing'}); {fix}")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DatasetError(f"{path} holds only one of x_test and y_test; give both, or neither for a seeded test split")
    ignored = sorted(set(arrays) - {*ARRAY_KEYS, "classes", "layout"})
    if ignored:
        warn(f"{path}: ignoring {', '.join(ignored)} (genetic-cnn reads {', '.join(ARRAY_KEYS)}, classes and layout)")
    if "layout" in arrays:
        layout = _file_layout(path, arrays["layout"])  # the file says how it is stored (save_npz writes it)
    test = (arrays["x_test"], arrays["y_test"]) if "x_test" in arrays else None
    names = [str(name) for name in arrays["classes"]] if "classes" in arrays else None
    return labelled_arrays((arrays["x_train"], arrays["y_train"]), test, layout, str(path), names)


def _file_layout(path: Path, value: np.ndarray) -> str:
    layout = str(value).lower()
    if layout not in ("nchw", "nhwc"):
        raise DatasetError(f"{path} holds layout = {str(value)!r}; it must be 'nchw' or 'nhwc' (or leave it out)")
    return layout


def save_npz(images: LabelledImages, path: Path) -> None:
    """Write ``images`` as a ``.npz`` that ``load_npz`` reads back unchanged (NCHW, with class names)."""
    arrays: dict[str, Any] = {"x_train": images.train_images.numpy(), "y_train": images.train_labels.numpy()}
    if images.test_images is not None and images.test_labels is not None:
        arrays |= {"x_test": images.test_images.numpy(), "y_test": images.test_labels.numpy()}
    np.savez(path, **arrays, classes=np.array(images.classes), layout=np.array("nchw"))


# --- data already in memory --------------------------------------------------------------------


def from_memory(data: Any, layout: str, progress: bool = True) -> LabelledImages:
    """``start_run``'s ``data``: a source, or (train, test) sources, or (x_train, y_train, x_test, y_test).

    A source is a map-style torch ``Dataset`` of (image, label) items, or an (images, labels) pair of
    numpy arrays or torch tensors.
    """
    if isinstance(data, Mapping):
        return _from_mapping(data, layout)
    if isinstance(data, (tuple, list)) and len(data) == 4 and not any(_is_source(item) for item in data):
        test = _test_pair(data[2], data[3])
        return labelled_arrays((data[0], data[1]), test, layout, "start_run(data=...)")
    if isinstance(data, (tuple, list)) and len(data) == 2 and data[1] is None and _is_source(data[0]):
        train, test = data[0], None  # (train, None): no test set
    elif isinstance(data, (tuple, list)) and len(data) == 2 and all(_is_source(item) for item in data):
        train, test = data
    elif _is_source(data):
        train, test = data, None
    else:
        raise DatasetError(
            "start_run(data=...) takes a torch Dataset of (image, label) items or an (images, labels) pair, "
            "or (train, test) of these, or (x_train, y_train, x_test, y_test), or a dict of these arrays; "
            f"got {_kind(data)}"
        )
    train_pair, names = _pair(train, "training", progress)
    test_pair = _pair(test, "test", progress)[0] if test is not None else None
    return labelled_arrays(train_pair, test_pair, layout, "start_run(data=...)", names)


def _kind(data: Any) -> str:
    if isinstance(data, (tuple, list)):
        return f"a {type(data).__name__} of {len(data)} ({', '.join(type(item).__name__ for item in data[:5])})"
    return type(data).__name__


def _test_pair(images: Any, labels: Any) -> tuple[Any, Any] | None:
    """(x_test, y_test), or None when both are None (no test set)."""
    if images is None and labels is None:
        return None
    if images is None or labels is None:
        given, lacking = ("y_test", "x_test") if images is None else ("x_test", "y_test")
        raise DatasetError(f"{given} is given but {lacking} is None; give both, or neither for a seeded test split")
    return images, labels


def _from_mapping(data: Mapping[str, Any], layout: str) -> LabelledImages:
    """A dict of arrays named as in a ``.npz`` file (x_train, y_train and, optionally, x_test, y_test)."""
    missing = [key for key in ("x_train", "y_train") if data.get(key) is None]
    unknown = sorted(str(key) for key in data if key not in ARRAY_KEYS)
    if missing or unknown:
        raise DatasetError(
            "start_run(data=dict) needs x_train and y_train (and optionally x_test, y_test); "
            + (f"missing: {', '.join(missing)}" if missing else f"unknown key(s): {', '.join(unknown[:3])}")
        )
    test = _test_pair(data.get("x_test"), data.get("y_test"))
    return labelled_arrays((data["x_train"], data["y_train"]), test, layout, "start_run(data=...)")


def _is_source(item: Any) -> bool:
    from torch.utils.data import Dataset

    return isinstance(item, Dataset) or (isinstance(item, (tuple, list)) and len(item) == 2)


def _pair(source: Any, which: str, progress: bool) -> tuple[tuple[Any, Any], list[str] | None]:
    """(images, labels) of a source, and the class names a torchvision-style dataset carries."""
    from torch.utils.data import Dataset

    if not isinstance(source, Dataset):
        return (source[0], source[1]), None
    names = getattr(source, "classes", None)
    names = [str(name) for name in names] if isinstance(names, (list, tuple)) else None
    return _from_dataset(source, which, progress), names


def _from_dataset(dataset: Any, which: str, progress: bool) -> tuple[Any, np.ndarray]:
    """Every (image, label) item of a map-style dataset, stacked: an NCHW tensor when the items are
    tensors (CHW) or PIL images, a numpy array (read by ``data.layout``) when they are arrays."""
    try:
        count = len(dataset)
    except TypeError:
        raise DatasetError(f"the {which} Dataset has no len(); give a map-style Dataset (with __len__ and __getitem__)") from None
    if count == 0:
        raise DatasetError(f"the {which} Dataset holds no items; give at least one image per class")
    images: list[np.ndarray] = []
    labels: list[int | str] = []
    kind = ""
    bar = progress_bar(total=count, desc=f"reading the {which} Dataset", unit="img", leave=False,
                       disable=not progress or count < PROGRESS_FROM)  # fmt: skip
    for index in range(count):
        try:
            item = dataset[index]
        except Exception as error:  # noqa: BLE001 - the Dataset is the user's code; its failure is one line here
            reason = " ".join(str(error).split())[:150]
            raise DatasetError(
                f"reading item {index} of the {which} Dataset failed ({type(error).__name__}: {reason}); fix the Dataset or its files"
            ) from None
        if not (isinstance(item, (tuple, list)) and len(item) >= 2):
            raise DatasetError(f"item {index} of the {which} Dataset is a {type(item).__name__}, not an (image, label) pair")
        image, kind = _pixels(item[0], index, which)
        if images and image.shape != images[0].shape:
            raise DatasetError(
                f"item {index} of the {which} Dataset has shape {image.shape} but item 0 has {images[0].shape}; "
                "give images of one size and mode (resize them in the Dataset, e.g. a torchvision transform)"
            )
        images.append(image)
        labels.append(_label(item[1], index, which))
        bar.update(1)
    bar.close()
    stacked = np.stack(images)
    if kind == "pil" and stacked.ndim == 4:
        stacked = stacked.transpose(0, 3, 1, 2)  # PIL gives HWC
    return (torch.from_numpy(np.ascontiguousarray(stacked)) if kind != "array" else stacked), np.asarray(labels)


def _pixels(image: Any, index: int, which: str) -> tuple[np.ndarray, str]:
    """One item's image as a numpy array and what it was: tensor (CHW or HW), pil (HWC or HW) or array."""
    if isinstance(image, torch.Tensor):
        return image.detach().cpu().numpy(), "tensor"
    from PIL import Image

    if isinstance(image, Image.Image):
        return np.asarray(image if image.mode in ("L", "RGB") else image.convert("RGB")), "pil"
    if isinstance(image, np.ndarray):
        return image, "array"
    raise DatasetError(f"item {index} of the {which} Dataset has a {type(image).__name__} image; give a tensor, PIL image or array")


def _label(label: Any, index: int, which: str) -> int | str:
    if isinstance(label, torch.Tensor) and label.numel() == 1 and not label.is_floating_point():
        return int(label.item())
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        return int(label)
    if isinstance(label, str):
        return label  # a class name
    raise DatasetError(
        f"item {index} of the {which} Dataset has the label {label!r}; labels are integer class indices 0..K-1 or class names"
    )
