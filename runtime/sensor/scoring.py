"""Scoring sensor sources: CSV files, folders, stdin; one JSON line per window."""

from __future__ import annotations

import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterable

import numpy as np

from ..core import interrupts
from ..core.health import HealthReporter
from ..core.output import JsonLines, OutputError, flush_quietly
from ..core.progress import Progress, silent
from ..core.spec import ArtifactError
from .detector import SensorDetector
from .learned_state import LearnedStateFile
from .streaming import Result, StreamingScorer
from .tables import Line, MissingColumns, csv_files, iter_rows, read_lines

log = logging.getLogger("vigil")

CHUNK_ROWS = 1024
# a file this large reports how much of it was read while it is scored (a month of 1-Hz rows
# of a few columns: minutes of scoring); smaller ones end before a progress line would be due
PROGRESS_FILE_BYTES = 16 * 2**20
PROGRESS_EVERY_ROWS = 4096


ADAPTATION = ("adaptive_threshold", "anomaly_likelihood", "running_normalization")


@dataclass
class ScoreSummary:
    """Totals of a run: every row is used in windows or reported skipped (``rows_skipped``).

    ``stopped`` is ``end``, ``interrupted`` (Ctrl-C or SIGTERM) or ``output_failed`` (the results
    could not be written; ``last_error`` says where it stopped). ``lines_written`` result lines
    reached the output, ``lines_lost`` did not (with ``on_error="continue"``), ``last_written``
    names the row of the last line written.
    """

    sources: int = 0
    files_skipped: int = 0
    rows: int = 0
    windows: int = 0
    alarms: int = 0
    alarm_episodes: int = 0
    rows_filled: int = 0
    rows_skipped: int = 0
    rows_out_of_order: int = 0
    # files (with --state, continued from the one before) whose first row is earlier in time
    # than the latest row of the file before: not its continuation
    files_out_of_order: int = 0
    time_gaps: int | None = None  # steps between rows beyond the model's limit (None: unchecked)
    times_unchecked: int = 0  # rows whose time is no time read here, or not the training's kind
    rows_unseen_inputs: int | None = None  # rows where an input-only column left its training
                                           # values (None: no artifact's record to check)
    unchanged_runs: int | None = None  # scored columns' readings frozen past their limit
                                       # (None: an artifact before 2026-12-07)
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    stopped: str = "end"
    last_error: str | None = None
    # with --state: why the learned state could not be saved, while it cannot (None: saved)
    state_error: str | None = None
    lines_written: int = 0
    lines_lost: int = 0
    last_written: str | None = None
    # the last finished stream's adaptive state (threshold, normalization), for the final report
    adaptation: dict = field(default_factory=dict)
    longest_alarm: dict | None = None  # the longest alarm of any stream, and where
    alarm_on_windows: int = 0  # windows in a row the last stream's alarm was on at its end
    rows_unscored: int = 0  # rows the last stream took since its last window, at its end

    def add(self, scorer: StreamingScorer, source: str | None = None) -> None:
        part = scorer.summary()
        self.alarm_on_windows = scorer.alarm_run
        self.rows_unscored = scorer.rows_unscored
        longest = part.get("longest_alarm")
        if longest is not None and (self.longest_alarm is None
                                    or longest["windows"] > self.longest_alarm["windows"]):
            self.longest_alarm = {"source": source, **longest}
        self.adaptation = {k: part[k] for k in ADAPTATION if k in part}
        self.sources += 1
        self.rows += part["rows"]
        self.windows += part["windows"]
        self.alarms += part["alarms"]
        self.alarm_episodes += part["alarm_episodes"]
        self.rows_filled += part["rows_filled"]
        self.rows_skipped += part["rows_skipped"]
        self.rows_out_of_order += part["rows_out_of_order"]
        if "time_gaps" in part:
            self.time_gaps = (self.time_gaps or 0) + part["time_gaps"]
        self.times_unchecked += part.get("times_unchecked", 0)
        if "rows_unseen_inputs" in part:
            self.rows_unseen_inputs = (self.rows_unseen_inputs or 0) + part["rows_unseen_inputs"]
        if "unchanged_runs" in part:
            self.unchanged_runs = (self.unchanged_runs or 0) + part["unchanged_runs"]

    def to_json(self) -> dict:
        rate = self.windows / self.seconds if self.seconds > 0 else None
        return {"sources": self.sources, "files_skipped": self.files_skipped,
                "rows": self.rows, "windows": self.windows,
                "alarms": self.alarms, "alarm_episodes": self.alarm_episodes,
                "rows_filled": self.rows_filled,
                "rows_skipped": self.rows_skipped, "rows_out_of_order": self.rows_out_of_order,
                "files_out_of_order": self.files_out_of_order,
                "time_gaps": self.time_gaps, "times_unchecked": self.times_unchecked,
                "rows_unseen_inputs": self.rows_unseen_inputs,
                "unchanged_runs": self.unchanged_runs,
                "seconds": round(self.seconds, 4),
                "windows_per_s": round(rate, 1) if rate else None, "errors": self.errors,
                "stopped": self.stopped, "last_error": self.last_error,
                "state_error": self.state_error,
                "lines_written": self.lines_written, "lines_lost": self.lines_lost,
                "last_written": self.last_written, "longest_alarm": self.longest_alarm}


