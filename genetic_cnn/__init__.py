"""genetic-cnn: neural architecture search by genetic algorithm (Xie & Yuille, 2017)."""

from genetic_cnn.genome import Genome
from genetic_cnn.presets import CIFAR10, CIFAR10_LARGE, DIGITS, MNIST, PRESETS, NetworkPreset, get_preset

__version__ = "0.1.0"

__all__ = [
    "CIFAR10",
    "CIFAR10_LARGE",
    "DIGITS",
    "MNIST",
    "PRESETS",
    "Genome",
    "NetworkPreset",
    "get_preset",
    "build_network",
]


def __getattr__(name: str):  # torch is imported only when the network builder is asked for
    if name == "build_network":
        from genetic_cnn.network import build_network

        return build_network
    raise AttributeError(f"module 'genetic_cnn' has no attribute {name!r}")
