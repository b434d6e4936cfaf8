"""A run's evaluations as CSV or JSON, for spreadsheets and other tools."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import fields

from genetic_cnn.records import EvaluationResult
from genetic_cnn.store import RunStore

COLUMNS = [item.name for item in fields(EvaluationResult) if item.name != "extra"]


def export_evaluations(run: RunStore, fmt: str) -> str:
    rows = [{name: getattr(result, name) for name in COLUMNS} for result in run.evaluations()]
    if fmt == "json":
        return json.dumps(rows, indent=1) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()
    raise ValueError(f"unknown export format {fmt!r}; use csv or json")
