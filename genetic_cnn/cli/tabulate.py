"""`genetic-cnn tabulate`: arguments, and the call into ``genetic_cnn.tools.tabulate``."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from genetic_cnn.cli.args import add_config_arguments
from genetic_cnn.errors import UserError
from genetic_cnn.files import plural
from genetic_cnn.tables.table import SUFFIX


def cmd_tabulate(args: argparse.Namespace) -> int:
    from genetic_cnn.config import load_config
    from genetic_cnn.tools.tabulate import tabulate

    if args.out is None:
        raise UserError(f"tabulate needs --out TABLE: the table file to write (e.g. tables/mine{SUFFIX})")
    config = load_config(args.config, args.set)
    try:
        status = tabulate(config, args.out, args.seeds, args.name, partial=args.partial, progress=not args.quiet)
    except KeyboardInterrupt:  # the seed run's own message would say `resume SEED-RUN`, which writes no table
        raise KeyboardInterrupt(f"interrupted; continue with `{continue_command(args)}`") from None
    left = status.asked - status.complete
    more = f"; {plural(left, 'seed')} to go: repeat the command without --partial" if left else ""
    print(f"table: {status.path} ({status.complete} of {plural(status.asked, 'seed')} complete{more})")
    return 0


def continue_command(args: argparse.Namespace) -> str:
    """The command that continues an interrupted ``tabulate``: the same one (a build resumes where it stopped)."""
    words = ["genetic-cnn", "tabulate"]
    if args.config is not None:
        words += ["--config", str(args.config)]
    for override in args.set:
        words += ["--set", override]
    words += ["--seeds", str(args.seeds), "--out", str(args.out)]
    if args.name:
        words += ["--name", args.name]
    words += [flag for flag, on in (("--partial", args.partial), ("--quiet", args.quiet)) if on]
    return shlex.join(words)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "tabulate",
        help="evaluate every architecture of the space with S seeds into a table (evaluation.method = table)",
        description="Evaluate every distinct architecture of the config's space with its evaluation method "
        "(standalone: S trainings each; one-shot: S supernets) and write a table file. Each seed is a run in "
        "TABLE-work/: repeat the command to continue after any interruption.",
    )
    add_config_arguments(parser, "TOML config (default: the built-in defaults)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per architecture (default 3)")
    parser.add_argument("--out", type=Path, help=f"the table file to write ({SUFFIX} is added if missing)")
    parser.add_argument("--name", default="", help="the table's name in its header (default: the file's name)")
    parser.add_argument("--partial", action="store_true",
                        help="evaluate nothing: write the table from the seeds complete so far")  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=cmd_tabulate)
    return parser
