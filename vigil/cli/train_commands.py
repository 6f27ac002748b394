"""`vigil train sensor|image`, `vigil export` and `vigil demo`: the commands that need the
training extras (TensorFlow, tf2onnx)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from vigil.cli.shared import EXIT_OK, check_keras_model, log, progress_for, training_side
from vigil.runtime.core.report import json_text


def cmd_train_sensor(args) -> int:
    training_side("train sensor")
    from dataclasses import replace

    from vigil.training.progress import keras_verbose
    from vigil.training.train_sensor import SensorTrainingOptions, train_sensor

    defaults = SensorTrainingOptions()
    options = SensorTrainingOptions(
        data=replace(defaults.data, **_given(args, "window", "stride", "validation_fraction",
                                             "max_gap", "label_column", "time_column",
                                             "features", "relative_std_floor", "labels",
                                             "decimal", "compress_heavy_tails", "scored",
                                             "inputs_only")),
        model=replace(defaults.model, **_given(args, "architecture", "units", "latent", "epochs",
                                               "batch_size", "learning_rate", "score_reduction",
                                               "score_last", "score_decay", "burn_in",
                                               "neighbour_rows", "neighbour_entries",
                                               "members", "epoch_windows", "seed")),
        calibration=replace(defaults.calibration, **_given(args, "k", "q", "consecutive", "hold",
                                                           "rearm", "adaptive", "adaptive_memory",
                                                           "adaptive_warmup", "adaptive_z",
                                                           "adaptive_quantile", "adaptive_factor",
                                                           "running_normalization",
                                                           "normalization_memory",
                                                           "normalization_warmup",
                                                           "likelihood", "likelihood_z",
                                                           "likelihood_level",
                                                           method="threshold_method")),
    )
    if args.synthetic_anomalies is not None and not args.supervised:
        raise ValueError("--synthetic-anomalies applies to --supervised training")
    if not args.class_weight and not args.supervised:
        raise ValueError("--no-class-weight applies to --supervised training; leave it out")
    if args.patience is not None and not args.supervised:
        raise ValueError(f"--patience applies to --supervised training (the normal-only models "
                         f"train every epoch); received --patience {args.patience} without it")
    architecture = args.architecture or defaults.model.architecture.value
    _refuse_unused(args, [
        *_threshold_rules(args, "f1" if args.supervised else "gaussian",
                          gaussian_fallback=args.supervised),
        (("latent",), architecture not in AUTOENCODERS,
         f"the autoencoders (--architecture {', '.join(AUTOENCODERS)}); this run trains "
         f"{architecture}"),
        (("burn_in",), architecture in AUTOENCODERS,
         f"the forecasters; this run trains the autoencoder {architecture}"),
        (ADAPTIVE_SETTINGS, args.adaptive is False,
         "the adaptive threshold, which --no-adaptive turns off"),
        (("normalization_memory", "normalization_warmup"), not args.running_normalization,
         "--running-normalization"),
        (LIKELIHOOD_SETTINGS, args.likelihood is False,
         "the anomaly likelihood, which --no-likelihood turns off"),
        (("neighbour_entries",), args.neighbour_rows == 0,
         "the neighbour distance, which --neighbour-rows 0 turns off"),
        # --supervised trains one LSTM or GRU classifier on labeled windows
        (("latent", "score_reduction", "score_decay", "burn_in", "neighbour_rows",
          "neighbour_entries", "members", "epoch_windows", "compress_heavy_tails", "scored",
          "inputs_only"),
         args.supervised, "the normal-only models (forecasters and autoencoders); --supervised "
                          "trains one classifier"),
    ])
    if args.adaptive_z is not None and (args.adaptive_quantile is not None
                                        or args.adaptive_factor is not None):
        raise ValueError(f"--adaptive-z (recent mean + z std) and --adaptive-quantile/"
                         f"--adaptive-factor (a multiple of a recent quantile) are two rules; "
                         f"give one; received --adaptive-z {args.adaptive_z}, "
                         f"--adaptive-quantile {args.adaptive_quantile}, --adaptive-factor "
                         f"{args.adaptive_factor}")
    with contextlib.redirect_stdout(sys.stderr):  # progress on stderr; stdout has the result
        if args.supervised:
            from vigil.training.train_supervised import (SupervisedOptions, supervised_calibration,
                                                         train_supervised)

            calibration, turned_off = supervised_calibration(
                options.calibration, method_given=args.threshold_method is not None,
                adaptive_given=bool(args.adaptive) or _any_given(args, ADAPTIVE_SETTINGS))
            if turned_off:
                log.info("--supervised: the adaptive threshold is off, so the threshold chosen "
                         "on the labels decides (--adaptive turns it on)")
            options = replace(options, calibration=calibration)
            result = train_supervised(
                args.data, args.output, options,
                SupervisedOptions(synthetic_fraction=args.synthetic_anomalies or 0.0,
                                  class_weight=args.class_weight,
                                  **({} if args.patience is None
                                     else {"patience": args.patience})),
                verbose=keras_verbose(args.quiet or args.log_json, sys.stderr))
        else:
            result = train_sensor(args.data, args.output, options,
                                  verbose=keras_verbose(args.quiet or args.log_json, sys.stderr))
    record = result.run.record
    training = record["training"]
    windows = {"train_windows": training["train_windows"]}
    if "synthetic_anomalous_windows" in training:  # supervised: what the windows are
        windows.update({k: training[k] for k in ("labeled_anomalous_windows",
                                                 "synthetic_anomalous_windows")})
    model = training.get("model", {})
    architecture = model.get("architecture")
    if training.get("mode") == "supervised" and architecture \
            and not architecture.endswith("-classifier"):  # recorded so before 2026-12-07
        architecture = ("gru" if architecture.startswith("gru") else "lstm") + "-classifier"
    print(json_text({"model": str(args.output), "threshold": result.threshold.value,
                     "threshold_method": result.threshold.method, "epochs": result.epochs,
                     "seconds": round(result.seconds, 1), **windows,
                     # what was trained: the window, the rows between windows (kept in scoring)
                     # and the rows each score reads
                     "window": record["window"], "stride": record["stride"],
                     "score_last": model.get("score_last"),
                     "architecture": architecture, "members": model.get("members"),
                     **({"best_epoch": model["best_epoch"]} if "best_epoch" in model else {}),
                     # the columns read as what: a row number read as a reading shows here
                     "features": record["features"], "time_column": record.get("time_column"),
                     "label_column": record.get("label_column"),
                     "time_step": record.get("time_step"),
                     "inputs_only": training.get("inputs_only", {}),
                     "validation": result.validation}, indent=None))
    return EXIT_OK


ADAPTIVE_SETTINGS = ("adaptive_memory", "adaptive_warmup", "adaptive_quantile",
                     "adaptive_factor", "adaptive_z")
LIKELIHOOD_SETTINGS = ("likelihood_z", "likelihood_level")


def _any_given(args, names) -> bool:
    return any(getattr(args, name, None) is not None for name in names)


def _given(args, *names: str, **renamed: str) -> dict:
    """Options the user set on the command line (unset ones keep the library defaults)."""
    pairs = [(n, n) for n in names] + list(renamed.items())
    return {field: getattr(args, arg) for field, arg in pairs if getattr(args, arg) is not None}


def _flag_list(names) -> str:
    """Option names as the user typed them: "--steps, --batch-size"."""
    return ", ".join(f"--{name.replace('_', '-')}" for name in names)


def _refuse_unused(args, rules) -> None:
    """ValueError naming options given where they do nothing: ``rules`` holds (option names,
    whether this run ignores them, what they apply to)."""
    for names, ignored, applies_to in rules:
        given = [n for n in names if getattr(args, n, None) is not None]
        if given and ignored:
            raise ValueError(f"{_flag_list(given)} appl{'ies' if len(given) == 1 else 'y'} to "
                             f"{applies_to}; leave {'it' if len(given) == 1 else 'them'} out")


AUTOENCODERS = ("lstm-ae", "gru-ae", "conv-lstm-ae")


def _threshold_rules(args, default_method: str, gaussian_fallback: bool = False) -> list:
    """``gaussian_fallback``: the F1-optimal threshold falls back to a Gaussian one (with --k)
    when the validation part holds no labeled anomaly, as supervised training's does."""
    method = args.threshold_method or default_method
    return [(("k",), method != "gaussian" and not (gaussian_fallback and method == "f1"),
             f"--threshold-method gaussian; this run's is {method}"),
            (("q",), method != "percentile",
             f"--threshold-method percentile; this run's is {method}")]


