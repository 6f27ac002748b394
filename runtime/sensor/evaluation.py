"""Evaluating a sensor artifact on labeled CSVs: point-wise, ranking and event metrics."""

from __future__ import annotations

import json
import logging
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import metrics
from ..core.progress import Progress, silent
from .alarms import consecutive_alarms
from .detector import SensorDetector
from .labels import Labels, nab_labels
from .tables import LABEL_COLUMN_NAMES, csv_files, iter_rows, not_utf8_text, read_lines

log = logging.getLogger("vigil")


@dataclass(frozen=True)
class AlarmEpisode:
    """One alarm episode of a file, as an operator would be told of it: rows ``[start, stop)``,
    its highest score, the feature with the largest share of the error over it, and whether it
    overlaps a labeled anomaly."""

    start: int
    stop: int
    peak_score: float
    top_feature: str
    labeled: bool
    start_time: str | None = None

    def as_dict(self) -> dict:
        return {"start_row": self.start, "rows": self.stop - self.start,
                "start_time": self.start_time, "peak_score": self.peak_score,
                "top_feature": self.top_feature, "labeled": self.labeled}


@dataclass(frozen=True)
class FileScores:
    """Per-row scores of one file: NaN before the first complete window (never an alarm)."""

    name: str
    scores: np.ndarray
    alarms: np.ndarray
    labels: np.ndarray
    times: tuple[str, ...] | None
    episodes: tuple[AlarmEpisode, ...] = ()
    ends: np.ndarray | None = None   # each window's last row (where ``scores`` is set)
    rows_filled: int = 0             # rows whose values were filled from the row before
    rows_skipped: int = 0            # rows of a longer gap: no window ends there
    restarts: np.ndarray | None = None  # windows (by number) scored after the window restarted
    rows_out_of_order: int = 0       # rows earlier in time than one among the window before
    rows_unseen_inputs: int | None = None  # rows where an input-only column left its training
    # values (None: the artifact records none to check against)


def _check_label_column(source: str, column: str | None, flags: np.ndarray,
                        column_marks: np.ndarray, values: set[float],
                        labels: Labels | None) -> None:
    """Warn where the labels cannot mean what they seem: a label column that marks every row
    (-1/1 labels: -1 reads as anomalous), or, beside a labels file, one that marks rows the
    labels file does not (the file decides)."""
    if column is None:
        return
    if labels is not None:
        missed = int((column_marks & ~flags).sum()) if len(column_marks) == len(flags) else 0
        if missed:
            log.warning("%s: its column %r marks %d row(s) the labels %s do not; with --labels "
                        "that column is not read, so they are counted as normal (label them in "
                        "the labels file, or evaluate without --labels)", source, column, missed,
                        labels.source)
        return
    if -1.0 in values:
        log.warning("%s: its label column %r holds -1, which reads as anomalous (0 is normal, "
                    "any other number anomalous); labels of -1 and 1 (scikit-learn marks "
                    "outliers -1) need writing as 0/1 first", source, column)
    elif len(flags) and flags.all():
        log.warning("%s: every one of its %d rows is labeled anomalous in column %r, so no "
                    "alarm can be false (precision is 1 wherever the model alarms) and AUROC "
                    "cannot be measured; is it the label column (0 normal, 1 anomalous)?",
                    source, len(flags), column)


