"""Streaming scoring: rows arrive one by one, a result leaves as soon as each window completes."""

from __future__ import annotations

import copy
import logging
import math
import sys
import time as clock
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping

import numpy as np

from ..core.detector import Detector
from ..core.results import decide_line, present, result_line, skip_line
from ..core.spec import FLOAT32_MAX, MAX_RUN_ROWS, InputRange, SteadyRun, TimeStepSpec, jsonable
from .alarms import AdaptiveThreshold, AnomalyLikelihood
from .detector import MAX_BATCH_VALUES, SensorDetector
from .drift import RunningNormalization
from .stream_watch import LASTING_ALARM_WINDOWS, REWARN_S, StreamWatch
from .tables import Row, time_key

log = logging.getLogger("vigil")

# A score that overflowed float32 (readings far beyond anything seen in training, 1e20 say) is
# written as the largest finite double with ``score_overflow``: above any threshold, and valid JSON.
OVERFLOW_SCORE = sys.float_info.max


def finite_or_max(value: float) -> float:
    return float(value) if np.isfinite(value) else (OVERFLOW_SCORE if value > 0 or np.isnan(value)
                                                    else -OVERFLOW_SCORE)


@dataclass(frozen=True)
class Result:
    """The decision for the window ending at data row ``index``, or why that row was skipped."""

    index: int
    time: str | None
    score: float | None = None
    above_threshold: bool = False
    anomaly: bool = False
    top_features: tuple[tuple[str, float], ...] = ()
    filled: bool = False
    skipped: str | None = None
    out_of_order: bool = False
    time_gap: bool = False  # the window holds two rows further apart than the training's limit
    score_overflow: bool = False
    problem: str | None = None  # why a filled row's values were replaced
    threshold: float | None = None  # the threshold this window was compared with, where it
                                    # varies (adaptive, or floored by the likelihood's level)
    alarm_start: bool = False  # this window's alarm starts a new episode (notify here)
    surprise: float | None = None  # the anomaly likelihood's z of the recent scores' mean
    filled_in_window: int = 0  # rows of this window filled from the last good row: a run of
                               # repeated rows can look anomalous in itself
    # (feature, reading, trained low, trained high) of input-only columns (constant, binary or
    # categorical in training: not scored) that left their training range in this window's
    # newest such row: a change the score does not see
    # (feature, reading, training low, high) of each input-only column outside its training
    # values, and beside each, a binary or categorical column's training levels (else None)
    unseen_inputs: tuple[tuple[str, float, float, float], ...] = ()
    unseen_levels: tuple[tuple[float, ...] | None, ...] = ()
    # (feature, reading, rows unchanged, training's longest unchanged run) of each scored column
    # whose reading, at the latest row of this window where one was, had stayed unchanged for
    # STEADY_FACTOR times its longest run in training or longer (a stuck or disconnected sensor)
    unchanged: tuple[tuple[str, float, int, int], ...] = ()

    def to_json(self, source: str | None = None) -> dict:
        """This window's result line (``core.results``), naming ``source`` where given."""
        record = result_line("index", self.index, source, timestamp=self.time,
                             out_of_order=self.out_of_order)
        if self.skipped is not None:
            return skip_line(record, self.skipped)
        if self.score is None:
            raise ValueError(f"a Result is skipped (with its reason) or scored (with its score); "
                             f"row {self.index}'s has neither")
        decide_line(record, self.score, self.anomaly, above_threshold=self.above_threshold)
        record.update(present(dict(alarm_start=self.alarm_start, threshold=self.threshold,
                                   surprise=self.surprise, time_gap=self.time_gap,
                                   score_overflow=self.score_overflow)))
        if self.anomaly or self.above_threshold:
            record["why"] = [{"feature": f, "contribution": round(finite_or_max(c), 6)}
                             for f, c in self.top_features]
        if self.filled:
            record.update(present(dict(filled=True, problem=self.problem or None)))
        if self.filled_in_window:
            record["filled_in_window"] = self.filled_in_window
        if self.unseen_inputs:
            levels = self.unseen_levels or (None,) * len(self.unseen_inputs)
            record["unseen_inputs"] = [
                {"feature": f, "value": finite_or_max(v), "trained": [low, high],
                 **({"levels": list(known)} if known is not None else {})}
                for (f, v, low, high), known in zip(self.unseen_inputs, levels)]
        if self.unchanged:
            record["unchanged"] = [{"feature": f, "value": finite_or_max(v), "rows": n,
                                    "trained_longest": longest}
                                   for f, v, n, longest in self.unchanged]
        return record


def unchecked_times_note(unchecked: tuple[int, str, str]) -> str:
    """What the first time cell a scorer could not check (its ``first_time_unchecked``: row,
    cell, why) was, and what that means."""
    index, text, why = unchecked
    return (f"row {index}'s time {text[:40]!r} is {why}: rows with such times are not checked "
            f"for order or gaps in time (counted in the summary's times_unchecked); times are "
            f"read as numbers (epoch seconds) or ISO 8601 (2020-02-08 14:24:17, an optional "
            f"zone), of the kind the model was trained on")


# A scored column whose reading stays unchanged for STEADY_FACTOR times its longest unchanged run
# in the normal training rows, and for at least STEADY_MIN_ROWS rows, is flagged (``unchanged``):
# a frozen reading at a normal level forecasts itself and scores as normal. Chosen on SKAB,
# SMD, ECG and NAB with each benchmark's split (docs/quality.md, "Readings that stop changing"):
# no SKAB run is flagged; the others' are flat lines (NAB's labeled art_daily_flatmiddle, an ECG
# lead at its converter's floor, server metrics and key counts at 0).
STEADY_FACTOR = 4
STEADY_MIN_ROWS = 64
UNCHANGED_PART = "unchanged_readings"  # their runs so far, in a learned state
# the window's last rows, its alarm and episode and the latest time, in a learned state: a
# restarted run whose first row follows within the time step's limit continues the window
TAIL_PART = "window_tail"
EPOCH_SECONDS = (1e8, 1e11)  # numeric times in this range are epoch seconds (1973-5138), and
# from its top on epoch milliseconds: dates; smaller ones elapsed seconds or counters


def _date_seconds(key: tuple[int, float] | None) -> float | None:
    """A time key as epoch seconds where it is a date (ISO 8601, or a number of epoch seconds
    or milliseconds, ``EPOCH_SECONDS``), else None."""
    if key is None:
        return None
    kind, value = key
    if kind == 1 or EPOCH_SECONDS[0] <= value < EPOCH_SECONDS[1]:
        return value
    return value / 1000 if value >= EPOCH_SECONDS[1] else None


