"""Experiment configuration: frozen dataclasses, TOML in and out, validated with one-line errors.

A config has six sections, ``data``, ``space``, ``evolution``, ``train``, ``evaluation`` and ``run``. Every
key has a documented default; training defaults depend on the network preset (the paper's
schedules: Xie & Yuille, "Genetic CNN", ICCV 2017, arXiv:1703.01513,
sections 4.1 and 4.2). No torch here.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import tomli_w

from genetic_cnn.errors import UserError
from genetic_cnn.space.presets import BALANCED_MAX_NODES, PRESETS, NetworkPreset, get_preset

# The allowed values of every key with a fixed set of choices, defined here once.
DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "cifar100", "svhn", "synthetic", "folder", "arrays")
LAYOUTS = ("auto", "nchw", "nhwc")
STRATEGIES = ("genetic", "random", "regularized", "calibration", "tabulation", "nsga2")
OBJECTIVES = ("accuracy", "flops", "params", "latency")
"""``evolution.objectives``: accuracy is maximised; flops and params (``genetic_cnn.space.cost``, counted) and
latency (``genetic_cnn.fitness.latency``, measured on the run's device) are minimised."""
MULTI_OBJECTIVE_STRATEGIES = ("nsga2", "random")
CONSTRAINED_STRATEGIES = ("genetic", "random", "regularized", "nsga2")
SELECTIONS = ("roulette", "tournament")
INIT_MODES = ("random", "zeros")
IDENTITIES = ("string", "architecture")
REEVALUATIONS = ("retrain", "reuse")
SCHEDULERS = ("piecewise", "step", "exponential", "cosine", "plateau")
OPTIMIZERS = ("adam", "sgd")
EXECUTORS = ("auto", "serial", "processes", "ray")
METHODS = ("standalone", "one-shot", "table")
"""``evaluation.method``: each implemented by a module of ``genetic_cnn.fitness.methods`` (``fitness.methods.method_module``)."""
SAMPLING_RULES = ("uniform", "balanced")


SUPERNET_SCHEDULE: tuple[tuple[int, float], ...] = ((8, 1e-3), (2, 1e-4))
"""The MNIST preset's supernet schedule (the default of ``evaluation.supernet_schedule``): the paper's
Adam phases for MNIST (1e-3, then a tenth of it) in 10 epochs instead of 25, so that training the
supernet once costs less than one standalone evaluation of the paper's protocol; more epochs
would train each of the many paths longer, and ``benchmarks/oneshot_rank.py`` measures what a
schedule's ranking is worth."""


class ConfigError(UserError, ValueError):
    """A config value that cannot be used; the message names the key and how to fix it."""


@dataclass(frozen=True)
class DataConfig:
    """Which images the networks are trained and measured on."""

    dataset: str = "digits"
    """digits (bundled, no download) | mnist | fashion-mnist | cifar10 | cifar100 | svhn | synthetic |
    folder (your images: ``root/train/<class>/*.png``) | arrays (your ``.npz``: ``root`` is the file)."""
    root: str = "data"
    """Folder of torchvision datasets (``root/MNIST/raw/...``, ``root/cifar-10-batches-py``), of an image
    folder (``root/train/<class>/...``, optional ``root/test/<class>/...``), or the ``.npz`` file of arrays."""
    download: bool = False
    """Let torchvision download missing files (needs internet)."""
    subset: int = 0
    """Use only this many training images (before the validation split); 0 = all."""
    test_subset: int = 0
    """Use only this many test images; 0 = all."""
    validation: float = 0
    """Images held out of the training set for fitness: a count, a fraction when below 1, or 0 for
    automatic (10,000 as in the paper when the training set has at least 50,000 images, else 1/6)."""
    image_size: int = 0
    """Resize every image to image_size x image_size pixels; 0 = keep the size they have."""
    layout: str = "auto"
    """Arrays' axis order: auto (the channel axis is axis 1 or the last one, whichever is smaller than the
    two others) | nchw | nhwc. Only for arrays given as numpy (``.npz`` files, ``start_run(data=...)``)."""
    split_seed: int = -1
    """Seed of the data's random choices (subsets, validation split, a seeded test split); -1 = the run
    seed. ``genetic-cnn tabulate`` fixes it, so that a table's seeds vary the training only."""


@dataclass(frozen=True)
class SpaceConfig:
    """The search space: a network preset and, optionally, changes to it."""

    preset: str = "digits"
    """mnist | cifar10 | cifar10-large | digits; see ``genetic_cnn.space.presets``."""
    nodes: tuple[int, ...] = ()
    """Ordinary nodes per stage; empty = the preset's."""
    channels: tuple[int, ...] = ()
    """Channels per stage; empty = the preset's."""


@dataclass(frozen=True)
class EvolutionConfig:
    """The genetic algorithm (paper, Algorithm 1); defaults are the paper's MNIST settings, and q_M and
    q_C follow the preset (``PRESET_EVOLUTION_DEFAULTS``: CIFAR-10's 0.05 and 0.2) unless set."""

    strategy: str = "genetic"
    """genetic (the paper) | random (uniform genomes at the same budget) | regularized (aging evolution,
    Real et al. 2019: tournament of ``sample_size``, the winner's mutated copy replaces the oldest) |
    calibration (the same N architectures, spread over convolution counts, retrained every generation:
    ``genetic-cnn calibrate``) | tabulation (every architecture of the space once: ``genetic-cnn tabulate``) |
    nsga2 (several objectives, NSGA-II: non-dominated sorting and crowding distance, binary tournaments, the
    paper's crossover and mutation, the best N of parents and children survive; ``docs/multi_objective.md``)."""
    selection: str = "roulette"
    """Genetic strategy: roulette (the paper, P proportional to r_n - r_min) | tournament (each parent the
    fittest of ``sample_size`` individuals drawn uniformly with replacement)."""
    sample_size: int = 5
    """Tournament size of regularized evolution and of tournament selection (Real et al.: S)."""
    population: int = 20
    generations: int = 50
    p_crossover: float = 0.2
    q_crossover: float = 0.3
    p_mutation: float = 0.8
    q_mutation: float = 0.1
    init: str = "random"
    """random (Bernoulli 0.5 per bit) | zeros."""
    identity: str = "string"
    """What counts as the same individual: string (the exact bits) | architecture (equivalent strings)."""
    reevaluate: str = "retrain"
    """retrain a known individual and average (the paper) | reuse its mean without training."""
    objectives: tuple[str, ...] = ("accuracy",)
    """What the search optimises: ["accuracy"] (one objective, every strategy) or accuracy and costs to
    minimise, e.g. ["accuracy", "flops"], ["accuracy", "latency"] or ["accuracy", "flops", "params"] (strategy
    nsga2, or random for a baseline): the run keeps the Pareto front (summary.json, report,
    ``train --run RUN --front-rank K``). Latency is timed on the run's device (``genetic_cnn.fitness.latency``)."""
    max_flops: int = 0
    """Forward FLOPs per image (a multiply-add counts 2) a network may have; 0 = no limit. Counted from the
    genome (``genetic_cnn.space.cost``); a network above it is never trained nor selected."""
    max_params: int = 0
    """Parameters a network may have; 0 = no limit. As ``max_flops``."""
    max_latency_ms: float = 0.0
    """Milliseconds one forward pass of ``latency_batch`` images may take on the run's device; 0 = no limit.
    Measured once per architecture and stored in the run (``genetic_cnn.fitness.latency``); a network above it is
    never trained nor selected."""
    latency_batch: int = 1
    """Images per forward pass whose time is the latency (objective ``latency``, ``max_latency_ms``);
    1 = one image at a time, as a deployed classifier answers single requests."""


@dataclass(frozen=True)
class TrainConfig:
    """Training of one individual from scratch. The paper gives only the schedule."""

    schedule: tuple[tuple[int, float], ...] = ((20, 1e-3), (4, 1e-4), (1, 1e-5))
    """[[epochs, learning_rate], ...]; total epochs = the sum; the first rate is the base rate."""
    scheduler: str = "piecewise"
    """piecewise (the schedule as given) | step | exponential | cosine | plateau."""
    optimizer: str = "adam"
    momentum: float = 0.9
    """SGD momentum."""
    weight_decay: float = 0.0
    batch_size: int = 128
    eval_batch_size: int = 1000
    gamma: float = 0.1
    """Decay factor of step, exponential and plateau schedulers."""
    step_epochs: int = 10
    """Epochs between decays of the step scheduler."""
    plateau_patience: int = 2
    early_stopping: int = 0
    """Stop after this many epochs without a lower validation loss; 0 = off."""
    learning_curves: bool = True
    """Measure the validation accuracy after every epoch, not only after the last, for the learning
    curves kept in the run database (one validation pass per epoch; training is unchanged). Off: the
    curves hold the training loss of every epoch and the validation accuracy of the last."""


@dataclass(frozen=True)
class EvaluationConfig:
    """How an individual's fitness is measured (``genetic_cnn.fitness.methods``)."""

    method: str = "standalone"
    """standalone (the paper: every evaluation trains the network from scratch) | one-shot (the
    network's path through a weight-sharing supernet trained once per run; ``genetic_cnn.fitness.oneshot``) |
    table (one of the architecture's measured seeds, read from ``table``; ``genetic_cnn.fitness.table``)."""
    supernet_schedule: tuple[tuple[int, float], ...] = SUPERNET_SCHEDULE
    """One-shot: [[epochs, learning_rate], ...] of the supernet's training, with ``train``'s optimizer,
    scheduler and batch size; the default follows the preset (``PRESET_EVALUATION_DEFAULTS``)."""
    supernet_sampling: str = "uniform"
    """One-shot: the path drawn for each mini-batch: uniform (every bit Bernoulli 0.5, as in single-path
    one-shot) | balanced (each stage's convolution count uniform, then a string with that count)."""
    calibration_images: int = 2000
    """One-shot: training images on which a path's batch-norm statistics are recomputed before it is measured."""
    table: str = ""
    """Table: the name of a table shipped with the package (``digits-standalone``, ``mnist-oneshot``) or the
    path of a table file written by ``genetic-cnn tabulate``; fitness is read from it instead of training."""


@dataclass(frozen=True)
class RunConfig:
    """Where and how the run executes."""

    seed: int = 0
    device: str = "auto"
    """auto (cuda when available) | cpu | cuda | cuda:N."""
    executor: str = "auto"
    """auto (CPU: one single-thread worker process per core when a generation keeps them busy;
    GPUs: one worker per GPU) | serial | processes | ray."""
    workers: int = 0
    """Worker processes for ``processes``; 0 = one per GPU, or 1 on CPU."""
    threads: int = 0
    """Torch threads per worker; 0 = the cores divided among workers."""
    ray_address: str = ""
    """Ray cluster address (e.g. ``auto``); empty = start a local Ray instance."""
    channels_last: bool = True
    """Train and evaluate in the channels-last memory format: faster convolutions on CPU and GPU;
    the same results up to float rounding (a run stays deterministic for its seed)."""
    reuse_memory: bool = False
    """On CPU under Linux, keep freed memory in the process for the next training step instead of
    returning it to the system (glibc mallopt); the results do not change. Off by default: it removes
    the page faults but measured no speed-up outside the noise with one thread per evaluation
    (benchmarks/reuse_memory.py, benchmarks/README.md)."""
    gpus_per_evaluation: float = 1.0
    """Ray GPU share of one evaluation; below 1 lets small networks share a GPU."""
    out: str = ""
    """Run folder; empty = ``runs/<dataset>-<strategy>-<fitness method>-<time>``."""
    tensorboard: bool = False
    """Also write TensorBoard event files under ``RUN/tensorboard/`` (needs the ``tensorboard`` extra)."""


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    space: SpaceConfig = field(default_factory=SpaceConfig)
    evolution: EvolutionConfig = field(default_factory=EvolutionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def preset(self) -> NetworkPreset:
        """The network preset with this config's changes applied."""
        preset = get_preset(self.space.preset)
        return replace(preset, nodes=self.space.nodes or preset.nodes, channels=self.space.channels or preset.channels)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {
            section.name: _plain(dataclasses.asdict(getattr(self, section.name))) for section in fields(self)
        }

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "space": SpaceConfig,
    "evolution": EvolutionConfig,
    "train": TrainConfig,
    "evaluation": EvaluationConfig,
    "run": RunConfig,
}

# Training defaults that follow the preset unless the config sets them (Xie & Yuille, "Genetic CNN", ICCV 2017,
# arXiv:1703.01513, sections 4.1 and 4.2).
PRESET_TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "mnist": {"schedule": ((20, 1e-3), (4, 1e-4), (1, 1e-5)), "optimizer": "adam", "batch_size": 128},
    "cifar10": {
        "schedule": ((120, 1e-2), (60, 1e-3), (40, 1e-4), (20, 1e-5)),
        "optimizer": "sgd",
        "weight_decay": 5e-4,
        "batch_size": 128,
    },
    "cifar10-large": {
        "schedule": ((120, 1e-2), (60, 1e-3), (40, 1e-4), (20, 1e-5)),
        "optimizer": "sgd",
        "weight_decay": 5e-4,
        "batch_size": 128,
    },
    "digits": {"schedule": ((8, 3e-3), (2, 3e-4)), "optimizer": "adam", "batch_size": 64},
}


