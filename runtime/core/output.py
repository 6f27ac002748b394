"""Writing result lines: one JSON object per line, whole lines only, and a clear error when the
output cannot be written (disk full, file closed).

``JsonLines`` buffers lines and writes them in blocks (each line at once for live sources). When a
write fails, a file it opened itself is cut back to its last whole line, so a reader never sees half
a record; the lines that could not be written are counted in ``lines_lost``. Then, by its policy,
it raises ``OutputError`` (``stop``, the default: the run ends cleanly, its summary says where) or
logs and carries on, trying the next lines again (``continue``: scoring, alarms in the logs and the
health file go on while the disk is full).

A reader that closes standard output (``vigil score ... | head``) ends the run quietly: that
``BrokenPipeError`` is passed on as it is.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import stat
import sys
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("vigil")

OUTPUT_POLICIES = ("stop", "continue")
BUFFER_BYTES = 1 << 16


def strict_json(record: dict) -> str:
    """One line of RFC 8259 JSON: infinities become the largest finite doubles, NaN null."""
    try:
        return json.dumps(record, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(record), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else math.copysign(sys.float_info.max, value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class OutputError(Exception):
    """Result lines could not be written; the message names the output and what was written."""


class JsonLines:
    """Where result lines go: a file it opens (``path``), standard output (``None`` or ``"-"``), or
    a text stream the caller owns.

    Args:
        target: a path, ``None``/``"-"`` for stdout, or an open text stream.
        on_error: ``"stop"`` raises OutputError at the first failed write; ``"continue"`` counts
            the lost lines and goes on.
        live: write each line as soon as it is given (for live sources), instead of in blocks.
    """

    def __init__(self, target: str | os.PathLike | IO[str] | None = None, on_error: str = "stop",
                 live: bool = False, buffer_bytes: int = BUFFER_BYTES) -> None:
        if on_error not in OUTPUT_POLICIES:
            raise ValueError(f"`on_error` must be one of {list(OUTPUT_POLICIES)}; "
                             f"received {on_error!r}")
        self.on_error = on_error
        self.live = live
        self.buffer_bytes = buffer_bytes
        self._raw = None  # a file opened here (binary, unbuffered): cut back on failure
        self._stream: IO[str] | None = None
        if target is None or (isinstance(target, str) and target == "-"):
            self._stream = sys.stdout
            self.name = "stdout"
        elif isinstance(target, (str, os.PathLike)):
            path = Path(target)
            self.name = str(path)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._raw = open(path, "wb", buffering=0)
            except OSError as error:
                raise ValueError(f"`jsonl` {self.name!r} cannot be opened for writing: "
                                 f"{error.strerror or error}") from None
        else:
            self._stream = target
            self.name = str(getattr(target, "name", type(target).__name__))
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._pending_mark: Any = None
        self._offset = 0  # bytes of whole lines in a file opened here
        self.lines_written = 0
        self.lines_lost = 0
        self.last_written: Any = None  # the mark of the last line written
        self.error: str | None = None  # the last write failure
        self._failing = False

    def write(self, record: dict, mark: Any = None) -> None:
        """Queue one record (``mark`` identifies it in messages: a row index, a frame number)."""
        line = strict_json(record) + "\n"
        self._pending.append(line)
        self._pending_bytes += len(line)
        self._pending_mark = mark
        if self.live or self._pending_bytes >= self.buffer_bytes:
            self.flush()

    def flush(self) -> None:
        """Write the queued lines; on failure roll back to whole lines, count, stop or go on."""
        if not self._pending:
            return
        text = "".join(self._pending)
        count, mark = len(self._pending), self._pending_mark
        self._pending.clear()
        self._pending_bytes = 0
        try:
            if self._raw is not None:
                self._write_raw(text.encode("utf-8"))
            else:
                self._stream.write(text)
                self._stream.flush()
        except BrokenPipeError:
            if self._raw is None:
                raise
            self._failed(count, mark, OSError(errno.EPIPE, "broken pipe"))
        except (OSError, ValueError) as error:  # ENOSPC, EIO, EFBIG; ValueError: closed file
            self._failed(count, mark, error)
        except BaseException:  # Ctrl-C or SIGTERM in the middle of a write: whole lines only
            self._cut_back()
            self.lines_lost += count
            raise
        else:
            self.lines_written += count
            self.last_written = mark
            if self._failing:
                log.warning("output %r is writable again; %d line%s lost in all", self.name,
                            self.lines_lost, "s" if self.lines_lost != 1 else "")
                self._failing = False

    def _write_raw(self, data: bytes) -> None:
        view = memoryview(data)
        done = 0
        while done < len(view):
            written = self._raw.write(view[done:])
            if not written:
                raise OSError(errno.ENOSPC, "the write made no progress (no space left?)")
            done += written
        self._offset += done

    def _failed(self, count: int, mark: Any, error: Exception) -> None:
        cut = self._cut_back()
        self.lines_lost += count
        reason = (getattr(error, "strerror", None) or str(error) or type(error).__name__)
        where = (f"the last line written was for {self.last_written}" if self.lines_written
                 else "no line was written")
        self.error = (f"output {self.name!r} could not be written ({reason}): {count} "
                      f"line{'s' if count != 1 else ''} up to {mark} lost; {self.lines_written} "
                      f"written, {where}{cut}")
        if self.on_error == "stop":
            raise OutputError(self.error)
        if not self._failing:
            log.error("%s; scoring goes on (on_error=continue)", self.error)
            self._failing = True

    def _cut_back(self) -> str:
        """Truncate a file opened here to its last whole line; a note if that was not possible."""
        raw = self._raw
        if raw is None:
            return ""
        if raw.closed:
            return "; the file was closed"
        try:
            if not stat.S_ISREG(os.fstat(raw.fileno()).st_mode):
                return ""  # a device or pipe: nothing written there can be taken back
            os.ftruncate(raw.fileno(), self._offset)
            raw.seek(self._offset)
            return ""
        except (OSError, ValueError) as error:
            return f"; it could not be cut back to whole lines ({error})"

    def close(self) -> None:
        """Write what is queued (may raise OutputError) and close a file opened here."""
        try:
            self.flush()
        finally:
            if self._raw is not None and not self._raw.closed:
                try:
                    self._raw.close()
                except OSError as error:
                    self.error = self.error or f"output {self.name!r} could not be closed: {error}"
            self._raw = None

    def __enter__(self) -> JsonLines:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
