"""Reading sensor readings from CSV: files, folders of files, or a live text stream.

One parser, ``RowParser``, turns a header and then one line at a time into numbers, so files,
stdin and live streams are read the same way. ``read_table`` reads a whole file for training and
evaluation; ``fill_gaps`` repairs short runs of missing values and refuses long ones.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import logging
import math
import os
import re
import shlex
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Sequence

import numpy as np

from ..core import interrupts
from ..core.metrics import runs
from ..core.spec import FLOAT32_MAX

SEPARATORS = (",", ";", "\t")
TIME_COLUMN_NAMES = ("timestamp", "datetime", "time", "date", "ts")
log = logging.getLogger("vigil")
DEFAULT_LABEL_COLUMN = "anomaly"
# A label column under the default is found by any of these names, in any case ("Anomaly",
# "label", "is_anomaly"), as a labels file's flag column is: read as a feature, its labeled rows
# would be trained on.
LABEL_COLUMN_NAMES = ("anomaly", "label", "is_anomaly")
# Annotation columns of public benchmarks that are labels, not readings (SKAB's changepoint).
DEFAULT_EXCLUDED_COLUMNS = ("changepoint",)
MISSING_CELLS = frozenset({"", "nan", "na", "n/a", "null", "none", "?"})
MAX_LINE_BYTES = 1 << 20  # a longer line is reported and skipped, never held in memory whole
MAX_TIME_CHARS = 64       # a timestamp cell is echoed into results at most this long


class MissingColumns(ValueError):
    """A header without some of the columns a model or ``features`` names."""


@dataclass(frozen=True)
class Table:
    """Readings of one file: ``values`` is (rows, features); NaN marks a missing cell."""

    source: str
    features: tuple[str, ...]
    values: np.ndarray
    times: tuple[str, ...] | None
    labels: np.ndarray | None
    time_column: str | None
    label_column: str | None
    header: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True)
class Row:
    """One parsed line: ``values`` in feature order; ``problem`` says why it cannot be scored."""

    number: int
    values: np.ndarray
    time: str | None
    label: float | None
    problem: str | None = None
    cut: bool = False  # the input ended in the middle of this line: it is not used at all
    label_problem: str | None = None  # the label cell is neither a number nor a yes/no word
    # what ``problem`` says, for a reader that chooses a hint by it (never by its text, which
    # quotes the cells): "fields" (a count unlike the header's), "cells" (cells that are no
    # number: ``unreadable`` has each (feature, cell, cause), cause "text", "infinite" or
    # "decimal" (the other decimal mark's writing)), "missing" (empty or NaN cells); None for a
    # line that could not be read at all
    kind: str | None = None
    unreadable: tuple[tuple[str, str, str], ...] = ()
    decimal_mark: bool = False  # a first unreadable cell that a decimal mark explains


@dataclass(frozen=True)
class Line:
    """One line of raw input: its text without the newline, or why it cannot be read."""

    text: str | None
    problem: str | None = None
    terminated: bool = True  # it ended with a newline (else the input ended mid-line)
    waiting: bool = False  # another whole line had arrived after it (a live stream's backlog)


def read_lines(stream: BinaryIO, max_bytes: int = MAX_LINE_BYTES,
               live: bool = False) -> Iterator[Line]:
    """Lines of a binary stream, decoded one by one: a line that is not UTF-8, or is longer than
    ``max_bytes`` (read past, never kept), is a ``Line`` with its problem and reading goes on.
    Lines end with LF, CRLF or a lone CR (loggers that write old Mac line ends); a byte-order
    mark at a line's start (a logger restarted on Windows writes it again) is dropped.

    With ``live`` each read may block (stdin); a stop request then interrupts it at once (no row
    is in flight). A file's reads do not block, so they skip that bookkeeping.
    """
    wait = interrupts.waiting if live else contextlib.nullcontext
    first = True
    for body, terminated, too_long, start, waiting in _split_lines(stream, max_bytes, wait):
        if too_long is not None:
            yield Line(None, f"the line is {too_long} bytes long; lines longer than {max_bytes} "
                             "bytes are not read", terminated, waiting)
            first = False
            continue
        if body.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark
            body = body[3:]
        # a zip's (a workbook's, a .keras's) names that tell which may lie past a newline byte
        # of its binary header: the file's start is looked at, not only its first line
        problem = not_utf8_text(start if start.startswith(b"PK\x03\x04") else body) \
            if first else None
        if problem is not None:
            yield Line(None, problem, terminated)
            return
        first = False
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as error:
            yield Line(None, f"the line is not valid UTF-8 text (byte 0x{body[error.start]:02x} at "
                             f"position {error.start}); {_encoding_fix(False)}", terminated,
                       waiting)
            continue
        yield Line(text, None, terminated, waiting)


READ_CHUNK = 1 << 16
LINE_END = re.compile(rb"\r\n?|\n")


def _split_lines(stream: BinaryIO, max_bytes: int,
                 wait) -> Iterator[tuple[bytes, bool, int | None, bytes, bool]]:
    """(a line's bytes without its end, whether an end was met, its length when over
    ``max_bytes`` (its bytes then dropped), the stream's first 4,096 bytes for the first line
    else b"", whether another whole line has been read after it). Reads what is there
    (``read1``), so a live stream's line is yielded as it ends; a CR that ends what has arrived
    ends its line, and an LF right after it is dropped."""
    read = getattr(stream, "read1", None) or stream.read
    buffer, pos = bytearray(), 0  # lines before ``pos`` are yielded
    eof, skip_lf, first, too_long = False, False, True, None
    following = None  # the end of the line after the last one yielded, where it was found
    while True:
        end = following if following is not None else LINE_END.search(buffer, pos)
        following = None
        if end is not None:
            length = end.start() - pos
            if end.group() == b"\r" and end.end() == len(buffer) and not eof:
                skip_lf = True  # the LF of a CRLF may be in the next read
            line = bytes(buffer[pos:end.start()])
            pos = end.end()
            following = LINE_END.search(buffer, pos)  # the next line's end: looked for once
            waiting = following is not None
            if too_long is not None or length > max_bytes:
                yield b"", True, (too_long or 0) + length, b"", waiting
                too_long = None
            else:
                start = b""
                if first and line.startswith(b"PK\x03\x04"):
                    while len(line) + len(buffer) - pos < 4096 and not eof:
                        with wait():
                            more = read(4096)
                        eof = not more
                        buffer += more
                    start = (line + b"\n" + bytes(buffer[pos:]))[:4096]
                    following = LINE_END.search(buffer, pos)  # the buffer grew
                    waiting = following is not None
                yield line, True, None, start, waiting
            first = False
            continue
        rest = len(buffer) - pos
        if eof:
            if too_long is not None:
                yield b"", False, too_long + rest, b"", False
            elif rest:
                line = bytes(buffer[pos:])
                yield line, False, None, line[:4096] if first else b"", False
            return
        del buffer[:pos]
        pos = 0
        if rest > max_bytes:  # no end in sight: count it, keep none of it
            too_long = (too_long or 0) + rest
            buffer.clear()
        with wait():
            chunk = read(READ_CHUNK)
        if not chunk:
            eof = True
            continue
        if skip_lf:
            skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        buffer += chunk


# zip (.xlsx, .ods) and OLE (.xls) files: a workbook given where a CSV is expected
WORKBOOK_SIGNATURES = (b"PK\x03\x04", b"\xd0\xcf\x11\xe0")
WORKBOOK_PROBLEM = ("the file is a spreadsheet workbook (Excel .xlsx or .xls), not CSV text: save "
                    "it as 'CSV UTF-8' (Excel: File > Save As), or convert it with libreoffice "
                    "--headless --convert-to csv FILE")


# other files given where a CSV is expected: (their first bytes, what they are and the fix)
BINARY_FORMATS = (
    (b"\x1f\x8b", "gzip-compressed: decompress it first (gunzip -k FILE.gz)"),
    (b"BZh", "bzip2-compressed: decompress it first (bunzip2 -k FILE.bz2)"),
    (b"\xfd7zXZ\x00", "xz-compressed: decompress it first (unxz -k FILE.xz)"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed: decompress it first (unzstd FILE.zst)"),
    (b"\x93NUMPY", "a NumPy array (.npy), not CSV text: write it as CSV with a header line "
                   "(numpy.savetxt(OUT, x, delimiter=',', header='a,b,c', comments=''))"),
    (b"\x89HDF", "an HDF5 file, not CSV text: export the table as CSV"),
    (b"PAR1", "a Parquet file, not CSV text: convert it "
              "(pandas.read_parquet(FILE).to_csv(OUT, index=False))"),
)


def binary_problem(start: bytes) -> str | None:
    """What a file that begins with ``start`` is, when it is a known binary format and not CSV
    text (None otherwise: text, or UTF-16 text). Text never holds control bytes other than tab,
    line and page breaks, so a header that happens to begin like a signature (``PAR1,PAR2``)
    stays text."""
    if not any(byte < 9 or 13 < byte < 32 or byte == 127 for byte in start[:1024]):
        return None
    for signature, what in BINARY_FORMATS:
        if start.startswith(signature):
            return f"the file is {what}"
    if start.startswith(b"PK\x03\x04"):  # zip: a workbook, a Keras model or another archive
        if any(name in start for name in (b"config.json", b"metadata.json", b"model.weights")):
            return ("the file is a Keras model (.keras), not CSV data: give the CSV it was "
                    "trained on, or export the model (vigil export MODEL.keras -o MODEL.onnx)")
        if any(name in start for name in (b"xl/", b"[Content_Types]", b"mimetype", b"docProps")):
            return WORKBOOK_PROBLEM
        return f"{WORKBOOK_PROBLEM}; if it is another zip archive, unzip it first (unzip FILE)"
    if start.startswith(WORKBOOK_SIGNATURES):
        return WORKBOOK_PROBLEM
    if start[:1] == b"\x08" and start[2:3] == b"\x12":  # ONNX's protobuf: ir_version, producer
        return ("the file is an ONNX model, not CSV data: give the model as MODEL and the CSV "
                "as the data")
    if b"\x00" in start and not looks_utf16(start):
        return "the file is binary (it holds NUL bytes), not CSV text: give a CSV file"
    return None


def not_utf8_text(start: bytes) -> str | None:
    """Why a file that begins with ``start`` cannot be read as UTF-8 CSV text: a known binary
    format, or UTF-16 (whose NUL bytes decode as UTF-8 into garbage); None when it can."""
    problem = binary_problem(start)
    if problem is None and looks_utf16(start):
        problem = f"expected UTF-8 text; {_encoding_fix(True)}"
    return problem


def looks_utf16(start: bytes) -> bool:
    """Whether ``start`` is UTF-16 text: a byte-order mark, or NUL bytes at every other
    position (ASCII characters in UTF-16), not scattered as in binary files."""
    if start[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return True
    if len(start) < 4:
        return False
    even, odd = start[0::2], start[1::2]
    share = max(even.count(0) / len(even), odd.count(0) / len(odd))
    other = min(even.count(0) / len(even), odd.count(0) / len(odd))
    return share > 0.5 and other < 0.1


def _encoding_fix(utf16: bool) -> str:
    """The command that converts a CSV that is not UTF-8 (UTF-16, or a Windows code page)."""
    if utf16:
        return ("the file is UTF-16 text (Windows' 'Unicode'): convert it with iconv -f UTF-16 "
                "-t UTF-8 IN.csv > OUT.csv")
    return ("if the file was written in a Windows or Latin-1 encoding, convert it with iconv -f "
            "WINDOWS-1252 -t UTF-8 IN.csv > OUT.csv")


def detect_separator(header: str) -> str:
    """The separator of a CSV header line: the one of ``, ; tab`` that splits it most."""
    counts = {sep: header.count(sep) for sep in SEPARATORS}
    best = max(counts, key=lambda sep: counts[sep])
    return best if counts[best] > 0 else ","


# compressed or rotated CSVs (day1.csv.gz, day1.csv.1), not checksums or editors' files
CSV_VARIANT = re.compile(r"\.csv\.(?:gz|bz2|xz|zst|zip|\d+)$", re.IGNORECASE)
_told_unread: set[str] = set()  # folders whose unread CSV variants were named (once a process)
_told_closed: set[str] = set()  # folders whose unreadable subfolders were named (likewise)
_told_gone: set[str] = set()  # folders whose .csv links to nothing were named (likewise)
_told_special: set[str] = set()  # folders whose .csv pipes or devices were named (likewise)
_told_above: set[str] = set()  # folders whose links to a folder above them were named (likewise)
# other names a table of readings is saved under (a TSV export, a logger's .dat, a .txt), where
# its first lines are split alike by a separator, numbers below a header: not a README beside
# the data, nor a binary signal (MIT-BIH's .dat)
TABLE_SUFFIXES = (".tsv", ".tab", ".dat", ".txt", ".log")
# camera frames, named where a folder of sensor rows holds them instead
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm")


def forget_said() -> None:
    """Say the folders' passed-over entries again (a new command in this process: its --strict
    count hears them)."""
    for said in (_told_unread, _told_closed, _told_above, _told_gone, _told_special):
        said.clear()


def _looks_tabular(path: Path) -> bool:
    """Whether a text file's first two lines are split into as many fields (2 or more) by one
    of the separators a CSV may use, the second mostly numbers: a table of readings saved as
    .txt, not prose."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            first, second = (handle.readline(4096).strip() for _ in range(2))
    except OSError:
        return False
    if "\x00" in first + second or "\ufffd" in first + second:  # binary, not text
        return False
    for sep in SEPARATORS:
        fields = second.split(sep)
        if len(fields) >= 2 and first.count(sep) == len(fields) - 1:
            numbers = sum(1 for f in fields if re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)"
                                                            r"([eE][-+]?\d+)?\s*", f))
            if 2 * numbers >= len(fields):
                return True
    return False


