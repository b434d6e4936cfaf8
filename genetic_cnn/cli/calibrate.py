"""`genetic-cnn calibrate`: arguments, and the call into ``genetic_cnn.tools.calibrate``."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

from genetic_cnn.cli.args import add_config_arguments
from genetic_cnn.tools.calibrate import SEPARATOR


def cmd_calibrate(args: argparse.Namespace) -> int:
    from genetic_cnn.config import load_config
    from genetic_cnn.tools.calibrate import calibrate, closing_line, parse_fidelity

    config = load_config(args.config, args.set)
    fidelities = [parse_fidelity(text) for text in args.fidelity] or [()]
    out = args.out or Path("runs") / f"calibrate-{config.data.dataset}-{datetime.now():%Y%m%d-%H%M%S}"
    results = calibrate(config, out, args.genomes, args.seeds, fidelities, progress=not args.quiet)
    if len(results) > 1:
        print(closing_line(results))
    print(f"results: {Path(out) / 'calibration.md'}")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "calibrate",
        help="measure whether a fidelity can rank architectures: seed noise, spread, Kendall tau, cost",
        description="Train G architectures S times each at the config's fidelity (or at each --fidelity) and "
        "report the seed standard deviation, the spread between architectures, Kendall tau between seeds, the "
        "seconds per evaluation and a verdict. Resumable: repeat the command to continue.",
    )
    add_config_arguments(parser, "TOML config (default: the built-in defaults)")
    parser.add_argument("--genomes", type=int, default=12, help="distinct architectures, spread over convolution counts (default 12)")
    parser.add_argument("--seeds", type=int, default=2, help="trainings of each architecture (default 2)")
    parser.add_argument(
        "--fidelity", action="append", default=[], metavar="OVERRIDES",
        help=f"a fidelity to measure, as '{SEPARATOR}'-separated overrides, e.g. "
        "'data.subset=8000;train.schedule=[[2, 0.001]]' (repeatable; default: the config as given)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, help="folder (default runs/calibrate-<dataset>-<time>)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(func=cmd_calibrate)
    return parser
