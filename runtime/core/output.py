"""Writing result lines: one JSON object per line, whole lines only, nothing clobbered, and a clear
error when the output cannot be written (disk full, file closed).

``JsonLines`` buffers lines and writes them in blocks (each line at once for live sources). A file
is opened without truncating it and locked against a second writer; a file that already holds
results is refused unless the caller says ``append`` (continue it, after cutting off a partial last
line an earlier crash may have left) or ``overwrite``. Nothing on disk changes until the first line
is written or the run ``commit``s (its input was good): a new file is created, an old one cut back
or emptied, only then, so a run refused for bad input leaves every file as it was. When a write
fails, a file it opened itself is cut back to its last whole line, so a reader never sees half a
record; the lines that could not be written are counted in ``lines_lost``. Then, by its policy, it
raises ``OutputError`` (``stop``, the default: the run ends cleanly, its summary says where) or
logs and carries on, trying the next lines again (``continue``: scoring, alarms in the logs and the
health file go on while the disk is full).

Standard output and other pipes get one ``write`` per line, once the pipe has room for it: a
line of up to ``PIPE_BUF`` bytes is written whole or not at all, so a stop request while a slow
reader holds the pipe back never cuts a line, and the count of lines written is exact. A reader that closes standard output
(``vigil score ... | head``) ends the run quietly: that ``BrokenPipeError`` is passed on as it is.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import secrets
import select
import stat
import sys
from pathlib import Path
from types import ModuleType
from typing import IO, Any, Callable, Iterator

import numpy as np

from . import interrupts
from .results import is_result_line, position_key

fcntl: ModuleType | None  # None where the system is not POSIX: no advisory locks
try:
    import fcntl
except ImportError:
    fcntl = None

log = logging.getLogger("vigil")

OUTPUT_POLICIES = ("stop", "continue")
OPEN_MODES = ("new", "append", "overwrite")
BUFFER_BYTES = 1 << 16


class atomic_path:
    """A temporary path in ``target``'s folder (with its suffix, which writers such as Keras
    require), renamed onto ``target`` when the block ends without an error and removed when it
    raises: readers of ``target`` see the old file or the new one whole, never half of one. The
    file gets ``mode`` where given, else what a plain open gives under the process's umask at
    that moment (not mkstemp's 0600: a watchdog or a model server reads it)."""

    def __init__(self, target: str | os.PathLike, mode: int | None = None) -> None:
        self.target = Path(target)
        self.mode = mode

    def __enter__(self) -> str:
        for _ in range(100):
            name = self.target.parent / f".tmp-{secrets.token_hex(6)}{self.target.suffix}"
            try:  # created 0666 less the umask, as open() would create it
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                             | getattr(os, "O_CLOEXEC", 0), 0o666)
            except FileExistsError:
                continue
            os.close(fd)
            self.temporary = str(name)
            return self.temporary
        raise FileExistsError(errno.EEXIST, f"no free temporary name in {self.target.parent}")

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is None:
                if self.mode is not None:
                    os.chmod(self.temporary, self.mode)
                os.replace(self.temporary, self.target)
        finally:
            if os.path.exists(self.temporary):  # an error in the block, or the rename failed
                os.unlink(self.temporary)


