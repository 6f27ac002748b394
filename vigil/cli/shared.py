"""What the command modules share: exit codes, error lines, result files, the training
stack's import, and the checks several commands make."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from pathlib import Path

from vigil.cli.log_format import printable

EXIT_OK, EXIT_FAILURE, EXIT_INPUT, EXIT_ARTIFACT, EXIT_OUTPUT = 0, 1, 2, 3, 4
# --strict: the run ended, but some input was not scored (a file, rows or frames skipped)
EXIT_INCOMPLETE = 5
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


def training_side(what: str):
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


def check_keras_model(path: str, flag: str) -> None:
    """ValueError unless ``path`` names a .keras model (what `vigil train` writes)."""
    if Path(path).suffix == ".keras":
        return
    hint = (f"; {path!r} is already an exported artifact: score it with `vigil score {path} "
            f"DATA`, or give the .keras it was exported from" if Path(path).suffix == ".onnx"
            else "")
    raise ValueError(f"`{flag}` must be a .keras model written by `vigil train`; received "
                     f"{path!r}{hint}")


def error_line(message: object, as_json: bool) -> None:
    if as_json:
        log.error("%s", message)
    else:
        print(f"vigil: error: {printable(str(message))}", file=sys.stderr)


def refuse_other_kind(model: str, kind: str, source: str) -> None:
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


def refuse_outputs_in_image_folders(args, folders: list) -> None:
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


def likelihood_option(args, detector) -> None:
    """``--no-likelihood``: the sensor artifact's anomaly likelihood off for this run."""
    if args.likelihood:
        return
    from vigil.runtime import ImageDetector

    if isinstance(detector, ImageDetector):
        raise ValueError(f"--no-likelihood applies to sensor models; {args.model!r} is an image "
                         "model")
    detector.likelihood = False


class PassedOver(logging.Handler):
    """What the folders' listings passed over (files of other names, links to nothing, pipes
    and devices, subfolders: warnings that carry ``passed_over``), counted once per warning,
    for --strict."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.said: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        count = getattr(record, "passed_over", None)
        if count:
            self.said[record.getMessage()] = count

    def __enter__(self) -> "PassedOver":
        from vigil.runtime.sensor.tables import forget_said

        forget_said()  # said once a command: this one's listings are counted afresh
        logging.getLogger("vigil").addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger("vigil").removeHandler(self)

    @property
    def count(self) -> int:
        return sum(self.said.values())


def incomplete_run(files_skipped: int, skipped: int, unit: tuple[str, str],
                   errors: list[str], passed_over: int = 0) -> str | None:
    """What `--strict` stops on: why a run that ended did not score all its input (files
    skipped, ``skipped`` rows or frames: ``unit``, singular and plural, or a file with no
    window; ``passed_over``: entries of its folders not read), or None where it did."""
    parts = [f"{files_skipped} file(s) skipped"] if files_skipped else []
    parts += [f"{passed_over} entr{'y' if passed_over == 1 else 'ies'} of its folders passed "
              "over (other names, links to nothing, pipes or devices, subfolders: warned of above)"
              ] if passed_over else []
    parts += [f"{skipped} {unit[skipped != 1]} skipped (each has its line with the reason)"
              ] if skipped else []
    if errors and not parts:
        parts.append(f"{len(errors)} problem(s) in the summary's errors")
    if not parts:
        return None
    return ("--strict: the run ended, but not all of its input was scored: " + ", ".join(parts)
            + (f"; the first: {errors[0]}" if errors else "") + " (exit 5; without --strict "
            "such a run exits 0: its summary counts the files, rows and frames skipped, and "
            "the warnings above name the entries passed over)")


def progress_for(args):
    """Progress on stderr (a live bar on a terminal, lines in a file); none with --quiet or
    --log-json, whose stderr is for JSON lines."""
    from vigil.cli.progress import ConsoleProgress

    return ConsoleProgress(quiet=getattr(args, "quiet", False) or getattr(args, "log_json", False))


def write_result(path: str, text: str, flag: str = "--json") -> None:
    """Write a result file whole or not at all: a temporary file beside it (the link's target
    for a symbolic link, the existing file's mode kept), then a rename. A device, a pipe, or a
    file in a folder this user cannot write is written in place. An OSError names the flag and
    the path."""
    from vigil.runtime.core.output import write_atomically

    target = Path(os.path.realpath(path))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if ((target.exists() and not target.is_file())
                or (target.is_file() and not os.access(target.parent, os.W_OK))):
            target.write_text(text)
            return
        write_atomically(target, text)  # the file's mode kept, a new one's from the umask
    except OSError as error:
        raise OSError(error.errno, f"{flag} {path}: {error.strerror or error}") from None