# Operator rates that follow the preset unless the config sets them (Xie & Yuille, "Genetic CNN", ICCV 2017,
# arXiv:1703.01513, sections 4.1 and 4.2: CIFAR-10 mutates and crosses less than MNIST).
PRESET_EVOLUTION_DEFAULTS: dict[str, dict[str, Any]] = {
    "mnist": {"q_mutation": 0.1, "q_crossover": 0.3},
    "digits": {"q_mutation": 0.1, "q_crossover": 0.3},
    "cifar10": {"q_mutation": 0.05, "q_crossover": 0.2},
    "cifar10-large": {"q_mutation": 0.05, "q_crossover": 0.2},
}
# The supernet trains longer than one standalone network (it trains every path) but once per run.
PRESET_EVALUATION_DEFAULTS: dict[str, dict[str, Any]] = {
    "mnist": {"supernet_schedule": SUPERNET_SCHEDULE},
    "digits": {"supernet_schedule": ((16, 3e-3), (4, 3e-4))},
    "cifar10": {"supernet_schedule": ((120, 1e-2), (60, 1e-3), (40, 1e-4))},
    "cifar10-large": {"supernet_schedule": ((120, 1e-2), (60, 1e-3), (40, 1e-4))},
}
PRESET_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "train": PRESET_TRAIN_DEFAULTS,
    "evolution": PRESET_EVOLUTION_DEFAULTS,
    "evaluation": PRESET_EVALUATION_DEFAULTS,
}


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively, for TOML and JSON."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, defaults: dict[str, Any] | None = None
) -> Config:
    """Read a TOML config (or ``defaults``, else the built-in defaults), apply ``section.key=value`` overrides, validate."""
    raw: dict[str, Any] = {section: dict(values) for section, values in (defaults or {}).items()}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; pass an existing .toml file to --config")
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
    for override in overrides or []:
        section, key, value = parse_override(override)
        raw.setdefault(section, {})[key] = value
    return config_from_dict(raw)


