"""What a stream's results say over time, said as it runs: rows that complete no window, gaps in
time, an alarm that lasts, and a lasting alarm that ends because the stream learned the change.

Each ``StreamingScorer`` watches its own results (``vigil score`` and a Python caller alike): a
fault that the adaptive threshold learns as normal goes silent, and a program that embeds the
scorer must hear it as the command line's user does.
"""

from __future__ import annotations

import logging
import time as clock
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .detector import SensorDetector
    from .streaming import Result, StreamingScorer

log = logging.getLogger("vigil")

# An alarm on for this many windows in a row is a lasting change, reported once per alarm: as
# many as the adaptive threshold's default memory, past which a fault is no longer a burst.
LASTING_ALARM_WINDOWS = 1000
# rows with no window scored after which a run is said to detect nothing: a dead sensor column,
# a logger writing text; 1,000 is 17 minutes of 1 Hz rows, far beyond any gap filled
UNSCORED_ROWS_WARNING = 1000
# a stream's later clock steps and gaps are said again at most this often (wall-clock seconds)
REWARN_S = 3600.0


class StreamWatch:
    """Watches one stream's results in order (``see``) and warns of what a person should know.

    ``silent_alarm`` is the latest lasting alarm that ended while its window's score stayed above
    the threshold it began under: ``(first row, row, score, threshold then, threshold now)``.
    ``on_problem(text)`` (where set) hears each such end, for a run's health report."""

    def __init__(self, scorer: StreamingScorer) -> None:
        self._scorer = scorer
        self.on_problem: Callable[[str], None] | None = None
        self.silent_alarm: tuple[int, int, float, float, float] | None = None
        self._last_scored = -1  # the last row a window was scored at
        self._unscored_said = False
        self._gap_said = False
        self._gap_at = 0.0  # when a gap was last said, and the count then
        self._gaps_said = 0
        self._alarm_began: float | None = None  # the threshold when the current alarm began
        # a lasting alarm said: (its first row, " of FILE" where that is an earlier stream's, the
        # threshold it began under)
        self._lasting: tuple[int, str, float] | None = None

    def continue_from(self, earlier: StreamWatch) -> None:
        """Go on from ``earlier``'s watch (``StreamingScorer.continue_from``): an alarm open at
        its end, and a lasting one said, are this stream's."""
        self.restore_alarm(earlier.alarm_state(earlier._scorer.source or "an earlier stream"))

    def alarm_state(self, source: str) -> dict:
        """The open alarm's threshold when it began and the lasting alarm said (its first row,
        named in ``source`` where that is not already named), for a restarted stream that
        continues this one's alarm (``restore_alarm``)."""
        lasting = self._lasting
        return {"alarm_threshold": self._alarm_began,
                "lasting": None if lasting is None else
                [lasting[0], lasting[1] or f" of {source}", lasting[2]]}

    def restore_alarm(self, state: dict) -> None:
        """Continue from ``alarm_state``'s record (checked by the caller)."""
        self._alarm_began = state["alarm_threshold"]
        self._lasting = tuple(state["lasting"]) if state["lasting"] is not None else None

    def see(self, result: Result) -> None:
        """Take the next result of the stream (windows and skipped rows, in order)."""
        self._unscored(result)
        if result.time_gap:
            self._gap()
        self._alarm(result)

    def _named(self) -> str:
        return self._scorer._named()

    def _unscored(self, result: Result) -> None:
        """Rows since the last window scored, by row numbers: rows that complete no window (a
        window refilling after each long gap) count as well as skipped ones."""
        if result.score is not None:
            if self._unscored_said:
                log.warning("%swindows are scored again from row %d", self._named(), result.index)
            self._last_scored, self._unscored_said = result.index, False
        elif not self._unscored_said and result.index - self._last_scored >= UNSCORED_ROWS_WARNING:
            self._unscored_said = True
            log.warning("%sno window scored for %d rows, since row %d: nothing is detected while "
                        "this lasts; the last row's reason: %s", self._named(),
                        result.index - self._last_scored, self._last_scored + 1,
                        result.skipped or "none given")

    def _gap(self) -> None:
        """The stream's first gap in time, then new ones at most once an hour (weeks of a
        stream: a new outage is said, not only counted)."""
        scorer = self._scorer
        if not self._gap_said:
            # (a gap is a step beyond the time step's limit: the spec records one)
            first, spec = scorer.first_time_gap, scorer.detector.spec.time_step
            if first is None or spec is None:
                return
            self._gap_said, self._gap_at = True, clock.monotonic()
            self._gaps_said = scorer.time_gaps
            before, after, step = first  # (in chunks, later ones may be known)
            unit = "" if spec.numeric else " s"
            log.warning("%srows %d and %d are %g%s apart, where the training rows were %g%s apart "
                        "(at most %g%s): the windows holding both join readings from before and "
                        "after a gap in the record and are flagged time_gap (their scores stand; "
                        "further gaps are counted in the summary's time_gaps)", self._named(),
                        before, after, step, unit, spec.typical, unit, spec.limit, unit)
        elif (scorer.last_time_gap is not None and scorer.time_gaps > self._gaps_said
              and clock.monotonic() - self._gap_at >= REWARN_S):
            before, after, step = scorer.last_time_gap
            log.warning("%srows %d and %d are %g s apart: %d more gap(s) in time since the last "
                        "warning (counted in the summary's time_gaps)", self._named(), before,
                        after, step, scorer.time_gaps - self._gaps_said)
            self._gap_at, self._gaps_said = clock.monotonic(), scorer.time_gaps

    def _alarm(self, result: Result) -> None:
        """Say an alarm that lasts, and how a lasting one ends (most results stop at the first
        test: no alarm, none open)."""
        scorer, detector = self._scorer, self._scorer.detector
        if result.anomaly:
            if self._alarm_began is None:
                self._alarm_began = result.threshold or detector.threshold
            lasting = scorer.lasting_alarm
            if lasting is not None and lasting[1] == result.index:
                began_in = f" of {scorer.alarm_began_in}" if scorer.alarm_began_in else ""
                self._lasting = (lasting[0], began_in, self._alarm_began)
                log.warning("%sthe alarm has stayed on for %d windows, since row %d%s: a lasting "
                            "change, which alarms until the readings return to what the model "
                            "learned%s; if this is the process's new normal, train a model on "
                            "rows from after the change (vigil train sensor NEW.csv -o "
                            "MODEL.keras, then vigil export)%s", self._named(),
                            LASTING_ALARM_WINDOWS, lasting[0], began_in, _learning_note(detector),
                            _normalization_note(detector, lasting[0]) if not began_in else "")
            return
        if result.score is None:
            return
        self._alarm_began = None
        if self._lasting is None:
            return
        (first, began_in, before), self._lasting = self._lasting, None
        now = result.threshold or detector.threshold
        if not before < result.score <= now:
            log.info("%srow %d: the lasting alarm since row %d%s ended (score %.4g, threshold "
                     "%.4g)", self._named(), result.index, first, began_in, result.score, now)
            return
        # the readings did not come back (this score would have alarmed then), and the threshold
        # rose past it as the stream learned them (not a window restart after a gap, which ends
        # an alarm's run whatever the threshold)
        self.silent_alarm = (first, result.index, result.score, before, now)
        where = f"row {result.index}" + (f" of {scorer.source}" if scorer.source else "")
        if self.on_problem is not None:
            self.on_problem(f"{where}: the lasting alarm since row {first}{began_in} ended with "
                            f"the score "
                            f"{result.score:.4g} still above the {before:.4g} it began under "
                            f"(the threshold now {now:.4g})")
        log.warning("%srow %d: the lasting alarm since row %d%s ended, but this window's score, "
                    "%.4g, is still above the threshold of %.4g the alarm began under: the "
                    "threshold has risen to %.4g as the stream learned the changed readings as its "
                    "normal (%s), so a change that persists no longer alarms. If it is a fault, it "
                    "is now silent: check the process, then restart the scorer without its learned "
                    "state (remove the --state file) or train a model on the new normal",
                    self._named(), result.index, first, began_in, result.score, before, now,
                    " and ".join(learning_parts(detector)))


