"""What the tools that train one genome (``train``, ``lr-find``) check besides the genome (which
``space.genome.parse_genome`` checks against the preset): the preset against the data. No torch at import time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from genetic_cnn.config import Config
from genetic_cnn.space.presets import NetworkPreset, fit_to_data

if TYPE_CHECKING:
    from genetic_cnn.data.datasets import Datasets


def preset_for_data(config: Config, datasets: Datasets) -> NetworkPreset:
    """The config's preset fitted to the data's input shape and classes; a ``UserError`` when it cannot be."""
    return fit_to_data(config.preset(), datasets.name, datasets.input_shape, datasets.num_classes)
