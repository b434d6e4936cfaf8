"""How a run's fitness was measured, in the words reports, summaries and folder names use. No torch.

The three methods (``evaluation.method``) cost and mean different things: a standalone evaluation
trains a network, a one-shot one measures a path through a supernet trained once per run (most of
such a run's wall time, and none of its evaluations' time), a table one reads a stored seed. A
figure such as "1,020 trained" or "0.0 s per evaluation" is only honest next to which one ran.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genetic_cnn.config import Config
from genetic_cnn.tables.table import SUFFIX

SUPERNET_FOLDER = "supernet"
"""The one-shot supernet's folder inside the run folder."""
EPOCHS_LOG = "epochs.jsonl"
"""One JSON line per finished supernet epoch: epoch, train_loss, seconds."""


def supernet_log(folder: Path) -> dict[str, Any]:
    """What a supernet's training did, from the log in its ``folder``: epochs, seconds, loss per epoch."""
    log = folder / EPOCHS_LOG
    epochs: dict[int, dict[str, Any]] = {}
    if log.is_file():
        for line in log.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            epochs[record["epoch"]] = record  # an epoch run again after a kill counts once, as it ended
    rows = [epochs[epoch] for epoch in sorted(epochs)]
    return {"epochs": len(rows), "seconds": sum(row["seconds"] for row in rows), "per_epoch": rows}


def table_name(name_or_path: str) -> str:
    """A table's name as ``evaluation.table`` gives it: a shipped name, or a file's name without its suffix."""
    name = Path(name_or_path).name
    return name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name


@dataclass(frozen=True)
class FitnessMethod:
    """Which fitness method a run used, and for one-shot what its supernet's training cost."""

    method: str
    """``evaluation.method``: standalone, one-shot or table."""
    table: str = ""
    """Table fitness: the table's name."""
    supernet_epochs: int = 0
    supernet_seconds: float = 0.0
    """One-shot: the supernet's training so far, from its log (0 before it starts or without one)."""

    @classmethod
    def of(cls, config: Config, folder: Path | None = None) -> FitnessMethod:
        """The method of ``config``; with the run ``folder``, a one-shot run's supernet training is read too."""
        method = config.evaluation.method
        if method == "table":
            return cls(method, table=table_name(config.evaluation.table))
        if method == "one-shot" and folder is not None:
            log = supernet_log(folder / SUPERNET_FOLDER)
            return cls(method, supernet_epochs=log["epochs"], supernet_seconds=log["seconds"])
        return cls(method)

    @property
    def label(self) -> str:
        """``standalone``, ``one-shot`` or ``table NAME``."""
        return f"table {self.table}" if self.method == "table" else self.method

    @property
    def slug(self) -> str:
        """The label as part of a folder name: ``standalone``, ``one-shot``, ``table-digits-standalone``."""
        return re.sub(r"[^A-Za-z0-9._-]+", "-", self.label).strip("-")

    @property
    def evaluated(self) -> str:
        """What an evaluation that is not reused did, as a past participle: how reports count them."""
        return {"standalone": "trained", "one-shot": "measured on the supernet", "table": "read from the table"}.get(
            self.method, "evaluated"
        )

    @property
    def short(self) -> str:
        """``evaluated`` in one word, for table columns: trained, measured, read."""
        return self.evaluated.split()[0]

    def sentence(self) -> str:
        """One line: the method and what one evaluation is under it."""
        if self.method == "standalone":
            return "standalone: every evaluation trains its network from scratch and measures its validation accuracy"
        if self.method == "one-shot":
            training = (
                f"trained once for this run: {self.supernet_epochs} epochs in {self.supernet_seconds:.1f} s"
                if self.supernet_epochs
                else "not trained yet"
            )
            return (
                "one-shot: every evaluation measures its network's path through one weight-sharing supernet "
                f"(no training per evaluation); the supernet was {training}"
            )
        if self.method == "table":
            return (
                f"table {self.table}: every evaluation reads one stored seed of its architecture from the table "
                "(drawn by the evaluation's seed); nothing is trained"
            )
        return self.method

    def brief(self) -> str:
        """A few words after a fitness figure: ``one-shot, supernet trained 4 epochs in 12.3 s``."""
        if self.method == "one-shot":
            return f"one-shot, supernet trained {self.supernet_epochs} epochs in {self.supernet_seconds:.1f} s"
        if self.method == "table":
            return f"table {self.table}: stored seeds read, nothing trained"
        return self.method

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FitnessMethod:
        return cls(values["method"], values.get("table", ""), int(values.get("supernet_epochs", 0)),
                   float(values.get("supernet_seconds", 0.0)))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """For summary.json: the method, the table's name or the supernet's training."""
        out: dict[str, Any] = {"method": self.method, "label": self.label}
        if self.method == "table":
            out["table"] = self.table
        if self.method == "one-shot":
            out["supernet_epochs"] = self.supernet_epochs
            out["supernet_seconds"] = self.supernet_seconds
        return out
