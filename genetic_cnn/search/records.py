"""What crosses the ask/tell boundary: evaluation tasks and their results. Plain data, no torch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

OK, DIVERGED, FAILED, REUSED = "ok", "diverged", "failed", "reused"

CURVE = "curve"
"""``EvaluationResult.extra[CURVE]``: the evaluation's learning curve, a list of
``[epoch, train_loss, validation_accuracy, validation_loss]`` (epochs from 0; the validation
values None for an epoch not validated). The run database keeps it in a table of its own."""

CurvePoint = tuple[int, float | None, float | None, float | None]


@dataclass(frozen=True)
class EvaluationTask:
    """Train genome ``genome`` (paper notation) with ``seed``: slot ``slot`` of generation ``generation``."""

    generation: int
    slot: int
    genome: str
    seed: int


@dataclass(frozen=True)
class EvaluationResult:
    """One evaluation's outcome. ``accuracy`` is on the validation split and is the fitness input.

    Status: ok; diverged (NaN/inf loss); failed (training raised, ``error`` says why) — neither
    measured anything and neither enters the individual's fitness; reused (not trained: the mean of
    earlier evaluations of the same individual).
    """

    generation: int
    slot: int
    genome: str
    key: str
    seed: int
    status: str
    accuracy: float = 0.0
    test_accuracy: float | None = None
    loss: float | None = None
    train_loss: float | None = None
    epochs: int = 0
    seconds: float = 0.0
    error: str = ""
    batch_size: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fitness_input(self) -> float:
        """This evaluation's accuracy for plots and best-so-far curves: 0 for one that measured nothing."""
        return self.accuracy if self.status in (OK, REUSED) else 0.0

    @property
    def trained(self) -> bool:
        return self.status != REUSED

    @property
    def curve(self) -> list[CurvePoint]:
        """The learning curve the evaluation recorded (``CURVE``); empty when none was."""
        return [(int(e), t, a, v) for e, t, a, v in self.extra.get(CURVE, [])]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
