"""The shipped experiment configs: the paper's settings exactly, and the demo the CLI runs."""

from pathlib import Path

from genetic_cnn.config import DEMO, load_config

CONFIGS = Path(__file__).parent.parent / "experiments" / "configs"


def test_demo_file_is_what_evolve_runs_without_a_config() -> None:
    assert load_config(CONFIGS / "demo.toml") == load_config(None, defaults=DEMO)


def test_mnist_paper_settings() -> None:
    config = load_config(CONFIGS / "mnist_paper.toml")
    e = config.evolution
    assert (e.population, e.generations, e.p_mutation, e.q_mutation, e.p_crossover, e.q_crossover) == (20, 50, 0.8, 0.1, 0.2, 0.3)
    assert (e.init, e.identity, e.reevaluate, e.strategy) == ("random", "string", "retrain", "genetic")
    assert config.train.schedule == ((20, 1e-3), (4, 1e-4), (1, 1e-5))
    assert config.preset().nodes == (3, 5) and config.preset().channels == (20, 50)
    assert (config.data.dataset, config.data.validation) == ("mnist", 10000)


def test_cifar10_paper_settings() -> None:
    config = load_config(CONFIGS / "cifar10_paper.toml")
    e = config.evolution
    assert (e.population, e.generations, e.p_mutation, e.q_mutation, e.p_crossover, e.q_crossover) == (20, 50, 0.8, 0.05, 0.2, 0.2)
    assert config.train.schedule == ((120, 1e-2), (60, 1e-3), (40, 1e-4), (20, 1e-5))
    assert config.preset().nodes == (3, 4, 5) and config.preset().channels == (8, 16, 32)
    assert (config.data.dataset, config.data.validation) == ("cifar10", 10000)


def test_every_shipped_config_loads() -> None:
    for path in CONFIGS.glob("*.toml"):
        load_config(path)
