"""The Numenta Anomaly Benchmark's score, written from its published definition.

Lavin & Ahmad, "Evaluating Real-time Anomaly Detection Algorithms: the Numenta Anomaly Benchmark"
(ICMLA 2015), and NAB's scoring documentation:

* Each labeled window rewards only its *first* detection, by how early it comes: a detection at
  relative position ``y`` in the window (``-1`` at its left edge, near ``0`` at its right edge)
  earns ``A_tp * sigma(y) / sigma(-1)`` with ``sigma(y) = 2 / (1 + exp(5 y)) - 1``. Later
  detections in the same window count for nothing.
* A window without a detection costs ``A_fn``.
* A detection outside every window costs ``A_fp * sigma(y)`` where ``y`` is its distance past the
  end of the previous window, in units of that window's width less one (``sigma`` is then
  negative and reaches ``-1`` beyond ``y = 3``); before the first window it costs ``A_fp``.
* Detections in the probationary period (the first 15 % of a file, at most 750 rows) are ignored,
  and so is a window wholly inside it (no miss; the perfect detector's score still counts it,
  as NAB's scorer does).
* The corpus score is the sum over files, normalized to 100 for the perfect detector (each window
  hit at its left edge) and 0 for the null detector (no detection at all).

Profiles (``A_tp``, ``A_fp``, ``A_fn``): standard (1, 0.11, 1), reward low FP rate (1, 0.22, 1),
reward low FN rate (1, 0.11, 2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..core.metrics import runs

PROBATION_FRACTION = 0.15
PROBATION_MAX_ROWS = 750  # 15 % of 5,000 rows


@dataclass(frozen=True)
class Profile:
    tp: float
    fp: float
    fn: float


PROFILES = {
    "standard": Profile(tp=1.0, fp=0.11, fn=1.0),
    "low_fp": Profile(tp=1.0, fp=0.22, fn=1.0),
    "low_fn": Profile(tp=1.0, fp=0.11, fn=2.0),
}


def scaled_sigmoid(y: float) -> float:
    """NAB's ``2 / (1 + exp(5 y)) - 1``, and ``-1`` beyond ``y = 3``."""
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def probation_rows(rows: int) -> int:
    """Rows at the start of a file in which detections are not scored (the detector learns)."""
    return int(min(math.floor(PROBATION_FRACTION * rows), PROBATION_MAX_ROWS))


def window_rows(labels: np.ndarray) -> list[tuple[int, int]]:
    """``[left, right]`` row indices (inclusive) of each run of labeled rows."""
    return [(start, stop - 1) for start, stop in runs(labels)]


@dataclass(frozen=True)
class FileScore:
    raw: float       # the profile-weighted sum for this file
    windows: int     # every window (the perfect detector's score counts them all)
    hit: int
    false_positives: int
    scored_windows: int = -1  # windows ending after the probationary period (-1: all)


def score_file(detections: np.ndarray, windows: list[tuple[int, int]], probation: int,
               profile: Profile) -> FileScore:
    """NAB's raw score of one file's detections (a bool per row) against its windows."""
    detections = np.asarray(detections, dtype=bool)
    max_tp = scaled_sigmoid(-1.0)
    ordered = sorted(windows)
    hit: set[int] = set()
    total, false_positives = 0.0, 0
    for i in np.flatnonzero(detections).tolist():
        if i < probation:
            continue
        inside = next((k for k, (left, right) in enumerate(ordered) if left <= i <= right), None)
        if inside is not None:
            if inside in hit:
                continue
            left, right = ordered[inside]
            position = -(right - i + 1) / (right - left + 1)
            total += profile.tp * scaled_sigmoid(position) / max_tp
            hit.add(inside)
            continue
        false_positives += 1
        before = [w for w in ordered if w[1] < i]
        if not before:
            total += -1.0 * profile.fp
        else:
            left, right = before[-1]
            position = abs(right - i) / max(1, right - left)
            total += profile.fp * scaled_sigmoid(position)
    # a window wholly inside the probationary period is no miss: NAB's sweeper passes over it
    # (its null detector's score too), while its perfect score counts every window
    scored = sum(1 for _, right in ordered if right >= probation)
    total -= profile.fn * (scored - len(hit))
    return FileScore(total, len(ordered), len(hit), false_positives, scored)


def normalized(raw_total: float, windows_total: int, profile: Profile,
               scored_windows: int | None = None) -> float:
    """100 for the perfect detector, 0 for the null detector (NAB's normalization: the null
    detector misses the ``scored_windows`` that end after the probationary periods, all of
    ``windows_total`` where not given; the perfect one hits all of them)."""
    null = -profile.fn * (windows_total if scored_windows is None else scored_windows)
    perfect = profile.tp * windows_total
    if perfect == null:
        return float("nan")
    return 100.0 * (raw_total - null) / (perfect - null)


def corpus_score(files: list[tuple[np.ndarray, np.ndarray]], profile: Profile) -> dict:
    """Normalized NAB score of ``(detections, labels)`` per file, labels marking window rows."""
    raw, windows, scored, hit, false_positives = 0.0, 0, 0, 0, 0
    for detections, labels in files:
        part = score_file(detections, window_rows(labels), probation_rows(len(labels)), profile)
        raw += part.raw
        windows += part.windows
        scored += part.scored_windows
        hit += part.hit
        false_positives += part.false_positives
    return {"score": normalized(raw, windows, profile, scored), "raw": raw, "windows": windows,
            "windows_hit": hit, "false_positives": false_positives}


def onsets(alarms: np.ndarray) -> np.ndarray:
    """Detections as a deployed detector raises them: the first row of each run of alarms."""
    alarms = np.asarray(alarms, dtype=bool)
    return alarms & ~np.concatenate([[False], alarms[:-1]])