class StreamingScorer:
    """Keeps the last ``window`` rows in a ring buffer and scores each completed window.

    Rows with missing or invalid cells are filled from the last good row for up to the model's
    ``max_gap`` rows in a row (flagged ``filled``); a longer gap restarts the window, and each
    row in it is reported as skipped with the reason. Nothing is dropped silently.

    Rows are scored in the order they arrive; nothing is reordered or held back. A row whose
    timestamp (a number or ISO 8601) is earlier than one among the last ``window`` rows is counted
    in ``rows_out_of_order``, and every window that contains it is flagged ``out_of_order`` (as is
    its own line if it is skipped). Repeated timestamps are not out of order. Comparing with the
    last ``window`` rows only bounds the effect of one wild timestamp (a clock jump to 2099): it
    marks at most ``window`` later rows, not the rest of the run.

    Where the artifact records the training rows' time step (``spec.time_step``), a step from
    the latest time of the last ``window`` rows beyond its ``limit`` is a gap in the record (a
    late row is out of order, not a gap): it is counted in ``time_gaps`` (the first in
    ``first_time_gap``, the latest in ``last_time_gap``) and every window holding both rows is
    flagged ``time_gap``, since it joins readings from before and after the gap. Scores are not
    changed.

    A time cell that is no time this reader knows (neither a number nor ISO 8601), or of another
    kind than the training rows' (a number among ISO times), cannot be checked for order or gaps:
    such rows are counted in ``times_unchecked`` (the first in ``first_time_unchecked``).
    """

    def __init__(self, detector: Detector, top_k: int = 3) -> None:
        # (any detector, as vigil.load returns one: a camera's is refused below, so that code
        # that loads and streams type-checks without narrowing first; review u2)
        if not isinstance(top_k, (int, np.integer)) or isinstance(top_k, bool) or top_k < 0:
            raise ValueError(f"`top_k` must be a whole number >= 0 (features named in an alarm's "
                             f"`why`); received {top_k!r}")
        if not isinstance(detector, SensorDetector):
            raise TypeError(f"`detector` must be a sensor detector, as vigil.load('MODEL.onnx') "
                            f"returns for a sensor artifact; received {type(detector).__name__} "
                            f"{str(detector)[:80]!r}")
        self.detector = detector
        self.window, self.features = detector.input_shape
        self.stride = detector.spec.stride
        self.max_gap = detector.spec.max_gap
        self.top_k = top_k
        self.source: str | None = None  # the stream's name (a file), given in its warnings
        self._ring = np.zeros((2 * self.window, self.features), dtype=np.float32)
        # completed windows scored together at most (long windows: fewer, MAX_BATCH_VALUES)
        self._windows_per_run = max(1, MAX_BATCH_VALUES // (self.window * self.features))
        self._decider = detector.alarm_decider()
        spec = detector.spec
        # with running normalization each window is scored as soon as it completes: what the
        # next row is normalized with depends on whether this window alarmed
        self._drift = (RunningNormalization(spec.running_normalization, spec.mean, spec.std)
                       if spec.running_normalization is not None else None)
        self._alarm_on = False
        # (rows_in, key, index) of recent timed rows, keys falling
        self._recent_times: deque[tuple[int, tuple[int, float], int]] = deque()
        self._time_step = spec.time_step
        self.time_gaps = 0
        self.steps_compared = 0  # steps between timed rows compared with the limit
        # rows whose time cell could not be compared: (row, its cell, why) of the first
        self.times_unchecked = 0
        self.first_time_unchecked: tuple[int, str, str] | None = None
        # the first such time is warned of here, once a stream (`vigil eval` says it itself, in
        # its file's summary, and turns this off): a Python caller pushing epoch numbers to a
        # model trained on ISO times lost its gap and order checks without a word
        self.say_unchecked_times = True
        # what the results say over time (rows unscored, gaps, lasting and silenced alarms) is
        # said as they leave (`vigil eval`, which reports a whole file at once, turns it off)
        self.watch = StreamWatch(self)
        self.watching = True
        # (row before, row after, step) of the stream's first and latest gap in time
        self.first_time_gap: tuple[int, int, float] | None = None
        self.last_time_gap: tuple[int, int, float] | None = None
        self._warned_shape = False  # a row of another width than the model's is warned of once
        self._inputs = input_check(spec.input_ranges)  # input-only columns' training values
        # the artifact records them (none, or some): the count is 0, not unknown, without any
        self._inputs_recorded = "input_ranges" in spec.training
        self.rows_unseen_inputs = 0  # rows where one of them left its training range
        self._steady = steady_check(spec.steady_runs)  # scored columns' limits of unchanged rows
        self._steady_recorded = "steady_runs" in spec.training  # else unknown, not 0
        self.unchanged_runs = 0  # runs of one reading that reached their column's limit
        # (row, feature, reading, limit) of the first; (when said, the count then) of the latest
        self.first_unchanged: tuple[int, str, float, int] | None = None
        self._unchanged_said: tuple[float, int] | None = None
        # the scored columns' last readings and the rows each has been unchanged (kept across
        # window restarts: a frozen reading behind bursts of blank cells stays frozen), and the
        # last row at a limit: (its position once buffered, what it flags)
        self._steady_last: np.ndarray | None = None
        self._steady_rows: np.ndarray | None = None
        self._unchanged_at: tuple[int, tuple[tuple[str, float, int, int], ...]] | None = None
        self._tail: dict | None = None  # a restored window's last rows, taken at the first row
        # the latest time of the stream this one continues (``continue_from``), for its tail
        self._carried_latest: tuple[int, float] | None = None
        self.reset()
        self.rows_in = 0
        self.windows_scored = 0
        self.rows_skipped = 0
        self.rows_filled = 0
        self.rows_out_of_order = 0
        self._late_said: tuple[float, int] | None = None  # when, and at which count, last said
        # (row, cell) of the stream's first timed row and of its latest time (of the first
        # row's kind): where a file continues another (``--state``), its first row should not
        # be earlier than the other's latest
        self.first_time: tuple[int, str] | None = None
        self.latest_time: tuple[int, str] | None = None
        self._first_key: tuple[int, float] | None = None
        self._latest_key: tuple[int, float] | None = None
        self.alarms = 0
        self.episodes = 0
        self._next_index = 0
        self.alarm_run = 0  # windows in a row the current alarm has been on (0: none is on)
        self.alarm_first_row = -1  # the row whose window began the current alarm
        # the stream it began in, where that is one this stream continues (None: this one)
        self.alarm_began_in: str | None = None
        # (windows, first row, last row, the stream of the first row where it is an earlier one)
        self.longest_alarm: tuple[int, int, int, str | None] | None = None
        # the latest alarm that lasted LASTING_ALARM_WINDOWS: (its first row, the row it got there)
        self.lasting_alarm: tuple[int, int] | None = None
        self._rows_at_window = 0  # rows_in when the last window was completed

    def reset(self) -> None:
        """Forget buffered rows (after a long gap): the next window needs ``window`` new rows.
        The stream's counts, timestamps and what it learned stay: another stream (the next file)
        needs a ``StreamingScorer`` of its own."""
        self._filled_rows = 0
        self._fill_positions: deque[int] = deque()  # positions of filled rows, oldest first
        # the last row with unseen inputs: (its position, what left its values, their levels)
        self._unseen_at: tuple[int, tuple, tuple] | None = None
        self._position = 0
        self._bad_streak = 0
        self._last_good: np.ndarray | None = None
        self._disorder_until = -1  # windows ending at positions up to this hold a late row
        self._gap_until = -1  # windows ending at positions up to this span a gap in time
        # (row, time key) of the last timed row buffered since the window restarted
        self._last_time: tuple[int, tuple[int, float]] | None = None
        self._unchanged_at = None  # (a position of the windows before: the counts stay)
        self._decider.reset()  # the adaptive threshold (and running normalization) keep what
        self._alarm_on = False  # they learned
        self.alarm_run = 0

    @property
    def rows_unscored(self) -> int:
        """Rows taken since the last one that completed a window (skipped rows, and rows of a
        window still filling): while it grows past a window, nothing is detected."""
        return self.rows_in - self._rows_at_window

    def push(self, values: Any, index: int | None = None, time: object = None,
             problem: str | None = None) -> list[Result]:
        """Add one row; returns the result of the window it completes, if any. ``index`` numbers
        the row in results (default: one past the last row pushed, from 0). ``values`` is the
        model's features in order, or a dict or pandas Series of them by name. ``time`` is the
        row's timestamp as the CSV would hold it: ISO 8601 text or a number, or a ``datetime``,
        pandas ``Timestamp`` or ``numpy.datetime64`` (written in ISO 8601)."""
        if index is not None and (not isinstance(index, (int, np.integer))
                                  or isinstance(index, bool)):
            raise TypeError(f"`index` must be a whole number (the row's number in results) or "
                            f"None; received {type(index).__name__} {index!r}")
        readings, text, problem = self._converted(values, time, problem)
        return self._push_rows([(readings, self._next_index if index is None else index, text,
                                 problem)])

    def _converted(self, values: Any, time: object, problem: str | None
                   ) -> tuple[object, str | None, str | None]:
        """A row as ``push`` and ``push_rows`` take it (named entries read by name, any time
        type), as the rows of a parsed CSV are: float32 readings, the time as text. Readings
        that are no flat row of numbers come back as given, for ``_push_rows`` to refuse."""
        text = _time_text(time)
        try:
            in_order = self.detector.row_by_name(values)
        except ValueError as error:
            # a named row without one of the features (a column dropped upstream) is skipped
            # and the window restarts, as a row of another width is: raised, a caller that
            # caught it joined the rows around it and numbered the later ones one short
            return np.empty(0, dtype=np.float32), text, str(error)
        readings: object
        try:
            readings = _as_float32(in_order)
        except (TypeError, ValueError):
            # only such cells are filled, as in a CSV
            readings, cells = self._cell_by_cell(in_order)
            problem = problem or cells
        return readings, text, problem

    def _cell_by_cell(self, values) -> tuple[object, str | None]:
        """A row with a cell that is no number: its numbers, NaN in each such cell, and what is
        wrong with them, as the CSV reader says it; the row as it was where it is no flat
        sequence of the model's length (``push_rows`` says why)."""
        flat = getattr(values, "ndim", 1) == 1  # a list's cells are looked at one by one
        cells = (values.tolist() if hasattr(values, "tolist")  # an array, a pandas Series
                 else list(values) if isinstance(values, (list, tuple)) else None)
        if cells is None or not flat or len(cells) != self.features:
            return values, None
        numbers, bad = [], []
        for name, cell in zip(self.detector.features, cells):
            try:
                if isinstance(cell, (list, tuple, dict, set)) or np.ndim(cell) != 0:
                    raise TypeError("not one value")
                numbers.append(float(_as_float32(cell)))
            except (TypeError, ValueError):
                numbers.append(float("nan"))
                bad.append(name)
        if not bad:
            return np.asarray(numbers, dtype=np.float32), None
        first = cells[self.detector.features.index(bad[0])]
        problem = f"column {bad[0]!r} has non-numeric value {str(first)[:40]!r}" + (
            f" (other unreadable cells: {bad[1:]})" if len(bad) > 1 else "")
        return np.asarray(numbers, dtype=np.float32), problem

    def skip(self, index: int, time: str | None, reason: str) -> Result:
        """Count a row that cannot be used at all (cut off mid-line) without touching the window."""
        self._next_index = index + 1  # a following push() without an index numbers the next row
        self.rows_in += 1
        self.rows_skipped += 1
        result = Result(index, time, skipped=reason)
        if self.watching:
            self.watch.see(result)
        return result

    def push_parsed(self, rows: Iterable[Row], first_index: int) -> list[Result]:
        """Add parsed rows numbered from ``first_index``; results of all windows they complete."""
        return self._push_rows(
            (row.values, first_index + k, row.time, row.problem) for k, row in enumerate(rows)
        )

    def push_rows(self, rows: Iterable[tuple[Any, int, object, str | None]]) -> list[Result]:
        """Add rows ``(values, index, time, problem)``, each as ``push`` takes one (named
        entries by name, any time type); windows they complete are scored together."""
        converted = []  # every row first: one that cannot be read is refused before any is taken
        for k, row in enumerate(rows):
            # a list as well (rows back from JSON or a queue); not a row of four readings
            if (isinstance(row, tuple) and len(row) == 4 and np.ndim(row[0]) == 0
                    and not isinstance(row[0], Mapping)
                    and isinstance(row[1], (int, np.integer)) and not isinstance(row[1], bool)
                    and (row[3] is None or isinstance(row[3], str))):
                example = ", ".join(["0.5"] * min(self.features, 3)) + (
                    ", ..." if self.features > 3 else "")
                raise TypeError(f"`rows[{k}]`'s values must be a sequence of the row's "
                                f"{self.features} reading(s), one per feature in the model's "
                                f"order (e.g. [{example}]), or a mapping by name; received "
                                f"{type(row[0]).__name__} {row[0]!r}")
            if (not isinstance(row, (tuple, list)) or len(row) != 4
                    or (np.ndim(row[0]) == 0 and not isinstance(row[0], Mapping))):
                raise TypeError(f"`rows[{k}]` must be a tuple (values, index, time, problem): "
                                f"the readings as push takes them, the row's number, its time "
                                f"or None, and why it was filled or None; received "
                                f"{type(row).__name__} {str(row)[:80]} (plain readings: "
                                f"push_rows((r, i, None, None) for i, r in enumerate(rows)))")
            values, index, time, problem = row
            if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
                raise TypeError(f"a row's `index` must be a whole number (the row's number in "
                                f"results); received {type(index).__name__} {index!r}")
            readings, text, problem = self._converted(values, time, problem)
            converted.append((readings, int(index), text, problem))
        return self._push_rows(converted)

    def _push_rows(
        self, rows: Iterable[tuple[object, int, str | None, str | None]]
    ) -> list[Result]:
        """Add rows already read (float32 readings, times as text, as a parsed CSV gives them,
        or readings that are no row of numbers: skipped with the reason); windows they complete
        are scored together."""
        if self._decider.made_for != self.detector._decider_key():
            raise ValueError("the detector's alarm rule changed after this StreamingScorer was "
                             "made (its likelihood turned on or off): the stream's decider "
                             "follows the rule it was made under; make a new "
                             "StreamingScorer(detector) after changing it")
        pending: list[tuple] = []  # slot, index, time, filled (its problem or None), late
        batch: list[np.ndarray] = []
        out: list[Result | None] = []
        for given, index, time, problem in rows:
            self.rows_in += 1
            self._next_index = index + 1
            key = time_key(time) if time else None
            if self._tail is not None:
                tail, self._tail = self._tail, None
                self._take_tail(tail, key, index)
            # (an empty time cell too: a device whose clock field is blank loses its order and
            # gap checks, which went unsaid; review r1)
            if time is not None and (key is None or (
                    self._time_step is not None
                    and key[0] != (0 if self._time_step.numeric else 1))):
                self._note_unchecked(index, time, key)
            late, latest = self._late(key, index) if time else (False, None)
            if key is not None and time is not None:  # (a key is read from a time)
                if self._first_key is None:
                    self._first_key, self.first_time = key, (index, time)
                if key[0] == self._first_key[0] and (self._latest_key is None
                                                     or key[1] > self._latest_key[1]):
                    self._latest_key, self.latest_time = key, (index, time)
            if late and latest is not None and self.rows_out_of_order == 1:
                self._late_said = (clock.monotonic(), 1)
                log.warning("%srow %d: its time %r is earlier than row %d's, among the %d rows "
                            "before it: rows are scored in the order they arrive, so windows "
                            "holding it join readings out of time order (flagged out_of_order; "
                            "further such rows are counted in rows_out_of_order; said again at "
                            "most once an hour). One step back is a clock set back (an NTP step, "
                            "a daylight-saving change in local times without a zone); where most "
                            "rows go back, the file is written newest first and is scored "
                            "backwards: reverse its data rows first ({ head -n 1 F; tail -n +2 F "
                            "| sed '$a\\' | tac; } > oldest-first.csv), as vigil train asks of "
                            "such a file", self._named(), index, time, latest[0], self.window)
            elif late and latest is not None and self._late_said is not None \
                    and clock.monotonic() - self._late_said[0] >= REWARN_S:
                # weeks of a stream: a new clock step is said again, not only counted
                log.warning("%srow %d: its time %r is earlier than row %d's: %d more row(s) out of "
                            "time order since the last warning (a clock set back?)",
                            self._named(), index, time, latest[0],
                            self.rows_out_of_order - self._late_said[1])
                self._late_said = (clock.monotonic(), self.rows_out_of_order)
            try:  # (a CSV's readings beyond float32 are at its limit already: tables._number)
                values = np.asarray(given, dtype=np.float32)
            except (TypeError, ValueError) as error:  # text where readings belong
                values = np.full(self.features, np.nan, dtype=np.float32)
                problem = problem or f"values are not numbers ({error})"
            filled: str | None = None
            if problem is not None or values.shape != (self.features,) or not np.isfinite(values).all():
                reason = problem or self._problem(values)
                if values.shape != (self.features,) and not self._warned_shape:
                    # a column dropped upstream: every row would be skipped, each silently
                    self._warned_shape = True
                    log.warning("%srow %d: %s; such rows are skipped (said once per scorer): give "
                                "the model's features %s in order, or a dict by name",
                                self._named(), index, reason, list(self.detector.features))
                self._bad_streak += 1
                # a row of another width is no short gap (a column dropped upstream): never filled
                if self._last_good is None or self._bad_streak > self.max_gap \
                        or values.shape != (self.features,):
                    self.rows_skipped += 1
                    if self._filled_rows:
                        # the windows before the restart are decided before it, as they would be
                        # pushed one by one: smoothing, episodes and alarm runs end here
                        self._score(batch, pending, out)
                        batch, pending = [], []
                        self.reset()
                    out.append(Result(index, time, skipped=f"{reason}; window restarts",
                                      out_of_order=late))
                    continue
                values = self._repair(values, self._last_good)
                filled = reason
                self.rows_filled += 1
            else:
                self._bad_streak = 0
                self._last_good = values
            raw = values
            if self._inputs is not None:
                self._check_inputs(self._inputs, raw, index)
            if self._steady is not None:
                self._check_steady(self._steady, raw, index)
            if self._drift is not None:
                values = self._drift.adapt(values)
            slot = self._position % self.window
            self._ring[slot] = values
            self._ring[slot + self.window] = values
            self._position += 1
            if filled is not None:
                self._fill_positions.append(self._position)
            while self._fill_positions and self._fill_positions[0] <= self._position - self.window:
                self._fill_positions.popleft()
            if late:
                self._disorder_until = self._position + self.window - 1
            if key is not None and self._time_step is not None:
                self._note_step(self._time_step, index, key, latest)
            self._filled_rows = min(self._filled_rows + 1, self.window)
            if self._filled_rows == self.window and (self._position - self.window) % self.stride == 0:
                start = self._position % self.window
                batch.append(self._ring[start:start + self.window].copy())
                self._rows_at_window = self.rows_in
                unseen = (self._unseen_at[1:] if self._unseen_at is not None
                          and self._unseen_at[0] > self._position - self.window else ((), ()))
                unchanged = (self._unchanged_at[1] if self._unchanged_at is not None
                             and self._unchanged_at[0] > self._position - self.window else ())
                pending.append((len(out), index, time, filled,
                                self._position <= self._disorder_until,
                                len(self._fill_positions), self._position <= self._gap_until,
                                unseen, unchanged))
                out.append(None)
                if len(batch) >= self._windows_per_run:
                    # long windows: scored as they fill a session run, not a chunk's all at once
                    # (a review's window of 100,000 rows held 1,024 of them twice: 6.5 GB)
                    self._score(batch, pending, out)
                    batch, pending = [], []
            if self._drift is not None:
                self._score(batch, pending, out)
                batch, pending = [], []
                self._drift.observe(raw, self._alarm_on)
        self._score(batch, pending, out)
        results = [r for r in out if r is not None]
        if self.watching:
            for result in results:
                self.watch.see(result)
        return results

    def _score(self, batch: list[np.ndarray], pending: list[tuple], out: list) -> None:
        """Score the completed windows in ``batch`` together and decide their alarms in order."""
        if not batch:
            return
        scores, errors = self.detector.score_with_features(np.stack(batch))
        base = self.detector.threshold
        varies = self._decider.threshold_varies
        for (slot, index, time, filled, late, fills, gap, unseen, unchanged), score, error in zip(
                pending, scores, errors):
            overflow = not np.isfinite(score)
            threshold, above, anomaly, start = self._decider.step(float(score), base)
            self.alarms += anomaly
            self.episodes += start
            self._alarm_on = bool(anomaly)
            self._track_alarm(bool(anomaly), index)
            surprise = (self._decider.likelihood.last_z if self._decider.likelihood is not None
                        else None)
            out[slot] = Result(index, time, finite_or_max(score), above, anomaly,
                               self._top(error), filled is not None, out_of_order=late,
                               score_overflow=overflow, problem=filled,
                               threshold=threshold if varies else None, alarm_start=start,
                               surprise=surprise, filled_in_window=fills, time_gap=gap,
                               unseen_inputs=unseen[0], unseen_levels=unseen[1],
                               unchanged=unchanged)
        self.windows_scored += len(batch)

    def _learners(self) -> list[tuple[str, AdaptiveThreshold | AnomalyLikelihood
                                         | RunningNormalization]]:
        """(name, the part) of what this stream learns while it runs."""
        parts = [("adaptive_threshold", self._decider.adaptive),
                 ("anomaly_likelihood", self._decider.likelihood),
                 ("running_normalization", self._drift)]
        return [(name, part) for name, part in parts if part is not None]

    def learned_state(self) -> dict:
        """What this stream learned: ``{"model_sha256": its model, "parts": {...}}``, the parts
        being the adaptive threshold's recent normal scores, the likelihood's means and the
        running normalization's levels, each with the rule it follows. ``restore_learned``
        continues from it in a later run (``vigil score --state`` keeps it in a file)."""
        parts = {name: {"spec": jsonable(asdict(part.spec)), **part.learned_state()}
                 for name, part in self._learners()}
        if (self._steady is not None and self._steady_last is not None
                and self._steady_rows is not None):
            # how long each scored column's reading has stood: rotated files and restarts of a
            # frozen sensor are one run
            parts[UNCHANGED_PART] = {"features": [r.feature for r in self._steady.runs],
                                     "last": self._steady_last.tolist(),
                                     "rows": self._steady_rows.tolist()}
        tail = self._tail_record()
        if tail is not None:
            parts[TAIL_PART] = tail
        return {"model_sha256": self.detector.sha256,
                "model_identity": self.detector.scoring_identity, "parts": parts}

    def _tail_record(self) -> dict | None:
        """The window's last rows (those a next window would hold) and what the windows they
        end will say (filled rows, a gap, rows out of order), the row before's readings, the
        alarm's smoothing, episode and watch, and the latest row's time, where the rows are
        timed as the model's training rows were (a restart is continued only where its first row
        follows within the time step's limit: ``_take_tail``); a tail restored and not taken yet
        (a run that read no row) as it came; None otherwise."""
        if self._tail is not None:
            return self._tail
        spec = self._time_step
        latest = self._latest_key or self._carried_latest
        if (spec is None or latest is None or self._last_good is None
                or latest[0] != (0 if spec.numeric else 1) or not self._filled_rows):
            return None
        kept = min(self._filled_rows, self.window - 1)
        slots = [(self._position - kept + k) % self.window for k in range(kept)]
        position = self._position
        began_in = (self.alarm_began_in or self.source or "an earlier run"
                    if self.alarm_run else None)
        return {"rows": self._ring[slots].tolist(), "position": position % (
                    self.window * self.stride),
                "last_good": self._last_good.tolist(), "latest_time": latest[1],
                "bad_streak": self._bad_streak,
                "fill_ages": [position - p for p in self._fill_positions],
                "gap_ahead": max(self._gap_until - position, -1),
                "disorder_ahead": max(self._disorder_until - position, -1),
                **self._decider.smoothing_state(),
                "alarm_on": self._alarm_on, "alarm_run": self.alarm_run,
                "alarm_first_row": self.alarm_first_row, "alarm_began_in": began_in,
                **self.watch.alarm_state(self.source or "an earlier run")}

    def restore_learned(self, parts: dict) -> tuple[list[str], list[str]]:
        """Continue from ``learned_state``'s record (``{"model_sha256", "parts"}``; the record
        ``vigil score --state`` writes, and a bare dict of parts as 0.3's first form, are read
        too), before any row: (the parts restored, those left to learn afresh: recorded under
        another rule, or not recorded). ValueError naming another model, or the part and value
        that is malformed; nothing is restored then."""
        if self.rows_in:
            raise ValueError("restore_learned must come before the stream's first row: make a "
                             "new StreamingScorer(detector) and restore it before pushing rows")
        if not isinstance(parts, dict):
            raise TypeError(f"`state` must be the dict stream.learned_state() returned (or the "
                            f"JSON record `vigil score --state` writes); received "
                            f"{type(parts).__name__}")
        learned_by = parts.get("model_sha256")
        identity = self.detector.scoring_identity
        if learned_by is not None and learned_by != self.detector.sha256 and (
                identity is None or parts.get("model_identity") != identity):
            raise ValueError(f"`state` was learned by another model (sha256 {str(learned_by)[:12]}"
                             f"), not this one ({self.detector.sha256[:12]}): its threshold and "
                             f"likelihood describe that model's scores; start this stream afresh")
        if isinstance(parts.get("parts"), dict):  # {model_sha256, parts}, or the --state file's
            parts = parts["parts"]
        restored, fresh, checked = [], [], []
        for name, part in self._learners():
            record = parts.get(name)
            if not isinstance(record, dict) or record.get("spec") != jsonable(asdict(part.spec)):
                fresh.append(name)
                continue
            checked.append((name, part, _checked_part(name, record, part)))
        for name, part, record in checked:
            part.restore(record)
            restored.append(name)
        if self._steady is not None:
            carried = _unchanged_record(parts.get(UNCHANGED_PART), self._steady)
            if carried is not None:
                self._steady_last, self._steady_rows = carried
                restored.append(UNCHANGED_PART)
        kept = parts.get(TAIL_PART)
        self._tail = _checked_tail(kept, self.window, self.features, self.window * self.stride)
        if self._tail is not None:
            restored.append(TAIL_PART)
        elif kept is not None:  # another form, or damaged: the window starts afresh
            fresh.append(TAIL_PART)
        return restored, fresh

    @property
    def keeps_window_rows(self) -> bool:
        """Whether ``learned_state`` can keep the window's last rows for a restart to continue:
        a model that records its training rows' time step (the rows' times tell a restart's
        first row from a later day's)."""
        return self._time_step is not None

    def _take_tail(self, tail: dict, key: tuple[int, float] | None, index: int) -> None:
        """At a restored stream's first row: continue the window from the rows the state
        kept (``tail``), where this row follows the latest of them within the time step's limit
        (a restart of a few seconds, or the next day's file of a logger); else start the window
        afresh (as for a model that records no time step: a hand-made state's tail)."""
        spec = self._time_step
        step = (key[1] - tail["latest_time"] if key is not None and spec is not None
                and key[0] == (0 if spec.numeric else 1) else None)
        if spec is None or step is None or not 0 < step <= spec.limit:
            if spec is None:
                why = "the model records no time step to continue a window within"
            elif step is None:
                why = "its time is not of the training rows' kind"
            elif step > 0:
                why = (f"{step:g}{'' if spec.numeric else ' s'} after the last row the state "
                       f"kept (continued within {spec.limit:g})")
            else:
                why = "its time is not after the last row the state kept"
            log.info("%srow %d: %s, so its window starts afresh (the learned state's last rows "
                     "are not continued)", self._named(), index, why)
            return
        rows = np.asarray(tail["rows"], dtype=np.float32)
        self._position = tail["position"] + self.window * self.stride  # the stride's phase kept
        for k, row in enumerate(rows):
            slot = (self._position - len(rows) + k) % self.window
            self._ring[slot] = row
            self._ring[slot + self.window] = row
        self._filled_rows = len(rows)
        self._last_good = np.asarray(tail["last_good"], dtype=np.float32)
        self._decider.restore_smoothing(tail)
        self._alarm_on, self.alarm_run = tail["alarm_on"], tail["alarm_run"]
        self.alarm_first_row, self.alarm_began_in = tail["alarm_first_row"], tail["alarm_began_in"]
        self._bad_streak = tail["bad_streak"]
        self._fill_positions = deque(self._position - age for age in tail["fill_ages"])
        self._gap_until = self._position + tail["gap_ahead"] if tail["gap_ahead"] >= 0 else -1
        self._disorder_until = (self._position + tail["disorder_ahead"]
                                if tail["disorder_ahead"] >= 0 else -1)
        self.watch.restore_alarm(tail)

    def _check_inputs(self, check: InputCheck, row: np.ndarray, index: int) -> None:
        """Note a row whose input-only columns (``check``) left their training values (the
        windows that hold it say so), and warn of the first."""
        outside = check.outside(row)
        if not outside.any():
            return
        values = row[check.columns]
        self.rows_unseen_inputs += 1
        where = np.flatnonzero(outside)
        left = [check.ranges[k] for k in where]  # the columns outside
        found = tuple((r.feature, float(values[k]), r.low, r.high) for r, k in zip(left, where))
        levels = tuple(tuple(r.levels) if r.levels is not None else None for r in left)
        # this row's position once buffered, what left its values, their levels
        self._unseen_at = (self._position + 1, found, levels)
        if self.rows_unseen_inputs == 1:
            first = check.ranges[int(where[0])]
            trained = (f"levels {', '.join(f'{v:g}' for v in first.levels)}"
                       if first.levels is not None else f"{first.low:g}"
                       if first.low == first.high else f"{first.low:g} to {first.high:g}")
            log.warning("%srow %d: column %r reads %g, outside its training values (%s): it is an "
                        "input only (%s in training), which the score does not see, so such a "
                        "change alarms only through the columns it moves; windows holding such "
                        "rows carry unseen_inputs and the summary counts them "
                        "(rows_unseen_inputs; said once per stream)", self._named(), index,
                        first.feature, found[0][1], trained, first.reason)

    def _take_restored_unchanged(self) -> None:
        """Count (and warn of) the runs a restored state brings in at or past their limit: a
        restarted scorer has not counted them (each file of one run hands them on unsaid)."""
        if self._steady is None or self._steady_rows is None or self._steady_last is None:
            return
        over = np.flatnonzero(self._steady_rows >= self._steady.limits)
        if not over.size:
            return
        self.unchanged_runs += len(over)
        k = int(over[0])
        feature, value = self._steady.runs[k].feature, float(self._steady_last[k])
        self.first_unchanged = (self._next_index, feature, value, int(self._steady.limits[k]))
        self._unchanged_said = (clock.monotonic(), self.unchanged_runs)
        log.warning("%scolumn %r has read %g for %d rows in a row before this run (restored "
                    "from the learned state), where its longest unchanged run in the normal "
                    "training rows was %d: a stuck or disconnected sensor reads so; windows "
                    "holding its rows carry `unchanged` (counted in unchanged_runs)",
                    self._named(), feature, value, int(self._steady_rows[k]),
                    self._steady.runs[k].longest)

    def _named(self) -> str:
        """``source: `` for warnings, where the stream has a name."""
        return f"{self.source}: " if self.source else ""

    def _check_steady(self, check: SteadyCheck, row: np.ndarray, index: int) -> None:
        """Count how long each scored column (``check``) has read one value, and note (and warn
        of) one that reaches its limit."""
        values = row[check.columns]
        if self._steady_last is None or self._steady_rows is None:  # (set together)
            rows = np.ones(len(values), dtype=np.int64)
        else:
            rows = np.where(values == self._steady_last, self._steady_rows + 1, 1)
        self._steady_last, self._steady_rows = values, rows
        at_limit = rows >= check.limits
        if not at_limit.any():
            return
        # this row's position once buffered: the windows that hold it carry the flag (with a
        # stride, a run may reach its limit between two windows' last rows)
        self._unchanged_at = (self._position + 1, tuple(
            (check.runs[k].feature, float(values[k]), int(rows[k]), check.runs[k].longest)
            for k in np.flatnonzero(at_limit)))
        reached = np.flatnonzero(rows == check.limits)
        if not reached.size:
            return
        self.unchanged_runs += len(reached)
        k = int(reached[0])
        feature, value, limit = check.runs[k].feature, float(values[k]), int(check.limits[k])
        if self.first_unchanged is None:
            self.first_unchanged = (index, feature, value, limit)
            self._unchanged_said = (clock.monotonic(), self.unchanged_runs)
            log.warning("%srow %d: column %r has read %g for %d rows in a row, where its longest "
                        "unchanged run in the normal training rows was %d: a stuck or "
                        "disconnected sensor reads so, at a level the score may find normal. "
                        "Windows holding its rows carry `unchanged`, and the summary counts such "
                        "runs (unchanged_runs; said again at most once an hour)",
                        self._named(), index, feature, value, limit, check.runs[k].longest)
        elif (self._unchanged_said is not None  # (set with the first)
              and clock.monotonic() - self._unchanged_said[0] >= REWARN_S):
            log.warning("%srow %d: column %r has read %g for %d rows in a row: %d more unchanged "
                        "run(s) since the last warning (unchanged_runs)", self._named(),
                        index, feature, value, limit,
                        self.unchanged_runs - self._unchanged_said[1])
            self._unchanged_said = (clock.monotonic(), self.unchanged_runs)

    def _track_alarm(self, anomaly: bool, index: int) -> None:
        if not anomaly:
            self.alarm_run = 0
            return
        if self.alarm_run == 0:
            self.alarm_first_row, self.alarm_began_in = index, None
        self.alarm_run += 1
        if self.alarm_run == LASTING_ALARM_WINDOWS:
            self.lasting_alarm = (self.alarm_first_row, index)
        if self.longest_alarm is None or self.alarm_run > self.longest_alarm[0]:
            self.longest_alarm = (self.alarm_run, self.alarm_first_row, index, self.alarm_began_in)

    def _late(self, key: tuple[int, float] | None, index: int
              ) -> tuple[bool, tuple[int, tuple[int, float]] | None]:
        """Whether the time ``key`` is earlier than the latest timestamp of the last ``window``
        rows (None: a cell that is no time), and that latest one's ``(row, key)`` (None: none
        of its kind)."""
        recent = self._recent_times
        while recent and recent[0][0] <= self.rows_in - self.window - 1:
            recent.popleft()
        if key is None:
            return False, None
        head = recent[0] if recent and key[0] == recent[0][1][0] else None
        late = head is not None and key[1] < head[1][1]
        if late:
            self.rows_out_of_order += 1
        while recent and (recent[-1][1][0] != key[0] or recent[-1][1][1] <= key[1]):
            recent.pop()  # a monotonic queue: its head is the latest key of the recent rows
        recent.append((self.rows_in, key, index))
        return late, (head[2], head[1]) if head is not None else None

    def _note_step(self, step_spec: TimeStepSpec, index: int, key: tuple[int, float],
                   latest: tuple[int, tuple[int, float]] | None) -> None:
        """Compare a buffered row's time (of the kind the training rows had, ``step_spec``) with
        the latest of the last ``window`` rows' (``latest``), once a row is buffered since the
        window last restarted: a step beyond the limit flags the windows holding both. A late
        row (or a clock set back) is out of order, never a gap; one wild time marks at most a
        window."""
        if key[0] != (0 if step_spec.numeric else 1):
            return
        since_restart, self._last_time = self._last_time, (index, key)
        if since_restart is None or latest is None:
            return
        self.steps_compared += 1
        step = key[1] - latest[1][1]
        if step > step_spec.limit:
            self.time_gaps += 1
            self.last_time_gap = (latest[0], index, step)
            self.first_time_gap = self.first_time_gap or self.last_time_gap
            # windows ending at this row up to the last one that still holds the row before it
            self._gap_until = self._position + self.window - 2

    def _note_unchecked(self, index: int, time: str, key: tuple[int, float] | None) -> None:
        self.times_unchecked += 1
        if self.first_time_unchecked is None:
            why = ("empty" if not time.strip()
                   else "neither a number nor an ISO 8601 time" if key is None
                   else "a number, where the training rows had ISO 8601 times" if key[0] == 0
                   else "an ISO 8601 time, where the training rows had numbers")
            unchecked = self.first_time_unchecked = (index, time, why)
            if self.say_unchecked_times:
                log.warning("%s%s (said once a stream)", self._named() or "StreamingScorer: ",
                            unchecked_times_note(unchecked))

    def _repair(self, values: np.ndarray, last_good: np.ndarray) -> np.ndarray:
        """``values`` with each missing or infinite reading filled from the row ``last_good``."""
        if values.shape != (self.features,):
            return last_good.copy()
        repaired = values.copy()
        bad = ~np.isfinite(repaired)
        repaired[bad] = last_good[bad]
        return repaired

    def _problem(self, values: np.ndarray) -> str:
        if values.shape != (self.features,):
            if values.ndim == 1:
                return f"row has {values.size} values; the model needs {self.features}"
            return (f"row has shape {values.shape}; the model needs one reading per feature, "
                    f"shape ({self.features},)")
        # worded as the CSV reader words the same cells, so API and CLI lines agree
        missing = [self.detector.features[i] for i in np.flatnonzero(np.isnan(values))]
        if missing:
            return f"missing or NaN value in {missing}"
        first = int(np.flatnonzero(np.isinf(values))[0])
        return f"column {self.detector.features[first]!r} has infinite value '{values[first]}'"

    def _top(self, errors: np.ndarray) -> tuple[tuple[str, float], ...]:
        order = np.argsort(-errors)[: self.top_k]
        return tuple((self.detector.features[i], float(errors[i])) for i in order)

    def continue_from(self, earlier: StreamingScorer) -> None:
        """Continue ``earlier``'s stream, before this one's first row: the next file of rotated
        logs (``vigil score FOLDER --state``). Its last rows fill this stream's first windows,
        so no row at the boundary goes unscored; its alarm, episode and smoothing go on, so an
        alarm that spans the files is one episode (notified once); and what it learned (the
        adaptive threshold, the likelihood, running normalization, how long each reading has
        stood) is a copy of it, this stream's from here. Where ``earlier``'s times are dates
        (ISO 8601, epoch seconds), a gap or a step back at the boundary is flagged as within one
        stream; elapsed seconds or counters, which may start again in each file, are compared
        within each. Counts start at zero: they are this stream's. ValueError where ``earlier``
        scores another model or rule, or this stream has rows already."""
        if self.rows_in:
            raise ValueError("continue_from must come before the stream's first row: make a "
                             "new StreamingScorer(detector) and continue it before pushing rows")
        if not isinstance(earlier, StreamingScorer):
            raise TypeError(f"`earlier` must be the StreamingScorer of the stream this one "
                            f"continues; received {type(earlier).__name__}")
        if earlier.detector.sha256 != self.detector.sha256:
            raise ValueError(f"`earlier` scored another model (sha256 "
                             f"{earlier.detector.sha256[:12]}), not this one "
                             f"({self.detector.sha256[:12]}): only a stream of the same model "
                             f"can be continued; start this one afresh")
        if earlier._decider.made_for != self.detector._decider_key():
            raise ValueError("`earlier` decided under another alarm rule (the anomaly likelihood "
                             "turned on or off between the two): only a stream under the same "
                             "rule can be continued; set detector.likelihood as it was, or "
                             "start this one afresh")
        self._ring = earlier._ring.copy()
        # copies: `earlier` keeps what it had learned (a Python caller may go on with it)
        self._decider, self._drift = copy.deepcopy(earlier._decider), copy.deepcopy(earlier._drift)
        for name in ("_filled_rows", "_unseen_at", "_position", "_bad_streak", "_last_good",
                     "_disorder_until", "_gap_until", "_unchanged_at", "_alarm_on",
                     "alarm_run", "alarm_first_row", "_steady_last", "_steady_rows", "_tail"):
            setattr(self, name, getattr(earlier, name))
        self._fill_positions = deque(earlier._fill_positions)
        self.alarm_began_in = (earlier.alarm_began_in or earlier.source or "an earlier stream"
                               if earlier.alarm_run else None)
        self._carried_latest = earlier._latest_key or earlier._carried_latest
        if _date_seconds(earlier._latest_key) is not None:  # gaps and steps back at the boundary
            self._recent_times = deque((rows - earlier.rows_in, key, index)  # (rows before
                                       for rows, key, index in earlier._recent_times)  # this one)
            self._last_time = earlier._last_time
        self.watch.continue_from(earlier.watch)

    def starts_before(self, earlier: StreamingScorer) -> bool:
        """Whether this stream's first time is earlier than ``earlier``'s latest, both dates
        (``_date_seconds``; ISO 8601 in one and epoch seconds in the other compare too): this
        stream does not continue that one in time. Other numbers (elapsed seconds, sample
        counters) may start again in each file of one machine's logs, and are not compared."""
        mine, theirs = _date_seconds(self._first_key), _date_seconds(earlier._latest_key)
        return mine is not None and theirs is not None and mine < theirs

    def summary(self) -> dict:
        summary: dict[str, Any] = {
            "rows": self.rows_in, "windows": self.windows_scored, "alarms": int(self.alarms),
            "alarm_episodes": self.episodes,
            "rows_filled": self.rows_filled, "rows_skipped": self.rows_skipped,
            "rows_out_of_order": self.rows_out_of_order}
        if self.steps_compared:  # else unchecked: no times, or not of the training's kind
            summary["time_gaps"] = self.time_gaps
        if self.times_unchecked:  # their order and steps are unknown: time_gaps is partial
            summary["times_unchecked"] = self.times_unchecked
        if self._inputs_recorded:  # else an artifact from before 0.3: nothing to check against
            summary["rows_unseen_inputs"] = self.rows_unseen_inputs
        if self._steady_recorded:  # else an artifact from before 2026-12-07
            summary["unchanged_runs"] = self.unchanged_runs
        if self.longest_alarm is not None:
            windows, first, last, began_in = self.longest_alarm
            summary["longest_alarm"] = {"windows": windows, "first_row": first, "last_row": last,
                                        **({"first_source": began_in} if began_in else {})}
        if self._decider.adaptive is not None:
            summary["adaptive_threshold"] = self._decider.adaptive.state(self.detector.threshold)
        if self._decider.likelihood is not None:
            summary["anomaly_likelihood"] = self._decider.likelihood.state()
        if self._drift is not None:
            summary["running_normalization"] = self._drift.state()
        return summary


@dataclass(frozen=True)
class InputCheck:
    """Input-only columns (``spec.input_ranges``) as arrays for the check of readings: bounds
    widened by a relative 1e-6 (a value read back from text), and the levels of binary and
    categorical columns flattened (``level_of``: the checked column each belongs to, in runs
    starting at ``level_starts``; ``level_columns``: those columns). Training checks its held-out
    rows with it, as the runtime checks each row."""

    ranges: tuple[InputRange, ...]
    columns: np.ndarray
    lowest: np.ndarray
    highest: np.ndarray
    levels: np.ndarray
    level_of: np.ndarray
    level_slack: np.ndarray
    level_starts: np.ndarray
    level_columns: np.ndarray

    def outside(self, readings: np.ndarray) -> np.ndarray:
        """For readings of every feature (one row, or rows along the first axes), where each
        checked column leaves its training values (a range, or a level never seen)."""
        values = readings[..., self.columns].astype(np.float64)
        outside = (values < self.lowest) | (values > self.highest)
        if self.levels.size:  # binary and categorical columns: a level never seen
            near = np.abs(values[..., self.level_of] - self.levels) <= self.level_slack
            outside[..., self.level_columns] |= np.add.reduceat(near, self.level_starts,
                                                                axis=-1) == 0
        return outside


@dataclass(frozen=True)
class SteadyCheck:
    """Scored columns' longest unchanged runs in training (``spec.steady_runs``) as arrays:
    ``limits`` is the rows of one reading that the runtime flags."""

    runs: tuple[SteadyRun, ...]
    columns: np.ndarray
    limits: np.ndarray


def steady_check(runs: tuple[SteadyRun, ...]) -> SteadyCheck | None:
    """The check of frozen readings (None where the artifact records no scored column's runs)."""
    if not runs:
        return None
    return SteadyCheck(runs=runs, columns=np.array([r.column for r in runs], dtype=np.intp),
                       limits=np.array([max(STEADY_FACTOR * r.longest, STEADY_MIN_ROWS)
                                        for r in runs], dtype=np.int64))


def _checked_tail(record: object, window: int, features: int, period: int) -> dict | None:
    """A learned state's window tail where it is whole and well formed for this model (fewer
    than ``window`` rows of ``features`` finite readings, counts in range); else None (the
    window starts afresh)."""
    if not isinstance(record, dict):
        return None

    def count(value, top: int = MAX_RUN_ROWS) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= top

    def number(value) -> bool:
        return (isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value))

    def readings(row) -> bool:
        return isinstance(row, list) and len(row) == features and all(map(number, row))

    def ahead(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and -1 <= value < 2 * window

    rows, lasting = record.get("rows"), record.get("lasting")
    checks = (
        isinstance(rows, list) and 1 <= len(rows) < window and all(map(readings, rows)),
        readings(record.get("last_good")), number(record.get("latest_time")),
        count(record.get("position"), period - 1), count(record.get("bad_streak")),
        isinstance(record.get("fill_ages"), list)
        and all(count(age, window - 1) for age in record["fill_ages"]),
        ahead(record.get("gap_ahead")), ahead(record.get("disorder_ahead")),
        count(record.get("streak")), count(record.get("remaining")),
        isinstance(record.get("episode_on"), bool), isinstance(record.get("alarm_on"), bool),
        record.get("since_end") is None or count(record.get("since_end")),
        count(record.get("alarm_run")),
        isinstance(record.get("alarm_first_row"), int)
        and not isinstance(record.get("alarm_first_row"), bool),
        "alarm_began_in" in record and (record["alarm_began_in"] is None
                                        or isinstance(record["alarm_began_in"], str)),
        "alarm_threshold" in record and (record["alarm_threshold"] is None
                                         or number(record["alarm_threshold"])),
        "lasting" in record and (lasting is None or (
            isinstance(lasting, list) and len(lasting) == 3 and isinstance(lasting[0], int)
            and isinstance(lasting[1], str) and number(lasting[2]))),
    )
    return record if all(checks) else None


def _unchanged_record(record: object, check: SteadyCheck
                      ) -> tuple[np.ndarray, np.ndarray] | None:
    """(last readings, rows unchanged) from a learned state's part, where it is for these
    columns and well formed; else None (the runs start afresh)."""
    if not isinstance(record, dict) or record.get("features") != [r.feature for r in check.runs]:
        return None
    last, rows = record.get("last"), record.get("rows")
    count = len(check.runs)
    if not (isinstance(last, list) and isinstance(rows, list) and len(last) == len(rows) == count
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    for v in last)
            and all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= MAX_RUN_ROWS
                    for n in rows)):
        return None
    return np.asarray(last, dtype=np.float32), np.asarray(rows, dtype=np.int64)