def score_lines(detector: SensorDetector, lines: Iterable[str | Line], source: str,
                emit: Callable[[Result, str], None], live: bool = False,
                header: list[str] | None = None,
                scorer: StreamingScorer | None = None, decimal: str = ".") -> StreamingScorer:
    """Score CSV lines (the first is the header unless ``header`` is given).

    ``live`` scores each row as it arrives; otherwise rows are scored in chunks. Columns are
    matched to the model's features by name, so their order in the file does not matter.
    Pass ``scorer`` to see its counters while the lines are read (it is returned either way).
    Between rows (live) or chunks, a stop request (SIGTERM, Ctrl-C) ends the run: every row read
    by then has its line.
    """
    scorer = scorer or StreamingScorer(detector)
    options = detector.read_options(decimal)
    pending: list = []
    index = 0
    read_header = header is not None

    def flush() -> None:
        """Score the rows read and not yet scored, and hand on their results."""
        if not pending:
            return
        rows = pending[:]
        pending.clear()
        for result in scorer._push_rows(rows):
            emit(result, source)

    def before_each(lines: Iterable[str | Line]) -> Iterable[str | Line]:
        """Live: the rows read are scored before the next line is asked for unless a whole line
        has arrived after them (a backlog: scored together), so no row waits on a read that may
        block, whatever the lines between (blank ones, a header again, a CR before CRLF)."""
        waiting = False
        iterator = iter(lines)
        while True:
            if pending and not waiting:
                flush()
                interrupts.check()  # a stop request, between rows
            try:
                line = next(iterator)
            except StopIteration:
                return
            waiting = isinstance(line, Line) and line.waiting
            yield line

    try:
        for _, row in iter_rows(before_each(lines) if live else lines, options, source,
                                header=header, cut_last_line=live, doubt_last_line=not live):
            read_header = True
            if row is None:
                continue
            if row.cut:
                flush()
                # (iter_rows says why a cut row is cut: it ends mid-line)
                emit(scorer.skip(index, row.time, row.problem or "the line ends mid-line"),
                     source)
                index += 1
                continue
            pending.append((row.values, index, row.time, row.problem))
            index += 1
            if len(pending) >= CHUNK_ROWS:
                flush()
                interrupts.check()
    except KeyboardInterrupt:
        flush()  # every row read by then has its line
        raise
    flush()
    if not read_header and not live:
        raise _empty_file(detector, source)
    if live and scorer.rows_in < detector.spec.window:  # a pipe may close early: said, not an error
        log.warning("%s ended after %s; no window of %d rows was scored", source,
                    f"{scorer.rows_in} data rows" if read_header else "no line (not even a "
                    "header)", detector.spec.window)
    return scorer


def _empty_file(detector: SensorDetector, source: str) -> ValueError:
    return ValueError(f"{source}: the file is empty; expected a header line (the model's "
                      f"columns: {','.join(detector.features)}) and data rows")


