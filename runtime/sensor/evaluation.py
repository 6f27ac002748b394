"""Evaluating a sensor artifact on labeled CSVs: point-wise, ranking and event metrics."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..core import metrics
from .detector import SensorDetector
from .labels import Labels, nab_labels
from .tables import csv_files, fill_gaps, read_table


@dataclass(frozen=True)
class FileScores:
    """Per-row scores of one file: NaN before the first complete window (never an alarm)."""

    name: str
    scores: np.ndarray
    alarms: np.ndarray
    labels: np.ndarray
    times: tuple[str, ...] | None


def score_file(detector: SensorDetector, path: str | Path, label_column: str,
               name: str | None = None, labels: Labels | None = None,
               root: str | Path | None = None, decimal: str = ".") -> FileScores:
    """Scores, alarms and labels of one file; labels from ``labels`` (windows by timestamp) when
    given, else from its ``label_column``."""
    table = read_table(path, features=detector.features,
                       time_column=detector.spec.time_column or "auto", label_column=label_column,
                       require_time=False, decimal=decimal)
    if labels is not None:  # says so clearly when the file has no timestamps to match
        table = replace(table, labels=labels.rows(table.times, path, root))
    if table.labels is None:
        raise ValueError(f"{table.source}: label column {label_column!r} is missing; evaluation "
                         f"needs labels (set `label_column`, or give a labels file with --labels); "
                         f"the header has {list(table.header)}")
    values = fill_gaps(table.values, detector.spec.max_gap, table.source, table.features)
    scores, alarms = row_decisions(detector, values)
    return FileScores(name or Path(path).name, scores, alarms, table.labels, table.times)


def row_decisions(detector: SensorDetector, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row (scores, alarms) of a signal: a score on each window's last row (NaN elsewhere),
    and the smoothed alarm of the last window that ended at or before each row."""
    ends, window_scores, _ = detector.score_signal(values)
    scores = np.full(len(values), np.nan)
    scores[ends] = window_scores
    alarms = np.zeros(len(values), dtype=bool)
    alarms[ends] = detector.alarms(window_scores)
    if detector.spec.stride > 1:
        alarms = between_windows(scores, alarms)
    return scores, alarms


def between_windows(scores: np.ndarray, alarms: np.ndarray) -> np.ndarray:
    """Per-row alarms where a row between window ends (NaN score) takes the decision of the last
    window that ended before it (False before the first)."""
    last = np.maximum.accumulate(np.where(np.isnan(scores), -1, np.arange(len(scores))))
    return np.where(last >= 0, alarms[np.maximum(last, 0)], False)


def episode_gap(detector: SensorDetector) -> int:
    """The artifact's re-arm time in rows: alarm runs closer than this are one episode."""
    return detector.spec.rearm * detector.spec.stride


def summarize(scores: np.ndarray, alarms: np.ndarray, labels: np.ndarray, gap: int = 0) -> dict:
    """Every metric of one prediction over rows (alarm runs at most ``gap`` rows apart are one
    episode in the event metrics)."""
    c = metrics.counts(alarms, labels)
    adjusted = metrics.counts(metrics.point_adjusted(alarms, labels), labels)
    best_f1, best_threshold = metrics.best_f1(scores, labels)
    return {
        "precision": c.precision, "recall": c.recall, "f1": c.f1,
        "auroc": metrics.auroc(scores, labels), "auprc": metrics.auprc(scores, labels),
        **metrics.event_scores(alarms, labels, gap),
        "point_adjusted_f1": adjusted.f1,
        "far": c.false_alarm_rate, "mar": c.missed_alarm_rate,
        "best_f1": best_f1, "best_f1_threshold": best_threshold,
        "tp": c.tp, "fp": c.fp, "fn": c.fn, "tn": c.tn,
        "rows": int(len(labels)), "anomalous_rows": int(labels.sum()),
    }


def evaluate(detector: SensorDetector, data: str | Path, label_column: str = "anomaly",
             labels: Labels | None = None, decimal: str = ".") -> tuple[dict, list[FileScores]]:
    """Metrics over all files together (rows concatenated) plus one row per file.

    ``labels`` (windows or points per file, see ``labels.read_labels``) replace the label column;
    a NAB root folder (``data/`` and ``labels/combined_windows.json``) brings its own.
    """
    if labels is None and (nab := nab_labels(data)) is not None:
        data, labels = nab
    root = Path(data)
    files = [score_file(detector, path, label_column,
                        str(path.relative_to(root)) if root.is_dir() else path.name,
                        labels=labels, root=root if root.is_dir() else None, decimal=decimal)
             for path in csv_files(data)]
    scores = np.concatenate([f.scores for f in files])
    alarms = np.concatenate([f.alarms for f in files])
    labels = np.concatenate([f.labels for f in files])
    gap = episode_gap(detector)
    result = summarize(scores, alarms, labels)
    # events and episodes never span two files
    result.update(metrics.pooled_event_scores(((f.alarms, f.labels) for f in files), gap))
    result["threshold"] = detector.threshold
    result["consecutive"] = detector.spec.consecutive
    result["note"] = ("rows before a file's first complete window have no score and count as "
                      "normal predictions; event metrics: an event is hit if any alarm falls in "
                      "it, an alarm run is false if it overlaps no event; point_adjusted_f1 "
                      "flatters and is reported only beside f1")
    result["files"] = [{"file": f.name, **summarize(f.scores, f.alarms, f.labels, gap)}
                       for f in files]
    return result, files
