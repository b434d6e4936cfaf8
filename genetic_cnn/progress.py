"""Progress for long work: bars on a terminal, a plain line now and then in a log. One place for both.

A bar redraws itself with escape codes, which a redirected log (``> run.log``, CI, nohup) keeps as
about a kilobyte of noise per bar. So a bar is drawn only when standard error is a terminal; in a
log an outer bar (``leave=True``) becomes a plain line at most every ``PLAIN_EVERY`` seconds and
when it ends, and an inner one (``leave=False``, e.g. the epochs of one training) says nothing.
"""

from __future__ import annotations

import sys
import time
from typing import Any

PLAIN_EVERY = 30.0
"""Seconds between two plain progress lines of one bar in a log."""


def on_terminal() -> bool:
    return sys.stderr.isatty()


class PlainProgress:
    """The part of tqdm's interface the package uses, writing one plain line at a time."""

    def __init__(self, total: int | None = None, initial: int = 0, desc: str = "", unit: str = "it", leave: bool = True,
                 disable: bool = False, **_: Any) -> None:  # fmt: skip
        self.total, self.n, self.initial, self.desc, self.unit = total, initial, initial, desc, unit
        self.silent = disable or not leave
        self.started = self.last = time.monotonic()
        self.postfix = ""
        self.shown: int | None = None
        """The count the last line showed: ``close`` repeats no line a final ``update`` already printed."""

    def update(self, count: int = 1) -> None:
        self.n += count
        if not self.silent and time.monotonic() - self.last >= PLAIN_EVERY:
            self._line()

    def set_description(self, desc: str) -> None:
        self.desc = desc

    def set_postfix(self, **values: Any) -> None:
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())

    def close(self) -> None:
        if not self.silent and self.n and self.n != self.shown:
            self._line()
        self.silent = True

    def _line(self) -> None:
        self.last = time.monotonic()
        self.shown = self.n
        of = f"/{self.total}" if self.total is not None else ""
        extra = f", {self.postfix}" if self.postfix else ""
        elapsed = self.last - self.started
        done_here = self.n - self.initial  # what this process did: a resumed bar's initial count took no time here
        if self.total is not None and 0 < done_here and self.n < self.total:
            extra += f", about {_duration(elapsed / done_here * (self.total - self.n))} left"
        print(f"{self.desc}: {self.n}{of} {self.unit} ({elapsed:.0f} s{extra})", file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.5 h``: an estimate, so no more digits than it deserves."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def bar(**kwargs: Any) -> Any:
    """A tqdm bar on standard error when it is a terminal, else a ``PlainProgress``; same methods."""
    if not on_terminal():
        return PlainProgress(**kwargs)
    from tqdm.auto import tqdm

    kwargs.setdefault("file", sys.stderr)
    return tqdm(dynamic_ncols=True, **kwargs)


def write(line: str) -> None:
    """Print ``line`` on standard output without breaking a progress bar that is showing."""
    if not on_terminal():
        print(line, flush=True)
        return
    from tqdm.auto import tqdm

    tqdm.write(line, file=sys.stdout)


def warn(message: str) -> None:
    """A one-line warning on standard error."""
    print(f"genetic-cnn: warning: {' '.join(message.split())}", file=sys.stderr, flush=True)
