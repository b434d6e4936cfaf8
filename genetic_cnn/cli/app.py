"""`genetic-cnn …`: thin subcommands over the Python API. show, evolve, resume and export live here;
the other commands in the modules beside this one, each importing its tool only when it runs, so
``--help`` loads no torch.

Bad input (a UserError or ValueError from parsing) is printed on one line, exit status 2.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import genetic_cnn.cli.calibrate as calibrate
import genetic_cnn.cli.lr_find as lr_find
import genetic_cnn.cli.report as report
import genetic_cnn.cli.tabulate as tabulate
import genetic_cnn.cli.train as train
from genetic_cnn.config import SpaceConfig
from genetic_cnn.errors import UserError
from genetic_cnn.files import output_file, plural, write_atomically

T = TypeVar("T")

# The other commands, each added by its module's ``add_*parser(subparsers)``, in ``--help``'s order.
FEATURE_COMMANDS = (report.add_parser, calibrate.add_parser, tabulate.add_parser, train.add_parser,
                    lr_find.add_parser, report.add_dashboard_parser, train.add_onnx_parser)


def cmd_show(args: argparse.Namespace) -> int:
    from genetic_cnn.space.genome import Genome
    from genetic_cnn.space.graph import architecture_key, stage_graphs
    from genetic_cnn.space.presets import get_preset

    preset = user_input(get_preset, args.preset)
    genome = user_input(Genome.from_string, args.genome, preset.nodes)
    drawing = output_file(args.out, force=args.force, suffix=".png") if args.out else None  # refused before printing
    from genetic_cnn.nn.network import build_network, count_flops, count_parameters

    model = build_network(genome, preset)
    print(f"genome            {genome}")
    print(f"preset            {preset.name}  (nodes {preset.nodes}, channels {preset.channels})")
    print(f"architecture key  {architecture_key(genome)}")
    for index, graph in enumerate(stage_graphs(genome)):
        edges = ", ".join(f"{_name(s, graph)}->{_name(t, graph)}" for s, t in sorted(graph.edges)) or "none"
        print(f"stage {index + 1}           {plural(graph.number_of_nodes(), 'convolution')}; edges: {edges}")
    convolutions = sum(graph.number_of_nodes() for graph in stage_graphs(genome))
    print(f"convolutions      {convolutions}")
    print(f"parameters        {count_parameters(model):,}")
    print(f"FLOPs per image   {count_flops(model, preset.input_shape):,} (forward; a multiply-add counts 2)")
    if drawing:
        from genetic_cnn.report.drawing import save_genome_drawing

        path = save_genome_drawing(genome, drawing, f"{genome}  ({preset.name})")
        print(f"drawing           {path}")
    return 0


def cmd_evolve(args: argparse.Namespace) -> int:
    from genetic_cnn.config import load_config
    from genetic_cnn.evolution import start_run

    config = load_config(args.config, args.set)
    folder = start_run(config, out=args.out, progress=not args.quiet)
    _print_outcome(folder)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from genetic_cnn.evolution import resume_run

    folder = resume_run(args.run, progress=not args.quiet, overrides=args.set)
    _print_outcome(folder)
    return 0


def _print_outcome(folder: Path) -> None:
    import json

    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    test = summary["best_test_accuracy"]
    test_text = f", test accuracy {100 * test:.2f}%" if test is not None else ""
    method = ""
    if "fitness_method" in summary:  # a summary.json written by an older version has none
        from genetic_cnn.fitness.method import FitnessMethod

        method = f" ({FitnessMethod.from_dict(summary['fitness_method']).brief()})"
    print(f"best genome {summary['best_genome']}: fitness {100 * summary['best_fitness']:.2f}%{method}{test_text}")
    from genetic_cnn.history.noise import FitnessNoise, noise_verdict

    # A summary.json written by an older version has no fitness_noise: nothing to say then.
    verdict = noise_verdict(FitnessNoise.from_dict(summary["fitness_noise"])) if "fitness_noise" in summary else None
    if verdict:
        print(verdict)
    print(f"results: {folder}")


def cmd_export(args: argparse.Namespace) -> int:
    from genetic_cnn.history.export import export_evaluations, export_front
    from genetic_cnn.history.store import load_run

    fmt = export_format(args.format, args.out)
    path = output_file(args.out, force=args.force) if args.out else None  # refused before reading anything
    with load_run(args.run) as run:
        text = export_front(run, fmt) if args.front else export_evaluations(run, fmt)
    if path:
        write_atomically(path, text)  # a full disk leaves no half-written export, and an overwritten one whole
        print(f"wrote {path}")
    else:
        write_stdout(text)
    return 0


def write_stdout(text: str) -> None:
    """``text`` on standard output; a full disk or a closed pipe (``> /dev/full``, ``| head``) is one line."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as error:
        # What stays buffered would fail again when Python exits: standard output goes nowhere from now.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise UserError(f"cannot write to standard output: {error.strerror or error}; write to a file with --out") from None