def cmd_train_image(args) -> int:
    training_side("train image")
    from dataclasses import replace

    from vigil.training.train_image import ImageTrainingOptions, train_image

    defaults = ImageTrainingOptions()
    _refuse_unused(args, _threshold_rules(args, "gaussian"))
    if args.masks is not None and not args.anomalous:
        raise ValueError("--masks applies to the defect images of --anomalous DIR (their "
                         "masks); give --anomalous, or leave --masks out")
    data = [args.data, *args.normal]
    unet_only = _given(args, "train_view", "rescale_views", "coarse_pass", "quarter_pass",
                       "map_normalization", "steps", "batch_size", "learning_rate", "width")
    architecture = args.architecture or defaults.architecture
    if args.architecture is None and unet_only and architecture == "features":
        # 0.2 trained a U-Net by default; its flags alone still ask for one, for one release.
        flags = _flag_list(unet_only)
        log.warning("`vigil train image` trains --architecture features by default since 0.3; "
                    "%s given without --architecture: training a U-Net, as 0.2 did. This is "
                    "deprecated and will be removed in 0.4: add --architecture unet", flags)
        architecture = "unet"
    features_only = _given(args, "bank", "components", "neighbourhood", "levels",
                           "frame_contrast")
    if "levels" in features_only:
        from vigil.training.feature_model import parse_levels

        features_only["levels"] = parse_levels(features_only["levels"])
    fused_only = _given(args, "global_score", "fused_map_weight")
    if fused_only and architecture != "fused":
        raise ValueError(f"{_flag_list(fused_only)} appl{'ies' if len(fused_only) == 1 else 'y'} "
                         f"to --architecture fused; this run trains --architecture "
                         f"{architecture}")
    features_only.update(fused_only)
    wrong = {"features": unet_only, "unet": features_only}.get(architecture)
    if wrong:
        flags = _flag_list(wrong)
        other = "unet" if architecture == "features" else "features"
        raise ValueError(f"{flags} appl{'ies' if len(wrong) == 1 else 'y'} to --architecture "
                         f"{other} (or fused); this run trains --architecture {architecture}")
    if "width" in unet_only:
        from vigil.training.image_model import unet_channels

        unet_only["channels"] = unet_channels(unet_only.pop("width"))
    options = ImageTrainingOptions(
        data=replace(defaults.data, anomalous=tuple(args.anomalous), masks=tuple(args.masks or ()),
                     **_given(args, "validation_fraction", "color")),
        model=replace(defaults.model, **unet_only, **_given(args, "size", "seed")),
        calibration=replace(defaults.calibration, **_given(args, "k", "q", method="threshold_method")),
        architecture=architecture,
        features=replace(defaults.features, **features_only, **_given(args, "size", "seed")),
    )
    with contextlib.redirect_stdout(sys.stderr):  # progress on stderr; stdout has the result
        result = train_image(data, args.output, options,
                             verbose=0 if args.quiet or args.log_json else 1)
    print(json_text({"model": str(args.output), "threshold": result.threshold.value,
                     "pixel_threshold": result.pixel_threshold.value,
                     "seconds": round(result.seconds, 1),
                     "images": result.run.record["training"]["images"],
                     "validation": result.run.record["training"].get("validation_check")},
                    indent=None))
    return EXIT_OK


