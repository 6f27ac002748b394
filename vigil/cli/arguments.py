"""The ``vigil`` command line's arguments: the parser of every command, the types that check
each value as it is read (with the expectation and the value received), and the rewriting of
argv that lets a negative number follow a flag. Each command's parser names it in
``args.command``; ``commands.main`` runs the handler of that name.
"""

from __future__ import annotations

import argparse
import difflib
import math
import re
import textwrap
from pathlib import Path
from typing import Callable

from vigil import __version__
from vigil.runtime.core.mqtt import MAX_BUFFER as MQTT_MAX_BUFFER
from vigil.runtime.core.providers import DEVICES as PROVIDER_DEVICES
from vigil.runtime.core.spec import MAX_THREADS  # what an artifact's session allows

DEVICES = ("auto", *PROVIDER_DEVICES)  # what --device names (runtime/core/providers.py)


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
    return tuple(dict.fromkeys(values))  # each once, in the order given


def _int_list_up_to(most: int) -> Callable[[str], tuple[int, ...]]:
    """``_int_list`` whose values are at most ``most`` (refused as the command is read)."""
    def parse(text: str) -> tuple[int, ...]:
        return _int_list(text, most)
    return parse


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


DEFAULT_RECONNECT_ATTEMPTS = 10


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
    "inspect": ["vigil inspect pump.onnx                # threshold, window, alarm rule, versions",
                "vigil inspect line.onnx --json | jq .metadata.threshold"],
    "health-check": ["vigil health-check /run/vigil/health.json --max-age 60",
                     "vigil health-check health.json --max-age 30 --max-idle 300"],
    "score": ["vigil score pump.onnx today.csv --jsonl results.jsonl",
              "tail -n 0 -F live.csv | vigil score pump.onnx - --columns a,b,c --health h.json",
              "vigil score line.onnx rtsp://camera/stream --overlay-dir alarms/"],
    "eval": ["vigil eval pump.onnx labeled/ --json metrics.json --report report/",
             "vigil eval nab.onnx nab/          # NAB's root brings its label windows",
             "vigil eval line.onnx mvtec/bottle --report report/",
             "vigil eval line.onnx good-test/ --anomalous scratch/ --anomalous dent/ "
             "--masks masks/"],
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
        if values not in THRESHOLD_METHODS:
            try:
                float(values)
            except ValueError:
                parser.error(f"argument --threshold: invalid choice: {values!r} (choose from "
                             f"{', '.join(THRESHOLD_METHODS)}; the spelling --threshold-method "
                             f"is the current one)")
            parser.error(f"--threshold {values}: training calibrates its threshold and takes no "
                         f"score: --threshold-method gaussian with --k, percentile with --q, or "
                         f"f1 with labels; a fixed score threshold is given where scores are "
                         f"decided: vigil score (or eval) MODEL.onnx DATA --threshold {values}")
        _refuse_two_methods(parser, namespace, values)
        # logged by main() once logging is set up (--log-json may come later on the line)
        setattr(namespace, "deprecations", [*getattr(namespace, "deprecations", []), (
            f"`train --threshold {values}` is deprecated and will be removed in 0.4: use "
            f"--threshold-method {values} (in score and eval, --threshold is a number)")])
        setattr(namespace, "threshold_method", values)


class _ThresholdMethod(argparse.Action):
    """--threshold-method, refused beside the deprecated spelling naming another method."""

    def __call__(self, parser, namespace, values, option_string=None):
        _refuse_two_methods(parser, namespace, values)
        setattr(namespace, "threshold_method", values)


def _refuse_two_methods(parser, namespace, values) -> None:
    given = getattr(namespace, "threshold_method", None)
    if given is not None and given != values:
        parser.error(f"two threshold methods given ({given} and {values}, by --threshold-method "
                     f"or its deprecated spelling `train --threshold`); give --threshold-method "
                     f"once")


def _threshold_method_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threshold-method", choices=THRESHOLD_METHODS, default=None,
                        action=_ThresholdMethod,
                        help="how the threshold is calibrated: gaussian (mean + k std of held-out "
                             "normal scores; default), percentile (--q), or f1 (F1-optimal on "
                             "labeled validation data)")
    parser.add_argument("--threshold", dest="threshold_method",  # its choices checked there
                        action=_DeprecatedThresholdMethod, help=argparse.SUPPRESS)