def input_check(ranges: tuple[InputRange, ...]) -> InputCheck | None:
    """The check of input-only columns' readings (``spec.input_ranges``; None without any)."""
    if not ranges:
        return None
    low = np.array([r.low for r in ranges])
    high = np.array([r.high for r in ranges])
    slack = 1e-6 * np.maximum(1.0, np.maximum(np.abs(low), np.abs(high)))
    # (position, levels) of the binary and categorical columns
    categorical = [(k, r.levels) for k, r in enumerate(ranges) if r.levels is not None]
    level_of = np.array([k for k, levels in categorical for _ in levels], dtype=np.intp)
    counts = [len(levels) for _, levels in categorical]
    return InputCheck(
        ranges=ranges, columns=np.array([r.column for r in ranges]), lowest=low - slack,
        highest=high + slack,
        levels=np.array([v for _, levels in categorical for v in levels], dtype=np.float64),
        level_of=level_of, level_slack=slack[level_of],
        level_starts=np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp),
        level_columns=np.array([k for k, _ in categorical], dtype=np.intp))


def _checked_part(name: str, record: dict, part) -> dict:
    """``record`` if its counts and values fit ``part`` (``part.check_learned``), else
    ValueError naming ``name`` and the value."""
    for key in ("learned", "frozen") if name != "anomaly_likelihood" else ("learned",):
        count = record.get(key)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError(f"{name}.{key} must be a count (a whole number >= 0); received "
                             f"{str(count)[:60]}")
    part.check_learned(record, name)
    return record


