"""Saved scores of a quality benchmark's runs, so that alarm policies can be swept without training.

One ``.npz`` per benchmark run (no pickle): for every stream, its per-row scores (NaN where no
window ends), per-row labels, the row where evaluation starts, the artifact's threshold, alarm
smoothing and normal-score statistics, and the scores of the held-out normal validation windows
the threshold was calibrated on. ``benchmarks/sweep_alarms.py`` reads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class ScoredStream:
    name: str
    scores: np.ndarray             # per row; NaN where no window ends
    labels: np.ndarray             # per row, bool
    test_start: int                # first row that counts in the metrics
    threshold: float
    consecutive: int
    hold: int
    validation_scores: np.ndarray  # held-out normal windows of training


def stream_of(name: str, detector, scores: np.ndarray, labels: np.ndarray, test_start: int,
              validation_windows: np.ndarray) -> ScoredStream:
    """A stream's record from the detector that scored it and its training run's validation."""
    return ScoredStream(name, np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool),
                        int(test_start), float(detector.threshold), int(detector.spec.consecutive),
                        int(detector.spec.hold), detector.score(validation_windows))


def save_streams(path: Path, benchmark: str, streams: list[ScoredStream]) -> None:
    arrays: dict[str, np.ndarray] = {}
    described: list[dict] = []  # each stream's name and alarm settings, beside its arrays
    for number, s in enumerate(streams):
        arrays[f"scores_{number}"] = s.scores
        arrays[f"labels_{number}"] = s.labels
        arrays[f"validation_{number}"] = s.validation_scores
        described.append({"name": s.name, "test_start": s.test_start,
                          "threshold": s.threshold, "consecutive": s.consecutive,
                          "hold": s.hold})
    meta = {"benchmark": benchmark, "streams": described}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    # numpy's stubs let **arrays fill savez_compressed's allow_pickle (numpy >= 2.1); these
    # names never do (scores_N, labels_N, validation_N, meta), and passing allow_pickle itself
    # would add an array of that name on numpy < 2.1
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]


def load_streams(path: Path) -> tuple[str, list[ScoredStream]]:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(bytes(data["meta"]).decode())
        streams = [ScoredStream(m["name"], data[f"scores_{i}"], data[f"labels_{i}"].astype(bool),
                                m["test_start"], m["threshold"], m["consecutive"], m["hold"],
                                data[f"validation_{i}"])
                   for i, m in enumerate(meta["streams"])]
    return meta["benchmark"], streams
