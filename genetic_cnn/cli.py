"""`genetic-cnn …`: thin subcommands over the Python API.

Bad input (a UserError or ValueError from parsing) is printed on one line, exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from genetic_cnn.errors import UserError

T = TypeVar("T")

# Modules that add their own subcommand with ``add_parser(subparsers)``; imported cheaply (no torch).
FEATURE_COMMANDS = ("genetic_cnn.report", "genetic_cnn.final", "genetic_cnn.lr_find")


def cmd_show(args: argparse.Namespace) -> int:
    from genetic_cnn.genome import Genome
    from genetic_cnn.presets import get_preset

    preset = user_input(get_preset, args.preset)
    genome = user_input(Genome.from_string, args.genome, nodes=preset.nodes)
    from genetic_cnn.network import build_network, count_flops, count_parameters

    model = build_network(genome, preset)
    print(f"genome            {genome}")
    print(f"preset            {preset.name}  (nodes {preset.nodes}, channels {preset.channels})")
    print(f"architecture key  {genome.architecture_key()}")
    for index, graph in enumerate(genome.stage_graphs()):
        edges = ", ".join(f"{_name(s, graph)}->{_name(t, graph)}" for s, t in sorted(graph.edges)) or "none"
        print(f"stage {index + 1}           {graph.number_of_nodes()} convolutions; edges: {edges}")
    convolutions = sum(graph.number_of_nodes() for graph in genome.stage_graphs())
    print(f"convolutions      {convolutions}")
    print(f"parameters        {count_parameters(model):,}")
    print(f"FLOPs per image   {count_flops(model, preset.input_shape):,} (forward; a multiply-add counts 2)")
    if args.out:
        from genetic_cnn.drawing import save_genome_drawing

        path = save_genome_drawing(genome, args.out, f"{genome}  ({preset.name})")
        print(f"drawing           {path}")
    return 0


def cmd_evolve(args: argparse.Namespace) -> int:
    from genetic_cnn.config import DEMO, load_config
    from genetic_cnn.evolution import start_run

    config = load_config(args.config, args.set, defaults=None if args.config else DEMO)
    folder = start_run(config, out=args.out, progress=not args.quiet)
    _print_outcome(folder)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from genetic_cnn.evolution import resume_run

    folder = resume_run(args.run, progress=not args.quiet)
    _print_outcome(folder)
    return 0


def _print_outcome(folder: Path) -> None:
    import json

    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    test = summary["best_test_accuracy"]
    test_text = f", test accuracy {100 * test:.2f}%" if test is not None else ""
    print(f"best genome {summary['best_genome']}: fitness {100 * summary['best_fitness']:.2f}%{test_text}")
    print(f"results: {folder}")


def cmd_export(args: argparse.Namespace) -> int:
    from genetic_cnn.export import export_evaluations
    from genetic_cnn.store import load_run

    with load_run(args.run) as run:
        text = export_evaluations(run, args.format)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def user_input(parse: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Call a parser of user input; its ValueError is the user's to fix, not a crash."""
    try:
        return parse(*args, **kwargs)
    except ValueError as error:
        raise UserError(str(error)) from None


def _name(node: int, graph: object) -> str:
    role = graph.nodes[node]["role"]  # type: ignore[attr-defined]
    return {"input": "in", "output": "out"}.get(role, f"v{node}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genetic-cnn", description="Neural architecture search by genetic algorithm (Genetic CNN)."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    show = sub.add_parser("show", help="decode a genome: stages, key, parameters, FLOPs, drawing")
    show.add_argument("genome", help="e.g. '1-01|0-01-100-0111' (quote it: | is a shell pipe)")
    show.add_argument("--preset", default="mnist", help="network preset (default mnist)")
    show.add_argument("--out", type=Path, help="write a PNG drawing of the stages here")
    show.set_defaults(func=cmd_show)

    evolve = sub.add_parser("evolve", help="run an evolution (with no options: the quick digits demo)")
    evolve.add_argument("--config", type=Path, help="TOML config (default: the built-in demo settings)")
    evolve.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set evolution.population=10 (repeatable)")  # fmt: skip
    evolve.add_argument("--out", type=Path, help="run folder (default runs/<dataset>-<strategy>-<time>)")
    evolve.add_argument("--quiet", action="store_true", help="no progress bars")
    evolve.set_defaults(func=cmd_evolve)

    resume = sub.add_parser("resume", help="continue a stopped run; completed evaluations are kept")
    resume.add_argument("run", type=Path, help="run folder")
    resume.add_argument("--quiet", action="store_true", help="no progress bars")
    resume.set_defaults(func=cmd_resume)

    export = sub.add_parser("export", help="write a run's evaluations as CSV or JSON")
    export.add_argument("run", type=Path, help="run folder")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--out", type=Path, help="file to write (default: standard output)")
    export.set_defaults(func=cmd_export)

    for name in FEATURE_COMMANDS:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).add_parser(sub)
    return parser


def _interrupt_on_sigterm() -> None:
    """`kill` stops a run as Ctrl-C does: the run is marked interrupted and can be resumed."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def main(argv: Sequence[str] | None = None) -> int:
    _interrupt_on_sigterm()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as error:
        message = " ".join(str(error).split())
        print(f"genetic-cnn: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("genetic-cnn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