def natural_order(path: Path) -> tuple[list[tuple[int, int | str]], str]:
    """A sort key reading each run of digits in ``path`` as a number (``day2`` before
    ``day10``, ``2026-1`` before ``2026-12``); the rest compares as text, case first; the path
    as text breaks ties (``day01`` and ``day1``), so the order never depends on the listing."""
    parts = re.split(r"(\d+)", str(path))  # text, number, text, ...
    return [(1, int(part)) if i % 2 else (0, part) for i, part in enumerate(parts)], str(path)


def csv_files(path: str | Path, argument: str = "data") -> list[Path]:
    """The CSV files at ``path``: the file itself, or every ``.csv`` file below a folder (the
    suffix in any case: ``DAY1.CSV`` too; through linked folders, each folder once, but never
    one that holds ``path``, whose other folders are not its own: named in a warning), in
    ``natural_order`` (``day2.csv`` before ``day10.csv``: a folder of one sensor's logs is read,
    and with ``--state`` continued, in the order they were written). A link named ``.csv`` whose
    target is gone is named in a warning. Errors name ``argument``."""
    path = Path(path)
    if path.is_file():
        return [path]
    if path.is_dir():
        files: list[Path] = []
        dangling: list[Path] = []  # entries named .csv that are no regular file
        unread: list[Path] = []
        visited: set[str] = set()
        closed: list[OSError] = []  # subfolders this user cannot read
        image: Path | None = None
        root = os.path.realpath(path)
        above: list[str] = []  # links to a folder that holds the one given: not followed
        for folder, subfolders, names in os.walk(path, followlinks=True, onerror=closed.append):
            real = os.path.realpath(folder)
            if real in visited:  # a link back up the tree, or a second link to one folder
                subfolders[:] = []
                continue
            if real != root and os.path.commonpath([real, root]) == real:
                # (a review's `up -> ..` read every sibling folder's files, and trained on them)
                above.append(folder)
                subfolders[:] = []
                continue
            visited.add(real)
            for name in names:
                if name.lower().endswith(".csv"):
                    file = Path(folder) / name
                    (files if file.is_file() else dangling).append(file)
                elif CSV_VARIANT.search(name):  # day1.csv.gz, day1.csv.1: not read as they are
                    unread.append(Path(folder) / name)
                elif (name.lower().endswith(TABLE_SUFFIXES) and (Path(folder) / name).is_file()
                      and _looks_tabular(Path(folder) / name)):  # never opens a pipe: it blocks
                    unread.append(Path(folder) / name)  # a table under another name
                elif image is None and name.lower().endswith(IMAGE_SUFFIXES):
                    image = Path(folder) / name  # camera frames: said if no CSV is found
        files.sort(key=natural_order)
        if closed:
            first = closed[0].filename or path
            said = (f"`{argument}` folder {str(path)!r}: {len(closed)} subfolder(s) cannot be read "
                    f"by this user (the first: {str(first)!r}, "
                    f"{closed[0].strerror or closed[0]}); give it read access (chmod -R a+rX "
                    f"{first}) or run as its owner")
            if argument == "data":  # training or evaluation on part of the data: refused
                raise ValueError(said)
            if str(path.resolve()) not in _told_closed:  # (the folder is listed more than once)
                _told_closed.add(str(path.resolve()))
                log.warning("%s; their files are not read", said,
                            extra={"passed_over": len(closed)})
        if above and str(path.resolve()) not in _told_above:
            _told_above.add(str(path.resolve()))
            log.warning("%s: %d link(s) to a folder that holds this one are not followed (the "
                        "first: %s -> %s): their files are not this folder's; give that folder "
                        "itself to read them", path, len(above), above[0],
                        os.path.realpath(above[0]))
        gone = [f for f in dangling if not f.exists()]  # a link to nothing
        special = [f for f in dangling if f.exists()]  # a pipe, a device, a socket
        if gone and str(path.resolve()) not in _told_gone:
            _told_gone.add(str(path.resolve()))
            log.warning("%s: %d .csv link(s) whose target is gone are not read (the first: %s)",
                        path, len(gone), sorted(gone)[0], extra={"passed_over": len(gone)})
        if special and str(path.resolve()) not in _told_special:
            _told_special.add(str(path.resolve()))
            log.warning("%s: %d .csv entr%s that %s no regular file (a pipe, a device or a socket: "
                        "it may never end) %s not read (the first: %s); give a pipe's rows on "
                        "standard input instead (vigil score MODEL.onnx - < PIPE)", path,
                        len(special), "y" if len(special) == 1 else "ies",
                        "is" if len(special) == 1 else "are", "is" if len(special) == 1 else "are",
                        sorted(special)[0], extra={"passed_over": len(special)})
        if unread and str(path.resolve()) not in _told_unread:
            _told_unread.add(str(path.resolve()))
            log.warning("%s: %d file(s) named as a compressed or rotated CSV, or holding a table "
                        "under another suffix (.tsv, .dat, a .txt of columns), are not read (the "
                        "first: %s); a folder's files are read when they end in .csv: "
                        "decompress them (gunzip -k) or rename them to end in .csv to read them "
                        "(the separator is detected)", path, len(unread), sorted(unread)[0],
                        extra={"passed_over": len(unread)})
        if not files:
            frames = (f"; it holds images ({str(image)!r}), which are camera frames: an image "
                      f"model reads them (vigil train image, and a camera model's .onnx to score "
                      f"them)" if image is not None else "")
            raise ValueError(f"`{argument}` folder {str(path)!r} must contain .csv files; found "
                             f"none{frames or ' (readings are read from files named .csv: '}"
                             f"{'' if frames else 'rename them, or give the file itself)'}")
        return files
    if path.exists():  # a named pipe, /dev/stdin, <(...) or a device: read once, not twice
        raise ValueError(f"`{argument}` must be a CSV file or a folder of CSV files; {str(path)!r} is "
                         f"neither (a pipe or a device, read only once); give its rows on "
                         f"standard input instead: cat {str(path)} | vigil score MODEL -")
    stdin = " (or -, its rows on standard input)" if argument == "source" else ""
    raise ValueError(f"`{argument}` must be a CSV file or a folder of CSV files{stdin}; "
                     f"{str(path)!r} does not exist")


