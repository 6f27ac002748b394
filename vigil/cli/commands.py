"""The ``vigil`` command line: a thin layer over the library functions.

It sits above the four layers (benchmarks -> export -> training -> runtime) and is the one
place that reaches all of them; the runtime commands (score, eval, bench) never import TensorFlow.
``main`` reads the command line and runs the command's handler: ``train_commands`` (train,
export, demo), ``score_commands`` (score, eval) and ``service_commands`` (batch, serve, triton,
health-check, bench), with what they share in ``shared``.

Exit codes: 0 success; 1 unexpected failure, or a live source lost for good; 2 invalid arguments
or input data; 3 model artifact refused (missing, corrupt, foreign, newer schema, external data,
wrong sha256); 4 the results could not be written (disk full, file closed).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

from vigil.cli.arguments import (JsonErrorParser, as_flags, build_parser, joined_negative_numbers,
                                 refuse_unknown, value_flags)
from vigil.cli.log_format import JsonFormatter, TextFormatter, quiet_native_logs
from vigil.cli.output_paths import (check_output_paths, output_path_of, refuse_empty_paths,
                                    refuse_unreadable_inputs)
from vigil.cli.shared import (EXIT_ARTIFACT, EXIT_FAILURE, EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK,
                              EXIT_OUTPUT, error_line, log)
from vigil.cli.score_commands import cmd_eval, cmd_inspect, cmd_score
from vigil.cli.service_commands import cmd_batch, cmd_bench, cmd_health_check, cmd_serve, cmd_triton
from vigil.cli.train_commands import cmd_demo, cmd_export, cmd_train_image, cmd_train_sensor


def reserve_standard_descriptors() -> None:
    """Open the null device onto descriptors 0, 1 and 2 where the run was started with them
    closed (``2>&-``, a supervisor's closed stdin), and give a missing ``sys.stderr`` to it.
    Else the next file opened took the lowest free number, where a C library writes its
    warnings (libpng's), and with ``sys.stderr`` None every error line and the summary were
    printed to stdout, among the results of ``--jsonl -``. ``sys.stdin`` and ``sys.stdout``
    stay None: results for a closed stdout, or rows from a closed stdin, are refused by name."""
    for descriptor in (0, 1, 2):
        try:
            os.fstat(descriptor)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one
            if null != descriptor:
                os.dup2(null, descriptor)
                os.close(null)
    if sys.stderr is None:  # diagnostics the user chose not to see
        sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)


# Output options by what they name: a file, or a folder that is created (nothing is created here).
def main(argv: list[str] | None = None) -> int:
    reserve_standard_descriptors()
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--log-json" in argv
    if as_json:
        quiet_native_logs()
    JsonErrorParser.json_errors = as_json
    JsonErrorParser.argv = argv
    try:
        args, unknown = parser.parse_known_args(joined_negative_numbers(argv, value_flags(parser)))
        if unknown:
            refuse_unknown(parser, args.command.split(), unknown)
    finally:
        JsonErrorParser.json_errors = False
        JsonErrorParser.argv = []
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
        try:
            refuse_empty_paths(args)
            refuse_unreadable_inputs(args)
        except ValueError as error:
            if args.command == "score":  # its health file must not say an earlier run finished
                from vigil.cli.score_commands import report_failed_start

                report_failed_start(args, error)
            raise
        check_output_paths(args)
        with _sigterm_as_interrupt(args.run in SIGTERM_AS_CTRL_C):
            return args.run(args)
    except MissingDependency as error:
        error_line(error, args.log_json)
        return EXIT_FAILURE
    except ArtifactError as error:
        error_line(error, args.log_json)
        return EXIT_ARTIFACT
    except OutputError as error:
        error_line(error, args.log_json)
        return EXIT_OUTPUT
    except (ValueError, TypeError, FileNotFoundError) as error:
        error_line(as_flags(str(error), parser, args.command), args.log_json)
        return EXIT_INPUT
    except BrokenPipeError:
        if getattr(args, "health", None) or getattr(args, "state", None):
            # an unattended run (a service's pipeline, `vigil score - | notifier`): its reader
            # gone is a fault to restart, not the end of a `| head`
            error_line("standard output's reader went away (the next command of the pipeline "
                       "exited or closed its input): the run stops; restart the pipeline (a "
                       "systemd unit: Restart=always)", args.log_json)
            return EXIT_OUTPUT
        return EXIT_OK  # `vigil score ... | head`: it ends quietly, as Unix tools do
    except OSError as error:  # an output that could not be written after all (checked first)
        import errno

        if error.errno in (errno.EACCES, errno.EPERM) and error.filename is not None \
                and not output_path_of(args, error.filename):
            # a file the input holds (a CSV in a folder, a sidecar) that this user cannot read:
            # the file itself, or a folder above it that cannot be entered (chmod 644 on a folder)
            folder = os.path.dirname(os.path.abspath(error.filename))
            closed = folder if not os.access(folder, os.X_OK) else None
            what, fix = ((f"its folder {closed!r} cannot be entered", f"chmod a+rX {closed}")
                         if closed else ("", f"chmod a+r {error.filename}"))
            error_line(f"{str(error.filename)!r} cannot be read by this user (permission "
                       f"denied{': ' + what if what else ''}): give it read access ({fix}) or "
                       f"run as its owner", args.log_json)
            return EXIT_INPUT
        path = error.filename or getattr(args, "output", None)
        where = f"{str(path)!r}: " if path else ""
        advice = ("the disk is full: free space there, or name a path on another disk"
                  if error.errno in (errno.ENOSPC, errno.EDQUOT)
                  else "name a path in a folder you can write")
        error_line(f"{where}cannot be written ({error.strerror or error}); {advice}",
                    args.log_json)
        return EXIT_OUTPUT
    except KeyboardInterrupt as stop:
        error_line(f"stopped by {'SIGTERM' if str(stop) == 'SIGTERM' else 'Ctrl-C'} before the "
                   f"work was done; nothing more was written", args.log_json)
        return EXIT_INTERRUPTED


HANDLERS = {"demo": cmd_demo, "train sensor": cmd_train_sensor, "train image": cmd_train_image,
            "export": cmd_export, "score": cmd_score, "eval": cmd_eval, "bench": cmd_bench,
            "triton": cmd_triton, "serve": cmd_serve, "batch": cmd_batch,
            "health-check": cmd_health_check, "inspect": cmd_inspect}  # what each command runs


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