def parse_override(text: str) -> tuple[str, str, Any]:
    """``evolution.population=10`` -> ("evolution", "population", 10); the value is read as TOML."""
    name, sep, value_text = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not key:
        raise ConfigError(f"override {text!r} is not of the form section.key=value (e.g. evolution.population=10)")
    try:
        value = tomllib.loads(f"value = {value_text.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        value = value_text.strip()  # a bare word such as cpu or mnist
    return section, key, value


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Build and validate a Config from nested dicts, e.g. parsed TOML."""
    if not isinstance(raw, dict):
        raise ConfigError("a config must be a table of sections")
    for section in raw:
        if section not in SECTIONS:
            raise ConfigError(f"unknown config section [{section}]; sections are {', '.join(SECTIONS)}")
    space = raw.get("space", {})
    # The preset decides the training and operator defaults, also when the config names none (digits).
    preset_name = space.get("preset", SpaceConfig.preset) if isinstance(space, dict) else None
    sections: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        values = raw.get(name, {})
        if not isinstance(values, dict):
            raise ConfigError(f"config [{name}] must be a table of keys, got {type(values).__name__}")
        if name in PRESET_DEFAULTS and isinstance(preset_name, str):
            values = {**PRESET_DEFAULTS[name].get(preset_name, {}), **values}
        sections[name] = _build_section(name, cls, values)
    config = Config(**sections)
    validate(config)
    return config


def _build_section(section: str, cls: type, values: dict[str, Any]) -> Any:
    hints = get_type_hints(cls)
    known = {item.name for item in fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown key {section}.{key}; known keys: {', '.join(sorted(known))}")
        kwargs[key] = _coerce(f"{section}.{key}", value, hints[key])
    return cls(**kwargs)


def _coerce(name: str, value: Any, hint: Any) -> Any:
    origin = get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value!r}")
        return float(value) if not isinstance(value, int) else value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")
        return value
    if origin is tuple:
        args = get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(f"{name}[{i}]", item, args[0]) for i, item in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{name} must be a list of {len(args)} items, got {value!r}")
        return tuple(_coerce(f"{name}[{i}]", item, arg) for i, (item, arg) in enumerate(zip(value, args)))
    raise TypeError(f"no coercion for {hint}")  # a programming error, not a user's


def training_devices(device: str, count_gpus: Callable[[], int]) -> tuple[str, ...]:
    """What ``run.device`` trains on: the one reading of ``auto`` and ``cuda``, for every place that needs one.

    ``count_gpus`` says how many GPUs are seen (torch's count in this process, or a Ray cluster's); it is
    asked only when the answer depends on it (``auto``, ``cuda``), so ``cpu`` never touches CUDA.
    ``("cpu",)`` for ``cpu``, and for ``auto`` without a GPU; every GPU (``cuda:0``, ``cuda:1``, ...) for
    ``auto`` with GPUs and for ``cuda``, which leaves none when none is seen (each caller says so in its
    own words); the one GPU ``cuda:N`` names, whether or not it is there (the callers check that).
    Any other name is a ``ValueError`` with the one-line message the config gives.
    """
    if device == "cpu":
        return ("cpu",)
    if device in ("auto", "cuda"):
        gpus = count_gpus()
        if device == "auto" and gpus <= 0:
            return ("cpu",)
        return tuple(f"cuda:{index}" for index in range(gpus))
    if device.startswith("cuda:"):
        return (device,)
    raise ValueError(f"run.device = {device!r} is not one of auto, cpu, cuda, cuda:N")


def _choice(name: str, value: str, choices: tuple[str, ...] | list[str]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} = {value!r} is not one of {', '.join(choices)}")


def _probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} = {value} is a probability and must lie in [0, 1]")


def validate(config: Config) -> None:
    """Reject values that cannot run, with one line naming the key and the allowed values."""
    data, space, evolution, train, run = config.data, config.space, config.evolution, config.train, config.run
    _choice("data.dataset", data.dataset, DATASETS)
    for name, value in (("data.subset", data.subset), ("data.test_subset", data.test_subset)):
        if value < 0:
            raise ConfigError(f"{name} = {value} must be 0 (all images) or a positive count")
    if data.split_seed < -1:
        raise ConfigError(f"data.split_seed = {data.split_seed} must be -1 (the run seed) or a seed of 0 or more")
    if data.image_size < 0:
        raise ConfigError(f"data.image_size = {data.image_size} must be 0 (keep the size) or a positive number of pixels")
    _choice("data.layout", data.layout, LAYOUTS)
    if data.validation < 0:
        raise ConfigError(f"data.validation = {data.validation} must be 0 (automatic), a count or a fraction in (0, 1)")
    if data.validation >= 1 and (isinstance(data.validation, float) or data.validation != int(data.validation)):
        # 2.0 is not "two images" by accident: a count is written without a decimal point.
        raise ConfigError(
            f"data.validation = {data.validation} is neither a count nor a fraction: write a whole count of images "
            "without a decimal point (e.g. 10000) or a fraction below 1 (e.g. 0.2)"
        )
    _choice("space.preset", space.preset, list(PRESETS))
    if any(count < 2 for count in space.nodes):
        raise ConfigError(f"space.nodes = {list(space.nodes)}: every stage needs at least 2 nodes")
    if any(count < 1 for count in space.channels):
        raise ConfigError(f"space.channels = {list(space.channels)}: channels must be positive")
    try:
        config.preset()
    except ValueError as error:
        raise ConfigError(f"space: {error}") from None
    _choice("evolution.strategy", evolution.strategy, STRATEGIES)
    if evolution.population < 2:
        raise ConfigError(f"evolution.population = {evolution.population} must be at least 2")
    if evolution.generations < 0:
        raise ConfigError(f"evolution.generations = {evolution.generations} must be 0 or more")
    for key in ("p_crossover", "q_crossover", "p_mutation", "q_mutation"):
        _probability(f"evolution.{key}", getattr(evolution, key))
    _choice("evolution.selection", evolution.selection, SELECTIONS)
    if evolution.sample_size < 1:
        raise ConfigError(f"evolution.sample_size = {evolution.sample_size} must be at least 1")
    _choice("evolution.init", evolution.init, INIT_MODES)
    _choice("evolution.identity", evolution.identity, IDENTITIES)
    _choice("evolution.reevaluate", evolution.reevaluate, REEVALUATIONS)
    _check_objectives(config)
    _check_constraints(config)
    _check_schedule("train.schedule", train.schedule)
    _choice("train.scheduler", train.scheduler, SCHEDULERS)
    _choice("train.optimizer", train.optimizer, OPTIMIZERS)
    for key in ("batch_size", "eval_batch_size", "step_epochs"):
        if getattr(train, key) < 1:
            raise ConfigError(f"train.{key} = {getattr(train, key)} must be at least 1")
    for key in ("weight_decay", "momentum"):
        if getattr(train, key) < 0:
            raise ConfigError(f"train.{key} = {getattr(train, key)} must be 0 or more")
    if not 0 < train.gamma <= 1:
        raise ConfigError(f"train.gamma = {train.gamma} must lie in (0, 1]")
    for key in ("plateau_patience", "early_stopping"):
        if getattr(train, key) < 0:
            raise ConfigError(f"train.{key} = {getattr(train, key)} must be 0 or more")
    _choice("evaluation.method", config.evaluation.method, METHODS)
    _check_schedule("evaluation.supernet_schedule", config.evaluation.supernet_schedule)
    _choice("evaluation.supernet_sampling", config.evaluation.supernet_sampling, SAMPLING_RULES)
    if config.evaluation.supernet_sampling == "balanced" and max(config.preset().nodes) > BALANCED_MAX_NODES:
        raise ConfigError(
            f"evaluation.supernet_sampling = balanced enumerates each stage's strings, and space.nodes "
            f"{list(config.preset().nodes)} has a stage of more than {BALANCED_MAX_NODES} nodes; use uniform"
        )
    if config.evaluation.calibration_images < 1:
        raise ConfigError(f"evaluation.calibration_images = {config.evaluation.calibration_images} must be at least 1")
    if config.evaluation.method == "table" and not config.evaluation.table.strip():
        raise ConfigError(
            "evaluation.method = table needs evaluation.table: a shipped table's name (e.g. digits-standalone) "
            "or the path of a table file written by genetic-cnn tabulate"
        )
    if run.seed < 0:
        raise ConfigError(f"run.seed = {run.seed} must be 0 or more")
    try:
        training_devices(run.device, lambda: 0)  # the spelling only: no GPU is looked for here
    except ValueError as error:
        raise ConfigError(str(error)) from None
    _choice("run.executor", run.executor, EXECUTORS)
    for key in ("workers", "threads"):
        if getattr(run, key) < 0:
            raise ConfigError(f"run.{key} = {getattr(run, key)} must be 0 (automatic) or more")
    if not 0 < run.gpus_per_evaluation <= 1:
        raise ConfigError(f"run.gpus_per_evaluation = {run.gpus_per_evaluation} must lie in (0, 1]")


def _check_objectives(config: Config) -> None:
    evolution = config.evolution
    objectives = list(evolution.objectives)
    for name in objectives:
        _choice("evolution.objectives", name, OBJECTIVES)
    if not objectives or objectives[0] != "accuracy" or len(set(objectives)) != len(objectives):
        raise ConfigError(
            f"evolution.objectives = {objectives}: list accuracy first, then distinct costs to minimise "
            f"(e.g. [\"accuracy\", \"flops\"]; costs: {', '.join(OBJECTIVES[1:])})"
        )
    if evolution.strategy == "nsga2" and len(objectives) < 2:
        raise ConfigError(
            "evolution.strategy = nsga2 trades accuracy against a cost: set evolution.objectives = "
            "[\"accuracy\", \"flops\"] (or params, latency), or use a single-objective strategy"
        )
    if len(objectives) > 1 and evolution.strategy not in MULTI_OBJECTIVE_STRATEGIES:
        raise ConfigError(
            f"evolution.objectives = {objectives} needs evolution.strategy = nsga2 (or random, a baseline); "
            f"{evolution.strategy} maximises accuracy alone"
        )


def _check_constraints(config: Config) -> None:
    """A limit no genome meets is refused now: the all-zero genome (one convolution per stage) is the
    cheapest network of the space in FLOPs and in parameters. A latency limit is checked when the run
    starts, on its device (``genetic_cnn.fitness.latency``)."""
    evolution = config.evolution
    limits = {"max_flops": evolution.max_flops, "max_params": evolution.max_params}
    for key, value in limits.items():
        if value < 0:
            raise ConfigError(f"evolution.{key} = {value} must be 0 (no limit) or a positive count")
    if evolution.max_latency_ms < 0:
        raise ConfigError(
            f"evolution.max_latency_ms = {evolution.max_latency_ms} must be 0 (no limit) or a positive number of milliseconds"
        )
    if evolution.latency_batch < 1:
        raise ConfigError(f"evolution.latency_batch = {evolution.latency_batch} must be at least 1 (images per timed forward pass)")
    if not any(limits.values()) and not evolution.max_latency_ms:
        return
    if evolution.strategy not in CONSTRAINED_STRATEGIES:
        raise ConfigError(
            f"evolution.max_flops, max_params and max_latency_ms limit a search; evolution.strategy = "
            f"{evolution.strategy} measures fixed architectures: set them to 0"
        )
    from genetic_cnn.space.cost import network_cost
    from genetic_cnn.space.genome import Genome

    preset = config.preset()
    cheapest = network_cost(Genome.zeros(preset.nodes), preset)
    for key, name, least in (("max_flops", "FLOPs", cheapest.flops), ("max_params", "parameters", cheapest.parameters)):
        if limits[key] and limits[key] < least:
            raise ConfigError(
                f"evolution.{key} = {limits[key]:,}: no network of space.preset = {preset.name!r} meets it, the "
                f"smallest (the all-zero genome) has {least:,} {name}; raise it to at least {least}"
            )


def _check_schedule(name: str, schedule: tuple[tuple[int, float], ...]) -> None:
    if not schedule:
        raise ConfigError(f"{name} is empty; give [[epochs, learning_rate], ...], e.g. [[20, 0.001]]")
    for index, (epochs, rate) in enumerate(schedule):
        if epochs < 0:
            raise ConfigError(f"{name}[{index}] has {epochs} epochs; epochs must be 0 or more")
        if rate <= 0:
            raise ConfigError(f"{name}[{index}] has learning rate {rate}; it must be positive")
    if sum(epochs for epochs, _ in schedule) == 0:
        raise ConfigError(f"{name} has no epochs; give at least one epoch, e.g. [[1, 0.001]]")