def check_header(detector: SensorDetector, path: str | Path,
                 header: list[str] | None = None, decimal: str = ".", rows: bool = True) -> None:
    """ValueError naming ``path`` unless its header (or ``header``, for a file without one)
    holds ``detector``'s columns and, with ``rows``, if it has data rows, one of them can be
    scored, read as ``score_lines`` reads it, and it has the model's window of data rows: a bad
    file (the wrong columns, every row written with decimal commas or in another encoding, too
    short for one window) is found before any output is made or emptied, not halfway. Reading
    stops once a usable row and a window's rows have been read."""
    options = detector.read_options(decimal)
    read_header, first_bad, bad = header is not None, None, 0
    usable, data_rows, window = False, 0, detector.spec.window
    try:
        with open(path, "rb") as handle:
            for _, row in iter_rows(read_lines(handle), options, str(path), header=header,
                                    quiet=True):  # scoring it says what it passes over
                read_header = True  # the header is read and matches
                if not rows:
                    return
                if row is None:
                    continue
                data_rows += 1
                if row.problem is None and not row.cut and np.isfinite(row.values).all():
                    usable = True
                else:
                    bad += 1
                    first_bad = first_bad or row
                if usable and data_rows >= window:
                    return
    except OSError as error:
        raise ValueError(f"{path}: cannot be read ({error.strerror or error})") from None
    if read_header and (usable or data_rows == 0):
        raise ValueError(f"{path}: {data_rows} data row{'s' if data_rows != 1 else ''}, fewer "
                         f"than the model's window of {window} rows: no window can be scored; "
                         f"expected at least {window} rows (score a longer recording of the same "
                         f"columns)")
    if first_bad is not None:
        numbers = ("; expected a plain number in each of the model's columns (a unit or text "
                   "beside it is not read: strip it from the cells first, or export the "
                   "readings without units)" if first_bad.problem
                   and "non-numeric value" in first_bad.problem
                   and "decimal comma" not in first_bad.problem else "")
        raise ValueError(f"{path}: none of its {bad} data rows can be scored; the first, line "
                         f"{first_bad.number}: {first_bad.problem or 'it was cut off'}{numbers}")
    if not read_header:  # with the columns given, an empty file is no error (score_lines)
        raise _empty_file(detector, str(path))


def check_source(detector: SensorDetector, source: str, header: list[str] | None = None,
                 decimal: str = ".") -> None:
    """ValueError unless at least one CSV of ``source`` (a file or a folder) has the model's
    columns in its header, so that a run that could score nothing never opens its results file,
    health report or message-bus connection. A folder's other bad files are skipped while it is
    scored, each named in the summary."""
    files = csv_files(source, "source")
    problems: list[ValueError] = []
    for path in files:
        try:
            check_header(detector, path, header, decimal)
        except ValueError as error:
            problems.append(error)
        else:
            return
    first = str(problems[0])
    if isinstance(problems[0], MissingColumns) and header is None:
        first += (f" (a file without a header line: vigil score MODEL {shlex.quote(str(source))} "
                  f"--columns {shlex.quote(','.join(detector.features))}, the file's columns in "
                  f"their order)")
    if len(problems) == 1:
        raise ValueError(first)
    raise _nothing_to_score(source, len(files), first)


def _nothing_to_score(source: str, files: int, first: str) -> ValueError:
    return ValueError(f"{source}: none of its {files} files could be scored; the first: {first}")


