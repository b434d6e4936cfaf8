"""`genetic-cnn dashboard RUN [RUN ...]`: watch runs live in a browser.

A small local web server (the standard library's ``ThreadingHTTPServer``, bound to 127.0.0.1 only)
serves one page and a JSON endpoint. The page (vanilla JavaScript in ``genetic_cnn/report/static``, charts
drawn as inline SVG by its own code, nothing fetched from elsewhere) polls ``/api/state`` and redraws
when a run database changed. The databases are opened read-only for each read and closed again, so
a run writing to one is never disturbed (WAL: readers do not block the writer) and never changed.

``/api/state`` is built from ``rundata.RunData``, the same history the report reads; it is rebuilt
only when a database file (or its write-ahead log) changed since the last request.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from genetic_cnn.errors import UserError
from genetic_cnn.history.front import front_summary, individuals, preset_costs
from genetic_cnn.history.rundata import TOP_ARCHITECTURES, RunData, distinct_names, parse_genome
from genetic_cnn.history.store import DATABASE, RunStore
from genetic_cnn.search.records import DIVERGED, FAILED, OK, REUSED

HOST = "127.0.0.1"
"""Only this machine can connect: the page shows a run's settings and paths."""
DEFAULT_PORT = 8765
STATIC_FILES = {
    "/": ("dashboard.html", "text/html; charset=utf-8"),
    "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
}


# ---------------------------------------------------------------------- state
def run_state(data: RunData) -> dict[str, Any]:
    """One run's history as the page draws it; fitness values are fractions (the page shows %)."""
    config, evo = data.config, data.config.evolution
    counts = data.status_counts()
    trained = [e for e in data.evaluations if e.status != REUSED]
    ranking = data.ranking() if trained else []
    evaluations_seen, seconds, best = data.best_so_far()
    return {
        "name": data.name,
        "folder": str(data.folder),
        "status": data.status,
        "strategy": data.strategy,
        "seed": data.seed,
        "dataset": config.data.dataset,
        "preset": config.preset().name,
        "population": evo.population,
        "generations_planned": evo.generations + 1,
        "created_at": data.created_at,
        "objectives": list(evo.objectives),
        "pareto": pareto_state(data) if len(evo.objectives) > 1 else None,
        "counts": {"trained": len(trained), "reused": counts[REUSED], "failed": counts[FAILED],
                   "diverged": counts[DIVERGED], "ok": counts[OK]},  # fmt: skip
        "table": [
            {"generation": s.generation, "max": s.maximum, "min": s.minimum, "mean": s.mean, "median": s.median,
             "std": s.std, "best_genome": s.best_genome, "test": row.test_accuracy, "trained": s.trained,
             "reused": s.reused}
            for row in data.generation_rows() for s in [row.summary]
        ],  # fmt: skip
        "best": [
            {"genome": c.genome, "key": c.key, "fitness": c.fitness, "test": c.test_accuracy,
             "evaluations": c.evaluations}
            for c in ([ranking[0]] if ranking else []) + [
                c for c in data.ranking(by_architecture=True)[:TOP_ARCHITECTURES] if ranking and c.key != ranking[0].key
            ]
        ][:TOP_ARCHITECTURES],  # fmt: skip
        "best_so_far": {"evaluations": evaluations_seen, "seconds": seconds, "accuracy": best},
        "evaluations": [
            [e.generation, e.slot, e.genome, e.status, e.fitness_input, e.test_accuracy] for e in data.evaluations
        ],
        "individuals": [[r.generation, list(r.fitness)] for r in data.generations],
        "noise": {
            "run": data.fitness_noise().to_dict(),
            "by_generation": [[g, n.seed_sd, n.population_sd, n.repeated] for g, n in data.noise_by_generation()],
        },
        "curves": [
            {"generation": g, "slot": slot, "epochs": [p[0] for p in curve], "train_loss": [p[1] for p in curve],
             "validation_accuracy": [p[2] for p in curve]}
            for (g, slot), curve in sorted(data.curves().items())
        ],  # fmt: skip
    }


