"""Scoring sensor sources: CSV files, folders, stdin; one JSON line per window."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterable

from .detector import SensorDetector
from .streaming import Result, StreamingScorer
from .tables import csv_files, iter_rows

CHUNK_ROWS = 1024


@dataclass
class ScoreSummary:
    sources: int = 0
    rows: int = 0
    windows: int = 0
    alarms: int = 0
    rows_filled: int = 0
    rows_skipped: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def add(self, scorer: StreamingScorer) -> None:
        part = scorer.summary()
        self.sources += 1
        self.rows += part["rows"]
        self.windows += part["windows"]
        self.alarms += part["alarms"]
        self.rows_filled += part["rows_filled"]
        self.rows_skipped += part["rows_skipped"]

    def to_json(self) -> dict:
        rate = self.windows / self.seconds if self.seconds > 0 else None
        return {"sources": self.sources, "rows": self.rows, "windows": self.windows,
                "alarms": self.alarms, "rows_filled": self.rows_filled,
                "rows_skipped": self.rows_skipped, "seconds": round(self.seconds, 4),
                "windows_per_s": round(rate, 1) if rate else None, "errors": self.errors}


def score_lines(detector: SensorDetector, lines: Iterable[str], source: str,
                emit: Callable[[Result, str], None], live: bool = False,
                header: list[str] | None = None) -> StreamingScorer:
    """Score CSV lines (the first is the header unless ``header`` is given).

    ``live`` scores each row as it arrives; otherwise rows are scored in chunks. Columns are
    matched to the model's features by name, so their order in the file does not matter.
    """
    scorer = StreamingScorer(detector)
    options = dict(features=detector.features, time_column=detector.spec.time_column or "auto",
                   label_column=None, require_time=False)
    pending: list = []
    index = 0
    for _, row in iter_rows(lines, options, source, header=header):
        if row is None:
            continue
        pending.append((row.values, index, row.time, row.problem))
        index += 1
        if live or len(pending) >= CHUNK_ROWS:
            for result in scorer.push_rows(pending):
                emit(result, source)
            pending = []
    if pending:
        for result in scorer.push_rows(pending):
            emit(result, source)
    return scorer


def score_source(detector: SensorDetector, source: str, out: IO[str],
                 stdin: IO[str] | None = None, header: list[str] | None = None) -> ScoreSummary:
    """Score a CSV file, a folder of CSVs, or ``-`` (stdin, live) and write JSON lines to ``out``."""
    summary = ScoreSummary()
    started = time.perf_counter()
    live = source == "-"

    def emit(result: Result, name: str) -> None:
        record = result.to_json()
        record["source"] = name
        out.write(json.dumps(record) + "\n")
        if live:
            out.flush()

    if live:
        stream = stdin or sys.stdin
        scorer = score_lines(detector, iter(stream.readline, ""), "stdin", emit, live=True,
                             header=header)
        summary.add(scorer)
    else:
        for path in csv_files(source):
            with open(path, encoding="utf-8-sig", newline="") as handle:
                scorer = score_lines(detector, handle, str(path), emit, header=header)
            summary.add(scorer)
    summary.seconds = time.perf_counter() - started
    return summary


def default_output(path: str | None) -> tuple[IO[str], bool]:
    """The JSON-lines destination: a file opened for writing, or stdout."""
    if path in (None, "-"):
        return sys.stdout, False
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return open(target, "w", encoding="utf-8"), True
