"""Anomaly labels kept apart from the data: windows or points of time, per data file.

Two layouts are read:

* JSON mapping each data file to its labels, as NAB's ``labels/combined_windows.json`` (a list of
  ``[start, end]`` timestamp windows, ends inclusive) or ``combined_labels.json`` (a list of point
  timestamps); a file may mix both;
* CSV with a header: ``file,start,end`` (windows), ``file,timestamp`` (points), or ``start,end``
  / ``timestamp`` without a file column (the labels of every data file). A 0/1 column named
  ``anomaly``, ``label`` or ``is_anomaly`` beside them keeps only the rows it marks (true/false
  and yes/no too), so a row-by-row ``timestamp,anomaly`` file labels only its anomalous rows.

A data file's key is matched by its path relative to the data root, then by the longest key that
ends its path (``realKnownCause/nyc_taxi.csv``), then by its name when that is unique (a file in a
subfolder of the data folder only by a key without folders: ``a/x.csv`` does not name ``b/x.csv``).
Labels without a file (``*``: a CSV row whose ``file`` cell is empty, or a CSV without a file
column) add to every file's own; where some files are keyed by name, every data file must be, so
that a misnamed key is never read as "no anomaly". A row is anomalous when its timestamp falls in
one of its file's windows or equals one of its points (an end or a point means the last
instant it names: a date without a time its whole day, a time to the minute its whole minute).
Timestamps are compared as numbers or ISO 8601 date-times (``2014-02-19 10:50:00.000000``). A
file given windows of which none falls on any of its rows is warned about (are the labels'
times the data's?), and so are windows or points that fall on none
of its rows while others do (a point between two rows, a window outside the file's times).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from .tables import LABEL_COLUMN_NAMES, TIME_COLUMN_NAMES, detect_separator, label_value, time_key

ALL_FILES = "*"
DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
# an ISO 8601 date-time, to see which of its parts it writes
TIME_OF_DAY = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}(?P<minute>:?\d{2})?(?P<second>:?\d{2})?"
                         r"(?P<fraction>[.,]\d+)?\s*(Z|[+-]\d{2}(:?\d{2})?)?", re.IGNORECASE)
NAB_WINDOWS = Path("labels") / "combined_windows.json"
CSV_COLUMNS = ("file", "start", "end", "timestamp")
log = logging.getLogger("vigil")
FLAG_COLUMNS = LABEL_COLUMN_NAMES  # a 0/1 column: only its true rows are labels


@dataclass(frozen=True)
class Labels:
    """Label windows per data file key (points are windows whose start is their end)."""

    source: str
    windows: dict[str, tuple[tuple[str, str], ...]]

    def for_file(self, path: str | Path, root: str | Path | None = None) -> tuple[tuple[str, str], ...]:
        """The windows of one data file (with those labels give every file); ValueError if the
        labels do not name it."""
        shared = self.windows.get(ALL_FILES, ())
        if ALL_FILES in self.windows and len(self.windows) == 1:
            return shared  # labels of every file (possibly none: all its rows normal)
        return shared + self.windows[self._own_key(Path(path), root)]  # every file must be named

    def check_files(self, paths, root: str | Path | None = None) -> None:
        """Match every data file of a run to its key before any is read (ValueError, as
        ``for_file``, for the first the labels do not name: found before minutes of scoring,
        not after), and warn of keys of the data folder ``root`` that name none of them (a
        file renamed or moved: its windows would label nothing, without a word)."""
        if ALL_FILES in self.windows and len(self.windows) == 1:
            return
        keys = {Path(path): self._own_key(Path(path), root) for path in paths}
        if root is None or not Path(root).is_dir():
            return  # a file scored alone: a corpus's labels name many others
        # the folders above the data folder that the keys name (NAB's labels name every
        # category from the corpus's data folder: a run on one category's folder takes the keys
        # under its own, and is not told of the others'); "" where keys are paths from it
        above = set()
        own_name = Path(root).resolve().name
        for path, key in keys.items():
            relative = relative_path(path, root)
            if relative is not None and (key == relative or key.endswith("/" + relative)):
                prefix = key[:len(key) - len(relative)]
                # the keys' folder is the data folder (a category's, given on its own): its
                # other keys should name files here; a folder of files copied from several is
                # matched by name, and not told of the files left behind (a review's two NAB
                # files in a flat folder were told of 22 keys "renamed or moved")
                if not prefix or prefix.rstrip("/").split("/")[-1] == own_name:
                    above.add(prefix)
        folders = {p.name for p in Path(root).iterdir() if p.is_dir()}
        # a bare name, a key under a folder the data folder holds, or one under the folder above
        # it that the other keys name (not every key: a folder of some of a corpus's categories
        # is not told of the others')
        unused = sorted(k for k in self.windows if k not in keys.values() and k != ALL_FILES
                        and ("/" not in k.strip("/") or k.strip("/").split("/")[0] in folders
                             or any(p and k.startswith(p) for p in above)))
        if unused:
            log.warning("labels %r: %d key(s) name no data file of %s (the first: %s), so their "
                        "windows label nothing: a file renamed or moved, or a mistyped key? Key "
                        "each file by its path relative to the data folder", self.source,
                        len(unused), root, ", ".join(repr(k) for k in unused[:3]))

    def _own_key(self, path: Path, root: str | Path | None) -> str:
        """The key that names ``path``: its path relative to ``root``, the longest key that
        ends its path, or the one key of its name (see below); ValueError where none does, or
        several could."""
        candidates = []
        if root is not None and Path(root).is_dir():
            relative = relative_path(path, root)
            if relative is not None:
                candidates.append(relative)
        texts = {Path(os.path.abspath(path)).as_posix(), path.resolve().as_posix()}
        suffixes = [k for k in self.windows
                    if any(text == k or text.endswith("/" + k.lstrip("/")) for text in texts)]
        naming = sorted({k for k in [*candidates, *suffixes] if self.windows.get(k)})
        if len(naming) > 1:  # data/a.csv and a.csv: one list would be read, the other lost
            raise ValueError(f"labels {self.source!r}: keys {naming} all name {str(path)!r}, "
                             f"each with windows; put all of its windows under one key")
        for key in candidates:
            if key in self.windows:
                return key
        if suffixes:
            key = max(suffixes, key=len)
            self._refuse_shared_name(key, path, root)
            return key
        # By its name alone: a file scored on its own (a copy of a NAB file elsewhere) takes the
        # key of that name; one in a subfolder of the data folder (b/x.csv) takes no key whose
        # folders name another (a/x.csv), only a bare name.
        in_subfolder = any("/" in key for key in candidates)
        named = [k for k in self.windows if k != ALL_FILES and Path(k).name == path.name
                 and not (in_subfolder and "/" in k.strip("/"))]
        if len(named) == 1:
            self._refuse_shared_name(named[0], path, root)
            return named[0]
        if len(named) > 1:  # a name several keys end in: which one is meant cannot be told
            raise ValueError(f"labels {self.source!r}: {len(named)} keys end in {path.name!r} "
                             f"({sorted(named)[:3]}) and none matches {str(path)!r} by its "
                             f"folders; give the data folder that holds them (the file at its "
                             f"key's path below it, e.g. {sorted(named)[0]!r}), or key the file "
                             f"by its path relative to the data folder")
        shared = (" (the windows of rows without a file add to each file's own; they do not "
                  "stand in for a file's key)" if ALL_FILES in self.windows else "")
        raise ValueError(f"labels {self.source!r} have no entry for {str(path)!r}; expected a key "
                         f"like its path relative to the data folder (keys such as "
                         f"{sorted(k for k in self.windows if k != ALL_FILES)[:3]}){shared}; a "
                         f"file without anomalies is listed with no window: \"{path.name}\": [] "
                         f"in JSON, a row {path.name},, in a CSV of file,start,end")

    def _refuse_shared_name(self, key: str, path: Path, root) -> None:
        """ValueError when ``key`` ends the paths of several files in the data folder ``root``
        (a bare name: valve1/1.csv, valve2/1.csv; or folders too: lineA/valve1/1.csv and
        lineB/valve1/1.csv for valve1/1.csv): it would label each of them alike."""
        if root is None or not Path(root).is_dir():
            return
        tail = key.strip("/")
        shared = sorted(relative for p in Path(root).rglob(path.name) if p.is_file()
                        and ((relative := p.relative_to(root).as_posix()) == tail
                             or relative.endswith("/" + tail)))
        if tail in shared:  # the key is another file's own path from the folder, not this one's
            raise ValueError(f"labels {self.source!r} have no entry for {str(path)!r}: the key "
                             f"{key!r} is the path of {str(Path(root) / tail)!r}; key this file "
                             f"by its own path relative to the data folder "
                             f"({relative_path(path, root) or path.name!r})")
        if len(shared) > 1:
            kind = "names no folder" if "/" not in tail else "is not a path from the data folder"
            raise ValueError(f"labels {self.source!r}: key {key!r} {kind}, and the data folder "
                             f"holds {len(shared)} files it would name ({shared[:3]}); key their "
                             f"windows by path relative to it ({shared[0]!r}, ...)")

    def rows(self, times: tuple[str, ...] | None, path: str | Path, root=None) -> np.ndarray:
        """True for each row whose timestamp falls in one of the file's windows."""
        windows = self.for_file(path, root)
        if times is None:
            raise ValueError(f"{path}: labels in {self.source!r} are timestamps, but the file has "
                             "no time column to match them to (a column named timestamp, "
                             "datetime, time, date or ts, or the one --time-column names); give "
                             "its time column that name, or, for a file without times, mark its "
                             "anomalous rows in a 0/1 label column of the file itself "
                             "(--label-column) instead of --labels")
        keys = [time_key(t) for t in times]
        unread = [i for i, k in enumerate(keys) if k is None]
        if windows and unread:
            example = times[unread[0]]
            if len(unread) == len(keys):
                raise ValueError(
                    f"{path}: labels in {self.source!r} are timestamps, but the file's times "
                    f"(the first: {example!r}) are neither numbers nor ISO 8601, so no label "
                    f"can be matched to a row; write them in ISO 8601 (2024-03-01T05:00:00)")
            log.warning("%s: %d row(s) have a time that is neither a number nor ISO 8601 (the "
                        "first: row %d, %r): no label can be matched to them", path, len(unread),
                        unread[0] + 1, example)
        data_zone = _zoned(times)
        label_zone = _zoned([bound for window in windows for bound in window])
        if None not in (data_zone, label_zone) and data_zone != label_zone:
            log.warning("%s: its times %s a time zone and the labels' in %s %s: times without "
                        "one are read as UTC, so the labels may be hours off; give both a zone "
                        "or neither", path, "carry" if data_zone else "lack", self.source,
                        "do" if label_zone else "do not")
        kinds = np.array([k[0] if k is not None else -1 for k in keys])
        values = np.array([k[1] if k is not None else np.nan for k in keys], dtype=np.float64)
        bounds = [_window_bounds(start, end, f"labels {self.source!r} for {str(path)!r}: window "
                                 f"[{start!r}, {end!r}]") for start, end in windows]
        label_kinds = {low[0] for low, _ in bounds}
        if windows and not label_kinds & set(kinds.tolist()):
            written = {0: "numbers (epoch seconds, counters)", 1: "ISO 8601 date-times"}
            raise ValueError(
                f"{path}: labels in {self.source!r} are {written[label_kinds.pop()]} but the "
                f"file's times are {written[int(kinds.max())]} (the first: {times[0]!r}), so "
                f"no label can match a row; write the labels as the data's times are written")
        flags = np.zeros(len(times), dtype=bool)
        # windows that fall on no row: inside the file's times, or not
        between: list[tuple[str, str]] = []
        outside: list[tuple[str, str]] = []
        for (start, end), (low, high) in zip(windows, bounds):
            hit = (kinds == low[0]) & (values >= low[1]) & (values <= high[1])
            flags |= hit
            if not hit.any():
                same = values[kinds == low[0]]
                inside = bool(same.size) and high[1] >= same.min() and low[1] <= same.max()
                (between if inside else outside).append((start, end))
        shared = set(self.windows.get(ALL_FILES, ()))  # every file's: outside some, by design
        lost = between + [w for w in outside if w not in shared]
        if flags.any() and lost:
            log.warning("%s: %d of the %d label window(s) or point(s) that %s gives it fall on "
                        "none of its rows, so they label nothing (the first: %s .. %s): %d lie "
                        "between two rows (a point must be a row's own time: give a window "
                        "around it) and %d outside its times", path, len(lost), len(windows),
                        self.source, lost[0][0], lost[0][1], len(between),
                        len(lost) - len(between))
        if windows and not flags.any():
            known = [t for t, k in zip(times, keys) if k is not None]
            span = f"{known[0]} .. {known[-1]}" if known else "no readable time"
            log.warning("%s: none of the %d label window(s) or point(s) that %s gives it falls on "
                        "any of its rows (its times: %s; the first window: %s .. %s): do the "
                        "labels' times match the data's? Its rows are all read as normal", path,
                        len(windows), self.source, span, windows[0][0], windows[0][1])
        return flags


