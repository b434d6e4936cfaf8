"""Files the commands write: parents created, an existing file never overwritten without --force."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from genetic_cnn.errors import UserError


def output_file(path: str | Path, *, force: bool = False, suffix: str | None = None, option: str = "--out") -> Path:
    """The path to write: ``suffix`` added when missing, its folder created; an existing file is
    refused (one line naming ``--force``) unless ``force``."""
    path = Path(path)
    if suffix and path.suffix.lower() != suffix:
        path = path.with_name(path.name + suffix)
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder; give a file name, e.g. {path / ('out' + (suffix or ''))}")
    if path.exists() and not force:
        raise UserError(f"{option} {path} exists; choose another name or pass --force to overwrite it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create the folder of {option} {path}: {error.strerror}; choose another path") from None
    return path


def make_folder(path: Path, option: str = "--out") -> Path:
    """``path`` as a folder (parents created); one line naming ``option`` when it cannot be made."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"{option} {path} is a file, not a folder; choose another {option}") from None
    except OSError as error:
        raise UserError(f"cannot create {path}: {error.strerror}; choose another {option}") from None
    return path


def check_writable(folder: Path, option: str = "--out") -> None:
    """Refuse, before any work, to write into the nearest existing folder above ``folder`` when it is
    a file or cannot be written (a read-only directory or mount)."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{option}: {existing} is a file, so nothing can be written under it; choose another {option}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{option}: {existing} is read-only; choose another {option}")


def write_atomically(path: Path, content: str | bytes, fix: str = "choose another --out") -> Path:
    """Write ``content`` to ``path`` through a ``.partial`` file renamed over it: a kill or a full disk
    leaves the previous file whole and no partial one. A device or pipe (``/dev/stdout``) is written
    directly. An OSError (no space, read-only place) is one line ending with ``fix``."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    direct = path.exists() and not stat.S_ISREG(path.stat().st_mode)
    target = path if direct else path.with_name(path.name + ".partial")
    try:
        with open(target, "wb") as stream:
            stream.write(data)
            if not direct:
                stream.flush()
                os.fsync(stream.fileno())  # the data on disk before the rename makes it the file
        if not direct:
            os.replace(target, path)
    except OSError as error:
        if not direct:
            with contextlib.suppress(OSError):  # none was made where nothing can be written
                target.unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {error.strerror or error}; {fix}") from None
    return path


def plural(count: int, noun: str) -> str:
    """``1 epoch``, ``2 epochs``."""
    return f"{count} {noun}" + ("" if count == 1 else "s")