class made_folders:
    """``folder`` made (with its parents) for the block, and those this made removed again,
    innermost first and only while empty, when the block raises: a refused output leaves no
    folder behind."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.missing: list[Path] = []  # innermost first

    def __enter__(self) -> Path:
        folder = self.folder
        while not folder.exists() and folder != folder.parent:
            self.missing.append(folder)
            folder = folder.parent
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except BaseException as error:  # made part of the way (a name too long): undone
            self.__exit__(type(error), error, None)
            raise
        return self.folder

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            return
        for folder in self.missing:
            try:
                folder.rmdir()
            except OSError:
                break


def write_atomically(path: str | os.PathLike, text: str, mode: int | None = None,
                     durable: bool = False) -> None:
    """Replace ``path`` with ``text`` (UTF-8) whole or not at all (``atomic_path``): a link's
    target is replaced (the link stays), with the mode the file had (a watchdog of another user
    keeps reading a health report under a service's umask 077), unless ``mode`` says another.
    ``durable``: the bytes reach the disk before the rename, and the rename before the return (a
    power cut could otherwise leave an empty file on some file systems), at the cost of two
    syncs."""
    path = os.path.realpath(path)
    try:
        info = os.stat(path)
    except OSError:
        info = None  # a new file: what a plain open gives under the umask
    if info is not None and not stat.S_ISREG(info.st_mode):  # renamed over, a device is gone
        raise OSError(errno.EINVAL, f"{path} is not a regular file (a device or a pipe): it is "
                                    f"never replaced; name a file path")
    if info is not None and _is_a_standard_stream(info):  # /dev/stderr sent to a log
        raise OSError(errno.EINVAL, f"{path} is this process's standard output or error: it is "
                                    f"never replaced; name a file path")
    if mode is None and info is not None:
        mode = stat.S_IMODE(info.st_mode)
    with atomic_path(path, mode) as temporary:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
    if durable:
        _sync_folder(Path(path).parent)


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the system allows a folder to be synced)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # a file system that cannot sync folders
        pass
    finally:
        os.close(fd)


def strict_json(record: dict) -> str:
    """One line of RFC 8259 JSON: infinities become the largest finite doubles, NaN null."""
    try:
        return json.dumps(record, allow_nan=False)
    except ValueError:
        return json.dumps(json_ready(record), allow_nan=False)


def json_ready(value: Any) -> Any:
    """``value`` as strict JSON holds it (numpy scalars as Python's, NaN as null, infinities as
    the largest finite doubles): one rule for score lines and reports alike."""
    if isinstance(value, np.generic):  # numpy scalars as Python's
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else math.copysign(sys.float_info.max, value)
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


class OutputError(Exception):
    """Result lines could not be written; the message names the output and what was written.
    ``reason`` is what the system said (``No space left on device``), for callers that word
    their own message; None where the failure was not a write's."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class _PartialWrite(Exception):
    def __init__(self, done: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.done, self.error = done, error


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same file (by inode when both exist, else by resolved path)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def refuse_inputs_as_output(output: str | os.PathLike | None, inputs, flag: str = "--jsonl") -> None:
    """ValueError if ``output`` would overwrite one of ``inputs`` (the model, a data file)."""
    if output is None or str(output) == "-":
        return
    for path in inputs:
        if same_file(output, path):
            raise ValueError(f"`{flag}` {str(output)!r} is {str(path)!r}, an input of this run; "
                             "writing there would destroy it: name another file")


class JsonLines:
    """Where result lines go: a file it opens (``path``), standard output (``None`` or ``"-"``), or
    a text stream the caller owns.

    Args:
        target: a path, ``None``/``"-"`` for stdout, or an open text stream.
        on_error: ``"stop"`` raises OutputError at the first failed write; ``"continue"`` counts
            the lost lines and goes on.
        live: write each line as soon as it is given (for live sources), instead of in blocks.
        mode: for a path that already holds data: ``"new"`` refuses it (ValueError naming the
            flags), ``"append"`` continues it, ``"overwrite"`` replaces it.
        keep: with ``"append"``, keep only the file's first ``keep`` bytes (whole lines, as
            ``read_results`` counts them) and continue after them: ``vigil batch --resume``
            scores again the lines it cuts.
    """

    def __init__(self, target: str | os.PathLike | IO[str] | None = None, on_error: str = "stop",
                 live: bool = False, buffer_bytes: int = BUFFER_BYTES, mode: str = "new",
                 keep: int | None = None) -> None:
        if on_error not in OUTPUT_POLICIES:
            raise ValueError(f"`on_error` must be one of {list(OUTPUT_POLICIES)}; "
                             f"received {on_error!r}")
        if mode not in OPEN_MODES:
            raise ValueError(f"`mode` must be one of {list(OPEN_MODES)}; received {mode!r}")
        if keep is not None and (mode != "append" or keep < 0):
            raise ValueError(f"`keep` needs mode 'append' and at least 0 bytes; received "
                             f"keep={keep!r} with mode {mode!r}")
        self._keep = keep
        self.on_error = on_error
        self.live = live
        self.buffer_bytes = buffer_bytes
        self._fd: int | None = None      # written with os.write
        self._own = False                # a file opened here: cut back on failure, closed here
        self._per_line = False           # a pipe or terminal: one atomic write per line
        self._stream: IO[str] | None = None
        self._offset = 0                 # bytes of whole lines in a regular file opened here
        self._deferred: tuple[Path, str] | None = None  # (path, mode) not yet made or prepared
        # the lines' field holding each row's (frame's) time, set by the scorer before its first
        # line: a stream restarted onto an appended file is told from rows replayed by it
        self.time_key: str | None = None
        if target is None or (isinstance(target, str) and target == "-"):
            self.name = "stdout"
            self._use_stdout()
        elif isinstance(target, (str, os.PathLike)):
            self.name = str(target)
            self._open_file(Path(target), mode)
        else:
            self._stream = target
            self.name = str(getattr(target, "name", type(target).__name__))
        self._pending: list[tuple[str, Any]] = []
        self._pending_bytes = 0
        self.lines_written = 0
        self.lines_lost = 0
        self.last_written: Any = None  # the mark of the last line written
        self.error: str | None = None  # the last write failure
        self._failing = False
        self._abandoned = False  # a repeated stop request gave up on the output: count, not write
        self.mirror: Callable[[str], None] | None = None  # also hands each line on (MQTT)

    def _use_stdout(self) -> None:
        stream = sys.stdout
        if stream is None:
            raise OutputError("standard output is closed, so results cannot be written; give "
                              "--jsonl FILE or leave stdout open")
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):
            self._stream = stream  # replaced by something without a descriptor (tests, notebooks)
            return
        try:
            stream.flush()
            mode = os.fstat(fd).st_mode
        except (OSError, ValueError) as error:
            raise OutputError(f"standard output cannot be written ({error}); give --jsonl FILE "
                              "or leave stdout open") from None
        self._fd = fd
        self._per_line = not stat.S_ISREG(mode)

    def _open_file(self, path: Path, mode: str) -> None:
        """Check ``path`` now; open an existing file (locked, unchanged), or defer creating it.
        A regular file is prepared for ``mode`` (cut back or emptied) by ``_materialize``."""
        if not path.exists():
            check_writable(path, "jsonl")
            self._deferred = (path, mode)
            return
        if path.is_dir():
            raise ValueError(f"`jsonl` {self.name!r} is a folder; expected a file to write "
                             "results to (name one inside it)")
        fd = self._open_fd(path, create=False)
        try:
            info = os.fstat(fd)
            regular = stat.S_ISREG(info.st_mode)
            if regular:
                self._lock(fd)
                if info.st_size and mode == "new":
                    self._refuse_results(info.st_size)
                if info.st_size and mode in ("append", "overwrite"):
                    self._refuse_other_content(fd, mode)
                self._deferred = (path, mode)
            self._per_line = not regular
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._own = fd, True

    def _open_fd(self, path: Path, create: bool) -> int:
        flags = os.O_RDWR | getattr(os, "O_CLOEXEC", 0) | (os.O_CREAT if create else 0)
        try:
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(path, flags, 0o644)
        except OSError as error:
            raise ValueError(f"`jsonl` {self.name!r} cannot be opened for writing: "
                             f"{error.strerror or error}") from None

    def _refuse_other_content(self, fd: int, mode: str) -> None:
        """ValueError unless the file's first line is a JSON object (a results file): appending
        cuts off a partial last line, which in another kind of file is its data, and overwriting
        another kind of file (a data CSV named by a typo) would lose it."""
        block = os.pread(fd, 1 << 16, 0).lstrip(b"\0")  # a hole left by a copytruncate
        first = block.split(b"\n", 1)[0]
        try:
            record = json.loads(first)
            # overwriting needs JSON lines at least (never a data CSV)
            ok = (isinstance(record, dict) and mode == "overwrite") or is_result_line(record)
        except (UnicodeDecodeError, json.JSONDecodeError):
            ok = b"\n" not in block and first.startswith(b"{")  # a crash within the first line
        if not ok:
            does = ("--append continues a results file" if mode == "append"
                    else "--overwrite replaces a results file, never other data")
            raise ValueError(f"`jsonl` {self.name!r} does not hold result lines (its first line "
                             f"is not a JSON object: {first[:60]!r}); {does}: name another "
                             f"file, or delete this one first if it is to go")

    def _refuse_results(self, size: int) -> None:
        raise ValueError(f"`jsonl` {self.name!r} already holds {size} bytes of results; "
                         "add --append to continue it or --overwrite to replace it")

    def _materialize(self, first_line: str | None = None) -> None:
        """Create the deferred file, or cut back / empty the open one by its mode: the first
        change on disk, made once the run has a line to write (``first_line``) or ``commit``s."""
        if self._deferred is None:
            return
        path, mode = self._deferred
        if self._fd is None:
            fd = self._open_fd(path, create=True)
            try:
                info = os.fstat(fd)
                if stat.S_ISREG(info.st_mode):
                    self._lock(fd)
                self._per_line = not stat.S_ISREG(info.st_mode)
            except BaseException:
                os.close(fd)
                raise
            self._fd, self._own = fd, True
        info = os.fstat(self._fd)
        if stat.S_ISREG(info.st_mode):
            self._offset = self._prepare(self._fd, info.st_size, mode)
            if mode == "append" and self._keep is None and first_line is not None:
                self._warn_of_repeated_numbers(self._fd, self._offset, first_line)
        self._deferred = None

    def _warn_of_repeated_numbers(self, fd: int, whole: int, first_line: str) -> None:
        """A warning when this run's first line numbers its source's rows (or frames) again
        where the file's last line left off at a later one: a restarted run counts from 0, so
        the two runs' lines share numbers (a finite file scored again says so too)."""
        start = max(0, whole - (1 << 16))
        last = os.pread(fd, whole - start, start).rstrip(b"\n").rsplit(b"\n", 1)[-1]
        try:
            before, now = json.loads(last), json.loads(first_line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return
        if not (isinstance(before, dict) and isinstance(now, dict)):
            return
        key = position_key(now)
        if key is None or before.get("source") != now.get("source"):
            return
        old, new = before.get(key), now.get(key)
        if not (isinstance(old, int) and isinstance(new, int) and new <= old):
            return
        if (self.time_key is not None and (now.get("source") == "stdin" or key == "frame")
                and _later(now.get(self.time_key), before.get(self.time_key))):
            # a stream restarted by its supervisor, as docs/deploying.md sets one up: its rows
            # (frames) are counted from 0 again by nature, and its times go on (a review: the batch
            # advice below, warned at every restart, did not apply); rows replayed, their times
            # no later than the file's last, are warned of as a file scored again is
            log.info("%s: this run's lines for %s start at %s %d after %s %d of the run before "
                     "(a restarted stream counts from 0; its lines' times tell the runs apart)",
                     self.name, now.get("source"), key, new, key, old)
        else:
            log.warning("%s: this run's lines for %s start at %s %d, and the file's last line is "
                        "%s %d of the same source: the numbers repeat from here (a restarted "
                        "run counts from 0; a file scored again is in the results twice: `vigil "
                        "batch ... --resume` continues a finite file instead)", self.name,
                        now.get("source"), key, new, key, old)

    def commit(self) -> None:
        """The run's input was good (or it was stopped on request): create (or empty, for
        ``overwrite``) the output file even if no line was written, so that such a run always
        leaves its file. OutputError when it cannot be made."""
        if self._deferred is None:
            return
        try:
            self._materialize()
        except (OSError, ValueError) as error:
            self.error = f"output {self.name!r} could not be made: {error}"
            raise OutputError(self.error) from None

    def _lock(self, fd: int) -> None:
        if fcntl is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise ValueError(f"`jsonl` {self.name!r} is being written by another process "
                                 "(it holds the file's lock); two runs must not share one "
                                 "output: name another file") from None
            # a file system without locks (some network mounts): go on unlocked

    def _prepare(self, fd: int, size: int, mode: str) -> int:
        """Where writing starts in an existing regular file, by ``mode``."""
        if size == 0 or mode == "overwrite":
            os.ftruncate(fd, 0)
            return 0
        if mode == "new":
            self._refuse_results(size)
        whole = _last_newline_end(fd, size)
        if self._keep is not None and self._keep < whole:
            whole = self._keep  # the caller reads the lines after it again (batch --resume)
            os.ftruncate(fd, whole)
        elif whole < size <= whole + (1 << 20) and _whole_record(os.pread(fd, size - whole, whole)):
            os.pwrite(fd, b"\n", size)  # a whole result that lacks only its newline: kept
            whole = size + 1
        elif whole < size:
            os.ftruncate(fd, whole)
            log.warning("output %r ended in a partial line (%d bytes, left by an interrupted "
                        "run); it was cut off before appending", self.name, size - whole)
        os.lseek(fd, whole, os.SEEK_SET)
        return whole

    def write(self, record: dict, mark: Any = None) -> None:
        """Queue one record (``mark`` identifies it in messages: a row index, a frame number)."""
        self.write_line(strict_json(record), mark)

    def write_line(self, line: str, mark: Any = None) -> None:
        """Queue one line already written by ``write`` elsewhere (one strict JSON object, no
        newline): results scored in another process pass through without being parsed again."""
        if self._abandoned:
            self.lines_lost += 1
            return
        line += "\n"
        if self.mirror is not None:
            self.mirror(line)
        self._pending.append((line, mark))
        self._pending_bytes += len(line)
        if self.live or self._pending_bytes >= self.buffer_bytes:
            self.flush()

    def flush(self) -> None:
        """Write the queued lines; on failure roll back to whole lines, count, stop or go on."""
        if not self._pending:
            return
        pending = self._pending
        self._pending = []
        self._pending_bytes = 0
        if self._abandoned:
            self.lines_lost += len(pending)
            return
        written = counted = 0  # lines of this flush out, and those already in lines_written
        try:
            if self._deferred is not None:
                self._materialize(pending[0][0] if pending else None)
            fd = self._fd
            if fd is None:
                if self._stream is None:  # a file or stdout this object has closed
                    raise ValueError("I/O operation on closed file.")
                self._stream.write("".join(line for line, _ in pending))
                self._stream.flush()
                written = len(pending)
            elif self._per_line:
                for line, mark in pending:
                    self._wait_for_room(fd)
                    self._write_fd(fd, line.encode("utf-8"))  # a stop request never cuts this
                    written = counted = written + 1
                    # counted at once: a health report shows a reader that holds the pipe back
                    self.lines_written += 1
                    self.last_written = mark
            else:
                data = "".join(line for line, _ in pending).encode("utf-8")
                self._follow_truncation(fd)
                try:
                    self._write_fd(fd, data)
                except _PartialWrite as partial:
                    whole = data.rfind(b"\n", 0, partial.done) + 1
                    written = data[:whole].count(b"\n")
                    self._offset += whole
                    raise partial.error from None
                self._offset += len(data)
                written = len(pending)
        except _PartialWrite as partial:  # per-line writes: this line is cut back below
            self._failed(pending, written, counted, partial.error)
        except BrokenPipeError:
            if not self._own:
                self._account(pending, written, counted)
                raise
            self._failed(pending, written, counted, OSError(errno.EPIPE, "broken pipe"))
        except (OSError, ValueError) as error:  # ENOSPC, EIO, EFBIG; ValueError: closed file
            self._failed(pending, written, counted, error)
        except BaseException as error:  # a repeated stop request while a reader stalls
            self._cut_back()
            self._account(pending, written, counted)
            if isinstance(error, KeyboardInterrupt) and interrupts.current() is not None:
                # The run stops at its next safe point (the request is recorded); until then every
                # line is counted as lost, none half-written, so the totals stay exact.
                self._abandoned = True
                self.error = self.error or "a repeated stop request gave up on the final lines"
                return
            raise
        else:
            self._account(pending, written, counted)
            if self._failing:
                log.warning("output %r is writable again; %d line%s lost in all", self.name,
                            self.lines_lost, "s" if self.lines_lost != 1 else "")
                self._failing = False

    def _wait_for_room(self, fd: int) -> None:
        """Wait until the pipe ``fd`` takes a line (a stalled reader): the one place where a
        repeated stop request interrupts, before any byte of the line is written, so the count
        stays exact."""
        with interrupts.writing():
            try:
                select.select([], [fd], [])
            except (OSError, ValueError):  # not selectable here: the write itself will wait
                pass

    def _account(self, pending: list[tuple[str, Any]], written: int, counted: int) -> None:
        """Count a flush: ``written`` of ``pending`` lines went out, ``counted`` of them already
        counted as they went (per-line writes); the rest are lost."""
        self.lines_written += written - counted
        self.lines_lost += len(pending) - written
        if written:
            self.last_written = pending[written - 1][1]

    def _follow_truncation(self, fd: int) -> None:
        """Write at the end of the file ``fd`` again where another program truncated it
        (logrotate's copytruncate): at the old offset the file would begin with a hole of NUL
        bytes, which a restart with --append refused."""
        if not self._own:
            return
        size = os.fstat(fd).st_size
        if size < self._offset:
            log.info("%s was truncated by another program (%d bytes, %d written here): "
                     "writing goes on at its end", self.name, size, self._offset)
            os.lseek(fd, size, os.SEEK_SET)
            self._offset = size

    def _write_fd(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        done = 0
        while done < len(view):
            try:
                count = os.write(fd, view[done:])
            except BrokenPipeError:
                raise
            except OSError as error:
                raise _PartialWrite(done, error) from None
            if not count:
                raise _PartialWrite(done, OSError(errno.ENOSPC, "the write made no progress "
                                                                "(no space left?)"))
            done += count

    def _failed(self, pending: list[tuple[str, Any]], written: int, counted: int,
                error: BaseException) -> None:
        cut = self._cut_back()
        self._account(pending, written, counted)
        count = len(pending) - written
        mark = pending[-1][1]
        reason = (getattr(error, "strerror", None) or str(error) or type(error).__name__)
        where = (f"the last line written was for {self.last_written}" if self.lines_written
                 else "no line was written")
        self.error = (f"output {self.name!r} could not be written ({reason}): {count} "
                      f"line{'s' if count != 1 else ''} up to {mark} lost; {self.lines_written} "
                      f"written, {where}{cut}")
        if self.on_error == "stop":
            raise OutputError(self.error, reason)
        if not self._failing:
            log.error("%s; scoring goes on (on_error=continue)", self.error)
            self._failing = True

    def _cut_back(self) -> str:
        """Truncate a file opened here to its last whole line; a note if that was not possible."""
        if not self._own or self._fd is None or self._deferred is not None:
            return ""  # not ours, or not yet prepared: what it holds is an earlier run's
        try:
            if not stat.S_ISREG(os.fstat(self._fd).st_mode):
                return ""  # a device or pipe: nothing written there can be taken back
            os.ftruncate(self._fd, self._offset)
            os.lseek(self._fd, self._offset, os.SEEK_SET)
            return ""
        except OSError as error:
            if error.errno == errno.EBADF:
                return "; the file was closed"
            return f"; it could not be cut back to whole lines ({error})"

    def close(self) -> None:
        """Write what is queued (may raise OutputError) and close a file opened here."""
        try:
            self.flush()
        finally:
            if self._own and self._fd is not None:
                try:
                    os.close(self._fd)  # closing also releases the lock
                except OSError as error:
                    self.error = self.error or f"output {self.name!r} could not be closed: {error}"
            self._fd = None
            self._own = False

    def __enter__(self) -> JsonLines:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def hold_lock_beside(path: str, refusal: Callable[[str], str]) -> int | None:
    """The descriptor of ``path``'s lock file (``PATH.lock``, beside the file a link names: a
    file replaced at each write, by a rename, cannot hold a lock itself), held until closed;
    ValueError(``refusal(lock file)``) when another run holds it. None where no lock can be taken (a system without
    advisory locks, a folder that takes no lock file, a file system without locks): unlocked."""
    if fcntl is None:
        return None
    # beside the file a link leads to: two names of one file are one file (review d1)
    lock = os.path.realpath(path) + ".lock"
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError:
        try:  # a lock file another user made (a root run's, 0644): flock needs no write access
            fd = os.open(lock, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(fd)
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise ValueError(refusal(lock)) from None
        return None
    return fd


def refuse_locked(path: str | os.PathLike) -> None:
    """ValueError when another process holds the lock of the results file ``path`` (a run
    writing it), found before any work that reads it (a batch's --resume scans every line);
    nothing is held after."""
    if fcntl is None or not os.path.isfile(path):
        return
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return  # unreadable: opening it for the run says why
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise ValueError(f"`jsonl` {str(path)!r} is being written by another process (it "
                             "holds the file's lock); two runs must not share one output: wait "
                             "for it to end, or name another file") from None
    finally:
        os.close(fd)


def check_writable(path: str | os.PathLike, flag: str, folder: bool = False,
                   replaced: bool = False, through_links: bool = False) -> None:
    """ValueError, naming ``flag``, unless ``path`` can be written as a file (or, with ``folder``,
    used as a folder): an existing one of the right kind, or one whose nearest existing parent is
    a writable folder; with ``replaced`` (a file written to a temporary file beside it, then
    renamed over it) its folder must be writable even when the file exists. With
    ``through_links`` (``write_atomically``'s files) a link's target is what is replaced, and it
    must be a regular file that is none of this process's standard streams. Nothing is created:
    an output is checked before the run's input is known good and made only after."""
    path = Path(path)
    kind = "folder" if folder else "file"
    if folder and path.is_symlink() and not path.exists():  # "File exists" at mkdir
        raise ValueError(f"`{flag}` {str(path)!r} is a link to {os.readlink(path)!r}, which does "
                         f"not exist; make the folder it points to, or name another path")
    if through_links and not folder and not path.is_dir():
        real = Path(os.path.realpath(path))
        stderr = "; `--health -` writes the report to stderr" if flag == "--health" else ""
        if real.exists() and not real.is_file():  # a device or a pipe would be lost
            raise ValueError(f"`{flag}` {str(path)!r} is not a regular file (a device or a pipe"
                             f"{', through a link' if real != path else ''}); name a file "
                             f"path{stderr}")
        if real.exists() and _is_a_standard_stream(real.stat()):  # /dev/stderr sent to a log
            raise ValueError(f"`{flag}` {str(path)!r} is this run's standard "
                             f"{'output or error' if not stderr else 'error'} (a file it is "
                             f"sent to): the file would be replaced, and the log with it; name "
                             f"a file path{stderr}")
        path = real  # replaced (or made) where the link points
    if path.exists():
        if path.is_dir() != folder:
            fix = "another path" if folder else "a file inside it"
            raise ValueError(f"`{flag}` {str(path)!r} is a {'file' if folder else 'folder'}; "
                             f"expected a {kind} (name {fix})")
        if not os.access(path, os.W_OK):
            raise ValueError(f"`{flag}` {str(path)!r} is not writable by this user; name a {kind} "
                             "you can write")
        if replaced and not os.access(path.parent, os.W_OK | os.X_OK):
            raise ValueError(f"`{flag}` {str(path)!r} is replaced through a temporary file beside "
                             f"it, but its folder {str(path.parent)!r} is not writable by this "
                             f"user; name a {kind} in a folder you can write")
        return
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"`{flag}` {str(path)!r} cannot be created: {str(parent)!r} is a file, "
                         f"not a folder; name a {kind} in a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"`{flag}` {str(path)!r} cannot be created: the folder {str(parent)!r} "
                         f"is not writable by this user; name a {kind} in a folder you can write")


def _is_a_standard_stream(info: os.stat_result) -> bool:
    """Whether the file ``info`` describes is this process's stdin, stdout or stderr."""
    for fd in (0, 1, 2):
        try:
            if os.path.samestat(info, os.fstat(fd)):
                return True
        except OSError:
            continue
    return False


def read_results(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """The result lines a ``JsonLines`` wrote to ``path``: (the byte offset where the line
    begins, its record) for each whole line; a partial last line (an interrupted run's) is left
    out. ValueError naming the line when one is not a JSON object."""
    start = 0
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.endswith(b"\n"):
                return
            begins, start = start, start + len(line)
            if number == 1:  # a hole of NUL bytes left by a copytruncate before 0.3's fix
                line = line.lstrip(b"\0")
            try:
                record = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                record = error
            if not isinstance(record, dict):
                raise ValueError(f"line {number} of {str(path)!r} is not a JSON object of results "
                                 f"({str(record)[:80]}); expected the lines `vigil score` or "
                                 "`vigil batch` writes")
            yield begins, record


def _whole_record(tail: bytes) -> bool:
    """Whether a file's last line, which lacks its newline, is a whole JSON object (a line
    written or edited by hand) rather than one cut short by an interrupted run."""
    try:
        return isinstance(json.loads(tail), dict)
    except (UnicodeDecodeError, ValueError):
        return False


def _last_newline_end(fd: int, size: int) -> int:
    """The length of the file's whole lines: just past its last newline (0 if it has none)."""
    position = size
    while position > 0:
        start = max(0, position - (1 << 16))
        os.lseek(fd, start, os.SEEK_SET)
        block = os.read(fd, position - start)
        found = block.rfind(b"\n")
        if found >= 0:
            return start + found + 1
        position = start
    return 0


def flush_quietly(sink: JsonLines, summary) -> None:
    """Write what is pending after a stop; a second stop request abandons it (lines counted)."""
    try:
        sink.flush()
        sink.commit()
    except OutputError as error:
        summary.last_error = str(error)
    except KeyboardInterrupt:
        summary.last_error = (f"a second stop request ended the final writing; "
                              f"{sink.lines_lost} lines lost")


def _later(time: object, before: object) -> bool:
    """Whether result-line time ``time`` is later than ``before``: both numbers, or both text
    of one form (ISO 8601 times of one length compare as text); False where either is
    missing or they cannot be compared."""
    if isinstance(time, (int, float)) and isinstance(before, (int, float)):
        return time > before
    if isinstance(time, str) and isinstance(before, str):
        try:
            return float(time) > float(before)
        except ValueError:
            return len(time) == len(before) and time > before
    return False