EXPORT_FORMATS = {".csv": "csv", ".json": "json"}
"""``export --out`` file extensions and the format each means (``--format`` overrides)."""


def export_format(asked: str | None, out: Path | None) -> str:
    """``--format``, else ``--out``'s extension, else csv; an unknown one is refused, not guessed."""
    known = sorted(set(EXPORT_FORMATS.values()))
    if asked is not None:
        if asked.lower() not in known:
            raise UserError(f"--format {asked}: unknown export format; use {' or '.join(known)}")
        return asked.lower()
    if out is None or not out.suffix:
        return "csv"
    if out.suffix.lower() not in EXPORT_FORMATS:
        raise UserError(f"--out {out}: {out.suffix} is no export format; name it .csv or .json, or pass --format csv|json")
    return EXPORT_FORMATS[out.suffix.lower()]


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
    show.add_argument("--preset", default=SpaceConfig.preset, help=f"network preset (default {SpaceConfig.preset}, as in a config)")
    show.add_argument("--out", type=Path, help="write a PNG drawing of the stages here (.png is added if missing)")
    show.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    show.set_defaults(func=cmd_show)

    evolve = sub.add_parser("evolve", help="run an evolution (make demo: --config experiments/configs/demo.toml)")
    evolve.add_argument("--config", type=Path, help="TOML config (default: every key at its default, docs/configuration.md)")
    evolve.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set evolution.population=10 (repeatable)")  # fmt: skip
    evolve.add_argument("--out", type=Path, help="run folder (default runs/<dataset>-<strategy>-<fitness method>-<time>)")
    evolve.add_argument("--quiet", action="store_true", help="no progress bars")
    evolve.set_defaults(func=cmd_evolve)

    resume = sub.add_parser("resume", help="continue a stopped run; completed evaluations are kept")
    resume.add_argument("run", type=Path, help="run folder")
    resume.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change where the run trains: run.executor, run.workers, run.threads, run.device, "
                        "run.ray_address, run.gpus_per_evaluation, data.root, data.download (repeatable)")  # fmt: skip
    resume.add_argument("--quiet", action="store_true", help="no progress bars")
    resume.set_defaults(func=cmd_resume)

    export = sub.add_parser("export", help="write a run's evaluations (or --front, its Pareto front) as CSV or JSON")
    export.add_argument("run", type=Path, help="run folder")
    export.add_argument("--format", metavar="{csv,json}", help="default: --out's extension (.csv, .json), else csv")
    export.add_argument("--out", type=Path, help="file to write (default: standard output); its folder is created")
    export.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    export.add_argument("--front", action="store_true",
                        help="the run's Pareto front (rank, genome, accuracy, FLOPs, parameters, latency) instead of its evaluations")  # fmt: skip
    export.set_defaults(func=cmd_export)

    for add_parser in FEATURE_COMMANDS:
        add_parser(sub)
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
    except KeyboardInterrupt as error:  # a run says how to resume it (RunInterrupted); once, after its bars
        print(f"genetic-cnn: {str(error) or 'interrupted'}", file=sys.stderr)
        return 130