def score_file(detector: SensorDetector, path: str | Path, label_column: str,
               name: str | None = None, labels: Labels | None = None,
               root: str | Path | None = None, decimal: str = ".") -> FileScores:
    """Scores, alarms and labels of one file; labels from ``labels`` (windows by timestamp) when
    given, else from its ``label_column``. The file is read and scored as ``vigil score`` reads
    and scores it on a device (``StreamingScorer``): a bad cell or a short gap is filled from the
    row before, the rows of a longer gap are skipped and the window restarts (counted in
    ``rows_filled`` and ``rows_skipped``), so the metrics are those of what the device decides."""
    from .scoring import CHUNK_ROWS
    from .streaming import StreamingScorer, unchecked_times_note

    source = str(path)
    features = detector.features
    with open(path, "rb") as handle:
        problem = not_utf8_text(handle.read(4096))
    if problem is not None:
        raise ValueError(f"{source}: {problem}")
    # with a labels file the data's own label column decides nothing: it is read only to say
    # where it marks rows the labels do not (its unreadable cells are passed over)
    options = detector.read_options(decimal, label_column)
    column_marks: list[bool] = []  # with a labels file: the label column's own marks
    label_values: set[float] = set()  # the label column's distinct values (a few are kept)
    scorer = StreamingScorer(detector, top_k=len(features))
    scorer.source = source  # its warnings name the file
    scorer.say_unchecked_times = False  # said below, with the file's name
    scorer.watching = False  # its gaps are said below; a labeled file's alarms are what is
                             # evaluated, not a device's to be told of
    row_labels: list[bool] = []
    times: list[str] = []
    ends: list[int] = []
    window_scores: list[float] = []
    decided: list[bool] = []
    errors: list[np.ndarray] = []
    position = {feature: n for n, feature in enumerate(features)}

    restarts: list[int] = []  # windows scored right after the window restarted (a long gap)
    restarting = [False]

    def push(pending: list) -> None:
        for result in scorer._push_rows(pending):
            if result.skipped is not None:
                restarting[0] = True
            if result.score is None:
                continue
            if restarting[0]:
                restarts.append(len(ends))
                restarting[0] = False
            ends.append(result.index)
            window_scores.append(result.score)
            decided.append(result.anomaly)
            error = np.zeros(len(features))
            for feature, value in result.top_features:
                error[position[feature]] = value
            errors.append(error)

    parser = None
    blocks: list[np.ndarray] = []     # the rows' values, CHUNK_ROWS rows a block
    block: list[np.ndarray] = []
    problems: dict[int, str] = {}     # why a row's values are not used, by row
    with open(path, "rb") as handle:
        for parser, row in iter_rows(read_lines(handle), options, source, doubt_last_line=True):
            if row is None:
                if labels is None and parser.label_column is None:
                    # the key a labels file gives it: its path below the data folder
                    empty = json.dumps({name or Path(source).name: []})
                    # a model trained with its `label` column, evaluated on `anomaly` files: the
                    # name came from the model, which the user never typed (a review)
                    other = next((h for h in parser.header
                                  if h.strip().lower() in LABEL_COLUMN_NAMES), None)
                    if other is not None:
                        raise ValueError(
                            f"{source}: label column {label_column!r} is missing (the model's, "
                            f"or --label-column's); this file's labels are in {other!r}: give "
                            f"--label-column {shlex.quote(other)}")
                    raise ValueError(
                        f"{source}: label column {label_column!r} is missing; evaluation needs "
                        f"labels (name the column with --label-column, or give a labels file "
                        f"with --labels; for rows that are all normal, a labels file naming no "
                        f"window for this file, {empty} in a .json (a key for each file of a "
                        f"folder), gives their false alarm rate); the header has "
                        f"{list(parser.header)}")
                continue
            if row.label_problem and labels is None:
                raise ValueError(f"{source}, line {row.number}: {row.label_problem}; or name "
                                 f"another label column (--label-column)")
            if row.label is not None and len(label_values) < 8:
                label_values.add(float(row.label))
            if labels is None and parser.label_column is None:  # under a header met again
                raise ValueError(
                    f"{source}, line {row.number}: the header line above it has no label "
                    f"column {label_column!r} (the file's first header has), so its rows' "
                    f"labels are unknown; give each part its header with the label column, or "
                    f"split the file where the header changes")
            if row.problem is not None:
                problems[len(row_labels)] = row.problem
            block.append(row.values)
            if len(block) == CHUNK_ROWS:
                blocks.append(np.array(block))
                block = []
            marked = bool(row.label) if row.label is not None and not row.label_problem else False
            (column_marks if labels is not None else row_labels).append(marked)
            if labels is not None:
                row_labels.append(False)  # the labels file's, matched below
            times.append(row.time or "")
    if block:
        blocks.append(np.array(block))
    if parser is None:
        raise ValueError(f"{source}: the file is empty; expected a header line and data rows")
    if not row_labels:
        raise ValueError(f"{source}: the file has a header but no data rows")
    file_times = tuple(times) if parser.time_column else None
    # the labels are matched before any scoring: a labels file that fits no row says so first
    row_labels_array = (labels.rows(file_times, path, root) if labels is not None
                        else np.array(row_labels))
    _check_label_column(source, parser.label_column, row_labels_array, np.array(column_marks),
                        label_values, labels)
    has_time = parser.time_column is not None
    for number, values in enumerate(blocks):
        first = number * CHUNK_ROWS
        push([(row, first + k, times[first + k] if has_time else None, problems.get(first + k))
              for k, row in enumerate(values)])
    if scorer.rows_filled or scorer.rows_skipped:
        log.warning("%s: %d row(s) filled from the row before and %d skipped, as vigil score "
                    "reads them (their lines there say why)", source, scorer.rows_filled,
                    scorer.rows_skipped)
    if scorer.first_time_unchecked is not None:
        log.warning("%s: %s", source, unchecked_times_note(scorer.first_time_unchecked))
    # (a gap is a step beyond the time step's limit: the spec records one)
    first_gap, step_spec = scorer.first_time_gap, detector.spec.time_step
    if scorer.time_gaps and first_gap is not None and step_spec is not None:
        before, after, step = first_gap
        unit = "" if step_spec.numeric else " s"
        log.warning("%s: %d gap(s) in time longer than the training rows' (%g%s at most), the "
                    "first between rows %d and %d (%g%s): windows across a gap join readings from "
                    "before and after it, as on a device (vigil score flags them time_gap)",
                    source, scorer.time_gaps, step_spec.limit, unit, before, after, step, unit)
    ends_array = np.array(ends, dtype=int)
    scores = np.full(len(row_labels), np.nan)
    scores[ends_array] = window_scores
    alarms = np.zeros(len(row_labels), dtype=bool)
    alarms[ends_array] = decided
    if detector.spec.stride > 1:
        alarms = between_windows(scores, alarms)
    error_array = np.array(errors) if errors else np.zeros((0, len(features)))
    episodes = alarm_episodes(scores, alarms, row_labels_array, ends_array, error_array,
                              features, episode_gap(detector), file_times)
    return FileScores(name or Path(path).name, scores, alarms, row_labels_array, file_times,
                      episodes, ends_array, scorer.rows_filled, scorer.rows_skipped,
                      np.array(restarts, dtype=int), scorer.rows_out_of_order,
                      scorer.summary().get("rows_unseen_inputs"))


