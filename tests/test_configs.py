"""The shipped experiment configs: the paper's settings exactly, and the demo `make demo` runs."""

from pathlib import Path

from genetic_cnn.config import load_config

CONFIGS = Path(__file__).parent.parent / "experiments" / "configs"


def test_the_demo_is_the_config_file_make_demo_runs_and_says_so() -> None:
    makefile = (CONFIGS.parent.parent / "Makefile").read_text()
    assert "genetic-cnn evolve --config experiments/configs/demo.toml" in makefile
    assert "demo" in (CONFIGS / "demo.toml").read_text().splitlines()[0].lower()
    demo = load_config(CONFIGS / "demo.toml")
    assert (demo.data.dataset, demo.space.preset, demo.evolution.population, demo.evolution.generations) == ("digits", "digits", 10, 5)


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


# The files the README, docs/, the Makefile and experiments/ point users to.
SHIPPED = {"demo.toml", "mnist_paper.toml", "cifar10_paper.toml", "compare_mnist.toml", "mnist_oneshot.toml",
           "table_digits.toml", "table_mnist_oneshot.toml"}


def test_the_table_configs_are_the_demos_training_and_the_one_shot_protocol() -> None:
    demo, digits = load_config(CONFIGS / "demo.toml"), load_config(CONFIGS / "table_digits.toml")
    assert (digits.train, digits.data, digits.space) == (demo.train, demo.data, demo.space)
    oneshot, table = load_config(CONFIGS / "mnist_oneshot.toml"), load_config(CONFIGS / "table_mnist_oneshot.toml")
    assert (table.evaluation, table.train, table.data, table.space) == (oneshot.evaluation, oneshot.train, oneshot.data, oneshot.space)


def test_the_one_shot_config_is_the_papers_protocol_with_one_shot_fitness() -> None:
    paper, oneshot = load_config(CONFIGS / "mnist_paper.toml"), load_config(CONFIGS / "mnist_oneshot.toml")
    assert oneshot.evaluation.method == "one-shot" and paper.evaluation.method == "standalone"
    assert (oneshot.evolution, oneshot.data, oneshot.space) == (paper.evolution, paper.data, paper.space)


def test_every_shipped_config_loads() -> None:
    paths = sorted(CONFIGS.glob("*.toml"))
    assert SHIPPED <= {path.name for path in paths}, f"missing from {CONFIGS}: {SHIPPED - {p.name for p in paths}}"
    for path in paths:
        load_config(path)  # a bad file raises a UserError naming the key
