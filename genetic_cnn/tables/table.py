"""Tables of a whole search space: every architecture evaluated with several seeds, read instead of training.

A table is one gzip-compressed JSON file (``genetic-cnn tabulate`` writes it; ``docs/tables.md``
documents every field)::

    {"format": "genetic-cnn table", "version": 1, "name": ..., "method": "standalone" | "one-shot",
     "space": {"preset", "nodes", "channels"}, "data": {"dataset", "train", "validation", "test", ...},
     "config": {the tabulation's config}, "versions": {...}, "created": ISO time,
     "seeds": [run seed of each complete seed], "seeds_asked": S, "supernets": [...] (one-shot),
     "split_seed": the data split's seed, the same for every seed (absent in older tables),
     "columns": ["accuracy", "test_accuracy", "loss", "epochs", "seconds", "status"],
     "architectures": [{"key", "genome", "convolutions", "parameters", "flops",
                        "results": [[one value per column] for each seed, in the order of "seeds"]}]}

A table answers like the run it stands for (``SeedDraws``): an architecture's k-th evaluation in a
run reads the seed at place k of a permutation of its S seeds that the run seed draws for it (a
real retraining never repeats a seed; after S evaluations the permutation starts again), and a run
on a one-shot table reads one supernet, drawn from the run seed, for the whole run (a real one-shot
run trains one). NAS-Bench-101's ``query`` draws a seed at random with replacement instead, so a
re-evaluation repeats the same number with probability 1/S. Tables written since ``split_seed``
(``data.split_seed``) hold every seed on one data split, so that its seeds vary the training only;
older tables (no ``split_seed`` in the header) drew another split with each seed
(``split_description``). Tables shipped with the package live in
``genetic_cnn/tables/NAME.json.gz`` and are loaded by name. No torch here.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import zlib
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from genetic_cnn.errors import UserError

if TYPE_CHECKING:
    from genetic_cnn.config import Config

FORMAT = "genetic-cnn table"
VERSION = 1
COLUMNS = ("accuracy", "test_accuracy", "loss", "epochs", "seconds", "status")
SUFFIX = ".json.gz"
SHIPPED: dict[str, str] = {
    "digits-standalone": "experiments/configs/table_digits.toml",
    "mnist-oneshot": "experiments/configs/table_mnist_oneshot.toml",
}
"""Tables the package ships, by name -> the config that builds them (docs/tables.md, "Shipped tables")."""


@dataclass(frozen=True)
class Measurement:
    """One seed of one architecture, as the table stores it (accuracies in [0, 1])."""

    accuracy: float
    test_accuracy: float | None
    loss: float | None
    epochs: int
    seconds: float
    status: str


@dataclass(frozen=True)
class Architecture:
    key: str
    genome: str
    """A representative string (``graph.representative``)."""
    convolutions: int
    parameters: int
    flops: int
    """Forward FLOPs for one image (a multiply-add counts 2)."""
    results: tuple[Measurement, ...]
    """One per seed, in the order of ``Table.seeds``."""


@dataclass(frozen=True)
class Table:
    header: dict[str, Any]
    """Everything of the file but ``architectures``."""
    architectures: tuple[Architecture, ...]
    source: str = ""
    """Where it was read from (a path, or ``shipped:NAME``)."""
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index.update({arch.key: index for index, arch in enumerate(self.architectures)})

    @property
    def name(self) -> str:
        return str(self.header.get("name", ""))

    @property
    def method(self) -> str:
        return str(self.header["method"])

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(self.header["seeds"])

    @property
    def nodes(self) -> tuple[int, ...]:
        return tuple(self.header["space"]["nodes"])

    def index(self, key: str) -> int:
        """Position of architecture ``key``; a KeyError names a key the table does not hold."""
        try:
            return self._index[key]
        except KeyError:
            raise KeyError(f"architecture {key!r} is not in table {self.name or self.source}") from None

    def architecture(self, key: str) -> Architecture:
        return self.architectures[self.index(key)]

    @property
    def one_shot(self) -> bool:
        return self.method == "one-shot"

    @property
    def split_seed(self) -> int | None:
        """The seed of the data split every seed of the table shares; None for a table written before
        tables recorded it, whose seeds each drew their own split (their run seed's)."""
        value = self.header.get("split_seed")
        return None if value is None else int(value)

    def split_description(self) -> str:
        """How the table's seeds relate to the data split, in words (docs/tables.md)."""
        if self.split_seed is None:
            return "split varies with seed: each seed is a run seed that also drew its own data split (an older table)"
        return f"one data split (split seed {self.split_seed}) for every seed: the seeds vary the training only"

    @cached_property
    def validation(self) -> np.ndarray:
        """(architectures, seeds) validation accuracy; 0 where the training failed or diverged."""
        return np.array([[m.accuracy if m.status == "ok" else 0.0 for m in a.results] for a in self.architectures])

    @cached_property
    def mean_validation(self) -> np.ndarray:
        """Each architecture's mean validation accuracy over its seeds (the table's truth for regret)."""
        return self.validation.mean(axis=1)

    @cached_property
    def mean_test(self) -> np.ndarray | None:
        """Each architecture's mean test accuracy, or None when the method measures none (one-shot)."""
        values = [[m.test_accuracy for m in a.results] for a in self.architectures]
        if any(value is None for row in values for value in row):
            return None
        return np.array(values, dtype=float).mean(axis=1)

    def mismatch(self, config: Config) -> str | None:
        """Why ``config`` cannot read fitness from this table, or None when it can."""
        preset = config.preset()
        space = self.header["space"]
        wanted = {"space.preset": space["preset"], "space.nodes": list(space["nodes"]),
                  "space.channels": list(space["channels"]), "data.dataset": self.header["data"]["dataset"]}  # fmt: skip
        given = {"space.preset": config.space.preset, "space.nodes": list(preset.nodes),
                 "space.channels": list(preset.channels), "data.dataset": config.data.dataset}  # fmt: skip
        differ = [name for name in wanted if wanted[name] != given[name]]
        if not differ:
            return self._missing(preset.nodes)
        made = ", ".join(f"{name} = {wanted[name]}" for name in wanted)
        asked = ", ".join(f"{name} = {given[name]}" for name in differ)
        return (
            f"table {self.name or self.source} was made for {made}, and this config has {asked}; "
            f"set those keys as the table's or choose a table of this space"
        )

    def _missing(self, nodes: tuple[int, ...]) -> str | None:
        """Why the table cannot answer for every architecture of the space of ``nodes``, or None."""
        from genetic_cnn.space.enumerate import architectures

        missing = sorted(set(architectures(nodes)) - set(self._index))
        if not missing:
            return None
        return (
            f"table {self.name or self.source} lacks {len(missing)} of the space's {len(architectures(nodes))} "
            f"architectures (e.g. {missing[0]}); finish it with genetic-cnn tabulate, or choose a complete table"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            **self.header,
            "architectures": [
                {"key": a.key, "genome": a.genome, "convolutions": a.convolutions, "parameters": a.parameters,
                 "flops": a.flops, "results": [[getattr(m, column) for column in COLUMNS] for m in a.results]}
                for a in self.architectures
            ],
        }  # fmt: skip


DRAW_STREAM = 0x7AB1E
"""First spawn-key word of the table's draws: apart from ``search.evaluation_seed``'s (generation, slot)."""


class SeedDraws:
    """Which seed of a table each evaluation of a run reads, fixed by the run seed alone (module docstring).

    Standalone: architecture ``index``'s k-th evaluation reads ``permutation(index)[k mod S]``, so its
    first S evaluations read S distinct seeds, and over run seeds every order is equally likely. One-shot:
    every evaluation reads the run's one supernet (``supernet``). Pure functions of (run seed, index, k),
    so a resumed run, or ``tables.simulate.simulate``, draws what the uninterrupted run drew.
    """

    def __init__(self, run_seed: int, seeds: int, one_shot: bool = False) -> None:
        if seeds < 1:
            raise ValueError("a table needs at least one seed")
        self.run_seed, self.seeds, self.one_shot = run_seed, seeds, one_shot
        self._permutations: dict[int, np.ndarray] = {}

    @property
    def supernet(self) -> int:
        """The position of the run's one supernet (one-shot tables)."""
        state = np.random.SeedSequence(self.run_seed, spawn_key=(DRAW_STREAM, 1)).generate_state(1, dtype=np.uint32)
        return int(state[0]) % self.seeds

    def permutation(self, index: int) -> np.ndarray:
        """The order in which the run reads architecture ``index``'s seeds."""
        order = self._permutations.get(index)
        if order is None:
            rng = np.random.default_rng(np.random.SeedSequence(self.run_seed, spawn_key=(DRAW_STREAM, 0, index)))
            order = self._permutations[index] = rng.permutation(self.seeds)
        return order

    def position(self, index: int, k: int) -> int:
        """The seed (its position in ``Table.seeds``) that architecture ``index``'s k-th evaluation (from 0) reads."""
        if self.one_shot:
            return self.supernet
        return int(self.permutation(index)[k % self.seeds])


def from_json(payload: Any, source: str = "") -> Table:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{source} is not a genetic-cnn table (no \"format\": \"{FORMAT}\"); write one with genetic-cnn tabulate")
    if payload.get("version") != VERSION:
        raise UserError(f"{source} is a table of format version {payload.get('version')}; this genetic-cnn reads version {VERSION}")
    try:
        table = _parse(payload, source)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        detail = f"missing {error}" if isinstance(error, KeyError) else str(error)
        raise UserError(
            f"{source} is not a complete table ({detail}); write it again with genetic-cnn tabulate"
        ) from None
    return table


def _parse(payload: dict[str, Any], source: str) -> Table:
    """The table of a payload whose format and version are right; a KeyError, TypeError or
    ValueError says what is missing or wrong."""
    columns = list(payload["columns"])
    if sorted(columns) != sorted(COLUMNS):
        raise ValueError(f"columns {columns}, expected {list(COLUMNS)}")
    seeds = [int(seed) for seed in payload["seeds"]]
    space = payload["space"]
    for key in ("preset", "nodes", "channels"):
        space[key]
    payload["data"]["dataset"]
    if payload["method"] not in ("standalone", "one-shot"):
        raise ValueError(f"method {payload['method']!r}")
    if not seeds:
        raise ValueError("no complete seed")
    entries = payload["architectures"]
    if not isinstance(entries, list) or not entries:
        raise ValueError("no architectures")
    architectures = []
    for entry in entries:
        for row in entry["results"]:
            if len(row) != len(columns):
                raise ValueError(f"a result of architecture {entry['key']} has {len(row)} values for {len(columns)} columns")
        results = tuple(_measurement(dict(zip(columns, row))) for row in entry["results"])
        if len(results) != len(seeds):
            raise ValueError(f"architecture {entry['key']} has {len(results)} results for {len(seeds)} seeds")
        architectures.append(Architecture(
            key=str(entry["key"]), genome=str(entry["genome"]), convolutions=int(entry["convolutions"]),
            parameters=int(entry["parameters"]), flops=int(entry["flops"]), results=results,
        ))  # fmt: skip
    if len({a.key for a in architectures}) != len(architectures):
        raise ValueError("an architecture is listed twice")
    header = {key: value for key, value in payload.items() if key != "architectures"}
    return Table(header, tuple(architectures), source)


def _measurement(values: dict[str, Any]) -> Measurement:
    """One seed's measurement, refused when it cannot be one: an unknown status, an accuracy that is
    not a number in [0, 1] (NaN included) for a training that succeeded."""
    measurement = Measurement(**values)
    if measurement.status not in ("ok", "failed", "diverged"):
        raise ValueError(f"status {measurement.status!r}")
    accuracy = measurement.accuracy
    if not isinstance(accuracy, (int, float)) or (measurement.status == "ok" and not 0 <= accuracy <= 1):
        raise ValueError(f"accuracy {accuracy!r} of a training with status ok, expected a number in [0, 1]")
    return measurement


def write_table(table: Table, path: str | Path) -> Path:
    """Write ``table`` to ``path`` atomically (a kill while writing leaves the previous file whole)."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    # mtime=0: the same table gives the same bytes, so a rebuilt table can be compared with cmp.
    try:
        with open(partial, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as compressed:
            compressed.write(json.dumps(table.to_json(), separators=(",", ":")).encode("utf-8"))
        os.replace(partial, path)
    except OSError as error:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {error.strerror or error}; free disk space, then repeat the command "
                        "(what is evaluated is kept)") from None  # fmt: skip
    return path


def read_table(path: str | Path) -> Table:
    path = Path(path)
    try:
        with gzip.open(path, "rb") as stream:
            payload = json.loads(stream.read().decode("utf-8"))
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError, zlib.error) as error:
        raise UserError(f"{path} is not a readable table ({type(error).__name__}: {error}); write it again with genetic-cnn tabulate") from None
    return from_json(payload, str(path))


def shipped_path(name: str) -> Any:
    """The package-data file of shipped table ``name`` (it may not exist in this installation)."""
    return resources.files("genetic_cnn.tables").joinpath(f"{name}{SUFFIX}")


def load_table(name_or_path: str) -> Table:
    """A table by file path, or by the name of a table shipped with the package."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return read_table(path)
    if name_or_path in SHIPPED:
        packaged = shipped_path(name_or_path)
        if not packaged.is_file():
            raise UserError(
                f"table {name_or_path} is not built in this installation; build it with "
                f"`genetic-cnn tabulate --config {SHIPPED[name_or_path]} ...` (docs/tables.md, \"Shipped tables\") "
                "or give the path of a table file"
            )
        with resources.as_file(packaged) as file:
            table = read_table(file)
        return Table(table.header, table.architectures, f"shipped:{name_or_path}")
    raise UserError(
        f"evaluation.table = {name_or_path!r} is neither a table file nor a shipped table "
        f"({', '.join(SHIPPED)}); give an existing path or one of those names"
    )
