"""How the CLI writes its log lines on stderr: ``vigil: LEVEL: message``, or with --log-json one
JSON object a line, for which OpenCV's and FFmpeg's own stderr messages are turned off and what
other C libraries write there is wrapped as JSON."""

from __future__ import annotations

import contextlib
import faulthandler
import json
import logging
import os
import sys
import threading
import time


def printable(text: str) -> str:
    """``text`` on one line with what a terminal would act on (ESC, CSI, line breaks and other
    control characters, from an artifact's feature names or a file's cells) written as escapes:
    a name holding "\\nvigil: error: ..." cannot forge a line of its own."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class TextFormatter(logging.Formatter):
    """``vigil: LEVEL: message`` for our messages; other libraries' carry their own name."""

    def format(self, record: logging.LogRecord) -> str:
        name = "vigil" if record.name.split(".")[0] == "vigil" else record.name
        line = f"{name}: {record.levelname}: {printable(record.getMessage())}"
        if record.exc_info:  # a traceback keeps its lines
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC), ``level``, ``message``, ``logger``."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                 + f".{int(record.msecs):03d}Z", "level": record.levelname.lower(),
                 "message": record.getMessage(), "logger": record.name}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def quiet_native_logs() -> None:
    """Under --log-json, where every stderr line is JSON: OpenCV's and FFmpeg's own messages
    ("[ WARN:0@4.3] ...", "[tcp @ 0x...] Connection refused") are turned off; what they say is
    logged as JSON by the sources (a lost stream, each reconnect attempt and its reason). Set
    before OpenCV starts FFmpeg."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's AV_LOG_QUIET
    if "cv2" in sys.modules:  # imported already: its logging level is read at import time
        try:
            from cv2.utils import logging as cv2_logging

            cv2_logging.setLogLevel(cv2_logging.LOG_LEVEL_SILENT)
        except (ImportError, AttributeError):  # an OpenCV without it: the variable does it
            pass


NATIVE_LOGGER = "native"  # the logger of lines C libraries wrote to stderr themselves
NATIVE_DRAIN_S = 2.0  # at the end, how long their last lines are waited for


@contextlib.contextmanager
def native_lines_as_json():
    """Under --log-json, with stderr a file or a pipe (a log collector's): what C libraries
    write to file descriptor 2 themselves, which no setting turns off (libpng's "libpng warning:
    iCCP: known incorrect sRGB profile", libjpeg's "Corrupt JPEG data"), comes out as a JSON
    line of logger ``native``, level warning, instead of text among the JSON lines.

    Descriptor 2 becomes a pipe that a thread reads line by line into the log; Python's own
    stderr (the log, tracebacks, faulthandler) writes where descriptor 2 went before. On a
    terminal nothing changes (a person reads it, and a hang-up is handled there). On exit
    descriptor 2 is restored and the last lines are drained. Never for a command that starts
    processes that may outlive it (a Ray cluster), which would inherit the pipe."""
    _flush(sys.stderr)
    try:
        original = None if _is_terminal(2) else os.dup(2)
    except OSError:  # no stderr at all (2>&-): nothing to keep apart
        original = None
    if original is None:
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    own = None
    previous = sys.stderr
    switched: list[logging.StreamHandler] = []
    try:
        if _fileno(previous) == 2:  # the process's own stderr (not a test's capture): kept out
            own = open(original, "w", buffering=1, encoding=previous.encoding or "utf-8",
                       errors="backslashreplace", closefd=False)
            sys.stderr = own
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.StreamHandler) and handler.stream is previous:
                    handler.setStream(own)
                    switched.append(handler)
            if faulthandler.is_enabled():
                faulthandler.enable(file=own)
        pump = threading.Thread(target=_log_native_lines, args=(read_end, original),
                                name="native-stderr", daemon=True)
        pump.start()
    except BaseException:
        _restore(original, previous, own, switched)
        os.close(read_end)
        raise
    try:
        yield
    finally:
        _flush(sys.stderr)
        os.dup2(original, 2)  # the pipe's last writer gone (unless a child holds it): its end
        pump.join(NATIVE_DRAIN_S)
        # a pump still reading (a child holds the pipe) keeps its descriptor to the end
        _restore(original, previous, own, switched, close=not pump.is_alive())


def _restore(original: int, previous, own, switched: list[logging.StreamHandler],
             close: bool = True) -> None:
    """Descriptor 2, ``sys.stderr``, the log's handlers and faulthandler as they were."""
    os.dup2(original, 2)
    if own is not None:
        for handler in switched:
            handler.setStream(previous)
        if faulthandler.is_enabled():
            faulthandler.enable(file=previous)
        sys.stderr = previous
        _flush(own)
    if close:
        os.close(original)


def _log_native_lines(read_end: int, original: int) -> None:
    """Each line read from ``read_end`` logged as a warning of ``NATIVE_LOGGER``; where logging
    fails, the line goes to ``original`` as it came (never stop reading: a full pipe would block
    the C library that writes)."""
    native = logging.getLogger(NATIVE_LOGGER)
    with open(read_end, "rb") as pipe:
        for raw in pipe:
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not text.strip():
                continue
            try:
                native.warning("%s", text)
            except Exception:  # a log that cannot write: the text as it came, or nothing
                try:
                    os.write(original, raw)
                except OSError:
                    pass


def _flush(stream) -> None:
    """``stream`` flushed where it can be (a reader gone is the run's own business)."""
    try:
        stream.flush()
    except (OSError, ValueError):
        pass


def _is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def _fileno(stream) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
