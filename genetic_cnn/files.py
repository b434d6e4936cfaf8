"""Files the commands write: parents created, an existing file never overwritten without --force."""

from __future__ import annotations

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


def plural(count: int, noun: str) -> str:
    """``1 epoch``, ``2 epochs``."""
    return f"{count} {noun}" + ("" if count == 1 else "s")