def row_decisions(detector: SensorDetector, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row (scores, alarms) of a signal: a score on each window's last row (NaN elsewhere),
    and the smoothed alarm of the last window that ended at or before each row."""
    ends, window_scores, _ = window_scores_of(detector, values)
    return _per_row(detector, len(values), ends, window_scores)


def window_scores_of(detector: SensorDetector, values: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(end row of each window, scores, per-feature errors) of a signal. With running
    normalization the signal is streamed window by window, as ``vigil score`` does (what a row is
    normalized with depends on the alarms before it); otherwise all windows are scored at once."""
    if detector.spec.running_normalization is None:
        return detector.score_signal(values)
    from .streaming import StreamingScorer

    features = detector.features
    scorer = StreamingScorer(detector, top_k=len(features))
    scorer.watching = False  # scores returned whole: no stream to warn of as it runs
    results = [r for r in scorer._push_rows((row, i, None, None) for i, row in enumerate(values))
               if r.score is not None]
    position = {name: n for n, name in enumerate(features)}
    errors = np.zeros((len(results), len(features)))
    for n, result in enumerate(results):
        for name, value in result.top_features:
            errors[n, position[name]] = value
    return (np.array([r.index for r in results], dtype=int),
            np.array([r.score for r in results], dtype=np.float64), errors)


def _per_row(detector: SensorDetector, rows: int, ends: np.ndarray,
             window_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.full(rows, np.nan)
    scores[ends] = window_scores
    alarms = np.zeros(rows, dtype=bool)
    alarms[ends] = detector.alarms(window_scores)
    if detector.spec.stride > 1:
        alarms = between_windows(scores, alarms)
    return scores, alarms


def between_windows(scores: np.ndarray, values: np.ndarray,
                    before: bool | float = False) -> np.ndarray:
    """Per-row ``values`` (alarms, or the scores themselves) where a row between window ends (NaN
    score) takes the value of the last window that ended before it (``before`` ahead of the
    first)."""
    last = np.maximum.accumulate(np.where(np.isnan(scores), -1, np.arange(len(scores))))
    return np.where(last >= 0, values[np.maximum(last, 0)], before)


def best_alarm_threshold(detector: SensorDetector, files: list[FileScores],
                         candidates: int = 200, progress: Progress = silent
                         ) -> tuple[float, float]:
    """(best point F1, threshold) over thresholds, applying the artifact's whole alarm rule
    (smoothing, hold, adaptive threshold, likelihood) to each file, so ``--threshold`` with the
    result gives exactly that F1. Candidates are quantiles of the window scores and the
    threshold in use; (nan, nan) without both classes."""
    labels = np.concatenate([f.labels for f in files]) if files else np.zeros(0, bool)
    window_scores = [f.scores[f.ends] for f in files]
    pooled = np.concatenate(window_scores) if files else np.zeros(0)
    pooled = pooled[np.isfinite(pooled)]
    if not len(pooled) or labels.all() or not labels.any():
        return float("nan"), float("nan")
    if detector.spec.adaptive is not None or detector.spec.likelihood is not None:
        candidates = min(candidates, 40)  # their decisions are a loop over windows
    best = (-1.0, float("nan"))
    cuts = np.unique([float(f"{c:.6g}") for c in  # as --threshold prints it
                      np.quantile(pooled, np.linspace(0.0, 1.0, candidates))]
                     + [float(detector.threshold)])  # never "best" below the one in use
    for n, threshold in enumerate(cuts):
        progress("best-F1 threshold search", n, len(cuts))
        alarms = [_alarms_at(detector, f, scores, float(threshold))
                  for f, scores in zip(files, window_scores)]
        f1 = metrics.counts(np.concatenate(alarms), labels).f1
        if f1 > best[0]:
            best = (f1, float(threshold))
    progress("best-F1 threshold search", len(cuts), len(cuts))
    return best


def _alarms_at(detector: SensorDetector, scored: FileScores, window_scores: np.ndarray,
               threshold: float) -> np.ndarray:
    spec = detector.spec
    restarts = scored.restarts if scored.restarts is not None else np.zeros(0, int)
    if spec.adaptive is None and spec.likelihood is None:  # smoothing starts over at a restart
        above = ~np.isfinite(window_scores) | (window_scores > threshold)
        decided = np.concatenate([consecutive_alarms(part, spec.consecutive, spec.hold)
                                  for part in np.split(above, restarts)])
    else:
        decided = detector.alarm_decider().run(window_scores, threshold, restarts)[1]
    alarms = np.zeros(len(scored.scores), dtype=bool)
    alarms[scored.ends] = decided
    return between_windows(scored.scores, alarms) if spec.stride > 1 else alarms


def alarm_episodes(scores: np.ndarray, alarms: np.ndarray, labels: np.ndarray,
                   ends: np.ndarray, errors: np.ndarray, features: tuple[str, ...], gap: int,
                   times: tuple[str, ...] | None = None) -> tuple[AlarmEpisode, ...]:
    """The alarm episodes of one file's per-row alarms (runs at most ``gap`` rows apart are one),
    each with the feature whose error, summed over the episode's windows, is largest."""
    episodes = []
    for start, stop in metrics.runs(metrics.bridged(alarms, gap)):
        inside = (ends >= start) & (ends < stop)
        share = errors[inside].sum(axis=0) if inside.any() else np.zeros(len(features))
        peak = scores[start:stop]
        episodes.append(AlarmEpisode(
            start, stop,
            float(np.nanmax(peak)) if (~np.isnan(peak)).any() else float("nan"),
            features[int(np.argmax(share))] if len(features) else "",
            bool(labels[start:stop].any()),
            times[start] if times is not None else None))
    return tuple(episodes)


def episode_gap(detector: SensorDetector) -> int:
    """The artifact's re-arm time in rows: alarm runs closer than this are one episode."""
    return detector.spec.rearm * detector.spec.stride


# metrics that count anomalies caught: undefined (null) where no row is labeled anomalous
UNDEFINED_WITHOUT_ANOMALIES = ("recall", "f1", "mar", "event_recall", "event_f1",
                               "point_adjusted_f1", "best_f1", "best_f1_threshold")


def summarize(scores: np.ndarray, alarms: np.ndarray, labels: np.ndarray, gap: int = 0,
              events: dict | None = None, held: np.ndarray | None = None) -> dict:
    """Every metric of one prediction over rows (alarm runs at most ``gap`` rows apart are one
    episode in the event metrics; ``events`` gives event metrics computed elsewhere, e.g. per
    file and pooled). The best F1 is searched over ``held`` where given: each row's score as a
    model with a stride decides it, the last window's that ended at or before it
    (``between_windows``); by default over ``scores`` (stride 1: a row without a window, before
    the first or while one refills, is a miss, as its alarm is)."""
    c = metrics.counts(alarms, labels)
    adjusted = metrics.counts(metrics.point_adjusted(alarms, labels), labels)
    if held is None:
        held = scores
    # with a stride above 1 the rows between window ends were NaN there, missed at every
    # threshold, so best_f1 came out below the F1 of the artifact's own threshold
    best_f1, best_threshold = metrics.best_f1(held, labels)
    best_threshold = metrics.strict_threshold(held, best_threshold)
    return {
        "precision": c.precision, "recall": c.recall, "f1": c.f1,
        "auroc": metrics.auroc(scores, labels), "auprc": metrics.auprc(scores, labels),
        **(events if events is not None else metrics.event_scores(alarms, labels, gap)),
        "point_adjusted_f1": adjusted.f1,
        "far": c.false_alarm_rate, "mar": c.missed_alarm_rate,
        "best_f1": best_f1, "best_f1_threshold": best_threshold,
        "tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn,
        "rows": int(len(labels)), "anomalous_rows": int(labels.sum()),
    }


def evaluate(detector: SensorDetector, data: str | Path, label_column: str = "anomaly",
             labels: Labels | None = None, decimal: str = ".",
             progress: Progress = silent, threshold_search: bool = True
             ) -> tuple[dict, list[FileScores]]:
    """Metrics over all files together (rows concatenated) plus one row per file. Without
    ``threshold_search`` the best-F1 threshold is not searched (most of the time on long files).

    ``labels`` (windows or points per file, see ``labels.read_labels``) replace the label column;
    a NAB root folder (``data/`` and ``labels/combined_windows.json``) brings its own.
    """
    if labels is None and (nab := nab_labels(data)) is not None:
        data, labels = nab
    root = Path(data)
    paths = csv_files(data)
    if labels is not None:  # a file the labels do not name is found before any is scored
        labels.check_files(paths, root if root.is_dir() else None)
    files = []
    for n, path in enumerate(paths):
        progress("scoring files", n, len(paths))
        files.append(score_file(detector, path, label_column,
                                str(path.relative_to(root)) if root.is_dir() else path.name,
                                labels=labels, root=root if root.is_dir() else None,
                                decimal=decimal))
    progress("scoring files", len(paths), len(paths))
    window = detector.spec.window
    if not any(f.ends is not None and len(f.ends) for f in files):
        rows = sum(len(f.scores) for f in files)
        raise ValueError(f"{data}: no window could be scored: {rows} rows in {len(files)} "
                         f"file{'s' if len(files) != 1 else ''}, each shorter than the model's "
                         f"window of {window} rows; evaluate on longer recordings")
    label_windows = labels  # (a labels file, or NAB's; None: the label column)
    scores = np.concatenate([f.scores for f in files])
    alarms = np.concatenate([f.alarms for f in files])
    row_labels = np.concatenate([f.labels for f in files])
    gap = episode_gap(detector)
    # events and episodes never span two files
    strided = detector.spec.stride > 1  # as the alarms are held (``_per_row``)
    held = (lambda f: between_windows(f.scores, f.scores, np.nan) if strided else f.scores)
    result = summarize(scores, alarms, row_labels, gap, events=metrics.pooled_event_scores(
        ((f.alarms, f.labels) for f in files), gap),
        held=np.concatenate([held(f) for f in files]))
    result["threshold"] = detector.threshold
    if not row_labels.any():
        result["note_labels"] = ("no row is labeled anomalous: recall, f1, mar, event_recall "
                                 "and event_f1 are undefined (null); far (and precision and "
                                 "event_precision, 0 where anything alarmed, else null) says how "
                                 "the normal rows were alarmed")
        given = (sum(len(label_windows.for_file(p, root if root.is_dir() else None))
                     for p in paths) if label_windows is not None else 0)
        fix = (f"the labels give these files {given} window(s) or point(s), none of which falls "
               f"on a row: check their times and keys against the rows (said above)" if given
               else "the labels mark these files normal throughout (no window or point): give "
                    "labeled anomalies to measure detection" if label_windows is not None
               else f"give the labels: --label-column NAME (now {label_column!r}) or --labels "
                    f"FILE of [start, end] windows")
        log.warning("%s: none of its %d rows is labeled anomalous: recall, f1, event_recall and "
                    "event_f1 are undefined (null), and only far, the share of normal rows "
                    "alarmed, says anything; %s", data, len(row_labels), fix)
    result["rows_filled"] = sum(f.rows_filled for f in files)
    result["rows_skipped"] = sum(f.rows_skipped for f in files)
    result["rows_out_of_order"] = sum(f.rows_out_of_order for f in files)
    checked = [f.rows_unseen_inputs for f in files if f.rows_unseen_inputs is not None]
    result["rows_unseen_inputs"] = sum(checked) if checked else None
    if not threshold_search:
        result["alarm_best_f1"] = result["alarm_best_f1_threshold"] = None
        result["alarm_best_f1_note"] = "not searched (--no-threshold-search)"
    elif detector.spec.running_normalization is None:
        result["alarm_best_f1"], result["alarm_best_f1_threshold"] = best_alarm_threshold(
            detector, files, progress=progress)
    else:  # its scores were made at this threshold: replayed at another, they would not hold
        result["alarm_best_f1"] = result["alarm_best_f1_threshold"] = None
        result["alarm_best_f1_note"] = (
            "not searched: with running normalization a window's score depends on the threshold "
            "(the normalization stops learning during alarms), so these scores replayed at "
            "another threshold would not give its F1; try one with vigil eval --threshold T")
    result["consecutive"] = detector.spec.consecutive
    result["hold"] = detector.spec.hold
    result["rearm"] = detector.spec.rearm
    result["stride"] = detector.spec.stride
    result["adaptive"] = detector.spec.adaptive is not None
    likelihood = detector.spec.likelihood
    result["likelihood_z"] = likelihood.z if likelihood is not None else None
    result["likelihood_level_warmup"] = (likelihood.level_warmup if likelihood is not None
                                         else None)
    result["note"] = ("rows before a file's first complete window have no score: they count as "
                      "normal predictions in the thresholded metrics (a labeled one is a miss "
                      "in recall, f1 and best_f1) and are left out of auroc and auprc, which "
                      "rank the rows that end a window; with a stride, each row between window ends "
                      "takes the decision (and, for best_f1, the score) of the last window that "
                      "ended before it; event metrics: an event is hit if any alarm falls in "
                      "it, an alarm run is false if it overlaps no event (an event wholly "
                      "before a file's first complete window counts as missed); "
                      "point_adjusted_f1 flatters and is reported only beside f1; best_f1 "
                      "thresholds the raw window scores, without the alarm rule's smoothing, "
                      "so a file's may lie below its f1")
    result["files"] = [{"file": f.name, **_defined(summarize(f.scores, f.alarms, f.labels, gap,
                                                             held=held(f))),
                        "rows_filled": f.rows_filled, "rows_skipped": f.rows_skipped,
                        # the totals' per file, so a total can be traced to its file
                        "rows_out_of_order": f.rows_out_of_order,
                        "rows_unseen_inputs": f.rows_unseen_inputs,
                        "episodes": [e.as_dict() for e in f.episodes]} for f in files]
    return _defined(result), files


def _defined(result: dict) -> dict:
    """``result`` with the metrics its rows leave undefined as null, not 0: recall, F1 and the
    event metrics where no row is labeled anomalous (a review read F1 0.0 as a model that misses
    everything), precision where no row alarmed and event precision where no episode did."""
    if not result["anomalous_rows"]:
        result.update(dict.fromkeys(UNDEFINED_WITHOUT_ANOMALIES))
    if not result["tp"] + result["fp"]:
        result["precision"] = None
    if not result.get("alarm_runs", 1):
        result["event_precision"] = None
    return result