def score_source(detector: SensorDetector, source: str, out: IO[str] | JsonLines,
                 stdin: IO[str] | None = None, header: list[str] | None = None,
                 health: HealthReporter | None = None, decimal: str = ".",
                 state: LearnedStateFile | None = None,
                 progress: Progress = silent) -> ScoreSummary:
    """Score a CSV file, a folder of CSVs, or ``-`` (stdin, live) and write JSON lines to ``out``.

    ``out`` is a text stream or a ``JsonLines`` (which says what happens when writing fails). A
    failed write ends the run with ``stopped="output_failed"`` (or, with ``on_error="continue"``,
    is counted in ``lines_lost``); Ctrl-C ends it with ``stopped="interrupted"``. ``health``
    reports progress while the run goes on and once at its end. With ``state``, each stream
    continues what was learned before it (the file's, then the previous file's) and the file
    keeps what it learns (``LearnedStateFile``); without it each file starts from the artifact.
    ``progress`` hears how many MB of each file of ``PROGRESS_FILE_BYTES`` or more were read.
    """
    summary = ScoreSummary()
    started = time.perf_counter()
    live = source == "-"
    sink = out if isinstance(out, JsonLines) else JsonLines(out, live=live)
    sink.time_key = detector.spec.time_column
    current: list[StreamingScorer] = []

    short: list[str] = []  # files that ended before the adaptive parts warmed up
    reading: dict = {}  # a long file's handle, size and progress stage, while it is read
    # rows filled in this run (in the files before this one, and so far), and when to say so again
    filled = {"count": 0, "before": 0, "next": 1}

    def problem(text: str) -> None:  # a silenced lasting alarm (the scorer's watch says it)
        summary.last_error = text

    if state is not None:  # why it cannot be saved, while it cannot: a field of its own
        state.on_problem = lambda why: setattr(summary, "state_error", why)
        state.on_saved = lambda: setattr(summary, "state_error", None)

    def emit(result: Result, name: str) -> None:
        if state is not None and current:
            state.save_if_due(current[0])
        if reading:  # counted by lines: with a stride, window ends fall on rows of one parity
            reading["lines"] += 1
            if reading["lines"] % PROGRESS_EVERY_ROWS == 0:
                progress(reading["stage"], min(reading["handle"].tell() >> 20, reading["mb"]),
                         reading["mb"])
        record = result.to_json(name)
        if result.skipped is not None:
            summary.last_error = f"row {result.index} of {name}: {result.skipped}"
        elif result.filled:  # a reading replaced by the row before's: said, not only counted
            summary.last_error = f"row {result.index} of {name}: {result.problem or 'filled'}"
            # counted as their lines are written (the scorer's own count runs ahead by a chunk
            # read: a review's warning at row 57 said 29 rows where one line was marked)
            filled["count"] += 1
            if filled["count"] >= filled["next"]:  # the 1st, 10th, 100th, ...: weeks stay quiet
                filled["next"] *= 10
                log.warning("%s: row %d filled from the row before (%s); %d row(s) filled so far "
                            "in this run, each line marked filled, counted in the summary's "
                            "rows_filled; said again at %d", name, result.index,
                            result.problem or "a missing reading", filled["count"],
                            filled["next"])
        sink.write(record, mark=f"row {result.index} of {name}")
        if current:  # what the results say over time, as their lines are written (in chunks
            current[0].watch.see(result)  # the scorer runs a chunk ahead of its lines)

    before: list[tuple[StreamingScorer, str]] = []  # with --state: the file continued
    # with --state: whether a file was refused since it (a hole in the stream: the next file
    # takes what was learned, and its window only where its first time follows the last file's
    # within the model's time-step limit, as after a restart)
    refused = [False]

    def run(lines: Iterable[str | Line], name: str) -> None:
        scorer = StreamingScorer(detector)
        scorer.source = name  # its warnings name the file
        # each file's rows, gaps and alarms are its own, watched here as each line is written
        # (a silenced alarm's last_error after the lines before it: review hE, session 61)
        scorer.watching = False
        scorer.watch.on_problem = problem
        if state is not None and before and not refused[0]:  # rotated logs: one stream
            scorer.continue_from(before[0][0])
        elif state is not None:
            state.restore(scorer)
        current[:] = [scorer]
        try:
            score_lines(detector, lines, name, emit, live=live, header=header, scorer=scorer,
                        decimal=decimal)
        finally:
            current.clear()  # first, so a health report never counts this file twice
            summary.add(scorer, name)
            filled["before"] += scorer.rows_filled
            if filled["before"] and filled["next"] == 1:  # filled rows, none with a line
                filled["next"] = 10
                log.warning("%s: %d row(s) filled from the row before, before any window was "
                            "scored (counted in the summary's rows_filled)", name,
                            scorer.rows_filled)
            if state is not None:
                state.save(scorer)
                if before and scorer.starts_before(before[0][0]):
                    _say_not_continued(scorer, name, *before[0], summary)
                if scorer.rows_in:  # a file refused before its rows is no part of the stream
                    before[:] = [(scorer, name)]
                    refused[0] = False
        warmup = _warmup_windows(detector)
        if warmup and scorer.windows_scored < warmup:
            short.append(name)
        window = detector.spec.window
        if not live and scorer.rows_in < window and not scorer.windows_scored:
            note = (f"{name}: {scorer.rows_in} data rows, fewer than the model's window of "
                    f"{window}: no window could be scored")
            summary.errors.append(note)
            log.warning("%s", note)

    files = [] if live else csv_files(source, "source")
    if health is not None:
        health.start("sensor", source, lambda: _counts(summary, current, sink), "rows_in")
    failure: BaseException | None = None
    try:
        if live:
            lines_in = stdin or sys.stdin
            if lines_in is None:  # started with it closed (<&-): an AttributeError before
                raise ValueError("standard input is closed, so no rows can be read from `-`; "
                                 "pipe rows in (... | vigil score MODEL -) or give a CSV file")
            run(_live_lines(lines_in), "stdin")
            if health is not None:  # unattended: the end of a live input is worth a word
                log.warning("stdin ended after %d rows: the run ends here (exit 0; `vigil "
                            "health-check` reports it as a fault, so that a watchdog restarts "
                            "it); if a process feeds it, it has closed its output or exited: "
                            "restart the pipeline", summary.rows)
        else:
            for path in files:
                try:
                    with open(path, "rb") as handle:
                        size = os.fstat(handle.fileno()).st_size
                        if size >= PROGRESS_FILE_BYTES:
                            reading.update(handle=handle, mb=size >> 20, lines=0,
                                           stage=f"scoring {path.name}, MB read")
                            progress(reading["stage"], 0, reading["mb"])
                        try:
                            run(read_lines(handle), str(path))
                        finally:
                            reading.clear()
                        if size >= PROGRESS_FILE_BYTES:  # read whole
                            progress(f"scoring {path.name}, MB read", size >> 20, size >> 20)
                except (BrokenPipeError, ArtifactError):
                    raise  # the reader of standard output went away, or the model is at fault
                except (ValueError, OSError) as error:  # a bad header, an unreadable file
                    if len(files) == 1:
                        raise ValueError(str(error) if isinstance(error, ValueError) else
                                         f"{path}: cannot be read ({error})") from None
                    summary.files_skipped += 1
                    refused[0] = True
                    reason = f"{path}: skipped, {error}" if isinstance(error, OSError) else \
                        f"skipped: {error}"
                    summary.errors.append(reason)
                    summary.last_error = reason
                    log.error("%s; the other files go on", reason)
            if files and summary.files_skipped == len(files):
                raise _nothing_to_score(source, len(files), summary.errors[0])
            _say_separate_streams(detector, source, short, len(files), state)
        sink.flush()
        # the input was read to its end: the output exists even without a line; a stdin that
        # gave no line (empty, or fewer rows than a window) is no run: an old output stays
        if not live or sink.lines_written:
            sink.commit()
    except OutputError as error:
        summary.stopped, summary.last_error = "output_failed", str(error)
    except KeyboardInterrupt:
        summary.stopped = "interrupted"
        flush_quietly(sink, summary)
    except BaseException as error:
        failure = error
        raise
    finally:
        summary.seconds = time.perf_counter() - started
        summary.lines_written, summary.lines_lost = sink.lines_written, sink.lines_lost
        summary.last_written = sink.last_written
        if sink.error and summary.stopped != "output_failed":
            summary.errors.append(sink.error)
        if health is not None:
            health.stop_after(summary.stopped, failure)
    return summary


