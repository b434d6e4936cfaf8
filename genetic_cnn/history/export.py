"""A run's evaluations, or its Pareto front (``genetic_cnn.history.front``), as CSV or JSON, for spreadsheets and other tools."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, fields
from typing import Any

from genetic_cnn.history.store import RunStore
from genetic_cnn.search.records import EvaluationResult

COLUMNS = [item.name for item in fields(EvaluationResult) if item.name != "extra"]


def export_evaluations(run: RunStore, fmt: str) -> str:
    return _write([{name: getattr(result, name) for name in COLUMNS} for result in run.evaluations()], COLUMNS, fmt)


def export_front(run: RunStore, fmt: str) -> str:
    """The members of the run's Pareto front, most accurate first (rank 1); accuracy and FLOPs for a
    single-objective run."""
    from genetic_cnn.history.front import FrontMember, run_front
    from genetic_cnn.history.rundata import RunData

    columns = [item.name for item in fields(FrontMember)]
    return _write([asdict(member) for member in run_front(RunData.load(run))], columns, fmt)


def _write(rows: list[dict[str, Any]], columns: list[str], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=1) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    raise ValueError(f"unknown export format {fmt!r}; use csv or json")
