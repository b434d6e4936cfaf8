"""Writers of a user's own data in its real formats: PNG image folders and ``.npz`` arrays (shared by tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

FOLDER_CLASSES = tuple(f"kind{index}" for index in range(7))
FOLDER_SIZE = 20  # pixels on each side


def class_colour(label: int, channel: int = 0) -> int:
    """Every image of a class holds this value per channel (plus a bright square that moves), so
    that labels and pixels can be checked to stay together."""
    return (label * 30 + channel * 70) % 200


def class_image(label: int, index: int, size: int = FOLDER_SIZE, channels: int = 3) -> np.ndarray:
    """(H, W, C) uint8: the class's colour, and a 4x4 square at a place that depends on the class
    (so that a network can learn the classes) and, by a pixel, on the image."""
    pixels = np.empty((size, size, channels), dtype=np.uint8)
    for channel in range(channels):
        pixels[:, :, channel] = class_colour(label, channel)
    top = (3 * label + index % 2) % (size - 4)
    left = (5 * label + index % 3) % (size - 4)
    pixels[top : top + 4, left : left + 4] = 255
    return pixels


def save_png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(path)
    return path


def write_image_folder(
    root: Path, per_class: int = 12, test_per_class: int = 0, classes: tuple[str, ...] = FOLDER_CLASSES,
    size: int = FOLDER_SIZE, channels: int = 3,
) -> Path:  # fmt: skip
    """``root/train/<class>/<n>.png`` (and ``root/test/...`` when ``test_per_class``): PNG files written by Pillow."""
    for split, count in (("train", per_class), ("test", test_per_class)):
        for label, name in enumerate(classes):
            for index in range(count):
                save_png(root / split / name / f"{index:04d}.png", class_image(label, index, size, channels))
    return root


def npz_arrays(classes: int = 4, train: int = 48, test: int = 16, size: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    """x_train (N, H, W, 1) uint8 as Keras gives them, y_train, x_test, y_test: balanced classes, each
    image its class's level plus noise."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in (("train", train), ("test", test)):
        labels = rng.permutation(np.arange(count) % classes)
        images = np.stack([class_image(int(label), index, size, 1) for index, label in enumerate(labels)])
        noise = rng.integers(0, 20, size=images.shape)
        arrays[f"x_{split}"] = np.clip(images.astype(np.int64) + noise, 0, 255).astype(np.uint8)
        arrays[f"y_{split}"] = labels.astype(np.int64)
    return arrays


def write_npz(path: Path, **arrays: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path
