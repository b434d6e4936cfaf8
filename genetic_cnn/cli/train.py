"""`genetic-cnn train` (a found genome over several seeds) and `genetic-cnn onnx` (a saved network to ONNX)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genetic_cnn.cli.args import add_common_arguments, resolve_config
from genetic_cnn.errors import UserError
from genetic_cnn.files import plural
from genetic_cnn.progress import write as print_line


def genome_from_run(args: argparse.Namespace) -> str:
    """GENOME, or member ``--front-rank`` of ``--run``'s Pareto front (its config.toml becomes the default --config)."""
    if args.run is None:
        if args.front_rank is not None:
            raise UserError("--front-rank K names a member of a run's Pareto front: give the run with --run RUN")
        if args.genome is None:
            raise UserError("give the GENOME to train, or --run RUN --front-rank K for a member of a run's Pareto front")
        return str(args.genome)
    if args.genome is not None:
        raise UserError(f"give either GENOME ({args.genome}) or --run {args.run}, not both")
    from genetic_cnn.history.front import front_member
    from genetic_cnn.history.rundata import RunData

    data = RunData.load(args.run)  # a missing or damaged run: a one-line StoreError
    if args.config is None and (args.run / "config.toml").is_file():
        args.config = args.run / "config.toml"
    member = front_member(data, args.front_rank if args.front_rank is not None else 1)
    print_line(f"front member {member.rank} of {args.run}: {member.genome}, validation accuracy "
               f"{100 * member.accuracy:.2f}%, {member.flops:,} FLOPs, {member.parameters:,} parameters"
               + (f", {member.latency_ms:.3g} ms" if member.latency_ms is not None else ""))  # fmt: skip
    return member.genome


def cmd_train(args: argparse.Namespace) -> int:
    from genetic_cnn.nn.saved import RESULTS
    from genetic_cnn.tools.final import train_final

    genome = genome_from_run(args)
    config = resolve_config(args.config, args.set, args.preset, args.dataset)
    result = train_final(
        genome, config, seeds=args.seeds, augment=args.augment, out=args.out, epochs=args.epochs,
        progress=not args.quiet, echo=print_line, force=args.force, onnx=args.onnx,
    )  # fmt: skip
    spread = f" ± {100 * result.std:.2f}" if len(result.seeds) > 1 else ""
    print(f"genome {result.genome} on {result.dataset} ({result.preset}), {plural(result.epochs, 'epoch')}, "
          f"{plural(result.train_images, 'training image')}{', augmented' if result.augment else ''}")  # fmt: skip
    print(f"test accuracy {100 * result.mean:.2f}{spread}% over {len(result.seeds)} seed(s) "
          f"(error {100 * (1 - result.mean):.2f}%)")  # fmt: skip
    print(f"results: {Path(result.out) / RESULTS}")
    return 0


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "train", help="train a found genome on the full training set over several seeds; report test accuracy",
        description="Train GENOME from scratch on the full training set (training + validation), once per "
        "seed, and report test accuracy per seed and mean ± std. --epochs N rescales the schedule to N epochs, "
        "keeping its phases in proportion. --run RUN --front-rank K trains member K (1 = the most accurate) of the "
        "run's Pareto front instead of GENOME, with the run's config. Writes seedK.pt (state dict), seedK.torchscript.pt and results.json.",
    )  # fmt: skip
    add_common_arguments(parser, genome_optional=True)
    parser.add_argument("--run", type=Path, help="train a member of this run's Pareto front instead of GENOME "
                        "(the run's config.toml is the default --config)")  # fmt: skip
    parser.add_argument("--front-rank", type=int, metavar="K",
                        help="with --run: member K of the front, 1 = the most accurate (default 1)")  # fmt: skip
    parser.add_argument("--epochs", type=int, help="total epochs; the schedule's phases keep their proportions")
    parser.add_argument("--augment", action="store_true",
                        help="random crop (pad 4 on 32x32) and, on CIFAR-10/100, horizontal flip")  # fmt: skip
    parser.add_argument("--seeds", type=int, default=1, help="number of seeds, from run.seed on (default 1)")
    parser.add_argument("--out", type=Path, help="output folder (default runs/final-<preset>-<time>)")
    parser.add_argument("--force", action="store_true", help="overwrite the files of an earlier train in --out")
    parser.add_argument("--onnx", action="store_true",
                        help="also write seedK.onnx (needs pip install 'genetic-cnn[onnx]'; runs in onnxruntime)")  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=cmd_train)


def cmd_onnx(args: argparse.Namespace) -> int:
    from genetic_cnn.nn.saved import export_onnx

    print(f"onnx: {export_onnx(args.saved, args.out, args.force)}")
    return 0


def add_onnx_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "onnx", help="export a network saved by `genetic-cnn train` to ONNX",
        description="Write an ONNX file (input 'images' of any batch size, output 'logits') for SAVED, a .pt or "
        ".torchscript.pt file written by genetic-cnn train; beside it as <seed>.onnx unless --out says where.",
    )  # fmt: skip
    parser.add_argument("saved", type=Path, metavar="SAVED", help="seedK.pt or seedK.torchscript.pt")
    parser.add_argument("--out", type=Path, help="the ONNX file to write (default: beside SAVED)")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    parser.set_defaults(func=cmd_onnx)
