"""The ``vigil`` command line: a thin layer over the library functions.

It sits above the four layers (benchmarks -> export -> training -> runtime) and is the one
place that reaches all of them; the runtime commands (score, eval, bench) never import TensorFlow.

Exit codes: 0 success; 1 unexpected failure, or a live source lost for good; 2 invalid arguments
or input data; 3 model artifact refused (missing, corrupt, foreign, newer schema, external data,
wrong sha256); 4 the results could not be written (disk full, file closed).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import sys
import tempfile
from pathlib import Path

from vigil.cli.arguments import (JsonErrorParser, as_flags, build_parser,
                                 joined_negative_numbers, reconnect_limit, value_flags)
from vigil.cli.log_format import JsonFormatter, TextFormatter, quiet_native_logs
from vigil.cli.output_paths import check_output_paths, refuse_empty_paths
from vigil.runtime.core.output import strict_json
from vigil.runtime.core.report import json_text

EXIT_OK, EXIT_FAILURE, EXIT_INPUT, EXIT_ARTIFACT, EXIT_OUTPUT = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130  # a batch stopped by Ctrl-C before its end (the shell's code for SIGINT)

log = logging.getLogger("vigil")


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing advice meant for developers


@contextlib.contextmanager
def _start_up_noise_held_back():
    """Hold back what TensorFlow's C++ start-up writes straight to file descriptor 2 (absl's
    pre-init notice, CUDA probes on a machine without a GPU); replay it if start-up fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _training_side(what: str):
    """Import the training stack, or say how to install it."""
    _quiet_tensorflow()
    try:
        with _start_up_noise_held_back():
            import tensorflow
            import tf2onnx  # noqa: F401

            tensorflow.config.list_physical_devices("GPU")  # the CUDA probe logs here
    except ImportError as missing:
        from vigil.runtime.core.report import MissingDependency

        package = missing.name or "a package of them"
        raise MissingDependency(f"`vigil {what}` needs the training extras ({package} is not "
                                f"installed): pip install 'vigil-edge[train]'") from None
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        # TensorFlow's failure-signal handler took SIGTERM over below Python's: give it back to
        # the handler Python has for it (the run's stop, or the default)
        signal.signal(signal.SIGTERM, signal.getsignal(signal.SIGTERM))


