"""Command-line overrides of the sensor training defaults, shared by the sensor quality benchmarks."""

from __future__ import annotations

import argparse
from dataclasses import replace

from vigil.training.sensor_model import Architecture, ScoreReduction
from vigil.training.train_sensor import SensorTrainingOptions


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default: the library's)")
    parser.add_argument("--architecture", choices=[a.value for a in Architecture], default=None,
                        help="sensor architecture (default: the library's)")
    parser.add_argument("--window", type=int, default=None,
                        help="rows per window (default: the library's)")
    parser.add_argument("--adapt", action="store_true",
                        help="drift on the device: the adaptive threshold and running "
                             "normalization on (default: the library's, adaptive threshold only)")
    parser.add_argument("--adaptive", action=argparse.BooleanOptionalAction, default=None,
                        help="the adaptive threshold on or off (default: the library's, on)")
    parser.add_argument("--likelihood", action=argparse.BooleanOptionalAction, default=None,
                        help="the anomaly-likelihood alarm on or off (default: the library's, on)")
    parser.add_argument("--running-normalization", action="store_true",
                        help="running normalization alone on (default: off)")
    parser.add_argument("--normalization-memory", type=int, default=None, metavar="ROWS",
                        help="running normalization's time constant (default: the library's)")
    parser.add_argument("--neighbour-rows", type=int, default=None, metavar="ROWS",
                        help="rows of the shape distance added to the score (default: the "
                             "library's; 0: the model's error alone)")
    parser.add_argument("--score-reduction", choices=[r.value for r in ScoreReduction],
                        default=None, help="how the columns' errors make a window's score "
                                           "(default: the library's, mean)")
    parser.add_argument("--members", type=int, default=None, metavar="N",
                        help="networks whose errors are averaged (default: the library's, 3)")
    parser.add_argument("--epoch-windows", type=int, default=None, metavar="N",
                        help="training windows drawn afresh each epoch (default: the library's; "
                             "0: every window)")
    parser.add_argument("--compress-heavy-tails", action="store_true",
                        help="compress each heavy-tailed non-negative column to log(1 + x / m) "
                             "before normalization (default: off, the library's)")
    parser.add_argument("--seed", type=int, default=None,
                        help="training seed: initial weights and shuffling (default: the "
                             "library's); a few seeds show how far a figure moves by chance")


def with_model_arguments(options: SensorTrainingOptions,
                         args: argparse.Namespace) -> SensorTrainingOptions:
    model, data = options.model, options.data
    if args.epochs:
        model = replace(model, epochs=args.epochs)
    if args.architecture:
        model = replace(model, architecture=Architecture(args.architecture))
    if args.window:
        data = replace(data, window=args.window)
    if getattr(args, "compress_heavy_tails", False):
        data = replace(data, compress_heavy_tails=True)
    if getattr(args, "neighbour_rows", None) is not None:
        model = replace(model, neighbour_rows=args.neighbour_rows)
    if getattr(args, "score_reduction", None) is not None:
        model = replace(model, score_reduction=ScoreReduction(args.score_reduction))
    if getattr(args, "members", None) is not None:
        model = replace(model, members=args.members)
    if getattr(args, "epoch_windows", None) is not None:
        model = replace(model, epoch_windows=args.epoch_windows)
    if getattr(args, "seed", None) is not None:
        model = replace(model, seed=args.seed)
    calibration = options.calibration
    adapt = getattr(args, "adapt", False)
    adaptive = getattr(args, "adaptive", None)
    if adapt or adaptive is not None:
        calibration = replace(calibration, adaptive=adapt or bool(adaptive))
    if getattr(args, "likelihood", None) is not None:
        calibration = replace(calibration, likelihood=bool(args.likelihood))
    if adapt or getattr(args, "running_normalization", False):
        calibration = replace(calibration, running_normalization=True)
    if getattr(args, "normalization_memory", None):
        calibration = replace(calibration, normalization_memory=args.normalization_memory)
    return replace(options, model=model, data=data, calibration=calibration)
