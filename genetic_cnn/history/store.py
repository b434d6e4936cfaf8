"""The run database: one SQLite file per run folder (WAL mode), committed after every evaluation.

It holds the config, the environment, every evaluation, every generation's population and fitness,
and the search's random-generator state after each step, so that a run stopped at any moment can
be resumed, and read back for reports and notebooks. No torch here.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from genetic_cnn.config import Config, ConfigError, config_from_dict
from genetic_cnn.errors import UserError
from genetic_cnn.search.records import CURVE, CurvePoint, EvaluationResult

DATABASE = "run.db"
LOCK = ".lock"
SCHEMA_VERSION = 3
"""1: meta, evaluations, generations. 2 adds ``curves``, 3 adds ``latency``; an older database gains
them when opened for writing (``resume``) and reads as one without them when opened read-only."""

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
CREATE TABLE IF NOT EXISTS latency (
    key TEXT NOT NULL, device TEXT NOT NULL, batch INTEGER NOT NULL, milliseconds REAL NOT NULL,
    spread REAL NOT NULL, runs INTEGER NOT NULL, threads INTEGER NOT NULL, hardware TEXT NOT NULL,
    seconds REAL NOT NULL, measured_at REAL NOT NULL, PRIMARY KEY (key, device, batch)
);
"""


@dataclass(frozen=True)
class LatencyRecord:
    """One architecture's measured forward-pass time (``genetic_cnn.fitness.latency``), measured once per run."""

    key: str
    """The architecture (``graph.architecture_key``): equivalent strings build the same network."""
    device: str
    """``cpu`` or ``cuda``: the kind of device it was timed on."""
    batch: int
    milliseconds: float
    """The median time of one forward pass of ``batch`` images."""
    spread: float
    """The interquartile range of the timed blocks, in milliseconds."""
    runs: int
    """Forward passes timed."""
    threads: int
    hardware: str
    """The GPU's name, or the CPU's."""
    seconds: float
    """What measuring it took."""

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


def relocated(config: Config, folder: Path) -> Config:
    """``config`` of the run now in ``folder``: ``run.out`` is ``folder``, and a ``data.root`` or
    ``evaluation.table`` that lay inside the folder where the run was made (``run.out`` as recorded,
    e.g. the copy of the data a run keeps in ``data.npz``) lies inside ``folder`` too. So a run folder
    copied (``cp -a``) or moved resumes, reports and exports from where it is, and never reads or
    writes the folder it came from."""
    here = folder.resolve()
    recorded = Path(config.run.out) if config.run.out else None
    data, evaluation = config.data, config.evaluation
    if recorded is not None and recorded != here:
        data = replace(data, root=_moved(data.root, recorded, here))
        evaluation = replace(evaluation, table=_moved(evaluation.table, recorded, here))
    return replace(config, data=data, evaluation=evaluation, run=replace(config.run, out=str(here)))


def _moved(path: str, recorded: Path, here: Path) -> str:
    if not path or not Path(path).is_absolute():
        return path
    try:
        return str(here / Path(path).relative_to(recorded))
    except ValueError:  # outside the run folder: the user's own file, where it was
        return path


def sqlite_uri(path: Path, **parameters: str) -> str:
    """A ``file:`` URI of ``path`` for ``sqlite3.connect(uri=True)``: its characters quoted, so that a
    folder named with ``#``, ``?`` or ``%`` is not cut into a query or fragment."""
    query = "&".join(f"{name}={value}" for name, value in parameters.items())
    return path.absolute().as_uri() + (f"?{query}" if query else "")


