"""Where a command's outputs may go, checked before any work: never an input, never a file or
folder of another kind or another program, never a path that cannot be written (the exit code
says so before a model is trained or a stream opened)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

FILE_OUTPUTS = {"json": "--json", "jsonl": "--jsonl", "health": "--health",
                "overlay_video": "--overlay-video", "state": "--state"}
# each replaces an earlier run's JSON object (--state: a learned state, read and written back)
JSON_DOCUMENT_OUTPUTS = ("json", "health", "state")
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


def refuse_empty_paths(args) -> None:
    """ValueError for an input path given as an empty string (what an unset shell variable
    gives): read as a path, it would be the working folder, and every CSV below it would be
    read as the data."""
    for name, values in _input_paths(args):
        if any(isinstance(v, str) and not v.strip() for v in values):
            among = f" among {list(values)}" if len(values) > 1 else ""
            raise ValueError(f"`{name}` is an empty path{among} (an unset shell variable gives "
                             f"one); expected a file or folder path: run `vigil {args.command} "
                             f"--help` for what it takes")


def refuse_unreadable_inputs(args) -> None:
    """ValueError naming an input file or folder this user cannot read (permission denied),
    before any work: it was reported as an output that could not be written (exit 4), or as a
    folder with no CSV files in it."""
    if args.command == "health-check":
        return
    for name, values in _input_paths(args):
        for value in values:
            path = os.fspath(value)
            folder = os.path.isdir(path)
            if not os.path.exists(path) or os.access(path, os.R_OK | (os.X_OK if folder else 0)):
                continue
            mode = "-R a+rX" if folder else "a+r"
            raise ValueError(f"`{name}` {path!r} cannot be read by this user (permission "
                             f"denied): give it read access (chmod {mode} {path}) or run as "
                             f"its owner")


def output_path_of(args, filename: str | os.PathLike | None) -> bool:
    """Whether ``filename`` is one of the command's outputs, or inside an output folder."""
    if filename is None:
        return False
    target = os.path.abspath(os.fspath(filename))
    for name in (*FILE_OUTPUTS, *FOLDER_OUTPUTS, "output"):
        value = getattr(args, name, None)
        if isinstance(value, (str, os.PathLike)) and str(value) not in ("", "-"):
            given = os.path.abspath(os.fspath(value))
            if target == given or target.startswith(given.rstrip(os.sep) + os.sep) or (
                    os.path.dirname(target) == os.path.dirname(given)
                    and os.path.basename(target).startswith(  # its temporary file or sidecar
                        (".tmp-", Path(given).stem + "."))):
                return True
    return False


def check_output_paths(args) -> None:
    """Refuse, before any work, an output path that cannot be written: a folder where a file
    is expected (or the reverse), or a path under a file or in a folder this user cannot write.
    Only checked; every output is made once the run's input is known good."""
    from vigil.runtime.core.output import check_writable, refuse_inputs_as_output

    if args.command == "health-check":  # its `health` is the file it reads
        return
    outputs = [(name, flag, False) for name, flag in FILE_OUTPUTS.items()]
    outputs += [(name, flag, True) for name, flag in FOLDER_OUTPUTS.items()]
    outputs.append(("output", "--output", args.command == "demo"))  # demo writes a folder
    inputs, input_folders = [], []
    for _, values in _input_paths(args):
        inputs += [v for v in values if os.path.isfile(v)]
        input_folders += [v for v in values if os.path.isdir(v)]
    for name, flag, folder in outputs:
        path = getattr(args, name, None)
        if isinstance(path, (str, os.PathLike)) and str(path) not in ("", "-"):
            # models, health reports and states: written beside, then renamed (--json is
            # written in place where it cannot be: a device, a pipe); health reports and
            # states where their links point (write_atomically)
            check_writable(path, flag, folder=folder,
                           replaced=name in ("output", "health", "state") and not folder,
                           through_links=name in ("health", "state"))
            if not folder:
                refuse_inputs_as_output(path, inputs, flag)
                _refuse_csv_in_an_input_folder(path, flag, input_folders)
                if name in JSON_DOCUMENT_OUTPUTS:
                    _refuse_replacing_other_files(path, flag)
                if name == "output" and args.command in ("export", "train sensor", "train image"):
                    _refuse_replacing_other_than_a_model(path, args.command == "export")
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
    if args.command in ("train sensor", "train image"):
        if Path(args.output).suffix != ".keras":
            raise ValueError(f"`--output` must end in .keras; received {args.output!r} (for "
                             f"example -o {Path(args.output).with_suffix('.keras').name})")
        # from the runtime, not vigil.training: that needs the train extra, whose absence the
        # command names itself (training_side)
        from vigil.runtime.core.spec import sidecar_path

        check_writable(sidecar_path(args.output), "--output's sidecar", replaced=True)
        _refuse_a_full_disk(Path(args.output), sidecar_path(args.output), args.command)


