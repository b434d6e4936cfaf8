"""What the tools that train one genome (``train``, ``lr-find``) check first: the genome against the
preset, and the preset against the data. No torch at import time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from genetic_cnn.config import Config
from genetic_cnn.errors import UserError
from genetic_cnn.space.presets import NetworkPreset, fit_to_data

if TYPE_CHECKING:
    from genetic_cnn.data.datasets import Datasets
    from genetic_cnn.space.genome import Genome


def parse_genome(genome: Genome | str, preset: NetworkPreset) -> Genome:
    """The genome, checked against the preset's stages; a ``UserError`` when it does not fit."""
    from genetic_cnn.space.genome import Genome

    try:
        if isinstance(genome, str):
            return Genome.from_string(genome, nodes=preset.nodes)
        if genome.nodes != preset.nodes:
            raise ValueError(
                f"genome {genome} has nodes {genome.nodes} per stage, preset {preset.name!r} expects {preset.nodes}"
            )
        return genome
    except ValueError as error:
        raise UserError(str(error)) from None


def preset_for_data(config: Config, datasets: Datasets) -> NetworkPreset:
    """The config's preset fitted to the data's input shape and classes; a ``UserError`` when it cannot be."""
    return fit_to_data(config.preset(), datasets.name, datasets.input_shape, datasets.num_classes)