class JsonErrorParser(argparse.ArgumentParser):
    """argparse's parser, whose errors are a JSON line like every other stderr line where the
    command line asks for --log-json (a typo in a service's arguments, read by a log shipper)."""

    json_errors = False  # set by the CLI before parsing; subcommand parsers are of this class
    argv: list[str] = []  # the arguments being parsed (set by the CLI likewise)

    def error(self, message: str):
        took = ray_took_a_path(JsonErrorParser.argv)
        if took and "arguments are required" in message:  # what a swallowed positional leaves
            message += f" ({took})"
        if not JsonErrorParser.json_errors:
            super().error(message)
        import logging
        import sys

        from vigil.cli.log_format import JsonFormatter

        record = logging.LogRecord("vigil", logging.ERROR, __file__, 0, f"{self.prog}: {message}",
                                   None, None)
        print(JsonFormatter().format(record), file=sys.stderr)
        self.exit(2)


def ray_took_a_path(argv: list[str]) -> str:
    """Where `--ray` (whose address is optional) took the word after it, and that word is a
    file or folder here (the model, an input), what went wrong; else "". Ray's own `auto` and
    URLs are addresses always."""
    for position, word in enumerate(argv[:-1]):
        following = argv[position + 1]
        if word == "--ray" and not following.startswith("-") and following != "auto" \
                and "://" not in following and Path(following).exists():
            return (f"--ray took {following!r} as its cluster address, but it is a file or "
                    f"folder here (the model, or an input?): put --ray after the inputs, or "
                    f"write --ray=ADDRESS")
    return ""


def refuse_unknown(parser: argparse.ArgumentParser, command: list[str], unknown: list[str]):
    """Exit 2 naming arguments the command does not take, with its own usage (not the top
    level's), the option nearest a misspelt one and where the options are listed."""
    sub = parser
    for name in command:  # "train sensor": the train parser, then its sensor parser
        action = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction))
        sub = action.choices[name]
    options = sorted({o for a in sub._actions for o in a.option_strings if o.startswith("--")})
    flag = next((u.split("=")[0] for u in unknown if u.startswith("--")), None)
    close = difflib.get_close_matches(flag, options, n=1, cutoff=0.75) if flag else []
    hint = f"; did you mean {close[0]}?" if close else ""
    sub.error(f"unrecognized arguments: {' '.join(unknown)}{hint} (`{sub.prog} --help` lists "
              f"what it takes)")