class RunStore:
    """Read and write one run folder. Open it with ``create``, ``open`` or ``load_run``."""

    def __init__(self, folder: Path, connection: sqlite3.Connection, readonly: bool, copy: Path | None = None) -> None:
        self.folder = folder
        self.path = folder / DATABASE
        self._db = connection
        self.readonly = readonly
        self._lock_file: Any = None
        self._copy = copy
        """The temporary folder holding a copy of a read-only run's database, removed on ``close``."""

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
        if not isinstance(folder, (str, os.PathLike)):
            raise StoreError(f"a run folder is a path (a str or pathlib.Path) to the folder that holds {DATABASE}; got {type(folder).__name__}")
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
                connection, copy = _reader(path)
                return cls(folder, connection, readonly, copy)
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
            version = self.meta("schema_version", SCHEMA_VERSION)
            self.meta("config")
        except sqlite3.Error as error:
            raise _storage_error(error, self.path) from None
        except (ValueError, TypeError):  # a meta value that is not JSON
            raise StoreError(f"{self.path} holds damaged settings; it is not a complete run database") from None
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer genetic-cnn (database schema {version}; this version reads "
                f"{SCHEMA_VERSION}); upgrade genetic-cnn (pip install -U genetic-cnn) to read it"
            )

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
            # "a": opening must not empty the file of the process that holds the lock (its pid).
            self._lock_file = open(self.folder / LOCK, "a")  # noqa: SIM115 - held for the store's lifetime
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            raise StoreError(f"{self.folder} is in use by another genetic-cnn process; wait for it or stop it") from None
        except IsADirectoryError:
            raise StoreError(f"{self.folder / LOCK} is a folder; remove it (genetic-cnn keeps a lock file there), then retry") from None
        except OSError as error:
            raise StoreError(f"cannot lock {self.folder}: {error.strerror}; make the run folder writable") from None
        self._lock_file.truncate(0)
        self._lock_file.write(str(os.getpid()))
        self._lock_file.flush()

    def close(self) -> None:
        self._db.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
        if self._copy is not None:
            shutil.rmtree(self._copy, ignore_errors=True)
            self._copy = None

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

    def add_latency(self, record: LatencyRecord) -> None:
        """Commit one measured latency now: a resumed run reads it back instead of timing again."""
        values = [getattr(record, item.name) for item in fields(LatencyRecord)] + [time.time()]
        with self._write():
            self._db.execute(f"INSERT OR REPLACE INTO latency VALUES ({', '.join('?' * len(values))})", values)

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
        """The run's settings, with its paths where the folder is now (``relocated``)."""
        raw = self.meta("config")
        if raw is None:
            raise StoreError(f"{self.path} holds no config; it is not a complete run database")
        try:
            return relocated(config_from_dict(raw), self.folder)
        except (ConfigError, AttributeError, TypeError) as error:
            raise StoreError(f"{self.path} holds a config this version cannot read: {error}") from None

    @property
    def recorded_out(self) -> str:
        """``run.out`` as stored: where the run was made, or last resumed."""
        raw = self.meta("config") or {}
        return str(raw.get("run", {}).get("out", "")) if isinstance(raw, dict) else ""

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

    def latencies(self) -> list[LatencyRecord]:
        """Every stored latency; none for a database written before latencies were kept."""
        row = self._db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='latency'").fetchone()
        if row is None:
            return []
        names = ", ".join(item.name for item in fields(LatencyRecord))
        try:
            rows = self._db.execute(f"SELECT {names} FROM latency ORDER BY key, device, batch").fetchall()
        except sqlite3.Error as error:
            raise _storage_error(error, self.path) from None
        return [LatencyRecord(*values) for values in rows]

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


def _reader(path: Path) -> tuple[sqlite3.Connection, Path | None]:
    """A read-only connection to the database ``path``, and the temporary folder of its copy if one was made.

    A reader of a WAL database needs its ``-shm`` file, which SQLite creates beside it: in a folder
    that cannot be written (an archive made read-only, a read-only mount) it cannot. Then, with no
    write-ahead log left (a run that ended, or was closed, checkpointed it into the database), the
    file is opened as immutable, which reads it in place with no lock and no ``-shm``. A log left by
    a killed run holds committed evaluations that immutable mode would not see: then the database
    and its log are copied into a temporary folder and read there, and nothing of the run is changed.
    """
    connection = sqlite3.connect(sqlite_uri(path, mode="ro"), uri=True, timeout=30)
    try:
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return connection, None
    except sqlite3.Error as error:
        connection.close()
        if "unable to open" not in str(error) and "readonly" not in str(error):
            raise  # a damaged or locked database, not a read-only place
    wal = path.with_name(path.name + "-wal")
    if not wal.is_file() or wal.stat().st_size == 0:
        return sqlite3.connect(sqlite_uri(path, immutable="1"), uri=True), None
    copy = Path(tempfile.mkdtemp(prefix="genetic-cnn-run-"))
    try:
        shutil.copyfile(path, copy / DATABASE)
        shutil.copyfile(wal, copy / wal.name)
    except OSError as error:
        shutil.rmtree(copy, ignore_errors=True)
        raise StoreError(f"cannot read {path} from a read-only folder: copying it failed ({error.strerror}); "
                         "free space in the temporary folder (TMPDIR)") from None  # fmt: skip
    return sqlite3.connect(copy / DATABASE, timeout=30), copy


def load_run(folder: str | Path) -> RunStore:
    """Open a run folder read-only, for notebooks and reports."""
    return RunStore.open(folder, readonly=True)