def relative_path(path: str | Path, root: str | Path) -> str | None:
    """``path`` from the folder ``root`` (with /), as given (a link into another folder keeps
    the name it has here), else through both resolved; None where it lies outside."""
    for inside, folder in ((os.path.abspath(path), os.path.abspath(root)),
                           (str(Path(path).resolve()), str(Path(root).resolve()))):
        relative = os.path.relpath(inside, folder)
        if relative != os.pardir and not relative.startswith(os.pardir + os.sep):
            return Path(relative).as_posix()
    return None


def _end_key(text: str) -> tuple[int, float] | None:
    """``time_key`` of a window's end (or a point), which ends with the last instant its text
    names: a date without a time (2024-03-01) its day, a time to the hour, minute or second
    (10:50, 10:50:07) that hour, minute or second (rows at 10 Hz labeled to the second, or
    each minute's rows labeled to the minute, were cut at the first row of the last one)."""
    key = time_key(text)
    if key is None or key[0] != 1:
        return key
    written = text.strip()
    if DATE_ONLY.fullmatch(written):
        return 1, key[1] + 86400 - 1e-6
    clock = TIME_OF_DAY.fullmatch(written)
    if clock is None or clock.group("fraction"):
        return key
    span = 1 if clock.group("second") else 60 if clock.group("minute") else 3600
    return 1, key[1] + span - 1e-6