def _time_text(time: object) -> str | None:
    """A row's timestamp as text, as a CSV cell holds it; TypeError naming ``time`` for what is
    no time."""
    if time is None or isinstance(time, str):
        return time
    if isinstance(time, datetime):  # a pandas Timestamp is one too
        return time.isoformat()
    if isinstance(time, np.datetime64):
        return str(np.datetime_as_string(time))
    if isinstance(time, (int, float, np.integer, np.floating)) and not isinstance(time, bool):
        return repr(float(time)) if isinstance(time, (float, np.floating)) else str(int(time))
    raise TypeError(f"`time` must be ISO 8601 text, a number, a datetime, a pandas Timestamp or a "
                    f"numpy datetime64; received {type(time).__name__} {str(time)[:40]!r}")


def _as_float32(values) -> np.ndarray:
    """``values`` as float32, a finite reading beyond float32's range at its limit (it then
    scores as an overflow and alarms, as a reading of 3e38 does), not infinite (a missing value
    that would be filled)."""
    if isinstance(values, (list, tuple)) and any(isinstance(v, (bool, np.bool_)) for v in values):
        raise TypeError("a reading must be a number; received a boolean")  # numpy reads it as 1.0
    array = np.asarray(values)
    if array.dtype.kind in "bc":  # True read as 1.0, a complex number as its real part
        raise TypeError(f"a reading must be a number; received dtype {array.dtype}")
    if array.dtype.kind == "O" and any(isinstance(v, (bool, np.bool_)) for v in array.reshape(-1)):
        raise TypeError("a reading must be a number; received a boolean")
    if array.dtype.kind in "fiuOUS" and array.dtype != np.float32:  # numbers, objects, text
        try:
            wide = array.astype(np.float64)
        except (TypeError, ValueError):
            wide = None  # the float32 conversion below says what is wrong
        if wide is not None:
            array = np.where(np.isfinite(wide), np.clip(wide, -FLOAT32_MAX, FLOAT32_MAX), wide)
    return np.asarray(array, dtype=np.float32)
