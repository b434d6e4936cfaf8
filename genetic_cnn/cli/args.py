"""What the commands share: --config/--set, and for ``train`` and ``lr-find`` GENOME, --preset and --dataset.

No torch at import time, so ``genetic-cnn --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from collections.abc import Sequence
from pathlib import Path

from genetic_cnn.config import Config, load_config

PRESET_DATASETS = {"mnist": "mnist", "cifar10": "cifar10", "cifar10-large": "cifar10", "digits": "digits"}
"""The dataset a preset is made for, used when neither --dataset nor the config names one."""


def add_common_arguments(parser: argparse.ArgumentParser, genome_optional: bool = False) -> None:
    """GENOME (optional with ``genome_optional``, when another flag can name it), --preset, --dataset, --config and --set."""
    parser.add_argument("genome", nargs="?" if genome_optional else None,
                        help="e.g. '1-01|0-01-100|0-11-101-0001' (quote it: | is a shell pipe)")  # fmt: skip
    parser.add_argument(
        "--preset", help="network preset: mnist | cifar10 | cifar10-large | digits (default: the config's)"
    )
    parser.add_argument(
        "--dataset", help="digits | mnist | fashion-mnist | cifar10 | cifar100 | svhn | synthetic | folder (data.root/train/<class>/) "
        "| arrays (data.root = a .npz) (default: the preset's)"
    )
    add_config_arguments(parser, "TOML config (data, train and run sections are used)")


def add_config_arguments(parser: argparse.ArgumentParser, config_help: str) -> None:
    """--config FILE and repeatable --set KEY=VALUE, as every command that reads a config takes them."""
    parser.add_argument("--config", type=Path, help=config_help)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set train.batch_size=256 (repeatable)")  # fmt: skip


def resolve_config(
    config_file: str | Path | None, overrides: Sequence[str], preset: str | None, dataset: str | None
) -> Config:
    """The command's config: the file, ``--set`` overrides, then ``--preset`` and ``--dataset``.

    When nothing names the dataset, the preset's own is used (cifar10-large trains on CIFAR-10).
    """
    extra = list(overrides)
    if preset is not None:
        extra.append(f"space.preset={json.dumps(preset)}")
    if dataset is not None:
        extra.append(f"data.dataset={json.dumps(dataset)}")
    config = load_config(config_file, extra)
    if dataset is None and not _names_dataset(config_file, overrides):
        own = PRESET_DATASETS.get(config.space.preset)
        if own and own != config.data.dataset:
            config = load_config(config_file, [*extra, f"data.dataset={json.dumps(own)}"])
    return config


def _names_dataset(config_file: str | Path | None, overrides: Sequence[str]) -> bool:
    if any(item.split("=", 1)[0].strip() == "data.dataset" for item in overrides):
        return True
    if config_file is None:
        return False
    raw = tomllib.loads(Path(config_file).read_text(encoding="utf-8"))  # load_config has checked it
    return isinstance(raw.get("data"), dict) and "dataset" in raw["data"]