def build_parser() -> argparse.ArgumentParser:
    parser = JsonErrorParser(
        prog="vigil", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Edge anomaly detection in one file: train a Keras model on normal sensor "
                    "windows or camera\nframes, export it to one self-describing .onnx, and "
                    "score with onnxruntime, numpy and OpenCV.",
        epilog="start here:\n  vigil demo                 train, export and score both paths on "
               "built-in data (training needs the train extra)\n  vigil score MODEL SOURCE   "
               "on a device: score a camera, video, images or sensor rows with an artifact\n"
               "  vigil COMMAND --help       each command's options and examples")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-json", action="store_true", help="log as JSON lines on stderr")
    anywhere = JsonErrorParser(add_help=False)  # --log-json after the subcommand too
    anywhere.add_argument("--log-json", action="store_true", default=argparse.SUPPRESS,
                          help="log as JSON lines on stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    _add_demo(commands, anywhere)
    _add_train(commands, anywhere)
    _add_export(commands, anywhere)
    _add_score_and_eval(commands, anywhere)
    _add_bench(commands, anywhere)
    _add_triton(commands, anywhere)
    _add_serve(commands, anywhere)
    _add_batch(commands, anywhere)
    _add_health_check(commands, anywhere)
    _add_inspect(commands, anywhere)
    _name_values(parser)
    return parser


def _add_demo(commands, anywhere: argparse.ArgumentParser) -> None:
    """The arguments of vigil demo."""
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
    demo.set_defaults(command="demo")


def _add_train(commands, anywhere: argparse.ArgumentParser) -> None:
    """The arguments of vigil train sensor and vigil train image."""
    train = commands.add_parser("train", help="train a detector",
                                description="train a detector on normal data: `vigil train "
                                            "sensor` for CSV readings, `vigil train image` for "
                                            "camera frames (each has --help)")
    kinds = train.add_subparsers(dest="kind", required=True)
    _add_train_sensor(kinds, anywhere)
    _add_train_image(kinds, anywhere)


def _add_train_sensor(kinds, anywhere: argparse.ArgumentParser) -> None:
    """The arguments of vigil train sensor."""
    sensor = _command(kinds, "sensor", "a sequence model on windows of sensor readings (CSV)",
                      parents=[anywhere])
    sensor.add_argument("data", help="a CSV file, a folder of CSV files, or NAB's root (its "
                                     "data/ and labels/combined_windows.json)")
    sensor.add_argument("-o", "--output", required=True, help="MODEL.keras to write")
    sensor.add_argument("--features", type=_comma_list, default=None,
                        help="feature columns a,b,c (default: every column but the time and label "
                             "columns; they must all be numeric)")
    sensor.add_argument("--scored", type=_comma_list, default=None, metavar="A,B",
                        help="columns scored whatever their values (training leaves a constant, "
                             "binary or status column out of the score; its summary's "
                             "inputs_only names them)")
    sensor.add_argument("--inputs-only", type=_comma_list, default=None, metavar="A,B",
                        help="columns the network reads but never scores (a command or "
                             "setpoint column training would score)")
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
                        help="rows between windows, in training and in scoring: the model "
                             "decides once every ROWS rows (default 1; at most half the rows "
                             "a score reads, --score-last: 16)")
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
    # upper bounds far above any useful value: a mistyped 100000 must not fill the memory
    sensor.add_argument("--units", type=_integer(1, 4096), default=None,
                        help="recurrent units, or TCN filters (default 32)")
    sensor.add_argument("--latent", type=_integer(1, 4096), default=None,
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
    sensor.add_argument("--members", type=_integer(1, 32), default=None, metavar="N",
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
    supervised.add_argument("--patience", type=_integer(0), default=None, metavar="EPOCHS",
                            help="with --supervised: stop once the validation loss has not "
                                 "improved for EPOCHS epochs and keep the best epoch's weights "
                                 "(said, and recorded as best_epoch; default 5; 0: train every "
                                 "epoch)")
    sensor.add_argument("--seed", type=_integer(0, 2**32 - 1), default=None,
                        help="training seed (default 0)")
    sensor.add_argument("--quiet", action="store_true", help="no progress on stderr")
    sensor.set_defaults(command="train sensor")


def _add_train_image(kinds, anywhere: argparse.ArgumentParser) -> None:
    """The arguments of vigil train image."""
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
    image.add_argument("--size", type=_integer(16, 2048), default=None,
                       help="model input side; frames are stretched to it (default 256; at most "
                            "2048: a 100,000-px side filled 22 GB before the kernel stopped it)")
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
    image.add_argument("--width", type=_integer(1, 512), default=None,
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
    image.set_defaults(command="train image")


def _add_export(commands, anywhere: argparse.ArgumentParser) -> None:
    """The arguments of vigil export."""
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
                        help="with --precision int8 or mixed: keep INT8 even if it misses the "
                             "parity tolerance (without it such an export writes nothing)")
    export.add_argument("--quiet", action="store_true", help="no progress on stderr")
    export.set_defaults(command="export")


def _add_score_and_eval(commands, anywhere: argparse.ArgumentParser) -> None:
    """The arguments of vigil score and vigil eval (one set of source options)."""
    for name, helptext in (("score", "score a source, one JSON line per window or frame"),
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
                              "`vigil bench`, where each listed device is measured); a device "
                              "alone that is not available falls back to CPU with a warning "
                              "(default cpu)")
        sub.add_argument("--threads", type=_integer(1, MAX_THREADS), default=None,
                         help="inference threads (default: onnxruntime's choice, the cores here; "
                              "several scorers on one machine: 1 each, or the cores divided "
                              "among them, since each would take every core)")
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
            sub.add_argument("--strict", action="store_true",
                             help=STRICT_HELP)
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
            sub.add_argument("--state", default=None, metavar="PATH",
                             help="sensor models: keep what the stream learns (adaptive "
                                  "threshold, anomaly likelihood, running normalization) in this "
                                  "file, saved every 60 s and at the end, and continue from it "
                                  "when the run starts again; the files of a folder continue one "
                                  "another in name order (default: each run and each file "
                                  "starts from the artifact)")
            sub.add_argument("--mqtt", type=_mqtt_target, default=None, metavar="URL",
                             help="also publish each result line to mqtt://HOST:PORT/TOPIC (QoS 1; "
                                  "mqtts:// for TLS, USER:PASSWORD@ before the host) and the "
                                  "health report, retained, to TOPIC/health; needs "
                                  "vigil-edge[mqtt]")
            sub.add_argument("--mqtt-buffer", type=_integer(1, MQTT_MAX_BUFFER), default=10_000,
                             metavar="MESSAGES",
                             help="messages kept while the broker is away; past that new ones "
                                  "are dropped and counted, scoring never waits (default 10000, "
                                  f"at most {MQTT_MAX_BUFFER}: MQTT numbers a client's messages "
                                  "in flight in 16 bits)")
            sub.add_argument("--mqtt-client-id", default=None, metavar="ID",
                             help="MQTT client id (default vigil- and a random suffix; each "
                                  "scorer its own: a broker drops the older of two connections "
                                  "with one id)")
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
            sub.set_defaults(command="score")
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
            images.add_argument("--pixel-threshold", type=_number(), default=None,
                                metavar="SCORE",
                                help="override the artifact's pixel threshold: the boxes and the "
                                     "pixel rates at it are measured with this one")
            sub.set_defaults(command="eval")


def _add_bench(commands, anywhere: argparse.ArgumentParser) -> None:
    """The arguments of vigil bench."""
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
    bench.set_defaults(command="bench")


def _add_triton(commands, anywhere: argparse.ArgumentParser) -> None:
    """The arguments of vigil triton."""
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
    triton.set_defaults(command="triton")


def _add_serve(commands, anywhere: argparse.ArgumentParser) -> None:
    """The arguments of vigil serve."""
    serve = _command(commands, "serve", "serve an artifact over HTTP (Ray Serve, KServe v2 "
                     "protocol: Triton's clients work) until SIGTERM or Ctrl-C",
                     parents=[anywhere])
    serve.add_argument("model", help="MODEL.onnx")
    serve.add_argument("--name", default=None,
                       help="the model's name in the URL (default: MODEL's file stem)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address the HTTP server listens on (default 127.0.0.1: this "
                            "machine only; Ray Serve's replica gRPC server listens on every "
                            "interface whatever this says: let a firewall pass only --port)")
    serve.add_argument("--port", type=_integer(1, 65535), default=8000,
                       help="HTTP port (default 8000)")
    serve.add_argument("--replicas", type=_integer(1), default=1,
                       help="model replicas, one detector and one CPU each (default 1)")
    serve.add_argument("--threads", type=_integer(1, MAX_THREADS), default=1,
                       help="inference threads per replica (default 1)")
    serve.add_argument("--max-request-mb", type=_number(), default=256.0, metavar="MB",
                       help="larger requests are refused (413) before they are read whole "
                            "(default 256; a JSON body takes several times its size in memory)")
    serve.add_argument("--max-queued", type=_integer(0, 10_000), default=4, metavar="N",
                       help="inference requests a replica holds waiting while it scores one; "
                            "more are answered 503 with Retry-After at once, their body dropped, "
                            "never held (default 4: a replica holds at most 2 x (N + 1) "
                            "bodies of up to --max-request-mb, N + 1 being received and N + 1 "
                            "scored or waiting; a JSON body takes several times its size while "
                            "it is parsed)")
    serve.add_argument("--expect-sha256", default=None, metavar="HEX",
                       help="refuse the model unless its sha256 is this (each replica checks "
                            "the file it loads)")
    serve.set_defaults(command="serve")


def _add_batch(commands, anywhere: argparse.ArgumentParser) -> None:
    """The arguments of vigil batch."""
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
    batch.add_argument("--expect-sha256", default=None, metavar="HEX",
                       help="refuse the model unless its sha256 is this (each worker checks the "
                            "file it loads: one deployed over it mid-batch stops the batch)")
    batch.add_argument("--decimal", choices=[".", ","], metavar="MARK", default=".",
                       help="sensor CSVs: decimal mark of the numbers, . or , (default .; with , the "
                            "columns must be separated by ; or a tab)")
    batch.add_argument("--columns", type=_comma_list, default=None,
                       help="sensor CSVs: column names when the files have no header line")
    batch.add_argument("--no-likelihood", dest="likelihood", action="store_false",
                       help="sensor models: alarms from the threshold alone, without the "
                            "artifact's anomaly likelihood or its level floor (default: the "
                            "artifact's rule, as in vigil score)")
    batch.add_argument("--strict", action="store_true",
                       help=STRICT_HELP)
    batch.set_defaults(command="batch")


def _add_health_check(commands, anywhere: argparse.ArgumentParser) -> None:
    """The arguments of vigil health-check."""
    check = _command(commands, "health-check", "exit 0 while a scorer's health file says it is "
                     "alive, 1 with the reason otherwise (for watchdogs)", parents=[anywhere])
    check.add_argument("health", help="the --health file of a running `vigil score`")
    check.add_argument("--max-age", type=_number(0, low_open=True), default=60.0, metavar="SECONDS",
                       help="the file must have been rewritten within this time (default 60; "
                            "keep it above --health-interval)")
    check.add_argument("--max-idle", type=_number(0, low_open=True), default=None,
                       metavar="SECONDS",
                       help="also fail when no input arrived for this long (default: no limit)")
    check.add_argument("--max-unscored", type=_integer(1), default=None, metavar="N",
                       help="also fail when this many rows (sensor runs) or frames (camera runs) "
                            "in a row were skipped, none scored (a dead column, a camera whose "
                            "every frame arrives damaged; default: no limit)")
    check.set_defaults(command="health-check")


def _add_inspect(commands, anywhere: argparse.ArgumentParser) -> None:
    """The arguments of vigil inspect."""
    inspect = _command(commands, "inspect", "what an artifact holds: its kind, input, threshold "
                       "and alarm rule, training, versions, and whether its content is as "
                       "exported (checked as it is loaded)", parents=[anywhere])
    inspect.add_argument("model", help="MODEL.onnx")
    inspect.add_argument("--json", action="store_true",
                         help="print the whole metadata as JSON (with the file's size and sha256)")
    inspect.set_defaults(command="inspect")


# --strict, as vigil score and vigil batch both take it
STRICT_HELP = ("exit 5 (not 0) when the run ended but some input was not scored: a file "
               "skipped, rows or frames skipped (each still has its line and reason), or entries "
               "of an input folder passed over (each warned of); for scripts and schedulers "
               "that must notice a partial run")


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


def _command_parser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The parser of ``command`` ("train sensor", "score"), or ``parser`` where none is found."""
    for word in command.split():
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subparsers or word not in subparsers[0].choices:
            break
        parser = subparsers[0].choices[word]
    return parser


def as_flags(message: str, parser: argparse.ArgumentParser, command: str | None = None) -> str:
    """``message`` with each library option name it quotes given as its flag: the flags of
    ``command`` alone where it is given (`features` is no flag of `vigil score`, which names
    columns with --columns), else of every subcommand."""
    chosen = parser if command is None else _command_parser(parser, command)
    for name, flag in _flag_names(chosen).items():
        message = message.replace(name, flag)
    return message


NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def value_flags(parser: argparse.ArgumentParser) -> set[str]:
    """The long options, in every subcommand, that take a value."""
    flags: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags |= value_flags(sub)
        elif action.nargs != 0:
            flags |= {o for o in action.option_strings if o.startswith("--")}
    return flags


def joined_negative_numbers(argv: list[str], flags: set[str]) -> list[str]:
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