class RowParser:
    """Parses CSV lines against a header.

    Args:
        header: the header line's cells.
        source: name used in error messages.
        features: columns to read, in this order; ``None`` picks every column except the time,
            label and excluded columns (their numeric-ness is checked row by row).
        time_column: the timestamp column; ``"auto"`` finds one by name, ``None`` means none.
        label_column: the 0/1 label column, used when present.
        excluded: further columns that are never features.
        require_time: whether a named ``time_column`` missing from the header is an error.
    """

    def __init__(
        self,
        header: Sequence[str],
        source: str,
        features: Sequence[str] | None = None,
        time_column: str | None = "auto",
        label_column: str | None = DEFAULT_LABEL_COLUMN,
        excluded: Sequence[str] = DEFAULT_EXCLUDED_COLUMNS,
        require_time: bool = True,
        decimal: str = ".",
    ) -> None:
        if decimal not in DECIMAL_MARKS:
            raise ValueError(f"`decimal` must be one of {list(DECIMAL_MARKS)}; received {decimal!r}")
        self.decimal = decimal
        names = [cell.strip() for cell in header]
        if not names or all(not n for n in names):
            raise ValueError(f"{source}: the header line is empty; expected column names")
        if all(_looks_numeric(n) or time_key(n) is not None for n in names):
            raise ValueError(f"{source}: the first line {','.join(names)[:80]!r} is data (numbers "
                             f"or times), not column names; expected a header line (add one, e.g. "
                             f"timestamp,{','.join(f'x{i}' for i in range(1, min(len(names), 3)))}"
                             f"{',...' if len(names) > 3 else ''}, or give the names with "
                             f"--columns when scoring)")
        # empty names (trailing separators, as spreadsheets export them) name no column
        duplicates = sorted(n for n, count in Counter(names).items() if n and count > 1)[:10]
        if duplicates:
            raise ValueError(f"{source}: column names must be unique; repeated: {duplicates} "
                             f"(rename all but one of each in the header line)")
        self.source = source
        self.header = tuple(names)
        index = {name: i for i, name in enumerate(names)}
        if not require_time and time_column not in (None, "auto") and time_column not in names:
            # scoring data may come without the training data's timestamps, or name them
            # otherwise (`time` for `timestamp`): then a column found by its name is the time,
            # unless the model reads it as a feature
            found = self._time_column("auto", names, source)
            time_column = found if found is not None and found not in (features or ()) else None
        self.time_column = self._time_column(time_column, names, source)
        self.label_column = self._label_column(label_column, names, source, features)
        for role, column in (("label", self.label_column),
                             ("time", self.time_column if require_time else None)):
            if features is not None and column is not None and column in features:
                raise ValueError(
                    f"{source}: `features` names {column!r}, the {role} column, which is never "
                    f"read as a reading; leave it out of the features (--features, in training)"
                    + (" (or name another label column with --label-column; a model whose "
                       "features name it was trained reading that column as a reading: train it "
                       f"again with --label-column {shlex.quote(column)})" if role == "label"
                       else " (or name another time column with --time-column)"))
        if features is None:
            skip = {self.time_column, self.label_column, *excluded, ""}
            features = [n for n in names if n not in skip]
        missing = [f for f in features if f not in index]
        # features named in another letter case (``iter_rows`` says so)
        self.case_matched = matched_ignoring_case(missing, names, set(features))
        for feature, name in self.case_matched.items():
            index[feature] = index[name]
        missing = [f for f in missing if f not in self.case_matched]
        if missing:
            raise MissingColumns(
                f"{source}: feature columns {missing} are missing; the header has {list(names)}; "
                f"expected a header naming each of {list(features)}, in any order: rename "
                f"those columns in the header if they hold the same readings under another "
                f"name; otherwise this file lacks readings the model (or --features) needs: "
                f"train one on its own columns"
            )
        if not features:
            raise ValueError(f"{source}: no feature columns left in header {list(names)}")
        repeated = sorted(f for f, count in Counter(features).items() if count > 1)[:10]
        if repeated:
            raise ValueError(f"`features` must name each column once; repeated: {repeated}")
        self.features = tuple(features)
        self._feature_index = [index[f] for f in features]
        self._time_index = index.get(self.time_column) if self.time_column else None
        self._label_index = index.get(self.label_column) if self.label_column else None
        self._numeric_names = any(_looks_numeric(n) for n in names)  # see _repeats_a_header

    @staticmethod
    def _label_column(given: str | None, names: Sequence[str], source: str,
                      features: Sequence[str] | None) -> str | None:
        """The header's label column: ``given`` itself, else the one name that matches it in
        another case (or, for the default, any of ``LABEL_COLUMN_NAMES``) and is not one of
        ``features``; None where none is."""
        if given is None or given in names:
            return given
        accepted = (LABEL_COLUMN_NAMES if given == DEFAULT_LABEL_COLUMN
                    else (given.strip().lower(),))
        found = [n for n in names if n.strip().lower() in accepted and n not in (features or ())]
        if len(found) > 1:
            raise ValueError(f"{source}: columns {found} could each be the label column; name "
                             f"the one that is with --label-column {found[0]}")
        return found[0] if found else None

    @staticmethod
    def _time_column(time_column: str | None, names: list[str], source: str) -> str | None:
        if time_column is None:
            return None
        if time_column == "auto":
            for name in names:
                if name.lower() in TIME_COLUMN_NAMES:
                    return name
            return None
        if time_column not in names:
            raise ValueError(
                f"{source}: `time_column` {time_column!r} is not in the header {names}"
            )
        return time_column

    def parse(self, cells: Sequence[str], number: int) -> Row:
        """Parse one line's cells; never raises: a bad row carries ``problem``."""
        n = len(self.features)
        values = np.full(n, np.nan)
        time = None
        if self._time_index is not None and self._time_index < len(cells):
            time = cells[self._time_index].strip()[:MAX_TIME_CHARS]
        if len(cells) == len(self.header) + 1 and not cells[-1].strip():
            cells = cells[:-1]  # a separator after the last value that the header lacks
        elif len(cells) == len(self.header) - 1 and not self.header[-1]:
            cells = [*cells, ""]  # the header's own trailing separator, that the rows lack
        if len(cells) != len(self.header):
            return Row(number, values, time, None,
                       f"row has {len(cells)} fields; the header has {len(self.header)}",
                       kind="fields")
        label, label_problem = None, None
        if self._label_index is not None:
            label, label_problem = label_value(cells[self._label_index], self.decimal)
            if label_problem is not None:
                label_problem = f"label column {self.label_column!r} {label_problem}"
        if self.decimal == ".":  # most rows: plain numbers, read at once (what _number gives)
            picked = [cells[i] for i in self._feature_index]
            joined = "".join(picked)
            if "_" not in joined and joined.isascii():  # float() reads 1_000; a logger doesn't
                try:
                    fast = np.array(picked, dtype=np.float64)
                except ValueError:  # a blank, a word, a decimal comma: cell by cell below
                    fast = None
                if fast is not None and np.isfinite(fast).all() \
                        and (np.abs(fast) <= FLOAT32_MAX).all():
                    return Row(number, fast, time, label, None, label_problem=label_problem)
        unreadable: list[tuple[str, str, str]] = []  # the row's other cells are still read:
        for k, i in enumerate(self._feature_index):  # only these are filled
            value, problem = _number(cells[i], self.decimal)
            if problem is not None:
                if not unreadable:
                    first = f"column {self.features[k]!r} {problem}"
                cell = cells[i].strip()
                cause = ("decimal" if _decimal_mark_problem(cell, self.decimal)
                         else "infinite" if problem.startswith("has infinite") else "text")
                unreadable.append((self.features[k], cell, cause))
                continue
            values[k] = value
        if unreadable:
            names = [name for name, _, _ in unreadable]
            more = (f" (other unreadable cells: {names[1:]})" if len(unreadable) > 1 else "")
            return Row(number, values, time, label, first + more, label_problem=label_problem,
                       kind="cells", unreadable=tuple(unreadable),
                       decimal_mark=unreadable[0][2] == "decimal")
        problem = None
        bad = [self.features[k] for k in range(n) if math.isnan(values[k])]
        if bad:
            problem = f"missing or NaN value in {bad}"
        return Row(number, values, time, label, problem, label_problem=label_problem,
                   kind="missing" if bad else None)


