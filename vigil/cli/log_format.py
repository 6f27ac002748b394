"""How the CLI writes its log lines on stderr: ``vigil: LEVEL: message``, or with --log-json one
JSON object a line, for which OpenCV's and FFmpeg's own stderr messages are turned off."""

from __future__ import annotations

import json
import logging
import os
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
