"""Detection metrics: point-wise, ranking, and event-level. Pure numpy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Counts:
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        """F1 = TP / (TP + (FP + FN) / 2), 0 when there is nothing to find or flag."""
        denominator = self.tp + (self.fp + self.fn) / 2
        return self.tp / denominator if denominator else 0.0

    @property
    def false_alarm_rate(self) -> float:
        """FP / (FP + TN), as a fraction (SKAB reports it in percent)."""
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    @property
    def missed_alarm_rate(self) -> float:
        """FN / (FN + TP), as a fraction (SKAB reports it in percent)."""
        return self.fn / (self.fn + self.tp) if self.fn + self.tp else 0.0


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of True in a 1-D boolean array."""
    padded = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def counts(predicted: np.ndarray, labels: np.ndarray) -> Counts:
    predicted, labels = _pair(predicted, labels, "predicted")
    return Counts(
        tp=int(np.sum(predicted & labels)),
        fp=int(np.sum(predicted & ~labels)),
        fn=int(np.sum(~predicted & labels)),
        tn=int(np.sum(~predicted & ~labels)),
    )


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (ties count one half); NaN when only one class is present."""
    scores, labels = _scored(scores, labels)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = _average_ranks(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def auprc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision (area under the precision-recall curve, step-wise)."""
    scores, labels = _scored(scores, labels)
    positives = int(labels.sum())
    if positives == 0:
        return float("nan")
    thresholds, tp, fp = _curve(scores, labels)
    precision = tp / (tp + fp)
    recall = tp / positives
    previous = np.concatenate([[0.0], recall[:-1]])
    return float(np.sum((recall - previous) * precision))


def best_f1(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(best F1, the threshold reaching it) over all cut points; alarm means score >= threshold.
    A labeled row without a score (NaN: before a file's first window) is a miss at every cut,
    as the F1 at a threshold counts it."""
    positives = int(np.asarray(labels, dtype=bool).sum())
    scores, labels = _scored(scores, labels)
    if positives == 0 or len(scores) == 0:
        return 0.0, float("inf")
    thresholds, tp, fp = _curve(scores, labels)
    f1 = tp / (tp + (fp + (positives - tp)) / 2)
    best = int(np.argmax(f1))
    return float(f1[best]), float(thresholds[best])


def strict_threshold(scores: np.ndarray, cut: float) -> float:
    """A threshold ``t`` with ``scores > t`` exactly where ``scores >= cut`` (the detectors alarm
    above their threshold), written with as few digits as keep that so (6 at least), so a
    printed ``--threshold`` reproduces the same decisions."""
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores[np.isfinite(scores)]
    below = scores[scores < cut]
    if not np.isfinite(cut):
        return float(cut)
    low = float(below.max()) if len(below) else cut - max(abs(cut), 1.0)
    middle = (low + cut) / 2
    for digits in range(6, 18):
        candidate = float(f"{middle:.{digits}g}")
        if low <= candidate < cut:
            return candidate
    return middle


def events(labels: np.ndarray) -> list[tuple[int, int]]:
    """Labeled events: ``[start, stop)`` of each run of anomalous rows."""
    return runs(np.asarray(labels, dtype=bool))


def bridged(mask: np.ndarray, gap: int) -> np.ndarray:
    """``mask`` with every run of at most ``gap`` False between two True runs filled in: alarm
    runs that belong to one episode (see ``vigil.runtime.sensor.alarms.Episodes``)."""
    mask = np.asarray(mask, dtype=bool).copy()
    if gap <= 0:
        return mask
    spans = runs(mask)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        if start - end <= gap:
            mask[end:start] = True
    return mask


def event_scores(predicted: np.ndarray, labels: np.ndarray, gap: int = 0) -> dict[str, float]:
    """Event-level precision, recall and F1.

    An event (run of labeled rows) is hit if any alarm falls in it; an alarm episode (a run of
    alarms, runs at most ``gap`` rows apart counting as one) is false if it overlaps no event.
    """
    predicted, labels = _pair(predicted, labels, "predicted")
    truth = events(labels)
    alarms = runs(bridged(predicted, gap))
    hit = sum(1 for start, stop in truth if predicted[start:stop].any())
    true_alarms = sum(1 for start, stop in alarms if labels[start:stop].any())
    recall = hit / len(truth) if truth else 0.0
    precision = true_alarms / len(alarms) if alarms else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"event_precision": precision, "event_recall": recall, "event_f1": f1,
            "events": len(truth), "events_hit": hit, "alarm_runs": len(alarms),
            "false_alarm_runs": len(alarms) - true_alarms}


def pooled_event_scores(parts, gap: int = 0) -> dict[str, float]:
    """Event metrics over several files, from ``(predicted, labels)`` pairs: events and alarm
    episodes are found in each file (never across files) and counted together."""
    return event_scores_of_totals([event_scores(predicted, labels, gap)
                                   for predicted, labels in parts])


def event_scores_of_totals(parts) -> dict[str, float]:
    """Event precision, recall and F1 of several parts' summed event counts (dicts with
    ``events``, ``events_hit``, ``alarm_runs``, ``false_alarm_runs``, as ``event_scores`` gives)."""
    totals = {key: sum(part[key] for part in parts)
              for key in ("events", "events_hit", "alarm_runs", "false_alarm_runs")}
    recall = totals["events_hit"] / totals["events"] if totals["events"] else 0.0
    true_runs = totals["alarm_runs"] - totals["false_alarm_runs"]
    precision = true_runs / totals["alarm_runs"] if totals["alarm_runs"] else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"event_precision": precision, "event_recall": recall, "event_f1": f1, **totals}


def pooled_event_f1(parts, gap: int = 0) -> float:
    """Event F1 over several files (see ``pooled_event_scores``)."""
    return pooled_event_scores(parts, gap)["event_f1"]


def point_adjusted(predicted: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Predictions with every labeled event fully flagged if any of its rows is flagged.

    Point adjustment flatters detectors; report it only beside the point-wise figures.
    """
    predicted, labels = _pair(predicted, labels, "predicted")
    adjusted = predicted.copy()
    for start, stop in events(labels):
        if predicted[start:stop].any():
            adjusted[start:stop] = True
    return adjusted


def _pair(predicted: np.ndarray, labels: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    predicted = np.asarray(predicted, dtype=bool).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    if predicted.shape != labels.shape:
        raise ValueError(f"`{name}` and `labels` must have the same length; "
                         f"received {len(predicted)} and {len(labels)}")
    return predicted, labels


def _scored(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"`scores` and `labels` must have the same length; "
                         f"received {len(scores)} and {len(labels)}")
    keep = ~np.isnan(scores)  # an infinite score (one that overflowed) ranks first; NaN: none
    return scores[keep], labels[keep]


def _curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct thresholds (descending) with cumulative TP and FP at score >= threshold."""
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last = np.flatnonzero(scores[1:] != scores[:-1])  # not np.diff: inf - inf is no tie
    last = np.concatenate([last, [len(scores) - 1]])
    tp = np.cumsum(labels)[last].astype(np.float64)
    fp = (last + 1 - tp).astype(np.float64)
    return scores[last], tp, fp


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    boundaries = np.concatenate([[0], np.flatnonzero(sorted_values[1:] != sorted_values[:-1]) + 1,
                                 [len(values)]])
    for start, stop in zip(boundaries[:-1], boundaries[1:]):
        ranks[order[start:stop]] = (start + stop + 1) / 2
    return ranks