def _say_not_continued(scorer: StreamingScorer, name: str, earlier: StreamingScorer,
                       earlier_name: str, summary: ScoreSummary) -> None:
    """Warn where a file given ``--state`` learned from the file before it although it starts
    earlier in time than that one ended: another machine's file, or the files out of order."""
    first, latest = scorer.first_time, earlier.latest_time
    if first is None or latest is None:  # (starts_before compared them: both are known)
        return
    summary.files_out_of_order += 1
    if summary.files_out_of_order > 1:
        return  # counted in the summary's files_out_of_order; said once a run
    (row, time), (last_row, last_time) = first, latest
    log.warning("%s: its first time (%r, row %d) is earlier than %s's latest (%r, row %d), yet "
                "--state carried what was learned from that file into this one, as if it "
                "continued it (compared within a run, on dates: ISO 8601 or epoch seconds): "
                "where the folder holds several machines' files, score each "
                "machine's with its own --state FILE (vigil score MODEL FOLDER/MACHINE --state "
                "MACHINE.json); files are read in their names' order (day2 before day10), so "
                "name them so that it is their order in time (further such files are counted in "
                "files_out_of_order)", name, time, row, earlier_name, last_time, last_row)


def _warmup_windows(detector: SensorDetector) -> int:
    """Windows a stream needs before the artifact's adaptive threshold or likelihood applies
    (the larger; 0 without either)."""
    spec = detector.spec
    return max(spec.adaptive.warmup if spec.adaptive is not None else 0,
               spec.likelihood.warmup if spec.likelihood is not None else 0)


