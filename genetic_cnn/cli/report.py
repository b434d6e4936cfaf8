"""`genetic-cnn report` and `genetic-cnn dashboard`: arguments, and the calls into ``genetic_cnn.report``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genetic_cnn.report.dashboard import DEFAULT_PORT
from genetic_cnn.report.markdown import COMPARISON_FOLDER


def cmd_report(args: argparse.Namespace) -> int:
    from genetic_cnn.report.markdown import write_report

    path = write_report(args.runs, args.out)
    print(f"report: {path}")
    return 0


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "report",
        help="write a Markdown report with plots of a run, or compare several runs",
        description="Write report.md with PNG images: the paper's per-generation table, fitness and best-so-far "
        "plots, fitness noise, the best genomes drawn, diversity, bit frequencies, time. Several runs: a comparison.",
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run folder(s)")
    parser.add_argument(
        "--out", type=Path, help=f"output folder (default: RUN/report for one run, ./{COMPARISON_FOLDER} for several)"
    )
    parser.set_defaults(func=cmd_report)
    return parser


def cmd_dashboard(args: argparse.Namespace) -> int:
    from genetic_cnn.report.dashboard import HOST, make_server

    server = make_server(args.runs, args.port)
    print(f"dashboard: http://{HOST}:{server.server_address[1]}/  (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number; give 0 to 65535") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number; give 0 to 65535")
    return port


def add_dashboard_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "dashboard",
        help="watch runs live in a browser (a local page that updates as evaluations land)",
        description="Serve a page on 127.0.0.1 that shows the paper's table per generation, best-so-far curves, "
        "the fitness of every individual, noise, the best genomes drawn and learning curves, and updates by itself "
        "while the runs go on. The run databases are read, never written.",
    )
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run folder(s); several are shown side by side")
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT,
                        help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0 = any free port, printed)")  # fmt: skip
    parser.set_defaults(func=cmd_dashboard)
    return parser