def cmd_train_sensor(args) -> int:
    _training_side("train sensor")
    from dataclasses import replace

    from vigil.training.progress import keras_verbose
    from vigil.training.train_sensor import SensorTrainingOptions, train_sensor

    defaults = SensorTrainingOptions()
    options = SensorTrainingOptions(
        data=replace(defaults.data, **_given(args, "window", "stride", "validation_fraction",
                                             "max_gap", "label_column", "time_column",
                                             "features", "relative_std_floor", "labels",
                                             "decimal", "compress_heavy_tails")),
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
    architecture = args.architecture or defaults.model.architecture.value
    _refuse_unused(args, [
        *_threshold_rules(args, "f1" if args.supervised else "gaussian",
                          gaussian_fallback=args.supervised),
        (("latent",), architecture not in AUTOENCODERS,
         f"the autoencoders (--architecture {', '.join(AUTOENCODERS)}); this run trains "
         f"{architecture}"),
        (("burn_in",), architecture in AUTOENCODERS,
         f"the forecasters; this run trains the autoencoder {architecture}"),
        (("adaptive_memory", "adaptive_warmup", "adaptive_quantile", "adaptive_factor",
          "adaptive_z"), args.adaptive is False,
         "the adaptive threshold, which --no-adaptive turns off"),
        (("normalization_memory", "normalization_warmup"), not args.running_normalization,
         "--running-normalization"),
        (("likelihood_z", "likelihood_level"), args.likelihood is False,
         "the anomaly likelihood, which --no-likelihood turns off"),
        (("neighbour_entries",), args.neighbour_rows == 0,
         "the neighbour distance, which --neighbour-rows 0 turns off"),
        # --supervised trains one LSTM or GRU classifier on labeled windows
        (("latent", "score_reduction", "score_decay", "burn_in", "neighbour_rows",
          "neighbour_entries", "members", "epoch_windows", "compress_heavy_tails"),
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
            from vigil.training.train_supervised import SupervisedOptions, train_supervised

            if args.threshold_method is None:  # labels are plentiful: F1-optimal by default
                options = replace(options, calibration=replace(options.calibration,
                                                                method="f1"))
            result = train_supervised(
                args.data, args.output, options,
                SupervisedOptions(synthetic_fraction=args.synthetic_anomalies or 0.0,
                                  class_weight=args.class_weight),
                verbose=keras_verbose(args.quiet, sys.stderr))
        else:
            result = train_sensor(args.data, args.output, options,
                                  verbose=keras_verbose(args.quiet, sys.stderr))
    record = result.run.record
    training = record["training"]
    windows = {"train_windows": training["train_windows"]}
    if "synthetic_anomalous_windows" in training:  # supervised: what the windows are
        windows.update({k: training[k] for k in ("labeled_anomalous_windows",
                                                 "synthetic_anomalous_windows")})
    print(json_text({"model": str(args.output), "threshold": result.threshold.value,
                     "threshold_method": result.threshold.method, "epochs": result.epochs,
                     "seconds": round(result.seconds, 1), **windows,
                     # the columns read as what: a row number read as a reading shows here
                     "features": record["features"], "time_column": record.get("time_column"),
                     "label_column": record.get("label_column"),
                     "time_step": record.get("time_step"),
                     "inputs_only": training.get("inputs_only", {}),
                     "validation": result.validation}, indent=None))
    return EXIT_OK


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
    _training_side("train image")
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
        result = train_image(data, args.output, options, verbose=0 if args.quiet else 1)
    print(json_text({"model": str(args.output), "threshold": result.threshold.value,
                     "pixel_threshold": result.pixel_threshold.value,
                     "seconds": round(result.seconds, 1),
                     "images": result.run.record["training"]["images"]}, indent=None))
    return EXIT_OK


def cmd_export(args) -> int:
    _training_side("export")
    from vigil.export.export_image import export_image
    from vigil.export import ExportOptions, Precision
    from vigil.export.export_sensor import export_sensor
    from vigil.training.checkpoint import load_run

    _keras_model(args.model, "model")
    if Path(args.output).suffix != ".onnx":
        raise ValueError(f"`--output` must end in .onnx; received {args.output!r} (for example "
                         f"-o {Path(args.output).with_suffix('.onnx').name})")
    if args.force and args.precision == "fp32":
        raise ValueError("--force keeps INT8 where it misses the parity tolerance; --precision "
                         "fp32 quantizes nothing: leave --force out")
    options = ExportOptions(precision=Precision(args.precision), force=args.force)
    kind = load_run(args.model).record.get("kind", "sensor")
    with _progress(args) as progress:
        report = (export_image if kind == "image" else export_sensor)(
            args.model, args.output, options, progress=progress)
    for message in report.messages:
        log.warning(message)
    for note in report.notes:
        log.info(note)
    pixel = ({"pixel_threshold": report.pixel_threshold.value}
             if report.pixel_threshold is not None else {})
    print(json_text({"artifact": str(report.path), "precision": report.precision,
                     "threshold": report.threshold.value, **pixel, "parity": report.parity}))
    return EXIT_OK


def _keras_model(path: str, flag: str) -> None:
    """ValueError unless ``path`` names a .keras model (what `vigil train` writes)."""
    if Path(path).suffix == ".keras":
        return
    hint = (f"; {path!r} is already an exported artifact: score it with `vigil score {path} "
            f"DATA`, or give the .keras it was exported from" if Path(path).suffix == ".onnx"
            else "")
    raise ValueError(f"`{flag}` must be a .keras model written by `vigil train`; received "
                     f"{path!r}{hint}")


IMAGE_FLAGS = ("overlay_dir", "overlay_all", "overlay_video", "show", "max_frames",
               "reconnect_attempts", "pixel_threshold")


def _check_outputs(args, inputs: list) -> None:
    """Refuse an output path that is the model or an input: writing there would destroy it."""
    from vigil.runtime.core.output import refuse_inputs_as_output, same_file

    inputs = [args.model, *inputs]
    refuse_inputs_as_output(args.jsonl, inputs, "--jsonl")
    outputs = {"--health": args.health, "--overlay-video": getattr(args, "overlay_video", None)}
    for flag, path in outputs.items():
        if path not in (None, "-"):
            refuse_inputs_as_output(path, inputs, flag)
            if args.jsonl not in (None, "-") and same_file(path, args.jsonl):
                raise ValueError(f"`{flag}` and `--jsonl` name the same file {path!r}")


def _refuse_outputs_in_image_folders(args, folders: list) -> None:
    """Refuse an output written into an image folder that is an input: every file of such a
    folder is read as a frame, so the next run over the folder would take it for one (and
    refuse to write over its own input)."""
    outputs = {"--jsonl": args.jsonl, "--health": getattr(args, "health", None),
               "--overlay-video": getattr(args, "overlay_video", None)}
    for folder in folders:
        inside = Path(folder).resolve()
        for flag, path in outputs.items():
            if path not in (None, "-") and Path(path).resolve().parent == inside:
                raise ValueError(
                    f"`{flag}` {path!r} lies in the image folder {str(folder)!r}, an input: every "
                    "file there is read as a frame, so a later run over the folder would score "
                    f"it as one; write it beside the folder ({flag} "
                    f"{inside.parent / Path(path).name})")


def _open_outputs(args, detector, live: bool, health=None):
    """The results writer, health reporter and MQTT publisher that --jsonl,
    --append/--overwrite, --on-output-error, --health and --mqtt ask for (after the source is
    known good)."""
    from vigil.runtime.core.health import HealthReporter
    from vigil.runtime.core.output import JsonLines

    publisher = None
    if args.mqtt is not None:
        from vigil.runtime.core.mqtt import MqttPublisher

        publisher = MqttPublisher(args.mqtt, buffer=args.mqtt_buffer,
                                  client_id=args.mqtt_client_id)
    if health is None and (args.health or publisher is not None):
        # validated before the results file is touched; with --mqtt alone, reports go only there
        health = HealthReporter(args.health, args.health_interval, model=detector)
    mode = "append" if args.append else "overwrite" if args.overwrite else "new"
    out = JsonLines(args.jsonl, on_error=args.on_output_error, live=live, mode=mode)
    if publisher is not None:
        out.mirror = publisher.publish_line
        health.mirror = publisher.publish_health
        health.sections["mqtt"] = publisher.stats
        publisher.start()
    return out, health, publisher


def _close_publisher(publisher, health=None) -> dict | None:
    """Close the MQTT publisher once what is pending is acknowledged; the run's final health
    report is written (and published) again then, with the publisher's counts after draining
    (written at the run's end, it counted the results still in flight as pending)."""
    if publisher is None:
        return None
    publisher.drain()
    if health is not None:
        health.write()
    return publisher.close(timeout_s=2.0)


def _error_line(message: object, as_json: bool) -> None:
    if as_json:
        log.error("%s", message)
    else:
        print(f"vigil: error: {message}", file=sys.stderr)


def _finish(args, summary, mqtt: dict | None = None) -> int:
    """Print the summary (and the MQTT publisher's counts); the exit code its ending calls for."""
    print(strict_json({"summary": summary.to_json(), **({"mqtt": mqtt} if mqtt else {})}),
          file=sys.stderr)
    if summary.stopped == "output_failed" or (summary.lines_lost
                                               and summary.stopped != "interrupted"):
        _error_line(summary.last_error if summary.stopped == "output_failed" else
                    f"{summary.lines_lost} result lines could not be written; "
                    f"{summary.lines_written} were", args.log_json)
        return EXIT_OUTPUT
    if summary.stopped == "source_lost":
        _error_line(summary.last_error, args.log_json)
        return EXIT_FAILURE
    from vigil.runtime.camera.scoring import FrameSummary
    from vigil.runtime.sensor.scoring import ScoreSummary

    if (isinstance(summary, ScoreSummary) and summary.rows
            and summary.rows_skipped == summary.rows and summary.stopped == "end"):
        _error_line(f"no row could be scored: all {summary.rows} were skipped (the last: "
                    f"{summary.last_error}); each has its line with the reason", args.log_json)
        return EXIT_INPUT
    if (isinstance(summary, FrameSummary) and summary.frames_in
            and summary.skipped == summary.frames_in and summary.stopped == "end"):
        _error_line(f"no frame could be scored: all {summary.frames_in} were skipped (the last: "
                    f"{summary.last_error}); each has its line with the reason", args.log_json)
        return EXIT_INPUT
    return EXIT_OK


def cmd_score(args) -> int:
    from vigil.runtime.core.interrupts import StopSignals

    if args.append and args.overwrite:
        raise ValueError("--append and --overwrite exclude each other; give one")
    _refuse_orphan_flags(args)
    # SIGTERM and Ctrl-C stop the run at the next safe point (between rows or frames, or at
    # once while waiting for input or a connection), so every input read has its line.
    with StopSignals():
        return _score(args)


def _refuse_other_kind(model: str, kind: str, source: str) -> None:
    """ValueError when ``source`` is plainly data for the other kind of model (a CSV given to
    an image model, images to a sensor model), naming both: the reader's own error would not
    mention the model."""
    from vigil.runtime.camera.sources import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    path, media = Path(source), IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
    tables = {".csv", ".tsv"}
    if path.is_dir():
        try:
            names = [p.suffix.lower() for p in path.iterdir() if p.is_file()]
        except OSError:
            return
        holds_media = any(n in media for n in names)
        holds_tables = any(n in tables for n in names)
        if kind == "sensor" and not holds_tables:  # sensor folders are read with their subfolders
            holds_tables = next(path.rglob("*.csv"), None) is not None
        if kind == "sensor" and holds_media and not holds_tables:
            what = "a folder of images or videos"
        elif kind == "image" and holds_tables and not holds_media:
            what = "a folder of CSV files (sensor data)"
        else:
            return
    elif path.is_file() and kind == "sensor" and path.suffix.lower() in media:
        what = "an image or a video"
    elif path.is_file() and kind == "image" and path.suffix.lower() in tables:
        what = "a CSV file (sensor data)"
    else:
        return
    fix = ("score it with an image model (vigil train image ..., then vigil export)"
           if kind == "sensor" else "score it with a sensor model (vigil train sensor ..., then "
           "vigil export)")
    raise ValueError(f"{model!r} is {'a sensor' if kind == 'sensor' else 'an image'} model and "
                     f"{source!r} is {what}: {fix}, or give this model "
                     f"{'CSV data' if kind == 'sensor' else 'images or video'}")


def _refuse_orphan_flags(args) -> None:
    """ValueError for a `vigil score` flag given without the one it qualifies (it would do
    nothing, and the user would think it did)."""
    orphans = [(flag, needs) for flag, given, needs, present in (
        ("--append", args.append, "--jsonl FILE", args.jsonl),
        ("--overwrite", args.overwrite, "--jsonl FILE", args.jsonl),
        ("--health-interval", args.health_interval != 10.0, "--health PATH or --mqtt URL",
         args.health or args.mqtt),
        ("--mqtt-buffer", args.mqtt_buffer != 10_000, "--mqtt URL", args.mqtt),
        ("--mqtt-client-id", args.mqtt_client_id is not None, "--mqtt URL", args.mqtt),
        ("--overlay-all", args.overlay_all, "--overlay-dir DIR", args.overlay_dir),
    ) if given and not present]
    if orphans:
        flag, needs = orphans[0]
        where = " (the results go to stdout)" if needs.startswith("--jsonl") else ""
        raise ValueError(f"{flag} applies only with {needs}, which is not given{where}; add "
                         f"{needs} or leave {flag} out")


def _likelihood_option(args, detector) -> None:
    """``--no-likelihood``: the sensor artifact's anomaly likelihood off for this run."""
    if args.likelihood:
        return
    from dataclasses import replace

    from vigil.runtime import ImageDetector

    if isinstance(detector, ImageDetector):
        raise ValueError(f"--no-likelihood applies to sensor models; {args.model!r} is an image "
                         "model")
    detector.spec = replace(detector.spec, likelihood=None)


def _score(args) -> int:
    from vigil.runtime import ImageDetector, load
    from vigil.runtime.sensor.scoring import check_source, score_source
    from vigil.runtime.sensor.tables import csv_files

    detector = load(args.model, providers=args.device, threads=args.threads,
                    expect_sha256=args.expect_sha256)
    if args.threshold is not None:
        detector.threshold = args.threshold
    _likelihood_option(args, detector)
    if isinstance(detector, ImageDetector):
        if args.pixel_threshold is not None:
            detector.pixel_threshold = args.pixel_threshold
        return _score_frames(args, detector)
    given = [f"--{name.replace('_', '-')}" for name in IMAGE_FLAGS  # 0 is a value given too
             if getattr(args, name) is not None and getattr(args, name) is not False]
    if given:
        raise ValueError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to image "
                         f"models; {args.model!r} is a sensor model")
    live = args.source == "-"
    if not live:
        _refuse_other_kind(args.model, "sensor", args.source)
    _check_outputs(args, [] if live else csv_files(args.source, "source"))  # the source first: it exists
    if not live:
        # before the results file, the health report or the broker is touched
        check_source(detector, args.source, list(args.columns) if args.columns else None,
                     args.decimal)
    out, health, publisher = _open_outputs(args, detector, live)
    try:
        summary = score_source(detector, args.source, out, health=health, decimal=args.decimal,
                               header=list(args.columns) if args.columns else None)
    finally:
        try:
            out.close()
        finally:
            mqtt = _close_publisher(publisher, health)
    return _finish(args, summary, mqtt)


def _score_frames(args, detector) -> int:
    from vigil.runtime.camera.scoring import (FrameScoringOptions, FrameSummary,
                                              preview_unavailable, score_frames)
    from vigil.runtime.camera.sources import (ImageFiles, ReconnectPolicy, SourceOptions,
                                              SourceError, VideoFile, live_target, open_source,
                                              prefetched, redact)
    from vigil.runtime.core.health import HealthReporter

    given = [flag for flag, used in (("--columns", bool(args.columns)),
                                      ("--decimal", args.decimal != ".")) if used]
    if given:
        raise ValueError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to sensor "
                         f"models; {args.model!r} is an image model")
    _refuse_other_kind(args.model, "image", args.source)
    if args.show and preview_unavailable():
        raise ValueError(preview_unavailable())
    options = FrameScoringOptions(overlay_dir=args.overlay_dir, overlay_all=args.overlay_all,
                                  overlay_video=args.overlay_video, show=args.show,
                                  max_frames=args.max_frames)
    attempts = args.reconnect_attempts  # None: not given
    reconnect = ReconnectPolicy(max_attempts=reconnect_limit(attempts))
    health = None
    if args.health and live_target(args.source) is not None:
        # Connecting may take many attempts: the health report says so while it goes on.
        _check_outputs(args, [])
        health = HealthReporter(args.health, args.health_interval, model=detector)
        health.connecting("frames", redact(args.source))
    try:
        opened = open_source(args.source, SourceOptions(reconnect=reconnect))
        if isinstance(opened, ImageFiles):
            _check_frames(opened.paths, args)  # before any output is made or emptied
        elif isinstance(opened, VideoFile):
            try:
                opened.check()
            except SourceError:
                opened.close()
                raise
        if not opened.live and attempts is not None:
            log.warning("--reconnect-attempts applies to live sources (a camera index, an "
                        "rtsp/http URL); %r is read once, not reconnected", args.source)
        source = prefetched(opened)
    except KeyboardInterrupt:
        summary = FrameSummary(source=redact(args.source), stopped="interrupted")
        if health is not None:
            health.stop("interrupted")
        return _finish(args, summary)
    except BaseException as error:
        if health is not None:
            health.stop("error", str(error))
        raise
    try:
        if isinstance(opened, ImageFiles) and Path(args.source).is_dir():
            _refuse_outputs_in_image_folders(args, [args.source])
        _check_outputs(args, _source_files(source))
        out, health, publisher = _open_outputs(args, detector, live=source.live, health=health)
    except BaseException:
        source.close()
        raise
    try:
        summary = score_frames(detector, source, out, options, health=health)
    finally:
        source.close()
        try:
            out.close()
        finally:
            mqtt = _close_publisher(publisher, health)
    return _finish(args, summary, mqtt)


def _check_frames(paths: list, args) -> None:
    """SourceError unless one of an image source's files decodes; videos in it (which are not
    frames) are named with the commands that score them."""
    from vigil.runtime.camera.sources import VIDEO_EXTENSIONS, SourceError, check_images

    videos = [Path(p) for p in paths if Path(p).suffix.lower() in VIDEO_EXTENSIONS]
    fix = (f"score a video on its own (vigil score {args.model} {videos[0]}) or the folder, "
           f"videos included, with vigil batch {args.model} {args.source} --jsonl OUT"
           if videos else "")
    try:
        check_images(paths, args.source)
    except SourceError as error:
        if not videos:
            raise
        raise SourceError(f"{error}; it holds {len(videos)} video(s): {fix}") from None
    if videos:
        log.warning("%s: %d video(s) in it (e.g. %s) are not frames: each gets an 'unusable' "
                    "line; %s", args.source, len(videos), videos[0].name, fix)


def _source_files(source) -> list:
    """The files a frame source reads (images or a video), to keep outputs off them."""
    inner = getattr(source, "inner", source)
    return list(getattr(inner, "paths", [])) + ([inner.path] if hasattr(inner, "path") else [])


def _eval_images(args, detector) -> int:
    from vigil.runtime.camera.evaluation import evaluate_images, test_items
    from vigil.runtime.camera.report import write_image_report
    from vigil.runtime.core.report import json_text

    given = [flag for flag, used in (("--labels", args.labels is not None),
                                      ("--label-column", args.label_column is not None),
                                      ("--decimal", args.decimal != "."),
                                      ("--no-threshold-search", args.no_threshold_search))
             if used]
    if given:
        raise ValueError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to sensor "
                         f"models; {args.model!r} is an image model (its labels are the "
                         "folders: an MVTec AD category, or --normal and --anomalous)")
    items = test_items(args.data, args.normal, args.anomalous, args.masks)
    with _progress(args) as progress:
        result, scored = evaluate_images(detector, items, progress=progress)
    unmasked = result["pixel_unmasked_defects"]
    where = ("ground_truth/<defect>/NAME_mask.png, NAME.png beside NAME.jpg, or --masks DIR with "
             "NAME.png or NAME_mask.png")
    if unmasked and unmasked < result["anomalous"]:
        log.warning("%d defect image(s) have no mask and are left out of pixel_auroc and pro "
                    "(their defect pixels are unknown); give their masks (%s)", unmasked, where)
    elif unmasked:  # image labels only (as ELPV's): nothing is missing that was meant to be there
        log.info("no defect image has a mask: image metrics only (pixel metrics need masks: %s)",
                 where)
    keys = ("image_auroc", "pixel_auroc", "pro", "f1", "precision", "recall", "threshold")
    print(json_text({k: result[k] for k in keys}), flush=True)  # first: kept if a file fails
    if args.json:
        _write_result(args.json, json_text(result))
    if args.report:
        report = write_image_report(result, scored, detector, args.report, args.model,
                                    _typed_data(args))
        print(f"report: {report}", file=sys.stderr)
    return EXIT_OK


def _progress(args):
    """Progress on stderr (a live bar on a terminal, lines in a file); none with --quiet or
    --log-json, whose stderr is for JSON lines."""
    from vigil.cli.progress import ConsoleProgress

    return ConsoleProgress(quiet=getattr(args, "quiet", False) or getattr(args, "log_json", False))


def _typed_data(args) -> str:
    """The data arguments of an image `vigil eval` as typed, for the commands a report suggests."""
    parts = [args.data, *[f"--normal {f}" for f in args.normal],
             *[f"--anomalous {f}" for f in args.anomalous]]
    return " ".join(parts + [f"--masks {folder}" for folder in args.masks or ()])


def cmd_eval(args) -> int:
    from vigil.runtime import ImageDetector, load
    from vigil.runtime.sensor.evaluation import evaluate
    from vigil.runtime.core.report import json_text

    if args.report:  # before any work: a missing plotting library is known now, not at the end
        from vigil.runtime.core.report import pyplot

        pyplot()
    detector = load(args.model, providers=args.device, threads=args.threads)
    if args.threshold is not None:
        detector.threshold = args.threshold
    _likelihood_option(args, detector)
    _refuse_other_kind(args.model, "image" if isinstance(detector, ImageDetector) else "sensor",
                       args.data)
    if isinstance(detector, ImageDetector):
        return _eval_images(args, detector)
    if args.normal or args.anomalous or args.masks:
        raise ValueError(f"--normal, --anomalous and --masks are for image models; {args.model} "
                         "is a sensor model (its labels come from --label-column or --labels)")
    from vigil.runtime.sensor.labels import read_labels

    labels = read_labels(args.labels) if args.labels else None
    with _progress(args) as progress:
        label_column = args.label_column or detector.spec.label_column or "anomaly"
        result, files = evaluate(detector, args.data, label_column=label_column,
                                 labels=labels, decimal=args.decimal, progress=progress,
                                 threshold_search=not args.no_threshold_search)
    keys = ("precision", "recall", "f1", "auroc", "auprc", "event_f1", "point_adjusted_f1",
            "threshold")
    print(json_text({k: result[k] for k in keys}), flush=True)  # first: kept if a file fails
    if args.json:
        _write_result(args.json, json_text(result))
    if args.report:
        from vigil.runtime.sensor.report import write_report

        print(f"report: {write_report(result, files, args.report, args.model, args.data)}",
              file=sys.stderr)
    return EXIT_OK


def cmd_serve(args) -> int:
    from vigil.cli.serve import serve_forever

    if not 0 < args.max_request_mb <= 4096:
        raise ValueError(f"`--max-request-mb` must be > 0 and <= 4096; received "
                         f"{args.max_request_mb:g}")
    serve_forever(args.model, name=args.name, host=args.host, port=args.port,
                  replicas=args.replicas, threads=args.threads,
                  max_body_mb=args.max_request_mb, max_queued=args.max_queued)
    return EXIT_OK


def cmd_batch(args) -> int:
    from vigil.runtime.core.interrupts import StopSignals

    # SIGTERM and Ctrl-C stop the batch between rows or frames; the item then being scored is
    # not written, so every item in the output is whole and --resume continues after them
    with StopSignals():
        return _batch(args)


def _batch(args) -> int:
    from vigil.cli.batch import (Reading, Scorer, check_same_model, plan_batch,
                                 resume_point, run_batch)
    from vigil.runtime import load
    from vigil.runtime.core.interrupts import waiting
    from vigil.runtime.core.output import JsonLines, OutputError, refuse_inputs_as_output

    given = [flag for flag, used in (("--append", args.append), ("--overwrite", args.overwrite),
                                     ("--resume", args.resume)) if used]
    if len(given) > 1:
        raise ValueError(f"{' and '.join(given)} exclude each other; give one")
    if args.workers is not None and args.ray is None:
        raise ValueError(f"--workers {args.workers} applies to Ray workers; without --ray the "
                         "batch is scored in this process: add --ray (a local Ray) or leave "
                         "--workers out")
    if args.jsonl == "-" and args.resume:
        raise ValueError("--resume continues a results file, and `--jsonl -` is standard "
                         "output, which cannot be read back: give --jsonl a file")
    if args.jsonl == "-" and args.ray is not None:
        raise ValueError("with --ray, Ray's own processes print to standard output too, so "
                         "`--jsonl -` would mix their messages into the results: give --jsonl a "
                         "file (or a named pipe, made with mkfifo, to stream them)")
    reading = Reading(threshold=args.threshold, decimal=args.decimal,
                      header=tuple(args.columns) if args.columns else None,
                      likelihood=args.likelihood)
    with waiting():  # nothing is in flight while planning: a stop request ends it at once
        detector = load(args.model)
        items = plan_batch(args.model, args.inputs, reading,  # the inputs are known good first
                           check=lambda kind, given: _refuse_other_kind(args.model, kind, given),
                           detector=detector)
        if detector.spec.kind == "image":
            # a folder of recordings reads only videos and images: other files are not frames
            _refuse_outputs_in_image_folders(args, [
                given for given in args.inputs if Path(given).is_dir()
                and not any(i.kind == "video" and i.given == given for i in items)])
        refuse_inputs_as_output(args.jsonl, [args.model, *args.inputs,
                                             *[p for i in items for p in i.paths]], "--jsonl")
        resumed = None
        if args.resume:
            window = detector.spec.window if detector.spec.kind == "sensor" else None
            resumed = resume_point(args.jsonl, items, window, header=not args.columns)
            check_same_model(args.jsonl, items, Scorer(args.model, args.threads, reading))
    if resumed:
        log.info("--resume: %d of %d items are in %s whole (%d lines); scoring from %s%s",
                 resumed.items_done, len(items), args.jsonl, resumed.lines_kept,
                 items[resumed.items_done].name if resumed.items_done < len(items) else "none",
                 f", whose {resumed.lines_cut} lines are written again" if resumed.lines_cut
                 else "")
    mode = "append" if args.append or resumed else "overwrite" if args.overwrite else "new"
    if mode == "new" and not args.resume and os.path.isfile(args.jsonl) \
            and os.path.getsize(args.jsonl) > 0:
        # JsonLines' own refusal names --append, which after an interrupted batch would write
        # every item's lines again after those already there
        raise ValueError(f"`--jsonl` {args.jsonl!r} already holds {os.path.getsize(args.jsonl)} "
                         "bytes of results: add --resume to continue the batch that wrote it "
                         "(the items already written are not scored again), or --overwrite to "
                         "replace it")
    with JsonLines(args.jsonl, mode=mode, keep=resumed.keep_bytes if resumed else None) as out:
        try:
            summary = run_batch(args.model, items[resumed.items_done:] if resumed else items,
                                out, use_ray=args.ray is not None,
                                ray_address=None if args.ray in (None, "local") else args.ray,
                                workers=args.workers, threads=args.threads, reading=reading)
        except KeyboardInterrupt:
            out.flush()  # the whole items' lines
            if args.jsonl == "-":
                advice = ("standard output cannot be resumed: give --jsonl a file to continue "
                          "a batch with --resume")
            elif out.lines_written == 0 and not (resumed and resumed.lines_kept):
                advice = f"{args.jsonl} is as it was; run the same command again"
            elif args.append:
                advice = ("they follow the file's earlier lines, so --resume cannot tell this "
                          "run's items apart: append the rest by giving the inputs not yet "
                          "scored")
            else:
                advice = ("to continue, run the same command with --resume"
                          + (" in place of --overwrite" if args.overwrite else "")
                          + " (the items already written are not scored again)")
            _error_line(f"interrupted after {out.lines_written} lines were written to "
                        f"{args.jsonl}; {advice}", args.log_json)
            return EXIT_INTERRUPTED
        except OutputError as error:  # a full disk: the items before the failed one are whole
            _error_line(f"{error}; once there is room, the same command with --resume "
                        "continues after the items written whole", args.log_json)
            return EXIT_OUTPUT
        out.commit()  # every input was read: the output exists even without a line
    if resumed:
        summary["resumed"] = {"items_done_before": resumed.items_done,
                              "lines_kept": resumed.lines_kept, "lines_cut": resumed.lines_cut}
    print(strict_json({"summary": summary}), file=sys.stderr)
    if summary["lines"] and summary["skipped"] == summary["lines"]:
        _error_line(f"nothing could be scored: all {summary['lines']} lines are skipped rows or "
                    f"frames, each with its reason", args.log_json)
        return EXIT_INPUT
    return EXIT_OK


def cmd_health_check(args) -> int:
    from vigil.runtime.core.health import health_verdict

    verdict = health_verdict(args.health, args.max_age, args.max_idle, args.max_unscored)
    if verdict.problem is not None:
        _error_line(f"unhealthy: {verdict.problem}", args.log_json)
        return EXIT_FAILURE
    if verdict.finished:  # at its source's end or on request: no fault
        print(f"finished: {args.health} (stopped: {verdict.finished}; not to be restarted)")
    else:
        print(f"healthy: {args.health}")
    return EXIT_OK


def cmd_triton(args) -> int:
    from vigil.export.triton import write_triton_repository

    folder = write_triton_repository(args.model, args.repository, name=args.name,
                                     max_batch_size=args.max_batch_size,
                                     cpu_instances=args.cpu_instances)
    print(json.dumps({"model_repository": str(Path(args.repository)), "model": folder.name,
                      "config": str(folder / "config.pbtxt"),
                      "gpu_config": str(folder / "configs" / "gpu.pbtxt")}, indent=2))
    return EXIT_OK


def cmd_bench(args) -> int:
    from vigil.benchmarks.bench import BenchOptions, bench, compare
    from vigil.benchmarks.bench_report import write_bench_report
    from vigil.runtime.core.report import json_text, pyplot

    if args.report:
        pyplot()  # a missing plotting library is known before the measurements, not after
    if args.compare:
        if args.models or args.against or args.input:
            given = [*args.models, *(["--against"] if args.against else []),
                     *(["--input"] if args.input else [])]
            raise ValueError(f"--compare merges earlier `vigil bench --json` results and times "
                             f"nothing, so {', '.join(given)} would be ignored: run `vigil bench "
                             f"MODEL.onnx --json OUT.json` first, then --compare the JSON files")
        result = compare(args.compare)
    else:
        if not args.models:
            raise ValueError("`vigil bench` needs MODEL.onnx (one or more) or --compare A.json ...")
        if args.decimal != "." and not args.input:
            raise ValueError("--decimal applies to an --input CSV; without --input `vigil bench` "
                             "times generated inputs: add --input DATA.csv or leave --decimal out")
        if args.against:
            _keras_model(args.against, "--against")
            _training_side("bench --against")
            _same_kind_as_against(args.models, args.against)
        with _progress(args) as progress:
            result = bench(args.models, BenchOptions(
                batches=args.batch, threads=args.threads, devices=args.device,
                seconds=args.seconds, input=args.input, decimal=args.decimal,
                against=args.against, cold_start=not args.no_cold_start), progress=progress)
    text = json_text(result)
    print(text, flush=True)  # first: the measurements are kept if a file cannot be written
    if args.json:
        _write_result(args.json, text)
    if args.report:
        print(f"report: {write_bench_report(result, args.report)}", file=sys.stderr)
    return EXIT_OK


def _write_result(path: str, text: str, flag: str = "--json") -> None:
    """Write a result file whole or not at all: a temporary file beside it (the link's target
    for a symbolic link, the existing file's mode kept), then a rename. A device, a pipe, or a
    file in a folder this user cannot write is written in place. An OSError names the flag and
    the path."""
    from vigil.runtime.core.output import write_atomically
    from vigil.runtime.core.output import FILE_MODE

    target = Path(os.path.realpath(path))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if ((target.exists() and not target.is_file())
                or (target.is_file() and not os.access(target.parent, os.W_OK))):
            target.write_text(text)
            return
        mode = stat.S_IMODE(target.stat().st_mode) if target.is_file() else FILE_MODE
        write_atomically(target, text, mode)
    except OSError as error:
        raise OSError(error.errno, f"{flag} {path}: {error.strerror or error}") from None


def _same_kind_as_against(models: list[str], against: str) -> None:
    """ValueError, before any timing, when ``--against`` is another kind of model than an
    artifact (the baselines would feed it the artifact's inputs)."""
    from vigil.runtime import load
    from vigil.training.checkpoint import load_run

    kind = load_run(against).record.get("kind")
    for model in models:
        mine = load(model).spec.kind
        if kind is not None and mine != kind:
            raise ValueError(f"`--against` {against!r} is {'an' if kind == 'image' else 'a'} "
                             f"{kind} model and {model!r} is {'an' if mine == 'image' else 'a'} "
                             f"{mine} model: give the .keras model the artifact was exported "
                             "from")


def cmd_demo(args) -> int:
    _training_side("demo")
    from .demo import run_demo

    run_demo(Path(args.output), seed=args.seed, quick=args.quick, only=args.only,
             architecture=args.architecture)
    return EXIT_OK


# Output options by what they name: a file, or a folder that is created (nothing is created here).
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--log-json" in argv
    if as_json:
        quiet_native_logs()
    JsonErrorParser.json_errors = as_json
    try:
        args = parser.parse_args(joined_negative_numbers(argv, value_flags(parser)))
    finally:
        JsonErrorParser.json_errors = False
    args.run = HANDLERS[args.command]
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if args.log_json else TextFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    log.setLevel(logging.INFO)
    for message in getattr(args, "deprecations", []):
        log.warning("%s", message)
    from vigil.runtime.core.output import OutputError
    from vigil.runtime.core.report import MissingDependency
    from vigil.runtime.core.spec import ArtifactError

    try:
        refuse_empty_paths(args)
        check_output_paths(args)
        with _sigterm_as_interrupt(args.run in SIGTERM_AS_CTRL_C):
            return args.run(args)
    except MissingDependency as error:
        _error_line(error, args.log_json)
        return EXIT_FAILURE
    except ArtifactError as error:
        _error_line(error, args.log_json)
        return EXIT_ARTIFACT
    except OutputError as error:
        _error_line(error, args.log_json)
        return EXIT_OUTPUT
    except (ValueError, TypeError, FileNotFoundError) as error:
        _error_line(as_flags(str(error), parser, args.command), args.log_json)
        return EXIT_INPUT
    except BrokenPipeError:
        return EXIT_OK
    except OSError as error:  # an output that could not be written after all (checked first)
        import errno

        path = error.filename or getattr(args, "output", None)
        where = f"{str(path)!r}: " if path else ""
        advice = ("the disk is full: free space there, or name a path on another disk"
                  if error.errno in (errno.ENOSPC, errno.EDQUOT)
                  else "name a path in a folder you can write")
        _error_line(f"{where}cannot be written ({error.strerror or error}); {advice}",
                    args.log_json)
        return EXIT_OUTPUT
    except KeyboardInterrupt as stop:
        if str(stop) == "SIGTERM":
            _error_line("stopped by SIGTERM before the work was done; nothing more was written",
                        args.log_json)
        return EXIT_INTERRUPTED


HANDLERS = {"demo": cmd_demo, "train sensor": cmd_train_sensor, "train image": cmd_train_image,
            "export": cmd_export, "score": cmd_score, "eval": cmd_eval, "bench": cmd_bench,
            "triton": cmd_triton, "serve": cmd_serve, "batch": cmd_batch,
            "health-check": cmd_health_check}  # what each command of the parser runs

# Commands that stop on SIGTERM as on Ctrl-C (exit 130; their outputs are written whole or not
# at all); score, serve and batch stop at their own safe points, and health-check is too short
SIGTERM_AS_CTRL_C = (cmd_train_sensor, cmd_train_image, cmd_export, cmd_eval, cmd_bench,
                     cmd_demo, cmd_triton)


@contextlib.contextmanager
def _sigterm_as_interrupt(active: bool):
    """SIGTERM raises KeyboardInterrupt("SIGTERM") while ``active`` (in the main thread); the
    previous handler comes back after. Without it the signal's default ended the process with
    143, without a word."""
    import signal
    import threading

    if not active or threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(number, frame):
        raise KeyboardInterrupt("SIGTERM")

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


if __name__ == "__main__":
    sys.exit(main())