def _say_separate_streams(detector: SensorDetector, source: str, short: list[str], files: int,
                          state: LearnedStateFile | None) -> None:
    """Warn once where a folder's files, each a stream of its own, mostly ended before what
    adapts to a stream had warmed up: rotated logs of one sensor want ``--state``."""
    if state is not None or files < 2 or len(short) * 2 < files:
        return
    log.warning("%s: %d of its %d files ended before the adaptive threshold and likelihood "
                "had learned their %d windows: each file is a stream of its own, started from "
                "the artifact; if they are one sensor's logs in turn (rotated), score them as "
                "one stream with --state FILE, which carries what is learned from each to the "
                "next", source, len(short), files, _warmup_windows(detector))


def _counts(summary: ScoreSummary, current: list[StreamingScorer], sink: JsonLines) -> dict:
    scorers = list(current)  # read once: the scoring thread may clear it meanwhile
    part = scorers[0].summary() if scorers else {}
    counts = {
        "rows_in": summary.rows + part.get("rows", 0),
        "windows": summary.windows + part.get("windows", 0),
        "rows_skipped": summary.rows_skipped + part.get("rows_skipped", 0),
        "rows_filled": summary.rows_filled + part.get("rows_filled", 0),
        "rows_out_of_order": summary.rows_out_of_order + part.get("rows_out_of_order", 0),
        "time_gaps": (None if summary.time_gaps is None and "time_gaps" not in part
                      else (summary.time_gaps or 0) + part.get("time_gaps", 0)),
        "times_unchecked": summary.times_unchecked + part.get("times_unchecked", 0),
        # rows where an input-only column left its training values (None: nothing to check)
        "rows_unseen_inputs": (None if summary.rows_unseen_inputs is None
                               and "rows_unseen_inputs" not in part
                               else (summary.rows_unseen_inputs or 0)
                               + part.get("rows_unseen_inputs", 0)),
        "unchanged_runs": (None if summary.unchanged_runs is None
                           and "unchanged_runs" not in part
                           else (summary.unchanged_runs or 0) + part.get("unchanged_runs", 0)),
        "alarms": summary.alarms + part.get("alarms", 0),
        "alarm_episodes": summary.alarm_episodes + part.get("alarm_episodes", 0),
        # windows in a row the current alarm has been on (0: none), for a watchdog's "still?"
        "alarm_on_windows": scorers[0].alarm_run if scorers else summary.alarm_on_windows,
        # rows taken since the last one that completed a window: nothing is detected meanwhile
        "rows_unscored": scorers[0].rows_unscored if scorers else summary.rows_unscored,
        "lines_written": sink.lines_written,
        "lines_lost": sink.lines_lost,
        "last_error": sink.error or summary.last_error,
        "state_error": summary.state_error,
    }
    # what the current stream (or, between streams, the last one) learned, and where it stands
    counts.update({k: part[k] for k in ADAPTATION if k in part} if scorers else summary.adaptation)
    return counts


def _live_lines(stream) -> Iterable[str | Line]:
    """Lines of a live text stream, read as bytes where it has them (bad bytes end only a row)."""
    binary = getattr(stream, "buffer", None)
    if binary is not None:
        yield from read_lines(binary, live=True)
        return
    while True:
        with interrupts.waiting():
            line = stream.readline()
        if not line:
            return
        yield line