def _looks_numeric(cell: str) -> bool:
    try:
        float(cell.replace(",", "."))
    except ValueError:
        return False
    return True


DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
DECIMAL_COMMA_HINT = ("a decimal comma? Read it with --decimal , (or convert the file: sed -E "
                      "'s/([0-9]),([0-9])/\\1.\\2/g' IN.csv > OUT.csv)")
# In a comma-separated file (its decimal commas quoted, as spreadsheets export them) neither
# works: --decimal , needs another separator, and sed would join columns; re-separated by
# semicolons, the file reads with --decimal ,
COMMA_FILE_HINT = ("a decimal comma in a comma-separated file: rewrite the file separated by "
                   "semicolons, python3 -c \"import csv, sys; csv.writer(sys.stdout, "
                   "delimiter=';').writerows(csv.reader(sys.stdin))\" < IN.csv > OUT.csv, and "
                   "read OUT.csv with --decimal ,")
DECIMAL_MARKS = (".", ",")


def _decimal_mark_problem(cell: str, decimal: str) -> bool:
    """Whether an unreadable cell is a number in the other decimal mark's writing (its
    problem then says what to do with the mark)."""
    text = cell.strip()
    return ("." in text if decimal == "," else bool(DECIMAL_COMMA.fullmatch(text)))