def learning_parts(detector: SensorDetector) -> list[str]:
    """The parts of a model's alarm rule that learn the stream's scores as it runs."""
    spec = detector.spec
    return (["its adaptive threshold"] if spec.adaptive is not None else []) + (
        ["the anomaly likelihood's level"] if spec.likelihood is not None
        and spec.likelihood.level_warmup is not None and detector.likelihood else [])


def _learning_note(detector: SensorDetector) -> str:
    """How a lasting alarm may end without the readings coming back, where the model learns
    along the stream."""
    parts = learning_parts(detector)
    if not parts:
        return ""
    return (f", or until the stream has learned the new readings as normal ({' and '.join(parts)} "
            "take in the windows that do not alarm; said if it ends so)")


def _normalization_note(detector: SensorDetector, first_row: int) -> str:
    """Where running normalization may have caused a lasting alarm, how: rows are not learned
    during an alarm, so a level it misjudged at its warm-up (the mean of part of a slow cycle)
    is never corrected (a reviewer's daily-like cycle of 3,000 rows: one alarm from row 500 to
    the end)."""
    drift = detector.spec.running_normalization
    if drift is None:
        return ""
    window = detector.spec.window  # windows that began as the warm-up ended, not before it
    early = drift.warmup - window <= first_row < drift.warmup + 2 * window
    return ("; the model follows drift by running normalization, which learns nothing during an "
            "alarm" + (f": this one began as its warm-up of {drift.warmup} rows ended, so a level "
                       "misjudged then (part of a slow cycle) may be what alarms; train without "
                       "--running-normalization, or with a --normalization-warmup of several "
                       "cycles" if early else ""))