def cmd_export(args) -> int:
    # the checks that need no TensorFlow first: a typo costs no 5 s of imports
    check_keras_model(args.model, "model")
    if Path(args.output).suffix != ".onnx":
        raise ValueError(f"`--output` must end in .onnx; received {args.output!r} (for example "
                         f"-o {Path(args.output).with_suffix('.onnx').name})")
    if args.force and args.precision not in ("int8", "mixed"):
        raise ValueError(f"--force keeps INT8 where it misses the parity tolerance; it applies "
                         f"to --precision int8 or mixed, not {args.precision} (auto chooses by "
                         f"parity and speed; fp32 quantizes nothing): give --precision int8 "
                         f"--force, or leave --force out")
    training_side("export")
    from vigil.export.export_image import export_image
    from vigil.export import ExportOptions, Precision
    from vigil.export.export_sensor import export_sensor
    from vigil.training.checkpoint import load_run

    options = ExportOptions(precision=Precision(args.precision), force=args.force)
    kind = load_run(args.model).record.get("kind", "sensor")
    with progress_for(args) as progress:
        report = (export_image if kind == "image" else export_sensor)(
            args.model, args.output, options, progress=progress)
    for message in report.messages:
        log.warning(message)
    for note in report.notes:
        log.info(note)
    pixel = ({"pixel_threshold": report.pixel_threshold.value}
             if report.pixel_threshold is not None else {})
    # what was asked for and why this was written, for a pipeline that reads the JSON alone
    print(json_text({"artifact": str(report.path), "precision": report.precision,
                     "requested_precision": args.precision,
                     "threshold": report.threshold.value, **pixel, "parity": report.parity,
                     "warnings": list(report.messages), "notes": list(report.notes)}))
    return EXIT_OK


def cmd_demo(args) -> int:
    training_side("demo")
    from .demo import run_demo

    run_demo(Path(args.output), seed=args.seed, quick=args.quick, only=args.only,
             architecture=args.architecture)
    return EXIT_OK