def _number(cell: str, decimal: str = ".") -> tuple[float, str | None]:
    text = cell.strip()
    if text.lower() in MISSING_CELLS:
        return math.nan, None
    if decimal == "," and "." in text:  # a thousands separator (1.000) would read as 1.0
        return math.nan, (f"has value {text[:40]!r} with a '.', where --decimal , reads ',' as "
                          f"the decimal mark: a thousands separator? Remove the '.' from such "
                          f"numbers (1000,5), or read a file with decimal points without "
                          f"--decimal ,")
    try:
        value = float(text.replace(",", ".") if decimal == "," else text)
    except ValueError:
        if decimal == "." and DECIMAL_COMMA.fullmatch(text):
            return math.nan, (f"has non-numeric value {text[:40]!r}: {DECIMAL_COMMA_HINT}")
        return math.nan, f"has non-numeric value {text[:40]!r}"
    if math.isnan(value):  # -nan (C's printf of a negative NaN) and other spellings
        return math.nan, None
    if math.isinf(value) and "inf" in text.lower():  # written as infinity: no reading
        return math.nan, f"has infinite value {text[:40]!r}"
    if "_" in text or not text.isascii():
        # float() also reads Python's 1_000 and other scripts' digits; a logger writes neither
        return math.nan, f"has non-numeric value {text[:40]!r}"
    # models compute in float32: a finite reading beyond it is read at its limit, where it
    # scores as an overflow and alarms (as infinity, it would be a missing value, filled)
    return max(-FLOAT32_MAX, min(FLOAT32_MAX, value)), None


_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")  # 0,0 or 1,0: a number written with a decimal comma
LABEL_WORDS = {"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0, "y": 1.0, "n": 0.0,
               "anomaly": 1.0, "anomalous": 1.0, "normal": 0.0}


def label_value(cell: str, decimal: str = ".") -> tuple[float | None, str | None]:
    """(the label as a number, or None when the cell is empty; why it cannot be read): numbers
    (0 normal, anything else anomalous) and the words in ``LABEL_WORDS``, in any case."""
    text = cell.strip()
    word = LABEL_WORDS.get(text.lower())
    if word is not None:
        return word, None
    value, problem = _number(cell, decimal)
    if problem is not None or (text and math.isnan(value)):
        # NaN, ?, n/a: a reading's missing value, but no label's: a stretch marked so would be
        # read as normal (only an empty cell is unlabeled)
        comma = (" (a decimal comma, as in 0,0? give --decimal , to read the file's numbers "
                 "so)" if decimal == "." and _DECIMAL_COMMA.fullmatch(text) else "")
        return None, (f"has {text[:40]!r}; expected 0/1 (or true/false, yes/no, "
                      f"anomaly/normal), or an empty cell for unlabeled{comma}")
    return (None if math.isnan(value) else value), None


def time_key(text: str | None) -> tuple[int, float] | None:
    """A comparable key of a timestamp cell, or None when it is neither a number nor ISO 8601.

    Numbers (epoch seconds, sample counters) give ``(0, value)``; ISO 8601 date-times give
    ``(1, seconds)``; one without a time zone is read as UTC, so that a device's own zone (and
    its daylight-saving changes) never reorders rows. Keys of different kinds are not comparable.
    """
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return (0, value) if math.isfinite(value) else None
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return 1, moment.timestamp()
    except (ValueError, OverflowError, OSError):
        return None


# Lines before the header that a reader with the model's columns passes over (a logger's boot
# banner, an instrument's title and settings lines), at most this many
PREAMBLE_LINES = 100


