"""The run database: one SQLite file per run folder (WAL mode), committed after every evaluation.

It holds the config, the environment, every evaluation, every generation's population and fitness,
and the search's random-generator state after each step, so that a run stopped at any moment can
be resumed, and read back for reports and notebooks. No torch here.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from genetic_cnn.config import Config, ConfigError, config_from_dict
from genetic_cnn.errors import UserError
from genetic_cnn.records import CURVE, CurvePoint, EvaluationResult

DATABASE = "run.db"
LOCK = ".lock"
SCHEMA_VERSION = 2
"""1: meta, evaluations, generations. 2 adds ``curves``; a version-1 database gains it when opened for
writing (``resume``) and reads as one without curves when opened read-only."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evaluations (
    generation INTEGER NOT NULL, slot INTEGER NOT NULL, genome TEXT NOT NULL, key TEXT NOT NULL,
    seed INTEGER NOT NULL, status TEXT NOT NULL, accuracy REAL NOT NULL, test_accuracy REAL,
    loss REAL, train_loss REAL, epochs INTEGER NOT NULL, seconds REAL NOT NULL, error TEXT NOT NULL,
    batch_size INTEGER, extra TEXT NOT NULL, finished_at REAL NOT NULL,
    PRIMARY KEY (generation, slot)
);
CREATE TABLE IF NOT EXISTS generations (
    generation INTEGER PRIMARY KEY, genomes TEXT NOT NULL, fitness TEXT NOT NULL,
    rng_state TEXT NOT NULL, log TEXT, seconds REAL NOT NULL, finished_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS curves (
    generation INTEGER NOT NULL, slot INTEGER NOT NULL, epoch INTEGER NOT NULL, train_loss REAL,
    validation_accuracy REAL, validation_loss REAL, PRIMARY KEY (generation, slot, epoch)
);
"""

_EVALUATION_COLUMNS = [item.name for item in fields(EvaluationResult)]


class StoreError(UserError):
    """The run folder or its database cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class GenerationRecord:
    """A completed generation: its genomes, the fitness told to the search, and the state after breeding."""

    generation: int
    genomes: tuple[str, ...]
    fitness: tuple[float, ...]
    rng_state: dict[str, Any]
    log: dict[str, Any] | None
    seconds: float
    finished_at: float


def _storage_error(error: sqlite3.Error, path: Path) -> StoreError:
    text = str(error)
    if "disk is full" in text or "disk I/O" in text:
        return StoreError(f"cannot write {path}: {text}; free disk space, then `genetic-cnn resume {path.parent}`")
    if "readonly" in text or "unable to open" in text:
        return StoreError(f"cannot write {path}: {text}; make the run folder writable, then resume it")
    return StoreError(f"{path} is corrupted or not a run database ({text}); start a new run with another --out")


class RunStore:
    """Read and write one run folder. Open it with ``create``, ``open`` or ``load_run``."""

    def __init__(self, folder: Path, connection: sqlite3.Connection, readonly: bool) -> None:
        self.folder = folder
        self.path = folder / DATABASE
        self._db = connection
        self.readonly = readonly
        self._lock_file: Any = None

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(cls, folder: str | Path, config: Config, environment: dict[str, Any]) -> RunStore:
        """A new run folder; refuses one that already holds a run (resume it instead)."""
        folder = Path(folder)
        if (folder / DATABASE).exists():
            raise StoreError(f"{folder} already holds a run; use `genetic-cnn resume {folder}` or another --out")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot create run folder {folder}: {error.strerror}; choose another --out") from None
        store = cls._connect(folder, readonly=False)
        store.lock()
        try:
            with store._write():
                store._db.executescript(SCHEMA)
                store._set_meta("schema_version", SCHEMA_VERSION)
                store._set_meta("config", config.to_dict())
                store._set_meta("environment", environment)
                store._set_meta("status", "running")
                store._set_meta("created_at", time.time())
        except StoreError:
            store.close()
            raise
        return store

    @classmethod
    def open(cls, folder: str | Path, readonly: bool = False) -> RunStore:
        folder = Path(folder)
        if not folder.is_dir():
            raise StoreError(f"{folder} is not a folder; give the folder of a run (it holds {DATABASE})")
        if not (folder / DATABASE).is_file():
            raise StoreError(f"{folder} is not a run folder: {DATABASE} is missing")
        store = cls._connect(folder, readonly=readonly)
        try:
            store._check()
            if not readonly:
                store._migrate()
        except StoreError:
            store.close()
            raise
        return store

    @classmethod
    def _connect(cls, folder: Path, readonly: bool) -> RunStore:
        path = folder / DATABASE
        try:
            if readonly:
                connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
            else:
                connection = sqlite3.connect(path, timeout=30)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=FULL")  # an evaluation committed survives a power cut
        except sqlite3.Error as error:
            raise _storage_error(error, path) from None
        return cls(folder, connection, readonly)

    def _check(self) -> None:
        try:
            tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not {"meta", "evaluations", "generations"} <= tables:
                raise StoreError(f"{self.path} is not a genetic-cnn run database (tables missing)")
            if self._db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise StoreError(f"{self.path} is corrupted (integrity check failed); start a new run")
            self.meta("config")
        except sqlite3.Error as error:
            raise _storage_error(error, self.path) from None

    def _migrate(self) -> None:
        """Bring a database of an older version to this schema; only tables are added, nothing changes."""
        if int(self.meta("schema_version", 1)) >= SCHEMA_VERSION:
            return
        with self._write():
            self._db.executescript(SCHEMA)
            self._set_meta("schema_version", SCHEMA_VERSION)

    @property
    def has_curves(self) -> bool:
        """Whether the database has the learning-curve table (a version-1 one opened read-only has not)."""
        row = self._db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='curves'").fetchone()
        return row is not None

    def lock(self) -> None:
        """Only one process writes a run: a second one is refused, never allowed to interleave."""
        try:
            self._lock_file = open(self.folder / LOCK, "w")  # noqa: SIM115 - held for the store's lifetime
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(f"{self.folder} is in use by another genetic-cnn process; wait for it or stop it") from None
        except OSError as error:
            raise StoreError(f"cannot lock {self.folder}: {error.strerror}; make the run folder writable") from None
        self._lock_file.write(str(os.getpid()))
        self._lock_file.flush()

    def close(self) -> None:
        self._db.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing
    @contextmanager
    def _write(self) -> Iterator[None]:
        try:
            with self._db:  # one transaction: all of it or nothing
                yield
        except sqlite3.Error as error:
            raise _storage_error(error, self.path) from None

    def _set_meta(self, name: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, json.dumps(value)))

    def update_config(self, config: Config, change: dict[str, Any]) -> None:
        """Replace the stored config (``resume --set``) and keep a record of the change."""
        with self._write():
            self._set_meta("config", config.to_dict())
            self._set_meta("config_changes", [*self.meta("config_changes", []), change])

    def record_executor(self, choice: dict[str, Any]) -> None:
        """What executor each start or resume of the run used (``run.executor = "auto"`` decides per machine)."""
        with self._write():
            self._set_meta("executors", [*self.meta("executors", []), choice])

    def set_status(self, status: str) -> None:
        with self._write():
            self._set_meta("status", status)

    def add_evaluation(self, result: EvaluationResult) -> None:
        """Commit one result; its learning curve (``extra["curve"]``) goes into the ``curves`` table."""
        row = result.to_dict()
        curve = result.curve
        row["extra"] = json.dumps({name: value for name, value in row["extra"].items() if name != CURVE})
        values = [row[name] for name in _EVALUATION_COLUMNS] + [time.time()]
        with self._write():
            self._db.execute(
                f"INSERT OR REPLACE INTO evaluations ({', '.join(_EVALUATION_COLUMNS)}, finished_at) "
                f"VALUES ({', '.join('?' * (len(values)))})",
                values,
            )
            self._db.execute("DELETE FROM curves WHERE generation = ? AND slot = ?", (result.generation, result.slot))
            self._db.executemany(
                "INSERT INTO curves VALUES (?, ?, ?, ?, ?, ?)",
                [(result.generation, result.slot, *point) for point in curve],
            )

    def add_generation(self, record: GenerationRecord) -> None:
        with self._write():
            self._db.execute(
                "INSERT OR REPLACE INTO generations VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.generation, json.dumps(record.genomes), json.dumps(record.fitness),
                    json.dumps(record.rng_state), json.dumps(record.log), record.seconds, record.finished_at,
                ),
            )  # fmt: skip

    # ------------------------------------------------------------------ reading
    def meta(self, name: str, default: Any = None) -> Any:
        try:
            row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        except sqlite3.Error as error:
            raise _storage_error(error, self.path) from None
        return default if row is None else json.loads(row[0])

    @property
    def config(self) -> Config:
        raw = self.meta("config")
        if raw is None:
            raise StoreError(f"{self.path} holds no config; it is not a complete run database")
        try:
            return config_from_dict(raw)
        except ConfigError as error:
            raise StoreError(f"{self.path} holds a config this version cannot read: {error}") from None

    @property
    def status(self) -> str:
        return str(self.meta("status", "unknown"))

    def evaluations(self, generation: int | None = None) -> list[EvaluationResult]:
        query = f"SELECT {', '.join(_EVALUATION_COLUMNS)} FROM evaluations"
        params: tuple[int, ...] = ()
        if generation is not None:
            query += " WHERE generation = ?"
            params = (generation,)
        try:
            rows = self._db.execute(query + " ORDER BY generation, slot", params).fetchall()
        except sqlite3.Error as error:
            raise _storage_error(error, self.path) from None
        curves = self.curves(generation)
        results = []
        for row in rows:
            values = dict(zip(_EVALUATION_COLUMNS, row))
            values["extra"] = json.loads(values["extra"])
            curve = curves.get((values["generation"], values["slot"]))
            if curve:  # read back as it was given to add_evaluation
                values["extra"][CURVE] = [list(point) for point in curve]
            results.append(EvaluationResult(**values))
        return results

    def curves(self, generation: int | None = None) -> dict[tuple[int, int], list[CurvePoint]]:
        """Learning curves by (generation, slot): (epoch, train_loss, validation_accuracy,
        validation_loss) per epoch; empty for a database written before curves were kept."""
        if not self.has_curves:
            return {}
        query = "SELECT generation, slot, epoch, train_loss, validation_accuracy, validation_loss FROM curves"
        params: tuple[int, ...] = ()
        if generation is not None:
            query += " WHERE generation = ?"
            params = (generation,)
        try:
            rows = self._db.execute(query + " ORDER BY generation, slot, epoch", params).fetchall()
        except sqlite3.Error as error:
            raise _storage_error(error, self.path) from None
        curves: dict[tuple[int, int], list[CurvePoint]] = {}
        for g, slot, *point in rows:
            curves.setdefault((g, slot), []).append(tuple(point))  # type: ignore[arg-type]
        return curves

    def evaluation_times(self) -> list[float]:
        """When each evaluation was committed (seconds since the epoch), in (generation, slot) order."""
        return [row[0] for row in self._db.execute("SELECT finished_at FROM evaluations ORDER BY generation, slot")]

    def generations(self) -> list[GenerationRecord]:
        try:
            rows = self._db.execute("SELECT * FROM generations ORDER BY generation").fetchall()
        except sqlite3.Error as error:
            raise _storage_error(error, self.path) from None
        return [
            GenerationRecord(
                generation, tuple(json.loads(genomes)), tuple(json.loads(fitness)), json.loads(rng_state),
                json.loads(log) if log else None, seconds, finished_at,
            )  # fmt: skip
            for generation, genomes, fitness, rng_state, log, seconds, finished_at in rows
        ]


def load_run(folder: str | Path) -> RunStore:
    """Open a run folder read-only, for notebooks and reports."""
    return RunStore.open(folder, readonly=True)
