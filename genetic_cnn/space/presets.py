"""Base networks into which a genome's stages are decoded (paper, sections 3.1 and 4).

A preset is a plain frozen dataclass: copy one with ``dataclasses.replace`` to change the
channels, kernels, head, input shape or number of classes. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class NetworkPreset:
    """Everything ``build_network`` needs besides the genome.

    Attributes:
        name: how configs and the CLI refer to it.
        nodes: ordinary nodes per stage (K_s); the genome must match.
        channels: output channels of every convolution in each stage.
        first_kernel / first_padding: the stage's input convolution, kept from the base
            network (LeNet: 5x5 unpadded; CIFAR: 5x5 padded 2).
        node_kernel: every other convolution in a stage (3x3, padded to keep the size).
        pool_kernel / pool_stride: max pooling after each stage.
        hidden: widths of the fully connected layers before the classifier.
        dropout: dropout before the classifier.
        input_shape: (channels, height, width) of one image.
        num_classes: outputs of the classifier.
    """

    name: str
    nodes: tuple[int, ...]
    channels: tuple[int, ...]
    first_kernel: int = 5
    first_padding: int = 0
    node_kernel: int = 3
    pool_kernel: int = 2
    pool_stride: int = 2
    hidden: tuple[int, ...] = (500,)
    dropout: float = 0.5
    input_shape: tuple[int, int, int] = (1, 28, 28)
    num_classes: int = 10

    def __post_init__(self) -> None:
        if len(self.nodes) != len(self.channels):
            raise ValueError(
                f"preset {self.name!r}: {len(self.nodes)} stages in nodes but {len(self.channels)} in channels"
            )
        height, width = self.feature_size()
        if height < 1 or width < 1:
            raise ValueError(
                f"preset {self.name!r}: input {self.input_shape} shrinks to {height}x{width} "
                "before the head; use padding, smaller kernels or fewer stages"
            )

    def feature_size(self) -> tuple[int, int]:
        """Spatial size of the last stage's pooled output."""
        _, height, width = self.input_shape
        for _ in self.nodes:
            height = height + 2 * self.first_padding - self.first_kernel + 1
            width = width + 2 * self.first_padding - self.first_kernel + 1
            height = (height - self.pool_kernel) // self.pool_stride + 1
            width = (width - self.pool_kernel) // self.pool_stride + 1
        return height, width

    def for_input(self, input_shape: tuple[int, int, int], num_classes: int) -> NetworkPreset:
        """The same preset for another dataset's image shape and number of classes."""
        return replace(self, input_shape=tuple(input_shape), num_classes=num_classes)  # type: ignore[arg-type]


MNIST = NetworkPreset(
    name="mnist",
    nodes=(3, 5),
    channels=(20, 50),
    first_kernel=5,
    first_padding=0,
    pool_kernel=2,
    pool_stride=2,
    hidden=(500,),
    input_shape=(1, 28, 28),
)
"""LeNet's stages (C5@20, C5@50, unpadded, max-pool 2), FC500 - dropout 0.5 - FC10."""

CIFAR10 = NetworkPreset(
    name="cifar10",
    nodes=(3, 4, 5),
    channels=(8, 16, 32),
    first_kernel=5,
    first_padding=2,
    pool_kernel=3,
    pool_stride=2,
    hidden=(128,),
    input_shape=(3, 32, 32),
)
"""The paper's CIFAR-10 search network: 8/16/32 channels, 5x5 padded 2, max-pool 3 stride 2, FC128."""

CIFAR10_LARGE = replace(CIFAR10, name="cifar10-large", channels=(64, 128, 256), hidden=(1024,))
"""The paper's final CIFAR-10 network for retraining a found genome: 64/128/256, FC1024."""

DIGITS = NetworkPreset(
    name="digits",
    nodes=(3, 5),
    channels=(8, 16),
    first_kernel=3,
    first_padding=1,
    pool_kernel=2,
    pool_stride=2,
    hidden=(64,),
    input_shape=(1, 8, 8),
)
"""MNIST's search space shrunk for scikit-learn's 8x8 digits: the quick demo that needs no download."""

BALANCED_MAX_NODES = 6
"""Balanced path sampling (``evaluation.supernet_sampling``) enumerates a stage's strings: 2^15 for 6
nodes, 2^21 for 7 is too many; a preset with a larger stage samples uniformly."""

PRESETS: dict[str, NetworkPreset] = {preset.name: preset for preset in (MNIST, CIFAR10, CIFAR10_LARGE, DIGITS)}


def get_preset(name: str) -> NetworkPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def fit_to_data(preset: NetworkPreset, dataset: str, input_shape: tuple[int, int, int], num_classes: int) -> NetworkPreset:
    """``preset`` for ``dataset``'s images; a one-line ``UserError`` naming the fix when it cannot take them."""
    from genetic_cnn.errors import UserError

    try:
        return preset.for_input(input_shape, num_classes)
    except ValueError:
        pass
    fits = [name for name, other in PRESETS.items() if other.input_shape == tuple(input_shape)]
    fix = f"use space.preset = {fits[0]!r}" if fits else "use a preset with less pooling, or larger images"
    shape = "x".join(str(size) for size in input_shape)
    made = "x".join(str(size) for size in preset.input_shape)
    raise UserError(
        f"space.preset = {preset.name!r} is made for {made} images but data.dataset = {dataset!r} has {shape}: "
        f"its convolutions and pooling shrink them to nothing; {fix} (or pick another data.dataset)"
    )


def size_warning(preset: NetworkPreset, dataset: str, input_shape: tuple[int, int, int]) -> str | None:
    """A one-line warning when the data's images are much larger than the preset was made for."""
    _, height, width = input_shape
    _, made_height, made_width = preset.input_shape
    if height * width < 4 * made_height * made_width:
        return None
    fits = [name for name, other in PRESETS.items() if other.input_shape == tuple(input_shape)]
    better = f"; space.preset = {fits[0]!r} is made for them" if fits else ""
    return (
        f"space.preset = {preset.name!r} is made for {made_height}x{made_width} images and data.dataset = {dataset!r} "
        f"has {height}x{width}: the network will be small for this data{better}"
    )