def iter_rows(lines: Iterable[str | Line], parser_options: dict, source: str,
              header: Sequence[str] | None = None, cut_last_line: bool = False,
              doubt_last_line: bool = False,
              quiet: bool = False) -> Iterator[tuple[RowParser, Row | None]]:
    """Parse lines lazily (a live stream yields each row as soon as its line arrives).

    The first non-empty line is the header unless ``header`` is given; the separator is detected
    from it. Once the header is known, ``(parser, None)`` is yielded; then ``(parser, row)`` for
    each data line. Line numbers count from 1 at the file's first line. A ``Line`` that cannot be
    read is a row with its problem (in the header: ValueError). With ``cut_last_line`` (a live
    stream), a last line without a newline was cut off mid-line: its row is marked ``cut``; with
    ``doubt_last_line`` (a file scored) it may have been (copied while its logger wrote it, or cut
    by a power loss) when its last value is two or more characters shorter than the line
    before's: its row then carries that problem, so its values are filled, not scored. A line
    that names every feature again is a header: the rows after it are read by its names.

    Where the features are known (``parser_options["features"]``), lines before the header that
    name none of them and are no data row (a logger's boot banner, an instrument's title lines) are
    passed over, up to ``PREAMBLE_LINES``, with a warning unless ``quiet``; a data line first
    (a header of other columns) raises the first line's error.
    """
    parser: RowParser | None = None
    unusable: str | None = None  # why rows after a repeated header cannot be read, if they can't
    nul_warned = False  # NUL bytes (storage damage) are warned of once a file
    last_cell_length = 0  # of the line before: a last line cut mid-write ends in a shorter one
    separator = ","
    number = 0
    # lines before the header: (number, text, the error it would be as the header)
    preamble: list[tuple[int, str, ValueError]] = []
    if header is None and not parser_options.get("features"):
        lines, number, passed = _after_preamble(lines)  # no columns known: told by the data
        if passed and not quiet:
            log.warning("%s: %d line(s) before the header (line %d) passed over, the first: %r",
                        source, len(passed), number + 1, passed[0][:80])
    for line in lines:
        number += 1
        if not isinstance(line, Line):
            line = Line(line.rstrip("\r\n"), None, line.endswith("\n"))
        if line.problem is not None:
            if parser is None:
                problem = ValueError(f"{source}, line {number} (the header): {line.problem}")
                if header is None and _may_precede_header(parser_options, preamble):  # boot noise
                    preamble.append((number, "(unreadable bytes)", problem))
                    continue
                raise problem
            if cut_last_line and not line.terminated:  # unreadable, and cut off as well
                yield parser, Row(number, np.full(len(parser.features), np.nan), None, None,
                                  f"line {number} ends without a newline: the input was cut "
                                  f"off mid-line, so the row is incomplete ({line.problem})",
                                  cut=True)
                continue
            yield parser, Row(number, np.full(len(parser.features), np.nan), None, None,
                              f"line {number}: {line.problem}")
            continue
        text = line.text
        if text is None:  # read_lines gives a line its text, or the problem that left it none
            raise ValueError(f"{source}, line {number}: a Line must hold its text or its problem; "
                             f"received {line!r}")
        if not text.strip():
            continue
        after_damage = False  # the line's damage is reported already (its NUL bytes)
        if cut_last_line and not line.terminated and parser is not None:  # damaged or not
            yield parser, Row(number, np.full(len(parser.features), np.nan), None, None,
                              f"line {number} ends without a newline: the input was cut off "
                              "mid-line, so the row is incomplete", cut=True)
            continue
        if "\x00" in text and parser is not None:  # zeroed blocks: no reading to trust
            yield parser, Row(number, np.full(len(parser.features), np.nan), None, None,
                              f"line {number} holds NUL bytes (storage damage: the file was "
                              f"being written when power was lost?), so its values are not used")
            if not nul_warned and not quiet:
                nul_warned = True
                log.warning("%s, line %d: NUL bytes (storage damage: a power loss while the "
                            "file was written?); such lines are not used", source, number)
            # the logger's restart often writes its header right after the zeroed block
            text = text.rsplit("\x00", 1)[1]
            after = split_cells(text, separator) if text.strip() else []
            if not after or (_header_glued_on(after, parser) is None
                             and not _repeats_a_header(after, parser)):
                continue
            after_damage = True
        if parser is None:
            separator = detect_separator(text)
            if parser_options.get("decimal") == "," and separator == ",":
                if "," in text:
                    problem = ValueError(f"{source}: a decimal comma (--decimal ,) needs another "
                                         f"column separator, ';' or a tab; the header is "
                                         f"separated by commas")
                    features = set(parser_options.get("features") or ())
                    if (header is None and _may_precede_header(parser_options, preamble)
                            and not {c.strip() for c in text.split(",")} & features):
                        preamble.append((number, text, problem))  # a title line with a comma
                        continue
                    raise problem
                separator = ";"  # one column: a comma in its rows is the decimal mark
            if header is not None:
                parser = RowParser(header, source, **parser_options)
                cells = split_cells(text, separator)
                # the given names themselves, in their order: the stream's own header line
                # (`tail -n 0 -F live.csv` passes on a file created after it started, header
                # first, perhaps after a BOM or with a separator at its end), read as a header
                # line again is; any other is refused
                named = [cell.strip().lstrip("\ufeff") for cell in cells]
                while named and not named[-1]:
                    named.pop()
                if named != list(parser.header):
                    _refuse_own_header(cells, parser, source)
                yield parser, None
            else:
                parser = _header_or_preamble(split_cells(text, separator), number, text, source,
                                             parser_options, preamble)
                if parser is None:
                    continue
                if preamble and not quiet:
                    log.warning("%s: %d line(s) before the header (line %d) passed over, the "
                                "first: %r", source, len(preamble), number, preamble[0][1][:80])
                if not quiet:
                    _say_case(parser, source, number)
                yield parser, None
                continue
        cells = split_cells(text, separator)
        if cells and cells[0].startswith("\ufeff"):  # a file joined on with its own BOM
            cells[0] = cells[0][1:]
        glued = _header_glued_on(cells, parser)
        if glued is not None:  # a logger that died mid-line wrote its restart header after the
            if not after_damage:  # cut row (after NUL bytes, that line is reported already)
                yield parser, Row(number, np.full(len(parser.features), np.nan), None, None,
                                  f"line {number} holds a row cut off mid-line and then a header "
                                  f"line (a logger restarted mid-write): the row is not used")
                if not quiet:
                    log.warning("%s, line %d: a row cut off mid-line, then a header line on the "
                                "same line (a logger restarted mid-write); the row is not used "
                                "and the rows after are read by that header's names", source,
                                number)
            cells = glued
        if glued is not None or _repeats_a_header(cells, parser):  # files joined, a logger
            try:                                                   # restarted, a log rotated
                renamed = RowParser(cells, source, **parser_options)
            except ValueError as error:  # not the model's columns: no row is read by it
                unusable = (f"line {number} is a header line that cannot be read "
                            f"({str(error).removeprefix(f'{source}: ')})")
                if not quiet:  # said once here: its rows say it too, but only in results
                    log.warning("%s, line %d: a header line again, which cannot be read (%s); "
                                "no row after it is scored until a header line naming the "
                                "model's columns", source, number,
                                str(error).removeprefix(f"{source}: "))
                continue
            if renamed.header != parser.header:
                changed = ("the columns in another order" if sorted(renamed.header)
                           == sorted(parser.header) else f"other columns ({list(renamed.header)}"
                           f" after {list(parser.header)})")
                log.warning("%s, line %d: a header line again, naming %s; the rows after it "
                            "are read by its names", source, number, changed)
                if not quiet:
                    _say_case(renamed, source, number)
            parser, unusable = renamed, None
            continue
        if unusable is not None:  # the columns of these rows are unknown
            yield parser, Row(number, np.full(len(parser.features), np.nan), None, None,
                              f"{unusable}, and this row follows it")
            continue
        row = parser.parse(cells, number)
        unterminated = doubt_last_line and not line.terminated
        if (unterminated and row.problem is None
                and len(cells[-1].strip()) + 2 <= last_cell_length):
            row = replace(row, values=np.full(len(parser.features), np.nan), time=None, problem=(
                f"line {number}, the last, ends without a newline and its last value is shorter "
                f"than the line before's: it may have been cut off mid-write, so its values are "
                f"not used"))
        elif unterminated and row.kind == "fields" and len(cells) < len(parser.header):
            # cut off mid-write: its time cell may be cut too (180000 for 1800001234), and
            # would be read as a time out of order
            row = replace(row, time=None)
        last_cell_length = len(cells[-1].strip()) if cells else 0
        if separator == "," and row.problem and DECIMAL_COMMA_HINT in row.problem:
            row = replace(row, problem=row.problem.replace(DECIMAL_COMMA_HINT, COMMA_FILE_HINT))
        yield parser, row
    if parser is None and preamble:  # lines, none of them a header of the model's columns
        raise preamble[0][2]


