"""`genetic-cnn tabulate`: evaluate every architecture of a space with S seeds and write a table.

Each seed is a run (``evolution.strategy = "tabulation"``: one generation that is every distinct
architecture, as its representative genome, in the order of their keys; ``run.seed`` = the config's
seed + k for seed k, so standalone trainings and one-shot supernets both differ by seed, while
``data.split_seed`` is the same for all: the config's, or else its run seed, so that every seed
trains and measures on one data split and the seeds vary one noise only, the training's) kept in the
work folder ``TABLE-work/seed-<run seed>`` beside the table. A run resumes after any kill and uses
any executor, so repeating the command continues a build, on a CPU, a GPU or a Ray cluster alike;
other settings into the same work folder are refused. After every finished seed, and with
``--partial`` at any moment without evaluating anything, the table is (re)written from the seeds
complete so far (``genetic_cnn.tables.table`` documents the file). Parameters and FLOPs are computed once
per architecture and kept in the work folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from genetic_cnn.config import Config, config_from_dict
from genetic_cnn.errors import UserError
from genetic_cnn.files import check_writable, make_folder, plural, write_atomically
from genetic_cnn.history.store import DATABASE, RunStore
from genetic_cnn.progress import bar as progress_bar
from genetic_cnn.progress import write as print_line
from genetic_cnn.search.records import EvaluationResult
from genetic_cnn.tables.table import COLUMNS, FORMAT, SUFFIX, VERSION, Architecture, Measurement, Table, write_table

REQUEST = "tabulate-request.json"
FIGURES = "architectures.json"
TABULATED_METHODS = ("standalone", "one-shot")


@dataclass(frozen=True)
class TableStatus:
    path: Path
    complete: int
    """Seeds whose every architecture is evaluated (those in the table)."""
    asked: int
    architectures: int
    written: bool


def table_path(out: str | Path) -> Path:
    if not str(out).strip() or Path(out).name in ("", ".", "..") or str(out).endswith("/"):
        raise UserError(f"--out {str(out)!r} names no file; give the table file to write, e.g. tables/mine{SUFFIX}")
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give the table file to write, e.g. {out / ('mine' + SUFFIX)}")
    return out if out.name.endswith(SUFFIX) else out.with_name(out.name + SUFFIX)


def work_folder(table: Path) -> Path:
    """Where the seed runs live: ``NAME.json.gz`` -> ``NAME-work`` beside it."""
    return table.with_name(table.name[: -len(SUFFIX)] + "-work")


def seed_config(base: Config, count: int, run_seed: int, folder: Path, split: int | None = None) -> Config:
    """``base`` as the tabulation run of one seed: every one of the ``count`` architectures once, on
    the data split of seed ``split`` (None: the run seed's, as tables before ``split_seed`` were built)."""
    raw = base.to_dict()
    raw["evolution"].update(strategy="tabulation", population=count, generations=0, identity="architecture",
                            reevaluate="retrain")  # fmt: skip
    raw["run"].update(seed=run_seed, out=str(folder))
    if split is not None:
        raw["data"]["split_seed"] = split
    return config_from_dict(raw)


def table_split_seed(config: Config) -> int:
    """The data split every seed of a table of ``config`` shares: ``data.split_seed``, or else the run seed."""
    return config.data.split_seed if config.data.split_seed >= 0 else config.run.seed


def tabulate(
    config: Config,
    out: str | Path,
    seeds: int,
    name: str = "",
    *,
    partial: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = print_line,
) -> TableStatus:
    """Evaluate the space of ``config`` with ``seeds`` seeds into the table ``out`` (resuming what is
    there), or with ``partial`` only write the table from the seeds complete so far."""
    from genetic_cnn.evolution import check_inputs, resume_run, start_run
    from genetic_cnn.space.enumerate import architectures

    if seeds < 1:
        raise UserError(f"--seeds {seeds}: a table needs at least 1 seed per architecture (3 to see the noise)")
    if config.evaluation.method not in TABULATED_METHODS:
        raise UserError(
            f"evaluation.method = {config.evaluation.method}: a table holds fitness measured by "
            f"{' or '.join(TABULATED_METHODS)}; set evaluation.method to one of them"
        )
    path = table_path(out)
    work = work_folder(path)
    name = name or path.name[: -len(SUFFIX)]
    count = len(architectures(config.preset().nodes))
    folders = [(work / f"seed-{config.run.seed + k}").resolve() for k in range(seeds)]
    request: dict[str, Any] = {"name": name, "seeds": seeds, "config": config.to_dict(), "split_seed": table_split_seed(config)}
    request = _check_request(work, path, request, partial)
    split = request.get("split_seed")  # None: a build begun before tables shared one split continues as it began
    configs = [seed_config(config, count, config.run.seed + k, folder, split) for k, folder in enumerate(folders)]
    if partial:
        return write_from_runs(work, path, request, progress, echo)
    check_writable(path.parent)
    check_inputs(configs[0])  # device, data, preset: before any folder is made
    make_folder(work)
    write_atomically(work / REQUEST, json.dumps(request, indent=2) + "\n")
    done = sum(_evaluated(folder) for folder in folders)
    overall = progress_bar(total=seeds * count, initial=done, desc="tabulating", unit="net", disable=not progress)
    status = None
    try:
        for k, (folder, seed_run) in enumerate(zip(folders, configs)):
            label = f"[seed {k + 1}/{seeds}, run seed {seed_run.run.seed}]"

            def say(line: str, label: str = label) -> None:
                echo(f"{label} {line}")

            tick = lambda result: overall.update(1)  # noqa: E731 - one line for the progress over all seeds
            if not (folder / DATABASE).is_file():
                say(f"evaluating {plural(count, 'architecture')} into {folder}")
                start_run(seed_run, progress=False, echo=say, on_result=tick)
            elif _status(folder) != "finished":
                say(f"resuming {folder}")
                resume_run(folder, progress=False, echo=say, on_result=tick)
            else:
                continue
            status = write_from_runs(work, path, request, progress, echo)
    finally:
        overall.close()
    return status or write_from_runs(work, path, request, progress, echo)


def _evaluated(folder: Path) -> int:
    if not (folder / DATABASE).is_file():
        return 0
    with RunStore.open(folder, readonly=True) as store:
        return len(store.evaluations())


def _status(folder: Path) -> str:
    with RunStore.open(folder, readonly=True) as store:
        return store.status


def _check_request(work: Path, path: Path, request: dict[str, Any], partial: bool) -> dict[str, Any]:
    """The work folder is new, or holds a tabulation of exactly this request (which then continues).
    Returns the request to build: the stored one when the build continues (one begun by an older
    version has no ``split_seed``: its seeds keep a split each, as they began)."""
    stored = work / REQUEST
    if stored.is_file():
        before = json.loads(stored.read_text(encoding="utf-8"))
        now = json.loads(json.dumps(request))
        if "split_seed" not in before:
            now.pop("split_seed", None)
        if _as_read_now(before) != _as_read_now(now):
            raise UserError(
                f"{work} holds a tabulation with other settings (config, --seeds or --name); repeat its command "
                "to continue it, or choose another --out"
            )
        return before
    if partial:
        raise UserError(f"--partial: {work} holds no tabulation yet; run the command without --partial first")
    if path.exists():
        raise UserError(f"--out {path} exists and no tabulation of it is in {work}; choose another --out")
    if work.exists() and (not work.is_dir() or any(work.iterdir())):
        raise UserError(f"{work} exists and holds no tabulation; move it away or choose another --out")
    return request


def _as_read_now(request: dict[str, Any]) -> dict[str, Any]:
    """A stored request with its config read by this version (keys added since take their defaults)."""
    from genetic_cnn.config import ConfigError

    try:
        return {**request, "config": config_from_dict(request["config"]).to_dict()}
    except (ConfigError, KeyError, TypeError):
        return request  # unreadable: it differs from any request this version makes


def write_from_runs(
    work: Path, path: Path, request: dict[str, Any], progress: bool = False, echo: Callable[[str], None] = print_line
) -> TableStatus:
    """Write the table from the seeds complete in ``work``; says how many are."""
    config = config_from_dict(request["config"])
    complete: list[tuple[int, Path]] = []
    waiting: list[str] = []
    for k in range(request["seeds"]):
        folder = work / f"seed-{config.run.seed + k}"
        if (folder / DATABASE).is_file() and _status(folder) == "finished":
            complete.append((config.run.seed + k, folder))
        else:
            waiting.append(f"run seed {config.run.seed + k}: {_evaluated(folder)} evaluated")
    if not complete:
        raise UserError(
            f"no seed of {work} is complete yet ({'; '.join(waiting)}); continue the tabulation with the same "
            "command without --partial"
        )
    figures = architecture_figures(config, work, progress)
    measured: dict[str, list[Measurement]] = {key: [] for key in figures["architectures"]}
    environment: dict[str, Any] = {}
    for _, folder in complete:
        with RunStore.open(folder, readonly=True) as store:
            environment = environment or store.meta("environment", {})
            for result in store.evaluations():
                measured[result.key].append(_measurement(result))
    architectures = tuple(
        Architecture(key=key, genome=entry["genome"], convolutions=entry["convolutions"],
                     parameters=entry["parameters"], flops=entry["flops"], results=tuple(measured[key]))
        for key, entry in figures["architectures"].items()
    )  # fmt: skip
    header = {
        "format": FORMAT, "version": VERSION, "name": request["name"], "method": config.evaluation.method,
        "space": {"preset": config.space.preset, "nodes": list(config.preset().nodes),
                  "channels": list(config.preset().channels)},
        "data": figures["data"], "config": request["config"], "versions": environment,
        "created": datetime.now().isoformat(timespec="seconds"),
        "seeds": [seed for seed, _ in complete], "seeds_asked": request["seeds"],
        "columns": list(COLUMNS),
    }  # fmt: skip
    if request.get("split_seed") is not None:  # absent: each seed drew its own split (Table.split_description)
        header["split_seed"] = request["split_seed"]
    if config.evaluation.method == "one-shot":
        header["supernets"] = [_supernet(config, seed, folder) for seed, folder in complete]
    write_table(Table(header, architectures), path)
    echo(f"wrote {path}: {len(complete)} of {plural(request['seeds'], 'seed')} complete, "
         f"{plural(len(architectures), 'architecture')}, {path.stat().st_size / 1024:.0f} KiB")  # fmt: skip
    return TableStatus(path, len(complete), request["seeds"], len(architectures), True)


def _measurement(result: EvaluationResult) -> Measurement:
    return Measurement(
        accuracy=round(result.accuracy, 6),
        test_accuracy=None if result.test_accuracy is None else round(result.test_accuracy, 6),
        loss=None if result.loss is None else round(result.loss, 6),
        epochs=result.epochs, seconds=round(result.seconds, 3), status=result.status,
    )  # fmt: skip


def _supernet(config: Config, seed: int, folder: Path) -> dict[str, Any]:
    from dataclasses import replace

    from genetic_cnn.fitness.oneshot import supernet_training

    training = supernet_training(replace(config, run=replace(config.run, seed=seed, out=str(folder))))
    return {"seed": seed, "epochs": training["epochs"], "seconds": round(training["seconds"], 1)}


def architecture_figures(config: Config, work: Path, progress: bool = False) -> dict[str, Any]:
    """The data's sizes and, per architecture key, a representative genome, its convolutions,
    parameters and FLOPs: computed once (building every network) and kept in ``work``."""
    cache = work / FIGURES
    if cache.is_file():
        return json.loads(cache.read_text(encoding="utf-8"))
    from genetic_cnn.data.datasets import load_datasets
    from genetic_cnn.nn.network import build_network, count_flops, count_parameters
    from genetic_cnn.space.enumerate import architectures
    from genetic_cnn.space.graph import representative

    datasets = load_datasets(config.data, seed=config.run.seed)
    preset = config.preset().for_input(datasets.input_shape, datasets.num_classes)
    space = architectures(preset.nodes)
    entries = {}
    counting = progress_bar(total=len(space), desc="parameters and FLOPs", unit="net", disable=not progress)
    for key in sorted(space):
        counting.update(1)
        genome = representative(key, preset.nodes)
        model = build_network(genome, preset)
        entries[key] = {"genome": str(genome), "convolutions": space[key], "parameters": count_parameters(model),
                        "flops": count_flops(model, preset.input_shape)}  # fmt: skip
    counting.close()
    figures = {
        "data": {"dataset": config.data.dataset, "subset": config.data.subset, "test_subset": config.data.test_subset,
                 "validation_setting": config.data.validation, "train": len(datasets.train),
                 "validation": len(datasets.validation), "test": len(datasets.test),
                 "input_shape": list(datasets.input_shape), "classes": datasets.num_classes},
        "architectures": entries,
    }  # fmt: skip
    partial = cache.with_name(cache.name + ".partial")
    partial.write_text(json.dumps(figures) + "\n", encoding="utf-8")
    partial.replace(cache)
    return figures


# ---------------------------------------------------------------------- CLI