def pareto_state(data: RunData) -> dict[str, Any]:
    """A multi-objective run's front as the page draws it: summary.json's ``pareto`` entry (``front.front_summary``:
    the final front, each generation's front and hypervolume) plus every measured individual with its costs, the
    scatter the front is drawn over. Accuracies are fractions; ``cost`` names the objective on the scatter's x axis."""
    summary = front_summary(data)
    cost = preset_costs(data.config.preset())
    measured = []
    for genome, accuracy, _, evaluations in individuals(data, None):
        counted = cost(parse_genome(genome))
        measured.append([genome, accuracy, counted.flops, counted.parameters, evaluations])
    return {**summary, "cost": summary["objectives"][1], "individuals": measured}


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null (a diverged evaluation's loss)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def _signature(folder: Path) -> tuple[tuple[int, int], ...]:
    """Changes whenever a commit lands: the database and its write-ahead log, by time and size."""
    stamps = []
    for name in (DATABASE, f"{DATABASE}-wal"):
        try:
            stat = (folder / name).stat()
            stamps.append((stat.st_mtime_ns, stat.st_size))
        except FileNotFoundError:
            stamps.append((0, 0))
    return tuple(stamps)


class Dashboard:
    """The runs watched, and their state as JSON, rebuilt only when a database changed."""

    def __init__(self, folders: Sequence[str | Path]) -> None:
        if not folders:
            raise UserError("no run folder given; pass one or more run folders")
        self.folders = [Path(folder) for folder in folders]
        resolved = [folder.resolve() for folder in self.folders]
        for index, folder in enumerate(resolved):
            if folder in resolved[:index]:
                raise UserError(f"{self.folders[index]} is given twice; give each run once")
        for folder in self.folders:  # a bad folder is refused before the server starts
            RunStore.open(folder, readonly=True).close()
        self.names = distinct_names(self.folders) if len(self.folders) > 1 else [""]
        self._lock = threading.Lock()
        self._signature: tuple[Any, ...] | None = None
        self._body = b""

    def state(self) -> bytes:
        """The JSON body of ``/api/state``."""
        with self._lock:  # one rebuild at a time; polls that come meanwhile get its result
            signature = tuple(_signature(folder) for folder in self.folders)
            if signature != self._signature:
                runs = []
                for folder, name in zip(self.folders, self.names):
                    data = replace(RunData.load(folder), display_name=name)
                    runs.append(run_state(data))
                state = {"version": hash(signature) & 0xFFFFFFFF, "runs": runs}
                self._body = json.dumps(_finite(state), allow_nan=False, separators=(",", ":")).encode()
                self._signature = signature
            return self._body


_drawing_lock = threading.Lock()


@lru_cache(maxsize=256)
def genome_svg(genome: str) -> bytes:
    """The genome's stages drawn as SVG (``drawing.draw_genome``); ValueError for a bad genome."""
    import io

    from genetic_cnn.report.drawing import draw_genome
    from genetic_cnn.space.genome import Genome

    parsed = Genome.from_string(genome)
    with _drawing_lock:  # matplotlib's text layout caches are shared between threads
        buffer = io.BytesIO()
        draw_genome(parsed, title="").savefig(buffer, format="svg", bbox_inches="tight")
    return buffer.getvalue()


# ---------------------------------------------------------------------- server
def _static(name: str) -> bytes:
    return resources.files("genetic_cnn.report").joinpath("static", name).read_bytes()


class _Handler(BaseHTTPRequestHandler):
    dashboard: Dashboard

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        url = urlparse(self.path)
        if url.path in STATIC_FILES:
            name, kind = STATIC_FILES[url.path]
            self._send(HTTPStatus.OK, kind, _static(name))
        elif url.path == "/api/state":
            try:
                body = self.dashboard.state()
            except UserError as error:  # e.g. a database removed while watched
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", str(error).encode())
                return
            self._send(HTTPStatus.OK, "application/json", body)
        elif url.path == "/genome.svg":
            genome = parse_qs(url.query).get("genome", [""])[0]
            try:
                self._send(HTTPStatus.OK, "image/svg+xml", genome_svg(genome), cache=True)
            except ValueError as error:
                self._send(HTTPStatus.BAD_REQUEST, "text/plain; charset=utf-8", str(error).encode())
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"not found")

    def _send(self, status: HTTPStatus, kind: str, body: bytes, cache: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=3600" if cache else "no-store")
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the page was closed or reloaded while a drawing was on its way: nothing to tell anyone

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        pass  # one line per poll would bury the terminal


def make_server(folders: Sequence[str | Path], port: int = DEFAULT_PORT) -> ThreadingHTTPServer:
    """The dashboard's server on 127.0.0.1:``port`` (0: any free port; ``server.server_address`` says
    which), not yet serving: call ``serve_forever``."""
    dashboard = Dashboard(folders)
    handler = type("DashboardHandler", (_Handler,), {"dashboard": dashboard})
    try:
        server = ThreadingHTTPServer((HOST, port), handler)
    except OSError as error:
        raise UserError(f"cannot listen on {HOST}:{port}: {error.strerror}; choose another --port (0 = any free one)") from None
    server.daemon_threads = True
    return server