def _after_preamble(lines: Iterable[str | Line]) -> tuple[Iterator[str | Line], int, list[str]]:
    """Where no column is known (training reads every column): ``(the lines from the header on,
    the lines before it, the non-empty ones among them)``. The header is the first of the lines of
    names just above the first data line (most of its cells, and two at least, numbers and
    times: a text label may stand beside them) that have as many cells as it; the lines before it
    are passed over (a logger's banner, an instrument's title lines), at most ``PREAMBLE_LINES``.
    Where no such header is found within them, nothing is passed over."""
    iterator = iter(lines)
    held: list[str | Line] = []
    for line in iterator:
        held.append(line)
        text = _text(line)
        if isinstance(line, Line) and line.problem is not None:
            break  # an unreadable line: the header is read as it is
        cells = [c.strip() for c in split_cells(text, detect_separator(text))]
        filled = [c for c in cells if c]
        readings = sum(_looks_numeric(c) or time_key(c) is not None for c in filled)
        if readings >= 2 and 2 * readings > len(filled):  # a row: mostly readings, a text label
            # aside (a "Serial,123" title line is not)
            header = _header_before(held[:-1], text)
            if header:
                skipped = [_text(l) for l in held[:header] if _text(l).strip()]
                return itertools.chain(held[header:], iterator), header, skipped
            break
        if len(held) > PREAMBLE_LINES + 1:
            break
    return itertools.chain(held, iterator), 0, []


def _text(line: str | Line) -> str:
    """A line's text without its newline ("" for a Line that could not be read)."""
    if isinstance(line, Line):
        return line.text if line.text is not None else ""
    return line.rstrip("\r\n")


def _header_before(held: list[str | Line], data: str) -> int:
    """The position among ``held`` of the first of the non-empty lines just above the data line
    ``data`` that hold names alone and as many cells as it (by its separator; empty trailing
    cells aside), or 0."""
    separator = detect_separator(data)

    def width(text: str) -> int:
        cells = split_cells(text, separator)
        while cells and not cells[-1].strip():
            cells.pop()
        return len(cells)

    wanted = width(data)
    header = 0
    for position in range(len(held) - 1, -1, -1):
        text = _text(held[position])
        if not text.strip():
            continue
        names = [c.strip() for c in split_cells(text, separator) if c.strip()]
        # names only: a row of readings with a text cell is no header
        if any(_looks_numeric(n) or time_key(n) is not None for n in names) or (
                width(text) != wanted):
            break
        header = position  # the first of the lines of names just above the data: a units line
    return header           # under the header is then read as a row, and refused by name


def _may_precede_header(parser_options: dict, preamble: list) -> bool:
    """Whether a line that cannot be the header may be one before it: the model's columns are
    known (scoring, or training with --features) and room is left."""
    return bool(parser_options.get("features")) and len(preamble) < PREAMBLE_LINES


def _header_or_preamble(cells: list[str], number: int, text: str, source: str,
                        parser_options: dict,
                        preamble: list[tuple[int, str, ValueError]]) -> RowParser | None:
    """The parser of a header line; None for a line before the header (added to ``preamble``).
    A line is taken for one before the header only where the features are known, it names none
    of them and it is not all numbers and times (``RowParser`` refuses data). After
    ``PREAMBLE_LINES`` such lines the first line's error is raised; at a data line, the error of
    the line before it (a header of other columns); ``iter_rows`` raises the first line's where
    no header comes."""
    try:
        return RowParser(cells, source, **parser_options)
    except MissingColumns as error:
        names = {c.strip() for c in cells}
        if (not _may_precede_header(parser_options, preamble)
                or names & set(parser_options["features"])):
            raise (preamble[0][2] if preamble else error) from None
        preamble.append((number, text, error))
        return None
    except ValueError:
        if preamble:  # data, say, under the line before: that was a header of other columns
            raise preamble[-1][2] from None
        raise


def _say_case(parser: RowParser, source: str, number: int) -> None:
    if parser.case_matched:
        log.warning("%s, line %d: feature column(s) %s read from %s, named in another letter "
                    "case", source, number, list(parser.case_matched),
                    list(parser.case_matched.values()))


def matched_ignoring_case(missing: Sequence[str], names: Sequence[str],
                           features: set[str]) -> dict[str, str]:
    """The header names that ``missing`` features match only in letter case (``Pressure`` for
    ``pressure``: a logger of another version), each one header name and no feature's own
    name; {} unless every missing feature is matched so."""
    matched: dict[str, str] = {}
    for feature in missing:
        found = [n for n in names if n.casefold() == feature.casefold() and n not in features]
        if len(found) != 1 or found[0] in matched.values():
            return {}
        matched[feature] = found[0]
    return matched


