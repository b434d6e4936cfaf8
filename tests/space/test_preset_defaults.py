"""Settings that follow the preset unless the config sets them (Xie & Yuille, "Genetic CNN", ICCV 2017, arXiv:1703.01513, sections 4.1 and 4.2)."""

from __future__ import annotations

import pytest

from genetic_cnn.config import load_config


@pytest.mark.parametrize("preset", ["cifar10", "cifar10-large"])
def test_cifar_presets_get_the_papers_cifar_operator_rates(preset: str) -> None:
    evolution = load_config(None, [f"space.preset={preset}"]).evolution
    assert (evolution.p_mutation, evolution.q_mutation, evolution.p_crossover, evolution.q_crossover) == (0.8, 0.05, 0.2, 0.2)


@pytest.mark.parametrize("preset", ["mnist", "digits"])
def test_mnist_presets_get_the_papers_mnist_operator_rates(preset: str) -> None:
    evolution = load_config(None, [f"space.preset={preset}"]).evolution
    assert (evolution.q_mutation, evolution.q_crossover) == (0.1, 0.3)


def test_a_rate_the_config_sets_wins_over_the_preset() -> None:
    evolution = load_config(None, ["space.preset=cifar10", "evolution.q_mutation=0.2"]).evolution
    assert (evolution.q_mutation, evolution.q_crossover) == (0.2, 0.2)