# The least a trained model and its sidecar take (a tiny sensor model: ~0.1 MB; the default one
# 0.8 MB; a feature image model 9 MB): a disk with less free space fails at the end of training
# (a review: a full disk found after the whole run)
LEAST_MODEL_BYTES = {"train sensor": 256 * 1024, "train image": 2 * 1024 * 1024}


def _refuse_a_full_disk(model: Path, sidecar: Path, command: str) -> None:
    """ValueError when the output's file system cannot hold the model it will write: less free
    space than the model it replaces (written beside it first), or than any model takes."""
    folder = model.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        stats = os.statvfs(folder)
    except (OSError, AttributeError):  # no statvfs (Windows), or a folder it cannot read
        return
    if not stats.f_blocks:  # a file system that reports no sizes (some FUSE and network ones)
        return
    # root may write the blocks reserved for it as well (a container, a device's service)
    blocks = stats.f_bfree if hasattr(os, "geteuid") and os.geteuid() == 0 else stats.f_bavail
    free = blocks * stats.f_frsize
    replaced = sum(p.stat().st_size for p in (model, sidecar) if p.is_file())
    needed = max(replaced, LEAST_MODEL_BYTES[command])
    if free < needed:
        what = (f"the model it replaces takes {replaced / 1e6:.2f} MB" if replaced >= needed
                else f"a model takes at least {needed / 1e6:.2f} MB")
        raise ValueError(f"`--output` {str(model)!r}: its file system has {free / 1e6:.2f} MB "
                         f"free and {what}, so training would fail at its end; free space there "
                         f"or name a path on another disk")


def _refuse_csv_in_an_input_folder(path, flag: str, input_folders: list) -> None:
    """ValueError for an output named .csv inside an input folder: every CSV below a folder is
    read as data, so the next run on that folder would read it (and refuse it as its output)."""
    if Path(path).suffix.lower() != ".csv" or os.path.exists(path):
        return  # an existing CSV there is one of the inputs, refused as such once they are read
    target = Path(path).resolve()
    for given in input_folders:
        if Path(given).resolve() in target.parents:
            suffix = ".json" if flag == "--state" else ".jsonl"  # one document, or lines
            raise ValueError(f"`{flag}` {str(path)!r} is a .csv inside {str(given)!r}, an input "
                             f"folder of this run: the next run on that folder would read it as "
                             f"data; name it {suffix} ({flag} {Path(path).with_suffix(suffix)}, "
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


def _text(start: bytes) -> bool:
    """Whether a file's first bytes are text (UTF-8 without NUL): data a user may want kept."""
    if b"\0" in start:
        return False
    try:
        start.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start >= len(start) - 3  # cut inside a character at the end: still text
    return True


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
    if flag == "--state" and not _text(start):
        return  # a state file left unreadable (NUL bytes after a power loss): warned, replaced
    shown = first_line[:60].decode("utf-8", "replace")
    kind = {"--health": "health", "--state": "state"}.get(flag, "result")
    suggested = f"{Path(path).stem}-{kind}.json"
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
    except OSError as error:  # a folder it cannot list (no read permission) cannot be checked
        raise ValueError(f"`{flag}` {str(path)!r} is a folder whose files cannot be listed "
                         f"({error.strerror or error}), so whether its report would replace "
                         f"other files is unknown: name a folder you can read and write "
                         f"({flag} {folder.resolve().name}-report, say)") from None
    if not entries:
        return
    try:
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
        if not is_mvtec(given, need_train=False):
            continue
        for part in ("train", "test", "ground_truth"):
            read = (Path(given) / part).resolve()
            if target == read or read in target.parents:
                raise ValueError(
                    f"`{flag}` {str(path)!r} is inside {str(Path(given) / part)!r}, which this "
                    "run reads as an MVTec AD category: what it writes there would be scored as "
                    f"images of the category by the next run; name a folder outside it ({flag} "
                    f"{Path(given).resolve().name}-{flag.strip('-').split('-')[0]}, say)")
