"""`genetic-cnn lr-find`: arguments, and the calls into ``genetic_cnn.tools.lr_find``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from genetic_cnn.cli.args import add_common_arguments, resolve_config
from genetic_cnn.files import output_file


def cmd_lr_find(args: argparse.Namespace) -> int:
    from genetic_cnn.space.genome import parse_genome
    from genetic_cnn.tools.inputs import preset_for_data
    from genetic_cnn.tools.lr_find import check_range, lr_range_test, plot_lr_find

    config = resolve_config(args.config, args.set, args.preset, args.dataset)
    check_range(args.start, args.end, args.steps)
    out = output_file(args.out, force=args.force, suffix=".png")
    preset = config.preset()
    genome = parse_genome(args.genome, preset.nodes, preset.name)  # all checked before torch is imported

    import torch

    from genetic_cnn.data.datasets import load_datasets
    from genetic_cnn.nn.device import resolve_device
    from genetic_cnn.nn.network import build_network

    datasets = load_datasets(config.data, seed=config.run.seed, accept=lambda data: preset_for_data(config, data))
    preset = preset_for_data(config, datasets)
    seed = config.run.seed if args.seed is None else args.seed
    torch.manual_seed(seed)
    model = build_network(genome, preset)
    result = lr_range_test(
        model, datasets.train, config.train, args.start, args.end, args.steps, seed,
        device=resolve_device(config.run.device), progress=not args.quiet, channels_last=config.run.channels_last,
    )  # fmt: skip
    title = f"{genome} ({preset.name}) on {datasets.name}, {config.train.optimizer}, batch {config.train.batch_size}"
    path = plot_lr_find(result, out, title)
    stopped = len(result.lrs) < args.steps
    if result.diverged:
        end = f"the loss diverged at {result.diverged_lr:.3g}" + ("; stopped there" if stopped else "")
    else:
        end = f"reached {args.end:g} without diverging"
    print(f"steps             {len(result.lrs)} of {args.steps} ({end})")
    print(f"suggested rate    {result.suggestion:.3g}  (steepest descent of the drawn curve, below its minimum)")
    print(f"minimum / 10      {result.order_below_minimum:.3g}  (loss minimum at {result.minimum_lr:.3g})")
    print(f"plot              {path}")
    return 0


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lr-find", help="learning-rate range test: plot loss against an exponentially growing rate, suggest one",
        description="Leslie Smith's range test: the rate grows exponentially from --start to --end over --steps "
        "mini-batches; the loss, smoothed by a centred moving average over 5% of the steps, is plotted against "
        "it; the test stops when an exponential average of the same span exceeds 4x its best. Suggests the "
        "steepest descent point and a tenth of the minimum's rate",
    )  # fmt: skip
    add_common_arguments(parser)
    parser.add_argument("--start", type=float, default=1e-7, help="first learning rate (default 1e-7)")
    parser.add_argument("--end", type=float, default=1.0, help="last learning rate (default 1)")
    parser.add_argument("--steps", type=int, default=200, help="mini-batches (default 200)")
    parser.add_argument("--seed", type=int, help="weights and batch order (default run.seed)")
    parser.add_argument("--out", type=Path, default=Path("lr.png"), help="PNG plot (default lr.png)")
    parser.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=cmd_lr_find)
