"""The ``vigil`` command line: a thin layer over the library functions.

It sits above the four layers (benchmarks -> export -> training -> runtime) and is the one
place that reaches all of them; the runtime commands (score, eval, bench) never import TensorFlow.

Exit codes: 0 success; 1 unexpected failure, or a live source lost for good; 2 invalid arguments
or input data; 3 model artifact refused (missing, corrupt, foreign, newer schema, external data,
wrong sha256); 4 the results could not be written (disk full, file closed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import stat
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Callable, Iterator

from vigil import __version__

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
    except ImportError:
        raise SystemExit(f"vigil: error: `vigil {what}` needs the training extras: "
                         "pip install 'vigil-edge[train]'") from None
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        # TensorFlow's failure-signal handler took SIGTERM over below Python's: give it back to
        # the handler Python has for it (the run's stop, or the default)
        signal.signal(signal.SIGTERM, signal.getsignal(signal.SIGTERM))


DEVICES = ("auto", "cpu", "cuda", "tensorrt")


def _device_list(text: str) -> tuple[str, ...]:
    devices = _comma_list(text)
    unknown = [d for d in devices if d not in DEVICES]
    if unknown:
        raise argparse.ArgumentTypeError(f"devices must be among {', '.join(DEVICES)}; received "
                                         f"{', '.join(unknown)}")
    return devices


def _mqtt_target(text: str):
    from vigil.runtime.core.mqtt import MqttTarget

    try:
        return MqttTarget.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _device_preference(text: str) -> str:
    """score/eval: one device, or a preference list (the same form as bench's --device)."""
    return ",".join(_device_list(text))


def _comma_list(text: str) -> tuple[str, ...]:
    items = tuple(t.strip() for t in text.split(",") if t.strip())
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list; received {text!r}")
    return items


MAX_THREADS = 1024  # as vigil.runtime.core.artifact allows: more than machines have cores
MAX_BENCH_BATCH = 65_536  # items per timed call of `vigil bench` (memory is checked too)


def _integer(minimum: int, maximum: int | None = None):
    """An argparse type: an integer >= ``minimum`` (and <= ``maximum``, where given)."""
    wanted = f"an integer >= {minimum}" + (f" and <= {maximum}" if maximum is not None else "")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected {wanted}; received {text!r}")
        return value
    return parse


def _number(low: float | None = None, high: float | None = None, low_open: bool = False):
    """An argparse type: a finite number, at least ``low`` (above it with ``low_open``) and at
    most ``high`` where given."""
    if low is None:
        wanted = "a finite number"
    else:
        wanted = f"a number {'>' if low_open else '>='} {low:g}"
    if high is not None:
        wanted += f" and <= {high:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if (not math.isfinite(value) or (low is not None and (value <= low if low_open
                                                               else value < low))
                or (high is not None and value > high)):
            raise argparse.ArgumentTypeError(f"expected {wanted}; received {text!r}")
        return value
    return parse


