"""How the CLI writes its log lines on stderr: ``vigil: LEVEL: message``, or with --log-json one
JSON object a line, for which OpenCV's and FFmpeg's own stderr messages are turned off and what
other C libraries write there is wrapped as JSON."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
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

    Descriptor 2 becomes a pipe read by a small process of its own (this module run as a
    program), which writes each line as JSON where stderr went, and drains to the end even when
    this process dies: a crashing library's last words (glibc's "malloc(): corrupted ...",
    faulthandler's report) still come out, as JSON. Python's own stderr (the log, tracebacks)
    writes where descriptor 2 went, directly. On a terminal, with no stderr, or where the pump
    cannot start, nothing changes. Never for a command that starts processes that may outlive
    it (a Ray cluster), which would inherit the pipe."""
    previous = sys.stderr
    if previous is None or _is_terminal(2):  # no stderr (2>&-), or a person reading it
        yield
        return
    _flush(previous)
    redirect = _redirect_to_pump(previous)
    try:
        yield
    finally:
        if redirect is not None:
            redirect.restore()


class _PumpRedirect:
    """Descriptor 2 on the pump's pipe, and Python's stderr apart from it, until ``restore``."""

    def __init__(self, original: int, pump: subprocess.Popen, previous,
                 own=None, switched: tuple = ()) -> None:
        self.original, self.pump, self.previous = original, pump, previous
        self.own, self.switched = own, switched

    def restore(self) -> None:
        """Everything back as it was, each step whatever an interrupt does to the one before;
        then the pump's last lines are waited for (at most ``NATIVE_DRAIN_S``)."""
        try:
            _flush(sys.stderr)
        finally:
            try:
                os.dup2(self.original, 2)  # the pipe's last writer here gone: the pump drains
            finally:
                try:
                    for handler in self.switched:
                        handler.setStream(self.previous)
                    sys.stderr = self.previous
                finally:
                    try:
                        if self.own is not None:
                            self.own.close()  # a stream kept from the run fails cleanly after
                    finally:
                        os.close(self.original)
        try:
            self.pump.wait(NATIVE_DRAIN_S)
        except subprocess.TimeoutExpired:  # a child process holds the pipe: it drains later
            pass


def _redirect_to_pump(previous) -> _PumpRedirect | None:
    """Start the pump and point descriptor 2 at it (None, nothing changed, where it cannot)."""
    try:
        original = os.dup(2)
    except OSError:
        return None
    try:
        read_end, write_end = os.pipe()
    except OSError:
        os.close(original)
        return None
    try:
        pump = subprocess.Popen([sys.executable, "-m", __spec__.name if __spec__ else
                                 "vigil.cli.log_format"], stdin=read_end, stdout=original,
                                stderr=subprocess.DEVNULL, close_fds=True)
    except OSError:
        for fd in (original, read_end, write_end):
            os.close(fd)
        return None
    os.close(read_end)
    own, switched = None, []
    try:
        os.dup2(write_end, 2)
        os.close(write_end)
        if _fileno(previous) == 2:  # the process's own stderr (not a test's capture): kept out
            own = open(os.dup(original), "w", buffering=1,
                       encoding=previous.encoding or "utf-8", errors="backslashreplace")
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.StreamHandler) and handler.stream is previous:
                    handler.setStream(own)
                    switched.append(handler)
            sys.stderr = own
    except BaseException:  # an interrupt while it was set up: back as it was
        _PumpRedirect(original, pump, previous, own, tuple(switched)).restore()
        raise
    return _PumpRedirect(original, pump, previous, own, tuple(switched))


def _pump_lines(source, sink: int) -> None:
    """Each line of ``source`` (what C code wrote to the parent's descriptor 2) as a JSON log
    line on ``sink``, until every writer has closed the pipe (the parent's death included).
    Stops never: a write that fails drops its line, and the reading goes on, so that no writer
    ever blocks on a full pipe."""
    formatter = JsonFormatter()
    for raw in source:
        text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not text.strip():
            continue
        record = logging.LogRecord(NATIVE_LOGGER, logging.WARNING, __file__, 0, "%s", (text,),
                                   None)
        try:
            os.write(sink, (formatter.format(record) + "\n").encode("utf-8"))
        except OSError:  # where stderr went is gone (a closed pipe): the line is dropped
            pass


def _flush(stream) -> None:
    """``stream`` flushed where it can be (a reader gone is the run's own business)."""
    try:
        stream.flush()
    except (OSError, ValueError, AttributeError):
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


if __name__ == "__main__":  # the pump `native_lines_as_json` starts: stdin to JSON on stdout
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):  # the run's stops are its parent's: it ends
        signal.signal(getattr(signal, name), signal.SIG_IGN)  # when the pipe does
    _pump_lines(sys.stdin.buffer, sys.stdout.fileno())