def _repeats_a_header(cells: Sequence[str], parser: RowParser) -> bool:
    """Whether a data line is a header line again: the first header's names in any order, or,
    with no cell that is a number or a time, every feature's name or at least half of the first
    header's names (a logger restarted with a column renamed or dropped: its rows are then not
    read by the old positions). A text column whose value happens to be a feature's name is
    not a header; a feature may be called "1"."""
    first = parser._feature_index[0]
    if (not parser._numeric_names and first < len(cells)
            and _looks_numeric(cells[first].strip())):
        return False  # a reading where the first feature's name would stand: the common case
    names = [c.strip() for c in cells]
    if sorted(n.casefold() for n in names) == sorted(h.casefold() for h in parser.header):
        # (in another letter case too: a logger restarted by another version writes Timestamp)
        return not all(_looks_numeric(n) or time_key(n) is not None for n in names if n)
    if any(_looks_numeric(n) or time_key(n) is not None for n in names if n):
        return False
    known = len(set(names) & {h for h in parser.header if h})
    return (all(feature in names for feature in parser.features)
            or known >= max(2, (len(parser.header) + 1) // 2))


def _header_glued_on(cells: Sequence[str], parser: RowParser) -> list[str] | None:
    """The header line at the end of a line, after a row cut off mid-line (a logger that died
    mid-write and wrote its header on restart), or None. The cut row's last cell may hold the
    header's first name (``0.2timestamp``), or the cut may fall inside the row's first cell
    (the line then has the header's width). Only a header of the same names, in any order, is
    taken: its cells are neither numbers nor times."""
    width = len(parser.header)
    if len(cells) < width or width < 2:
        return None
    start = len(cells) - width
    second = cells[start + 1].strip()  # every data line comes here: its reading ends it
    if not second or _looks_numeric(second):
        return None
    names = [c.strip() for c in cells[start:]]
    if any(not n or _looks_numeric(n) or time_key(n) is not None for n in names[1:]):
        return None
    if len(cells) > width and sorted(names) == sorted(parser.header):  # cut at a separator
        return names
    missing = set(parser.header) - set(names[1:])
    if len(missing) == 1 and len(set(names[1:])) == width - 1:
        first = missing.pop()
        # glued onto the cut row's last cell, or inside its first (cut within the timestamp:
        # the line then has the header's width, and what precedes the name must be the start
        # of a reading, not a renamed column's: raw_a, datetime)
        prefix = names[0][:len(names[0]) - len(first)]
        if first and names[0].endswith(first) and prefix and (
                len(cells) > width or READING_START.fullmatch(prefix)):
            return [first, *names[1:]]
    return None


# the start of a reading or a timestamp cut off mid-write: digits and what numbers and times hold
READING_START = re.compile(r"(?=.*\d)[0-9+\-.:TZ /]+")


def _refuse_own_header(cells: Sequence[str], parser: RowParser, source: str) -> None:
    """ValueError if the first line, with the column names given apart (``--columns``), is a
    header line of its own: read as data it would shift every row's number, and names given in
    another order than the file's would swap columns silently."""
    # a number is never taken for a name: a feature may be called "1", and so may a reading be
    named = [c.strip() for c in cells
             if c.strip() in parser.features and not _looks_numeric(c.strip())]
    if named:
        raise ValueError(f"{source}: its first line is a header line (it names the columns "
                         f"{named}), but the column names were given as well (--columns); "
                         f"drop --columns to read the file's own header, or remove its header "
                         f"line to use --columns")


def split_cells(line: str, separator: str) -> list[str]:
    """One CSV line's cells; a quoted cell may hold the separator."""
    if '"' not in line:
        return line.split(separator)
    try:  # one line at a time: a quoted cell cannot swallow the lines after it
        cells = next(csv.reader([line], delimiter=separator), None)
    except csv.Error:  # malformed quoting: split plainly, the field count then tells
        cells = None
    return cells if cells else line.split(separator)


def read_table(
    path: str | Path,
    features: Sequence[str] | None = None,
    time_column: str | None = "auto",
    label_column: str | None = DEFAULT_LABEL_COLUMN,
    excluded: Sequence[str] = DEFAULT_EXCLUDED_COLUMNS,
    require_time: bool = True,
    decimal: str = ".",
    strict_labels: bool = True,
) -> Table:
    """Read a whole CSV file; any malformed cell is an error naming file, line and column.

    Missing cells stay NaN here (see ``fill_gaps``). With ``strict_labels`` off, a label cell
    that cannot be read is unlabeled rather than an error (labels a caller takes from elsewhere:
    the column is still found, in any of its spellings, and kept out of the features).
    """
    path = Path(path)
    source = str(path)
    options = dict(features=features, time_column=time_column, label_column=label_column,
                   excluded=excluded, require_time=require_time, decimal=decimal)
    with open(path, "rb") as handle:
        start = handle.read(4096)
    problem = not_utf8_text(start)
    if problem is not None:
        raise ValueError(f"{source}: {problem}")
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            rows, parser, first = [], None, None
            for parser, row in iter_rows(handle, options, source):
                first = first or parser
                if parser is not first and parser.features != first.features:
                    # the rows after a header of other columns cannot join a table of the
                    # first header's columns (read by position, a renamed column was the old)
                    shared = ",".join(f for f in first.features if f in parser.features)
                    raise ValueError(
                        f"{source}: a header line again, naming other columns "
                        f"({list(parser.header)} after {list(first.header)}): a table keeps "
                        f"one set of columns; split the file at that header (or name the "
                        f"columns both parts share: --features "
                        f"{shlex.quote(shared) if shared else 'A,B'})")
                if row is None:
                    continue
                if row.problem and row.kind != "missing":
                    dated = [f for f, cell, cause in row.unreadable
                             if cause == "text" and time_key(cell) is not None]
                    if row.decimal_mark:
                        hint = ""  # the problem says what to do with the decimal mark
                    elif features is None and dated and parser.time_column is None:
                        hint = (f"; a date-time: is {dated[0]!r} the time column? Name it "
                                f"(--time-column {dated[0]!r}); the time column is found by its "
                                f"name (timestamp, datetime, time, date or ts)")
                    elif (features is None and row.kind == "cells"
                          and row.unreadable[0][2] == "text"):
                        text = {f for f, _, _ in row.unreadable}
                        others = [f for f in parser.features if f not in text]
                        hint = ("; correct that cell if it is a typo; a text column (a status, "
                                "a name) is not a reading: name the numeric columns"
                                + (f" (--features {','.join(others)}, say)" if others else
                                   " with --features"))
                    else:
                        hint = (f"; expected the header's {len(parser.header)} fields with a "
                                f"finite number in each feature column: correct or delete that "
                                f"line (an empty cell is read as missing and filled)")
                    raise ValueError(f"{source}, line {row.number}: {row.problem}{hint}")
                if row.label_problem and strict_labels:
                    raise ValueError(f"{source}, line {row.number}: {row.label_problem}; or name "
                                     f"another label column (--label-column)")
                rows.append(row)
    except UnicodeDecodeError as error:
        raise ValueError(f"{source}: expected a UTF-8 text CSV file; {error}; "
                         f"{_encoding_fix(False)}") from None
    if parser is None:
        raise ValueError(f"{source}: the file is empty; expected a header line and data rows")
    if not rows:
        raise ValueError(f"{source}: the file has a header but no data rows")
    values = np.stack([r.values for r in rows])
    times = tuple(r.time or "" for r in rows) if parser.time_column else None
    labels = None
    if parser.label_column:
        labels = np.array([bool(r.label) if r.label is not None else False for r in rows])
    return Table(source, parser.features, values, times, labels, parser.time_column,
                 parser.label_column, parser.header)


def fill_gaps(values: np.ndarray, max_gap: int, source: str, features: Sequence[str]) -> np.ndarray:
    """Fill runs of at most ``max_gap`` missing values per column by linear interpolation.

    Longer runs, and columns with no value at all, raise ``ValueError`` naming the rows.
    """
    values = np.array(values, dtype=np.float64, copy=True)
    for j in range(values.shape[1]):
        column = values[:, j]
        missing = np.isnan(column)
        if not missing.any():
            continue
        if missing.all():
            others = [f for f in features if f != features[j]]
            fix = (f": leave it out (--features {','.join(others)} in training)" if others
                   else "")
            raise ValueError(f"{source}: column {features[j]!r} has no numeric value at all{fix}")
        for start, stop in runs(missing):
            if stop - start > max_gap:
                raise ValueError(
                    f"{source}: column {features[j]!r} is missing {stop - start} consecutive "
                    f"values (data rows {start + 1}..{stop}, counted from 1 after the header); "
                    f"at most {max_gap} are filled (the model's max_gap, set in training with "
                    f"--max-gap): fill or drop those rows, or train with a larger --max-gap"
                )
        known = np.flatnonzero(~missing)
        column[missing] = np.interp(np.flatnonzero(missing), known, column[known])
    return values