def _int_list(text: str, most: int | None = None) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in _comma_list(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers like 1,8,32; received {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers; received {text!r}")
    if most is not None and any(v > most for v in values):
        raise argparse.ArgumentTypeError(f"expected integers from 1 to {most:,}; received {text!r}")
    return values


def _int_list_up_to(most: int) -> Callable[[str], tuple[int, ...]]:
    """``_int_list`` whose values are at most ``most`` (refused as the command is read)."""
    def parse(text: str) -> tuple[int, ...]:
        return _int_list(text, most)
    return parse


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
    if args.supervised and architecture in ("tcn-forecast", "conv-lstm-ae"):
        raise ValueError(f"--supervised trains an LSTM or a GRU classifier; --architecture "
                         f"{architecture} has neither cell: give lstm-forecast or gru-forecast "
                         f"(the cell it uses), or leave --architecture out")
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
    training = result.run.record["training"]
    windows = {"train_windows": training["train_windows"]}
    if "synthetic_anomalous_windows" in training:  # supervised: what the windows are
        windows.update({k: training[k] for k in ("labeled_anomalous_windows",
                                                 "synthetic_anomalous_windows")})
    print(json.dumps({"model": str(args.output), "threshold": result.threshold.value,
                      "threshold_method": result.threshold.method, "epochs": result.epochs,
                      "seconds": round(result.seconds, 1), **windows,
                      "inputs_only": training.get("inputs_only", {}),
                      "validation": result.validation}))
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
    print(json.dumps({"model": str(args.output), "threshold": result.threshold.value,
                      "pixel_threshold": result.pixel_threshold.value,
                      "seconds": round(result.seconds, 1),
                      "images": result.run.record["training"]["images"]}))
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
    print(json.dumps({"artifact": str(report.path), "precision": report.precision,
                      "threshold": report.threshold.value, "parity": report.parity}, indent=2))
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


FOREVER = "forever"


def reconnect_limit(given: int | str | None) -> int | None:
    """``--reconnect-attempts`` as ``ReconnectPolicy.max_attempts``: None (no limit) for
    ``forever``, the default when not given."""
    if given == FOREVER:
        return None
    return DEFAULT_RECONNECT_ATTEMPTS if given is None else int(given)


def _attempts(text: str) -> int | str:
    """A count of reconnect attempts, or ``FOREVER`` (the flag's default, None, means 10)."""
    if text.strip().lower() == FOREVER:
        return FOREVER
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0 or 'forever'; "
                                         f"received {text!r}")
    return value


IMAGE_FLAGS = ("overlay_dir", "overlay_all", "overlay_video", "show", "max_frames",
               "reconnect_attempts", "pixel_threshold")
DEFAULT_RECONNECT_ATTEMPTS = 10


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


def _close_publisher(publisher) -> dict | None:
    return publisher.close() if publisher is not None else None


def _error_line(message: object, as_json: bool) -> None:
    if as_json:
        log.error("%s", message)
    else:
        print(f"vigil: error: {message}", file=sys.stderr)


def _finish(args, summary, mqtt: dict | None = None) -> int:
    """Print the summary (and the MQTT publisher's counts); the exit code its ending calls for."""
    print(json.dumps({"summary": summary.to_json(), **({"mqtt": mqtt} if mqtt else {})}),
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
            mqtt = _close_publisher(publisher)
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
            mqtt = _close_publisher(publisher)
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
    if result["pixel_unmasked_defects"]:
        log.warning("%d defect image(s) have no mask and are left out of pixel_auroc and pro "
                    "(their defect pixels are unknown); give their masks (ground_truth/<defect>/"
                    "NAME_mask.png, or --masks DIR with NAME.png or NAME_mask.png)",
                    result["pixel_unmasked_defects"])
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

    if not 0 < args.port < 65536 or args.replicas < 1:
        raise ValueError(f"--port must be 1-65535 and --replicas >= 1; received {args.port} and "
                         f"{args.replicas}")
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        raise ValueError(f"`--threads` must be >= 1 and <= {MAX_THREADS} (onnxruntime threads "
                         f"per replica); received {args.threads}")
    if not 0 < args.max_request_mb <= 4096:
        raise ValueError(f"`--max-request-mb` must be > 0 and <= 4096; received "
                         f"{args.max_request_mb:g}")
    serve_forever(args.model, name=args.name, host=args.host, port=args.port,
                  replicas=args.replicas, threads=args.threads,
                  max_body_mb=args.max_request_mb)
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
            if out.lines_written == 0 and not (resumed and resumed.lines_kept):
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
    print(json.dumps({"summary": summary}), file=sys.stderr)
    if summary["lines"] and summary["skipped"] == summary["lines"]:
        _error_line(f"nothing could be scored: all {summary['lines']} lines are skipped rows or "
                    f"frames, each with its reason", args.log_json)
        return EXIT_INPUT
    return EXIT_OK


def cmd_health_check(args) -> int:
    from vigil.runtime.core.health import check_health

    problem = check_health(args.health, args.max_age, args.max_idle, args.max_unscored)
    if problem is not None:
        _error_line(f"unhealthy: {problem}", args.log_json)
        return EXIT_FAILURE
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


EXAMPLES = {
    "demo": ["vigil demo                      # both paths on built-in data, into vigil-demo/",
             "vigil demo --only sensor --output /tmp/demo"],
    "sensor": ["vigil train sensor pump/ -o pump.keras              # a folder of normal CSVs",
               "vigil train sensor line.csv -o line.keras --labels faults.json --threshold-method f1",
               "vigil train sensor labeled/ -o clf.keras --supervised --synthetic-anomalies 0.1",
               "vigil train sensor nab/ -o nab.keras               # NAB's root: data/ + labels/"],
    "image": ["vigil train image mvtec/bottle -o bottle.keras       # an MVTec AD category",
              "vigil train image good/ --anomalous bad/ --masks masks/ -o line.keras"],
    "export": ["vigil export pump.keras -o pump.onnx               # INT8 where it pays off",
               "vigil export pump.keras -o pump-fp32.onnx --precision fp32"],
    "triton": ["vigil triton pump.onnx models/             # then: tritonserver --model-repository models/",
               "vigil triton line.onnx models/ --name line1 --max-batch-size 32"],
    "serve": ["vigil serve pump.onnx --port 8000   # then POST /v2/models/pump/infer",
              "vigil serve line.onnx --host 0.0.0.0 --replicas 2"],
    "batch": ["vigil batch pump.onnx archive/2026-*/ --jsonl rescored.jsonl --ray",
              "vigil batch pump.onnx archive/2026-*/ --jsonl rescored.jsonl --resume   # after "
              "an interruption",
              "vigil batch line.onnx recordings/ --jsonl frames.jsonl --ray ray://head:10001"],
    "health-check": ["vigil health-check /run/vigil/health.json --max-age 60",
                     "vigil health-check health.json --max-age 30 --max-idle 300"],
    "score": ["vigil score pump.onnx today.csv --jsonl results.jsonl",
              "tail -n +1 -f live.csv | vigil score pump.onnx - --health health.json",
              "vigil score line.onnx rtsp://camera/stream --overlay-dir alarms/"],
    "eval": ["vigil eval pump.onnx labeled/ --json metrics.json --report report/",
             "vigil eval nab.onnx nab/          # NAB's root brings its label windows",
             "vigil eval line.onnx mvtec/bottle --report report/",
             "vigil eval line.onnx good/ --anomalous scratch/ --anomalous dent/ --masks masks/"],
    "bench": ["vigil bench pump.onnx pump-fp32.onnx --batch 1,32",
              "vigil bench line.onnx --device cpu,cuda --report bench/"],
}


def _command(commands, name: str, helptext: str, examples: str | None = None,
             parents=()) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with examples, and that takes --log-json after its name."""
    lines = EXAMPLES.get(examples or name, [])
    return commands.add_parser(
        name, help=helptext, description=textwrap.fill(helptext, 79), parents=list(parents),
        epilog="examples:\n" + "\n".join(f"  {line}" for line in lines) if lines else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)


THRESHOLD_METHODS = ("gaussian", "percentile", "f1")


class _DeprecatedThresholdMethod(argparse.Action):
    """0.2's `train --threshold METHOD`: still read for one release, with a warning (in `score`
    and `eval`, --threshold is a number)."""

    def __call__(self, parser, namespace, values, option_string=None):
        # logged by main() once logging is set up (--log-json may come later on the line)
        setattr(namespace, "deprecations", [*getattr(namespace, "deprecations", []), (
            f"`train --threshold {values}` is deprecated and will be removed in 0.4: use "
            f"--threshold-method {values} (in score and eval, --threshold is a number)")])
        setattr(namespace, "threshold_method", values)


def _threshold_method_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threshold-method", choices=THRESHOLD_METHODS, default=None,
                        help="how the threshold is calibrated: gaussian (mean + k std of held-out "
                             "normal scores; default), percentile (--q), or f1 (F1-optimal on "
                             "labeled validation data)")
    parser.add_argument("--threshold", choices=THRESHOLD_METHODS, dest="threshold_method",
                        action=_DeprecatedThresholdMethod, help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vigil", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Edge anomaly detection in one file: train a Keras model on normal sensor "
                    "windows or camera\nframes, export it to one self-describing .onnx, and "
                    "score with onnxruntime, numpy and OpenCV.",
        epilog="start here:\n  vigil demo                 train, export and score both paths on "
               "built-in data\n  vigil COMMAND --help       each command's options and examples")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-json", action="store_true", help="log as JSON lines on stderr")
    anywhere = argparse.ArgumentParser(add_help=False)  # --log-json after the subcommand too
    anywhere.add_argument("--log-json", action="store_true", default=argparse.SUPPRESS,
                          help="log as JSON lines on stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = _command(commands, "demo", "train, export and score on built-in synthetic data",
                    parents=[anywhere])
    demo.add_argument("--output", default="vigil-demo",
                      help="folder for the artifacts (default vigil-demo)")
    demo.add_argument("--seed", type=_integer(0, 2**32 - 1), default=0,
                      help="seed of the synthetic data and the training (default 0)")
    demo.add_argument("--quick", action="store_true", help="fewer epochs (for smoke tests)")
    demo.add_argument("--only", choices=["sensor", "camera"], default=None,
                      help="run one of the two paths (default both)")
    demo.add_argument("--architecture", choices=["unet", "features", "fused"], default=None,
                      help="the camera path's image model (default features, as vigil train "
                           "image's)")
    demo.set_defaults(run=cmd_demo)

    train = commands.add_parser("train", help="train a detector",
                                description="train a detector on normal data: `vigil train "
                                            "sensor` for CSV readings, `vigil train image` for "
                                            "camera frames (each has --help)")
    kinds = train.add_subparsers(dest="kind", required=True)
    sensor = _command(kinds, "sensor", "a sequence model on windows of sensor readings (CSV)",
                      parents=[anywhere])
    sensor.add_argument("data", help="a CSV file, a folder of CSV files, or NAB's root (its "
                                     "data/ and labels/combined_windows.json)")
    sensor.add_argument("-o", "--output", required=True, help="MODEL.keras to write")
    sensor.add_argument("--features", type=_comma_list, default=None,
                        help="feature columns a,b,c (default: every column but the time and label "
                             "columns; they must all be numeric)")
    sensor.add_argument("--label-column", default=None,
                        help="label column, used when present: 0/1, true/false, yes/no or "
                             "anomaly/normal (default anomaly; rows labeled anomalous are not "
                             "trained on)")
    sensor.add_argument("--labels", default=None, metavar="FILE",
                        help="labels kept apart from the data: JSON of [start, end] windows or "
                             "timestamps per file (NAB's combined_windows.json) or CSV "
                             "file,start,end; rows they mark are not trained on (a NAB root folder "
                             "as DATA brings its own)")
    sensor.add_argument("--time-column", default=None, help="timestamp column (default: by name)")
    sensor.add_argument("--decimal", choices=[".", ","], metavar="MARK", default=None,
                        help="decimal mark of the numbers, . or , (default .; with , the columns must be "
                             "separated by ; or a tab)")
    sensor.add_argument("--window", type=_integer(2), default=None,
                        help="rows per window (default 48)")
    sensor.add_argument("--stride", type=_integer(1), default=None,
                        help="rows between windows (default 1)")
    sensor.add_argument("--validation-fraction", type=_number(), default=None,
                        help="last fraction of each file held out (default 0.25)")
    sensor.add_argument("--max-gap", type=_integer(0), default=None,
                        help="longest run of missing values filled (default 3)")
    sensor.add_argument("--relative-std-floor", type=_number(0), default=None,
                        help="each feature's std is at least this fraction of its mean (default 0.01)")
    sensor.add_argument("--compress-heavy-tails", action="store_true", default=None,
                        help="scale each non-negative column skewed above 2 in training (counts, "
                             "bytes, request rates) as log(1 + x / m), m its median positive "
                             "value, when that halves its skew (default: off; fewer false alarms "
                             "on bursty counts, a lower AUROC on SMD: docs/quality.md)")
    sensor.add_argument("--architecture", default=None,
                        choices=["lstm-forecast", "gru-forecast", "tcn-forecast", "lstm-ae", "gru-ae",
                                 "conv-lstm-ae"],
                        help="default lstm-forecast")
    sensor.add_argument("--units", type=_integer(1), default=None,
                        help="recurrent units, or TCN filters (default 32)")
    sensor.add_argument("--latent", type=_integer(1), default=None,
                        help="autoencoder code size (default 16)")
    sensor.add_argument("--epochs", type=_integer(1), default=None,
                        help="training epochs (default 30)")
    sensor.add_argument("--batch-size", type=_integer(1), default=None,
                        help="windows per training step (default 32)")
    sensor.add_argument("--learning-rate", type=_number(0, low_open=True), default=None,
                        help="Adam's learning rate (default 0.001)")
    sensor.add_argument("--score-reduction", choices=["mean", "max"], default=None,
                        help="how per-feature errors make a window's score (default mean)")
    sensor.add_argument("--score-last", type=_integer(0), default=None,
                        help="score the error of the last k steps of each window (default 32, or "
                             "half a window of 32 rows or fewer)")
    sensor.add_argument("--score-decay", type=_number(0, 1, low_open=False), default=None,
                        help="weigh those steps by (1-decay)^age, newest heaviest (default 0.1)")
    sensor.add_argument("--burn-in", type=_integer(0), default=None,
                        help="forecasters: no loss on the first steps of a window (default: a third)")
    sensor.add_argument("--neighbour-rows", type=int, default=None, metavar="ROWS",
                        help="add the distance of the last ROWS rows' shape to the nearest normal "
                             "one to the score (default 16; 0: the model's error alone)")
    sensor.add_argument("--neighbour-entries", type=int, default=None, metavar="N",
                        help="normal shapes kept for that distance (default 2048)")
    sensor.add_argument("--members", type=_integer(1), default=None, metavar="N",
                        help="train N networks from seeds SEED..SEED+N-1 and average their "
                             "errors: steadier scores for N times the training time and a "
                             "longer scoring time (three: 1.7-2x at batch 1; default 3; 1: one "
                             "network)")
    sensor.add_argument("--epoch-windows", type=int, default=None, metavar="N",
                        help="train each epoch on at most N windows, drawn afresh from all of "
                             "them, so a long history trains in bounded time (default 32768; 0: "
                             "every window every epoch)")
    _threshold_method_arguments(sensor)
    sensor.add_argument("--k", type=_number(0), default=None,
                        help="gaussian: mean + k std of held-out normal scores (default 5)")
    sensor.add_argument("--q", type=_number(0, 100), default=None,
                        help="percentile: this percentile of held-out normal scores (default 99.5)")
    sensor.add_argument("--consecutive", type=_integer(1), default=None,
                        help="alarm after this many consecutive windows above threshold (default 1)")
    sensor.add_argument("--hold", type=_integer(0), default=None,
                        help="keep an alarm on this many windows after the score falls (default 10)")
    sensor.add_argument("--rearm", type=_integer(0), default=None, metavar="WINDOWS",
                        help="an alarm that returns within this many windows of the last one's "
                             "end continues its episode: no new alarm_start (one notification "
                             "per event; default 0)")
    sensor.add_argument("--adaptive", action=argparse.BooleanOptionalAction, default=None,
                        help="at run time, raise the threshold to --adaptive-factor times the "
                             "recent normal scores' --adaptive-quantile when that runs higher "
                             "(learning pauses during alarms; default on: --no-adaptive for a "
                             "fixed threshold)")
    sensor.add_argument("--adaptive-memory", type=int, default=None, metavar="WINDOWS",
                        help="recent normal window scores the adaptive threshold keeps (default 1000)")
    sensor.add_argument("--adaptive-warmup", type=int, default=None, metavar="WINDOWS",
                        help="normal scores it learns before it applies (default 1000)")
    sensor.add_argument("--adaptive-quantile", type=_number(), default=None, metavar="Q",
                        help="the quantile of the recent normal scores it follows (default 0.99)")
    sensor.add_argument("--adaptive-factor", type=_number(), default=None, metavar="F",
                        help="threshold: F x that quantile (default 2)")
    sensor.add_argument("--adaptive-z", type=_number(), default=None, metavar="Z",
                        help="follow recent mean + Z recent std instead of a quantile (the rule "
                             "of 0.2, with Z 8)")
    sensor.add_argument("--likelihood", action=argparse.BooleanOptionalAction, default=None,
                        help="also alarm when the mean of the last 10 scores lies --likelihood-z "
                             "std or more above the means of the last 8,640 windows (HTM's "
                             "anomaly likelihood, learning every window; default on: "
                             "--no-likelihood for the threshold alone)")
    sensor.add_argument("--likelihood-z", type=_number(), default=None, metavar="Z",
                        help="its tail in std (default 4.27, a probability of 1e-5)")
    sensor.add_argument("--likelihood-level", action=argparse.BooleanOptionalAction, default=None,
                        help="with the likelihood: once it has learned 1,000 means, the "
                             "threshold's alarm also needs the score above their mean, the "
                             "stream's long-run level, so a level that has held for most of the "
                             "history stops alarming (default on)")
    sensor.add_argument("--running-normalization", action=argparse.BooleanOptionalAction,
                        default=None,
                        help="at run time, follow slow drift of the readings: map each row from "
                             "its recent level and spread onto the training ones (learning "
                             "pauses during alarms; default off)")
    sensor.add_argument("--normalization-memory", type=int, default=None, metavar="ROWS",
                        help="its time constant in rows (default 2000)")
    sensor.add_argument("--normalization-warmup", type=int, default=None, metavar="ROWS",
                        help="rows it learns before it applies (default 500)")
    supervised = sensor.add_argument_group("supervised mode (many labeled anomalies)")
    supervised.add_argument("--supervised", action="store_true",
                            help="train a classifier on labeled windows instead of a model of "
                                 "normal behaviour; its threshold is F1-optimal on the labeled "
                                 "validation windows unless --threshold-method says otherwise "
                                 "(default off)")
    supervised.add_argument("--synthetic-anomalies", type=_number(), default=None, metavar="FRACTION",
                            help="with --supervised: also turn this share of normal training "
                                 "windows into synthetic anomalies (spikes, level shifts, drifts, "
                                 "stuck values; default 0)")
    supervised.add_argument("--class-weight", action=argparse.BooleanOptionalAction, default=True,
                            help="with --supervised: weigh the rare class up so both weigh the "
                                 "same (default on)")
    sensor.add_argument("--seed", type=_integer(0, 2**32 - 1), default=None,
                        help="training seed (default 0)")
    sensor.add_argument("--quiet", action="store_true", help="no progress on stderr")
    sensor.set_defaults(run=cmd_train_sensor)

    image = _command(kinds, "image", "a CNN defect detector on images (MVTec AD or folders)",
                     parents=[anywhere])
    image.add_argument("data", help="an MVTec AD category root, or a folder of normal images")
    image.add_argument("-o", "--output", required=True, help="MODEL.keras to write")
    image.add_argument("--normal", action="append", default=[],
                       help="another folder of normal images (repeatable; default none)")
    image.add_argument("--anomalous", action="append", default=[],
                       help="a folder of defect images, never trained on: they measure the "
                            "validation figures and export's INT8 loss, and choose the "
                            "threshold with --threshold-method f1 (repeatable; default none)")
    image.add_argument("--masks", action="append", default=None,
                       help="folder of masks for the --anomalous images (NAME.png or "
                            "NAME_mask.png, flat or in a subfolder per defect folder), or one "
                            "per --anomalous, in the same order (default: beside each image)")
    image.add_argument("--validation-fraction", type=_number(), default=None,
                       help="normal images held out for thresholds (default 0.15)")
    image.add_argument("--color", choices=["auto", "gray", "bgr", "rgb"], default=None,
                       help="the model's colour order; auto: gray when the images are gray "
                            "(default auto)")
    image.add_argument("--architecture", choices=["unet", "features", "fused"], default=None,
                       help="unet: a defect segmenter trained from scratch on synthetic defects; "
                            "features: nearest-neighbour distance to a memory bank of pretrained "
                            "ImageNet EfficientNet-Lite0 patch features, no gradient training; "
                            "fused: both, their standardized scores summed (default features; "
                            "0.2's default was unet)")
    image.add_argument("--size", type=int, default=None,
                       help="model input side; frames are stretched to it (default 256)")
    image.add_argument("--global-score", action="store_true", default=None,
                       help="fused: also add a global score, the frame's feature statistics "
                            "(each channel's mean and std) against the normal frames' "
                            "(default off)")
    image.add_argument("--fused-map-weight", type=_number(), default=None, metavar="W",
                       help="fused: the feature model's map's weight in the fused map, beside "
                            "the U-Net's, each standardized by the held-out normal images' "
                            "pixels (default 0.25; 0: the U-Net's map alone, as before 0.3)")
    image.add_argument("--bank", type=int, default=None,
                       help="features: memory-bank (coreset) entries (default 4096, held "
                            "to 1/16 of the training patches where they are fewer than "
                            "65,536; 2048 before 2026-12-03)")
    image.add_argument("--components", type=int, default=None, metavar="K",
                       help="features: project each patch's features on their first K "
                            "principal components before the memory bank, so that a larger "
                            "bank costs about what a smaller one did (default 96; 0: as they "
                            "are, as before 2026-12-03; no projection where the levels have "
                            "no more channels than K: stage 3 alone has 40)")
    image.add_argument("--neighbourhood", type=int, default=None, metavar="K",
                       help="features: average each patch's features over its K x K "
                            "neighbours, K odd (default 3; 5 scored higher on the magnetic "
                            "tiles' broad defects and lower on ELPV: docs/quality.md)")
    image.add_argument("--levels", default=None, metavar="S,S,...",
                       help="features: the EfficientNet-Lite0 stages whose features are "
                            "compared, including 3 (stride 8); 3,5,6 adds stage 6's stride-32 "
                            "context: higher image AUROC on the magnetic tiles, lower on ELPV "
                            "poly, about 1.2x the arithmetic with the default --components "
                            "(default: 3,5 or 3,5,6, chosen by how far faint thin cracks drawn "
                            "into the held-out normal images score above them; docs/quality.md)")
    image.add_argument("--frame-contrast", action=argparse.BooleanOptionalAction, default=None,
                       help="features: move each frame's pixels to one mean and spread before "
                            "the backbone, so that exposure differences between frames do not "
                            "count as anomalies (default: chosen from the normal training "
                            "frames, on when their contrast varies more than 7 %% between "
                            "images)")
    image.add_argument("--train-view", type=_number(), default=None,
                       help="unet: train on square views of this fraction of --size "
                            "(default 0.5; 1: whole frames)")
    image.add_argument("--rescale-views", action=argparse.BooleanOptionalAction, default=None,
                       help="unet: take views from frames rescaled between the view's side and "
                            "--size, so defects of many sizes are seen (default on)")
    image.add_argument("--coarse-pass", action=argparse.BooleanOptionalAction, default=None,
                       help="unet: also segment each frame at half size and average the maps "
                            "(default on)")
    image.add_argument("--quarter-pass", action=argparse.BooleanOptionalAction, default=None,
                       help="unet: with --coarse-pass, also at quarter size: large, faint "
                            "regions (default on)")
    image.add_argument("--map-normalization", action=argparse.BooleanOptionalAction,
                       default=None,
                       help="unet: normalize each map pixel by its mean and std over the normal "
                            "training images, so places that always look unusual (borders, "
                            "edges of a part) do not alarm (default on)")
    image.add_argument("--width", type=int, default=None,
                       help="unet: channels of the U-Net's first level, doubling to 8x deeper "
                            "(default 16; 8 trains about 1.6x faster end to end)")
    image.add_argument("--steps", type=_integer(1), default=None,
                       help="unet: training steps (default 5000)")
    image.add_argument("--batch-size", type=_integer(1), default=None,
                       help="unet: views per training step (default 16)")
    image.add_argument("--learning-rate", type=_number(0, low_open=True), default=None,
                       help="unet: Adam's learning rate (default 0.002)")
    _threshold_method_arguments(image)
    image.add_argument("--k", type=_number(0), default=None,
                       help="gaussian: mean + k std of held-out normal image scores (default 3)")
    image.add_argument("--q", type=_number(0, 100), default=None,
                       help="percentile: this percentile of held-out normal image scores "
                            "(default 99.5)")
    image.add_argument("--seed", type=_integer(0, 2**32 - 1), default=None,
                       help="training seed (default 0)")
    image.add_argument("--quiet", action="store_true", help="no progress on stderr")
    image.set_defaults(run=cmd_train_image)

    export = _command(commands, "export", "Keras -> one self-describing .onnx (INT8 where it pays)",
                      parents=[anywhere])
    export.add_argument("model", help="MODEL.keras written by `vigil train`")
    export.add_argument("-o", "--output", required=True, help="MODEL.onnx to write")
    export.add_argument("--precision", choices=["auto", "int8", "fp32", "mixed"], default="auto",
                        help="auto (default): INT8 where it holds parity and is faster or smaller "
                             "at batch 1 on this machine, else FP32 (feature models without "
                             "labeled defects: mixed or FP32); int8: INT8 whenever it holds "
                             "parity; fp32: no quantization; mixed (image feature models): the "
                             "network FP32, the memory-bank product INT8")
    export.add_argument("--force", action="store_true",
                        help="keep INT8 even if it misses the parity tolerance")
    export.add_argument("--quiet", action="store_true", help="no progress on stderr")
    export.set_defaults(run=cmd_export)

    for name, helptext in (("score", "score a source, one JSON line per window"),
                           ("eval", "metrics on labeled data")):
        sub = _command(commands, name, helptext, parents=[anywhere])
        sub.add_argument("model", help="MODEL.onnx")
        sub.add_argument("source" if name == "score" else "data",
                         help="CSV file, folder of CSVs" + (
                             ", or - for stdin (sensor models); a camera index, video file, image "
                             "file, folder or glob, or an rtsp:// or http(s):// URL (image models)"
                             if name == "score" else
                             ", or a NAB root (sensor models); an MVTec AD category, or a folder "
                             "of normal images with --anomalous (image models)"))
        sub.add_argument("--device", default="cpu", type=_device_preference,
                         help="auto, cpu, cuda or tensorrt, or a preference list such as "
                              "tensorrt,cuda,cpu (the first one available here is used; as in "
                              "`vigil bench`, where each listed device is measured); unavailable "
                              "ones fall back to CPU with a warning (default cpu)")
        sub.add_argument("--threads", type=_integer(1, MAX_THREADS), default=None,
                         help="inference threads (default: onnxruntime's choice, the cores here)")
        sub.add_argument("--decimal", choices=[".", ","], metavar="MARK", default=".",
                         help="sensor CSVs: decimal mark of the numbers, . or , (default .; with , the "
                              "columns must be separated by ; or a tab)")
        sub.add_argument("--threshold", type=_number(), default=None, help="override the artifact's threshold")
        sub.add_argument("--no-likelihood", dest="likelihood", action="store_false",
                         help="sensor models: alarms from the threshold alone, without the "
                              "artifact's anomaly likelihood or its level floor (default: the "
                              "artifact's rule, with the likelihood when it has one)")
        if name == "score":
            sub.add_argument("--jsonl", default=None,
                             help="write JSON lines here (default stdout); a file that already "
                                  "holds results needs --append or --overwrite")
            sub.add_argument("--append", action="store_true",
                             help="continue an existing --jsonl file (what a restarted service "
                                  "wants); a partial last line left by a crash is cut off first")
            sub.add_argument("--overwrite", action="store_true",
                             help="replace an existing --jsonl file")
            sub.add_argument("--columns", type=_comma_list, default=None,
                             help="column names when the input has no header line")
            sub.add_argument("--expect-sha256", default=None,
                             help="refuse the model unless its sha256 is this")
            sub.add_argument("--on-output-error", choices=["stop", "continue"], default="stop",
                             help="when the results cannot be written (disk full): stop the run "
                                  "(default), or count the lost lines and go on; exit code 4 "
                                  "either way")
            sub.add_argument("--health", default=None, metavar="PATH",
                             help="keep a JSON health report here (rewritten atomically every "
                                  "--health-interval seconds and at exit), or - for JSON lines "
                                  "on stderr")
            sub.add_argument("--health-interval", type=_number(), default=10.0, metavar="SECONDS",
                             help="seconds between health reports (default 10)")
            sub.add_argument("--mqtt", type=_mqtt_target, default=None, metavar="URL",
                             help="also publish each result line to mqtt://HOST:PORT/TOPIC (QoS 1; "
                                  "mqtts:// for TLS, USER:PASSWORD@ before the host) and the "
                                  "health report, retained, to TOPIC/health; needs "
                                  "vigil-edge[mqtt]")
            sub.add_argument("--mqtt-buffer", type=int, default=10_000, metavar="MESSAGES",
                             help="messages kept while the broker is away; past that new ones "
                                  "are dropped and counted, scoring never waits (default 10000)")
            sub.add_argument("--mqtt-client-id", default=None, metavar="ID",
                             help="MQTT client id (default vigil- and a random suffix)")
            images = sub.add_argument_group("image models")
            images.add_argument("--pixel-threshold", type=_number(), default=None,
                                metavar="SCORE",
                                help="override the artifact's pixel threshold: map values above "
                                     "it are coloured and boxed")
            images.add_argument("--overlay-dir", default=None,
                                help="write heatmap overlays of anomalous frames here")
            images.add_argument("--overlay-all", action="store_true",
                                help="with --overlay-dir: overlays of every scored frame")
            images.add_argument("--overlay-video", default=None,
                                help="write an annotated video of every frame (.mp4 or .avi)")
            images.add_argument("--show", action="store_true",
                                help="preview window (needs OpenCV with a GUI; q or Esc stops)")
            images.add_argument("--max-frames", type=_integer(1), default=None,
                                help="stop after this many frames")
            images.add_argument("--reconnect-attempts", type=_attempts, default=None,
                                help="live sources: retries after a failed open or a lost stream, "
                                     "with backoff, or 'forever' (default 10)")
            sub.set_defaults(run=cmd_score)
        else:
            sub.add_argument("--label-column", default=None,
                             help="sensor CSVs: the label column, 0/1, true/false, yes/no or "
                                  "anomaly/normal (default: the one the model was trained with, "
                                  "else anomaly)")
            sub.add_argument("--labels", default=None, metavar="FILE",
                             help="sensor labels kept apart from the data: JSON of [start, end] "
                                  "windows or timestamps per file (NAB's combined_windows.json), "
                                  "or CSV file,start,end (a NAB root folder brings its own)")
            sub.add_argument("--no-threshold-search", action="store_true",
                             help="sensor models: skip the best-F1 threshold search, most of "
                                  "eval's time on long files (alarm_best_f1 is then null)")
            sub.add_argument("--json", default=None, help="write the metrics JSON here")
            sub.add_argument("--report", default=None, help="write report.md and plots here")
            sub.add_argument("--quiet", action="store_true", help="no progress on stderr")
            images = sub.add_argument_group("image models (the folder forms of `vigil train image`)")
            images.add_argument("--normal", action="append", default=[],
                                help="another folder of normal images (repeatable; default none)")
            images.add_argument("--anomalous", action="append", default=[],
                                help="a folder of defect images; its name is the defect type "
                                     "(repeatable; default none)")
            images.add_argument("--masks", action="append", default=None,
                                help="folder of masks for the --anomalous images (NAME.png or "
                                     "NAME_mask.png, flat or in a subfolder per defect "
                                     "folder), or one per --anomalous, in the same order "
                                     "(default: NAME.png or NAME_mask.png beside each image)")
            sub.set_defaults(run=cmd_eval)

    bench = _command(commands, "bench", "latency and throughput of artifacts on this device",
                     parents=[anywhere])
    bench.add_argument("models", nargs="*", help="MODEL.onnx files (e.g. the INT8 and FP32 exports)")
    bench.add_argument("--batch", type=_int_list_up_to(MAX_BENCH_BATCH), default=(1, 8, 32),
                       help=f"batch sizes to time, comma-separated, each at most "
                            f"{MAX_BENCH_BATCH:,} (default 1,8,32)")
    bench.add_argument("--threads", type=_int_list_up_to(MAX_THREADS), default=(1,),
                       help="thread counts to time, comma-separated (default 1)")
    bench.add_argument("--device", type=_device_list, default=("cpu",),
                       help="devices to measure, comma-separated among auto, cpu, cuda, "
                            "tensorrt; unavailable ones fall back to CPU with a warning and are "
                            "labeled as what ran (default cpu)")
    bench.add_argument("--seconds", type=_number(0, low_open=True), default=2.0,
                       help="time per cell after 10 warm-up calls (default 2); at least 30 "
                            "calls are timed, so a cell of a large batch takes longer")
    bench.add_argument("--input", default=None, help="real inputs: a CSV, image folder or video")
    bench.add_argument("--decimal", choices=[".", ","], metavar="MARK", default=".",
                       help="decimal mark of an --input CSV, . or , (default .; with , the columns must "
                            "be separated by ; or a tab)")
    bench.add_argument("--against", default=None,
                       help="MODEL.keras: also time Keras and TFLite FP32/INT8 (needs vigil-edge[train])")
    bench.add_argument("--no-cold-start", action="store_true", help="skip the fresh-process runs")
    bench.add_argument("--quiet", action="store_true", help="no progress on stderr")
    bench.add_argument("--compare", nargs="+", default=None, help="merge bench JSON files")
    bench.add_argument("--json", default=None, help="write the result JSON here")
    bench.add_argument("--report", default=None, help="write report.md and plots here")
    bench.set_defaults(run=cmd_bench)

    triton = _command(commands, "triton", "a Triton Inference Server model repository for an "
                      "artifact (onnxruntime backend)", parents=[anywhere])
    triton.add_argument("model", help="MODEL.onnx written by `vigil export`")
    triton.add_argument("repository", help="the model repository folder (created if missing)")
    triton.add_argument("--name", default=None,
                        help="the model's name in Triton (default: MODEL's file stem)")
    triton.add_argument("--max-batch-size", type=int, default=64,
                        help="largest batch the dynamic batcher forms (default 64)")
    triton.add_argument("--cpu-instances", type=int, default=2,
                        help="model instances in the CPU configuration (default 2)")
    triton.set_defaults(run=cmd_triton)

    serve = _command(commands, "serve", "serve an artifact over HTTP (Ray Serve, KServe v2 "
                     "protocol: Triton's clients work) until SIGTERM or Ctrl-C",
                     parents=[anywhere])
    serve.add_argument("model", help="MODEL.onnx")
    serve.add_argument("--name", default=None,
                       help="the model's name in the URL (default: MODEL's file stem)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    serve.add_argument("--replicas", type=int, default=1,
                       help="model replicas, one detector and one CPU each (default 1)")
    serve.add_argument("--threads", type=int, default=1,
                       help="inference threads per replica (default 1)")
    serve.add_argument("--max-request-mb", type=_number(), default=256.0, metavar="MB",
                       help="larger requests are refused (413) before they are read whole "
                            "(default 256; a JSON body takes several times its size in memory)")
    serve.set_defaults(run=cmd_serve)

    batch = _command(commands, "batch", "re-score archives (CSV folders, image folders, videos), "
                     "here or on a Ray cluster, writing the lines `vigil score` writes",
                     parents=[anywhere])
    batch.add_argument("model", help="MODEL.onnx")
    batch.add_argument("inputs", nargs="+",
                       help="CSV files or folders (sensor models); image folders, images or "
                            "videos (image models)")
    batch.add_argument("--jsonl", required=True,
                       help="write the JSON lines here (a file that holds results needs "
                            "--append or --overwrite)")
    batch.add_argument("--append", action="store_true",
                       help="add this run's lines at the end of an existing --jsonl file (every "
                            "input is scored; to continue an interrupted batch, use --resume)")
    batch.add_argument("--overwrite", action="store_true", help="replace an existing --jsonl file")
    batch.add_argument("--resume", action="store_true",
                       help="continue an interrupted batch (the same model and inputs): the "
                            "items whose lines are in --jsonl are not scored again, the last of "
                            "them, perhaps cut short, is scored again from its first line (a "
                            "missing --jsonl starts a new run)")
    batch.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                       help="score on Ray Data: a local Ray started for the run (--ray), or the "
                            "cluster at ADDRESS (--ray ray://HOST:10001 or auto); the inputs "
                            "must be readable at the same paths on every node (default: this "
                            "process alone)")
    batch.add_argument("--workers", type=_integer(1), default=None,
                       help="Ray workers, one detector each (default: the cluster's CPUs)")
    batch.add_argument("--threads", type=_integer(1, MAX_THREADS), default=1,
                       help="inference threads per detector (default 1)")
    batch.add_argument("--threshold", type=_number(), default=None,
                       help="override the artifact's threshold")
    batch.add_argument("--decimal", choices=[".", ","], metavar="MARK", default=".",
                       help="sensor CSVs: decimal mark of the numbers, . or , (default .; with , the "
                            "columns must be separated by ; or a tab)")
    batch.add_argument("--columns", type=_comma_list, default=None,
                       help="sensor CSVs: column names when the files have no header line")
    batch.add_argument("--no-likelihood", dest="likelihood", action="store_false",
                       help="sensor models: alarms from the threshold alone, without the "
                            "artifact's anomaly likelihood or its level floor (default: the "
                            "artifact's rule, as in vigil score)")
    batch.set_defaults(run=cmd_batch)

    check = _command(commands, "health-check", "exit 0 while a scorer's health file says it is "
                     "alive, 1 with the reason otherwise (for watchdogs)", parents=[anywhere])
    check.add_argument("health", help="the --health file of a running `vigil score`")
    check.add_argument("--max-age", type=_number(0, low_open=True), default=60.0, metavar="SECONDS",
                       help="the file must have been rewritten within this time (default 60; "
                            "keep it above --health-interval)")
    check.add_argument("--max-idle", type=_number(0, low_open=True), default=None,
                       metavar="SECONDS",
                       help="also fail when no input arrived for this long (default: no limit)")
    check.add_argument("--max-unscored", type=_integer(1), default=None, metavar="ROWS",
                       help="sensor runs: also fail when this many rows in a row were skipped, "
                            "none scored (a dead column; default: no limit)")
    check.set_defaults(run=cmd_health_check)

    _name_values(parser)
    return parser


# What each option's value is, in --help, where argparse would show its name in capitals.
VALUE_NAMES = {
    "jsonl": "OUT", "json": "OUT", "report": "DIR", "overlay_dir": "DIR", "overlay_video": "VIDEO",
    "output": "PATH", "expect_sha256": "HEX", "threshold": "SCORE", "threads": "N",
    "max_frames": "N", "reconnect_attempts": "N|forever", "columns": "A,B,...",
    "features": "A,B,...", "label_column": "NAME", "time_column": "NAME", "normal": "DIR",
    "anomalous": "DIR", "masks": "DIR", "batch": "SIZES", "compare": "RESULT.json",
    "against": "MODEL.keras", "input": "SOURCE", "workers": "N", "replicas": "N",
    "max_batch_size": "N", "cpu_instances": "N", "seed": "N", "window": "ROWS", "stride": "ROWS",
    "validation_fraction": "FRACTION", "max_gap": "ROWS", "relative_std_floor": "FRACTION",
    "units": "N", "latent": "N", "epochs": "N", "batch_size": "N", "learning_rate": "LR",
    "score_last": "STEPS", "score_decay": "DECAY", "burn_in": "STEPS", "consecutive": "WINDOWS",
    "hold": "WINDOWS", "size": "PX", "bank": "ENTRIES", "train_view": "FRACTION", "width": "N",
    "steps": "N", "device": "DEVICES"}


def _name_values(parser: argparse.ArgumentParser) -> None:
    """Give every option of ``parser`` and its subcommands a value name from ``VALUE_NAMES``
    where it has none of its own (argparse would show the option's name in capitals)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                _name_values(sub)
        elif (action.option_strings and action.metavar is None and action.choices is None
              and action.nargs != 0 and action.dest in VALUE_NAMES):
            action.metavar = VALUE_NAMES[action.dest]


class _TextFormatter(logging.Formatter):
    """``vigil: LEVEL: message`` for our messages; other libraries' carry their own name."""

    def format(self, record: logging.LogRecord) -> str:
        name = "vigil" if record.name.split(".")[0] == "vigil" else record.name
        return f"{name}: {record.levelname}: {super().format(record)}"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                 + f".{int(record.msecs):03d}Z", "level": record.levelname.lower(),
                 "message": record.getMessage(), "logger": record.name}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


# Output options by what they name: a file, or a folder that is created (nothing is created here).
FILE_OUTPUTS = {"json": "--json", "jsonl": "--jsonl", "health": "--health",
                "overlay_video": "--overlay-video"}
JSON_DOCUMENT_OUTPUTS = ("json", "health")  # each replaces an earlier run's JSON object
REPORT_FOLDER_OUTPUTS = ("report",)  # each replaces an earlier run's report.md, metrics.json
FOLDER_OUTPUTS = {"report": "--report", "overlay_dir": "--overlay-dir", "repository": "repository"}
# Arguments that name a run's input files (never to be written over by an output).
INPUT_ARGUMENTS = ("model", "models", "data", "source", "input", "inputs", "compare", "against",
                   "labels", "normal", "anomalous")


def _input_paths(args) -> Iterator[tuple[str, list]]:
    """(argument name, the paths it gives) for each of ``INPUT_ARGUMENTS`` the command has."""
    for name in INPUT_ARGUMENTS:
        value = getattr(args, name, None)
        yield name, [v for v in (value if isinstance(value, (list, tuple)) else [value])
                     if isinstance(v, (str, os.PathLike))]


def _refuse_empty_paths(args) -> None:
    """ValueError for an input path given as an empty string (what an unset shell variable
    gives): read as a path, it would be the working folder, and every CSV below it would be
    read as the data."""
    for name, values in _input_paths(args):
        if any(isinstance(v, str) and not v.strip() for v in values):
            among = f" among {list(values)}" if len(values) > 1 else ""
            raise ValueError(f"`{name}` is an empty path{among} (an unset shell variable gives "
                             f"one); expected a file or folder path: run `vigil {args.command} "
                             f"--help` for what it takes")


def _check_output_paths(args) -> None:
    """Refuse, before any work, an output path that cannot be written: a folder where a file
    is expected (or the reverse), or a path under a file or in a folder this user cannot write.
    Only checked; every output is made once the run's input is known good."""
    from vigil.runtime.core.output import check_writable, refuse_inputs_as_output

    if args.run is cmd_health_check:  # its `health` is the file it reads
        return
    outputs = [(name, flag, False) for name, flag in FILE_OUTPUTS.items()]
    outputs += [(name, flag, True) for name, flag in FOLDER_OUTPUTS.items()]
    outputs.append(("output", "--output", args.run is cmd_demo))  # demo writes a folder
    inputs, input_folders = [], []
    for _, values in _input_paths(args):
        inputs += [v for v in values if os.path.isfile(v)]
        input_folders += [v for v in values if os.path.isdir(v)]
    for name, flag, folder in outputs:
        path = getattr(args, name, None)
        if isinstance(path, (str, os.PathLike)) and str(path) not in ("", "-"):
            check_writable(path, flag, folder=folder,  # models: written beside, then renamed
                           replaced=name == "output" and not folder)
            if not folder:
                refuse_inputs_as_output(path, inputs, flag)
                _refuse_csv_in_an_input_folder(path, flag, input_folders)
                if name in JSON_DOCUMENT_OUTPUTS:
                    _refuse_replacing_other_files(path, flag)
                if name == "output" and args.run in (cmd_export, cmd_train_sensor,
                                                     cmd_train_image):
                    _refuse_replacing_other_than_a_model(path, args.run is cmd_export)
            else:
                _refuse_output_in_a_category(path, flag, input_folders)
            if folder and os.path.isdir(path):
                for given in input_folders:
                    if os.path.samefile(path, given):
                        raise ValueError(
                            f"`{flag}` {str(path)!r} is {str(given)!r}, an input folder of this "
                            "run; what it writes there would be read as data by the next run "
                            f"on that folder: name another folder ({flag} "
                            f"{Path(given).resolve().name}-{flag.strip('-').split('-')[0]}, "
                            "say)")
            if name in REPORT_FOLDER_OUTPUTS:
                _refuse_replacing_other_folders(path, flag)
    if args.run in (cmd_train_sensor, cmd_train_image):
        if Path(args.output).suffix != ".keras":
            raise ValueError(f"`--output` must end in .keras; received {args.output!r} (for "
                             f"example -o {Path(args.output).with_suffix('.keras').name})")
        from vigil.training.checkpoint import sidecar_path

        check_writable(sidecar_path(args.output), "--output's sidecar", replaced=True)


def _refuse_csv_in_an_input_folder(path, flag: str, input_folders: list) -> None:
    """ValueError for an output named .csv inside an input folder: every CSV below a folder is
    read as data, so the next run on that folder would read it (and refuse it as its output)."""
    if Path(path).suffix.lower() != ".csv" or os.path.exists(path):
        return  # an existing CSV there is one of the inputs, refused as such once they are read
    target = Path(path).resolve()
    for given in input_folders:
        if Path(given).resolve() in target.parents:
            raise ValueError(f"`{flag}` {str(path)!r} is a .csv inside {str(given)!r}, an input "
                             f"folder of this run: the next run on that folder would read it as "
                             f"data; name it .jsonl ({flag} {Path(path).with_suffix('.jsonl')}, "
                             f"say) or put it outside the folder")


def _refuse_replacing_other_than_a_model(path, onnx_model: bool) -> None:
    """ValueError for an existing ``-o`` file that a model written there would replace though
    it is no model of that kind (an ONNX model for export, a Keras zip for training): notes or
    data named by mistake are kept."""
    if not os.path.isfile(path):
        return
    try:
        with open(path, "rb") as handle:
            start = handle.read(4)
    except OSError:
        return  # check_writable's case
    if not start:
        return  # empty: nothing to lose
    if onnx_model:
        import onnx

        try:
            model = onnx.load(str(path), load_external_data=False)
            if model.ir_version > 0 and model.HasField("graph"):
                return
        except Exception:  # noqa: BLE001 - whatever protobuf says, it is no ONNX model
            pass
        what, suggested = "an ONNX model", Path(path).with_name(Path(path).stem + "-model.onnx")
    else:
        from vigil.runtime.core.artifact import ZIP_MAGIC

        if start == ZIP_MAGIC:
            return
        what, suggested = "a Keras model", Path(path).with_name(Path(path).stem + "-model.keras")
    raise ValueError(f"`--output` {str(path)!r} exists and is not {what}: writing the model "
                     f"would replace it; name a new file (-o {suggested.name}, say), or remove "
                     f"that one first")


def _refuse_replacing_other_files(path, flag: str) -> None:
    """ValueError for an existing file that a JSON document output (``--json``, ``--health``)
    would replace though it holds something else (data, a results file): those outputs
    replace only what an earlier run wrote, a JSON object."""
    if not os.path.isfile(path):  # missing, or a device or pipe (/dev/stdout): nothing kept
        return
    try:
        with open(path, "rb") as handle:
            start = handle.read(4096)
    except OSError:
        return  # nothing to lose, or check_writable's case
    first_line = start.lstrip().split(b"\n", 1)[0]
    if not start.strip() or (first_line.startswith(b"{") and b"\n{" not in start.strip()):
        return  # empty, or one JSON object (not a results file's lines)
    shown = first_line[:60].decode("utf-8", "replace")
    suggested = f"{Path(path).stem}-{'health' if flag == '--health' else 'result'}.json"
    raise ValueError(f"`{flag}` {str(path)!r} exists and holds something else ({shown!r}...): "
                     f"{flag} replaces only the JSON document an earlier run wrote there; name "
                     f"a new file ({flag} {suggested}, say), or remove that one first")


REPORT_HEADING = b"# Vigil "  # the first line of every report.md Vigil writes


def _refuse_replacing_other_folders(path, flag: str) -> None:
    """ValueError for an existing folder with files in it that a report (``--report``) would
    write into though no earlier report is there: its ``report.md``, ``metrics.json`` and
    pictures would replace a user's files of those names (the working folder, ``--report .``)."""
    folder = Path(path)
    if not folder.is_dir():
        return
    try:
        entries = sorted(p.name for p in folder.iterdir())
        if not entries:
            return
        with open(folder / "report.md", "rb") as handle:
            if handle.read(len(REPORT_HEADING)) == REPORT_HEADING:
                return  # an earlier run's report: replaced
    except OSError:
        pass  # no report.md (or unreadable): the folder holds something else
    shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
    raise ValueError(f"`{flag}` {str(path)!r} is a folder that holds other files ({shown}) and "
                     f"no earlier Vigil report: its report.md, metrics.json and pictures could "
                     f"replace files there; name a new or empty folder ({flag} "
                     f"{folder.resolve().name}-report, say), or one an earlier {flag} wrote")


def _refuse_output_in_a_category(path, flag: str, input_folders: list) -> None:
    """ValueError for an output folder inside an input MVTec AD category's train/, test/ or
    ground_truth/ (read with their subfolders: a report's pictures there would be scored as
    images of the category by the next run)."""
    from vigil.runtime.camera.datasets import is_mvtec

    target = Path(path).resolve()
    for given in input_folders:
        if not is_mvtec(given):
            continue
        for part in ("train", "test", "ground_truth"):
            read = (Path(given) / part).resolve()
            if target == read or read in target.parents:
                raise ValueError(
                    f"`{flag}` {str(path)!r} is inside {str(Path(given) / part)!r}, which this "
                    "run reads as an MVTec AD category: what it writes there would be scored as "
                    f"images of the category by the next run; name a folder outside it ({flag} "
                    f"{Path(given).resolve().name}-{flag.strip('-').split('-')[0]}, say)")


def _flag_names(parser: argparse.ArgumentParser) -> dict[str, str]:
    """``{"`max_gap`": "`--max-gap`", ...}``: the library's option names, as error messages
    spell them, and the flags that set them, over every subcommand."""
    names: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                names.update(_flag_names(sub))
        elif action.option_strings and action.dest != "help":
            flag = max(action.option_strings, key=len)
            if flag.startswith("--") and flag[2:].replace("-", "_") == action.dest:
                names[f"`{action.dest}`"] = f"`{flag}`"
    return names


def _as_flags(message: str, parser: argparse.ArgumentParser) -> str:
    """``message`` with each library option name it quotes given as its flag."""
    for name, flag in _flag_names(parser).items():
        message = message.replace(name, flag)
    return message


NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _value_flags(parser: argparse.ArgumentParser) -> set[str]:
    """The long options, in every subcommand, that take a value."""
    flags: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags |= _value_flags(sub)
        elif action.nargs != 0:
            flags |= {o for o in action.option_strings if o.startswith("--")}
    return flags


def _joined_negative_numbers(argv: list[str], flags: set[str]) -> list[str]:
    """``--threshold -1e3`` as ``--threshold=-1e3`` for the ``flags`` that take a value:
    argparse reads ``-1e3`` (a negative number in exponent form, as scores may be) as an option,
    not as the flag's value."""
    joined: list[str] = []
    for text in argv:
        if joined and joined[-1] in flags and NEGATIVE_NUMBER.match(text):
            joined[-1] = f"{joined[-1]}={text}"
        else:
            joined.append(text)
    return joined


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_joined_negative_numbers(sys.argv[1:] if argv is None else argv,
                                                      _value_flags(parser)))
    handler = logging.StreamHandler()
    handler.setFormatter(_JsonFormatter() if args.log_json else _TextFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    log.setLevel(logging.INFO)
    for message in getattr(args, "deprecations", []):
        log.warning("%s", message)
    from vigil.runtime.core.output import OutputError
    from vigil.runtime.core.report import MissingDependency
    from vigil.runtime.core.spec import ArtifactError

    try:
        _refuse_empty_paths(args)
        _check_output_paths(args)
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
        _error_line(_as_flags(str(error), parser), args.log_json)
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