def _window_bounds(start: str, end: str, where: str) -> tuple[tuple[int, float], tuple[int, float]]:
    """``time_key`` of a window's start and ``_end_key`` of its end; ValueError naming ``where``
    and the bound that is no timestamp."""
    low, high = time_key(start), _end_key(end)
    if low is None or high is None:
        name, text = ("start", start) if low is None else ("end", end)
        raise ValueError(f"{where}: its {name} {text!r} is no timestamp; expected a number (epoch "
                         f"seconds, a counter) or an ISO 8601 date-time such as 2024-03-01 "
                         f"05:00:00 (day-first and US dates are not read)")
    return low, high


def read_labels(path: str | Path) -> Labels:
    """Read a labels file (JSON or CSV, see the module docstring); ValueError saying what is wrong."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ValueError(f"labels file {source!r} {what} (expected a JSON or CSV file of "
                         "label windows per data file)")
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        windows = _from_json(text, source)
    else:
        windows = _from_csv(text, source)
    for key, items in windows.items():
        kinds = set()
        for start, end in items:
            where = f"labels {source!r}, {key!r}: window [{start!r}, {end!r}]"
            low, high = _window_bounds(start, end, where)
            if low[0] != high[0]:
                raise ValueError(f"{where}: one bound is a number and the other a date-time; "
                                 f"write both as the data's times are written")
            if low[1] > high[1]:
                raise ValueError(f"{where}: its start is after its end; write [earlier, later]")
            kinds.add(low[0])
        if len(kinds) > 1:  # a number window among date-times would match no row, silently
            raise ValueError(f"labels {source!r}, {key!r}: windows of numbers and of date-times "
                             f"are mixed; write each as the data's times are written")
    return Labels(source, windows)


def _from_json(text: str, source: str) -> dict[str, tuple[tuple[str, str], ...]]:
    try:
        data = json.loads(text, object_pairs_hook=lambda pairs: _unique(pairs, source))
    except _DuplicateKey as error:
        raise ValueError(str(error)) from None
    except ValueError as error:
        raise ValueError(f"labels {source!r} are not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"labels {source!r} must map each data file to a list of [start, end] "
                         f"windows or timestamps; received a {type(data).__name__}")
    windows = {}
    for key, items in data.items():
        if not isinstance(items, list):
            raise ValueError(f"labels {source!r}, {key!r}: expected a list of windows or "
                             f"timestamps; received {items!r:.80}")
        parsed = []
        for item in items:
            if isinstance(item, (str, int, float)) and not isinstance(item, bool):
                parsed.append((str(item), str(item)))
            elif isinstance(item, list) and len(item) == 2:
                parsed.append((str(item[0]), str(item[1])))
            else:
                raise ValueError(f"labels {source!r}, {key!r}: {item!r:.80} is neither a "
                                 "timestamp nor a [start, end] window")
        if _key(key) in windows:  # "./a.csv" beside "a.csv": one file's windows, given twice
            other = next(k for k in data if k != key and _key(k) == _key(key))
            raise ValueError(f"labels {source!r} give one file's windows under two keys, "
                             f"{other!r} and {key!r} (paths are compared with / and without a "
                             f"leading ./); put all of its windows in one list")
        windows[_key(key)] = tuple(parsed)
    return windows


class _DuplicateKey(Exception):
    """A key given twice in a JSON object (the second would silently replace the first)."""


def _unique(pairs: list[tuple[str, object]], source: str) -> dict:
    keys = [key for key, _ in pairs]
    twice = sorted(key for key, count in Counter(keys).items() if count > 1)
    if twice:
        raise _DuplicateKey(f"labels {source!r} give the key {twice[0]!r} more than once (JSON "
                            f"keeps only the last, losing the windows of the others); put all "
                            f"of a file's windows in one list")
    return dict(pairs)


def _key(text: str) -> str:
    """A file key as paths are compared: / between folders, without a leading ./"""
    key = text.strip().replace("\\", "/")
    while key.startswith("./"):
        key = key[2:]
    return key or text


def _from_csv(text: str, source: str) -> dict[str, tuple[tuple[str, str], ...]]:
    lines = text.splitlines()
    separator = detect_separator(lines[0]) if lines else ","  # as data files: , ; or a tab
    reader = csv.DictReader(lines, delimiter=separator)
    # rows keyed by these too; File,Start,End as file,start,end
    reader.fieldnames = [c.strip().lower() if c.strip().lower() in CSV_COLUMNS else c.strip()
                         for c in reader.fieldnames or []]
    times = [c for c in reader.fieldnames if c.lower() in TIME_COLUMN_NAMES]
    if "timestamp" not in reader.fieldnames and len(times) == 1 \
            and not {"start", "end"} & set(reader.fieldnames):
        # a time column named as a data file's may be (datetime, time, date, ts): a review's
        # datetime,label file, written from SKAB's own column, was refused
        reader.fieldnames = ["timestamp" if c == times[0] else c for c in reader.fieldnames]
    rows = list(reader)
    columns = set(reader.fieldnames)
    if ("start" in columns) != ("end" in columns):
        raise ValueError(f"labels {source!r}: a window needs both start and end columns; the "
                         f"header has {sorted(columns)}, without "
                         f"{'end' if 'start' in columns else 'start'} (a single time is a "
                         f"window with the same start and end, or a timestamp column)")
    if not ({"start", "end"} <= columns or "timestamp" in columns):
        raise ValueError(f"labels {source!r}: expected a header with start,end or timestamp "
                         f"(or one time column named as a data file's: "
                         f"{', '.join(TIME_COLUMN_NAMES[1:])}; and optionally file); received "
                         f"{sorted(columns)}")
    extra = sorted(c for c in columns if c not in CSV_COLUMNS and c is not None)
    flags = [c for c in extra if c.strip().lower() in FLAG_COLUMNS]
    unexpected = [c for c in extra if c not in flags] or flags
    if len(flags) > 1 or len(extra) > len(flags):
        raise ValueError(f"labels {source!r}: unexpected columns {unexpected}; a labels CSV has "
                         f"{list(CSV_COLUMNS)} and at most one 0/1 column named one of "
                         f"{list(FLAG_COLUMNS)} (a data file's own label column is read from the "
                         f"data with --label-column, not with --labels)")
    if not rows:
        raise ValueError(f"labels {source!r} have a header ({', '.join(sorted(columns))}) but no "
                         f"label rows; add a row per anomaly window or point")
    flag = flags[0] if flags else None
    windows: dict[str, list[tuple[str, str]]] = {}
    for number, row in enumerate(rows, start=2):
        key = _key(row.get("file") or ALL_FILES)
        if flag is not None:
            value, problem = label_value(row.get(flag) or "")
            if problem is not None:
                raise ValueError(f"labels {source!r}, line {number}: column {flag!r} {problem}")
            if not value:
                windows.setdefault(key, [])  # the file is labeled, this row normal (or unlabeled)
                continue
        if None in row or None in row.values():
            cells = sum(v is not None for k, v in row.items() if k is not None)
            cells += len(row.get(None) or [])
            raise ValueError(f"labels {source!r}, line {number}: {cells} cells where the header "
                             f"has {len(columns)} ({sorted(columns)})")
        start = (row.get("start") or row.get("timestamp") or "").strip()
        if not start and key != ALL_FILES and not (row.get("end") or "").strip():
            windows.setdefault(key, [])  # a file listed without a window: it has no anomaly
            continue
        if not start:
            raise ValueError(f"labels {source!r}, line {number}: no "
                             f"{'start' if 'start' in columns else 'timestamp'} (an empty cell); "
                             f"each row needs one")
        end = (row.get("end") or "").strip()
        if "end" in columns and not end:
            raise ValueError(f"labels {source!r}, line {number}: a start ({start!r}) but no end "
                             f"(an empty cell); give the window's end (the start again for a "
                             f"single time)")
        item = (start, end or start)
        windows.setdefault(key, []).append(item)
    return {k: tuple(v) for k, v in windows.items()}


def nab_root(data: str | Path) -> tuple[Path, Path] | None:
    """(data folder, labels file) when ``data`` is a NAB root (``data/`` and ``labels/``), else
    None."""
    root = Path(data)
    if root.is_dir() and (root / NAB_WINDOWS).is_file() and (root / "data").is_dir():
        return root / "data", root / NAB_WINDOWS
    return None


def nab_labels(data: str | Path) -> tuple[Path, Labels] | None:
    """(data folder, labels) when ``data`` is a NAB root (``data/`` and ``labels/``), else None."""
    found = nab_root(data)
    return None if found is None else (found[0], read_labels(found[1]))


def _zoned(times) -> bool | None:
    """Whether the first ISO 8601 date-time among ``times`` carries a time zone; None where
    none is one (numbers, or nothing readable)."""
    for text in times:
        if not text:
            continue
        try:
            float(text)
            continue
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(text).tzinfo is not None
        except ValueError:
            continue
    return None
