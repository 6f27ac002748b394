"""Seeded synthetic sensor streams with injected anomalies, for the demo and the tests."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FEATURES = ("flow", "pressure", "current", "voltage", "temperature", "vibration_x",
            "vibration_y", "speed")
ANOMALY_KINDS = ("spike", "level_shift", "drift", "frequency", "stuck")


@dataclass(frozen=True)
class SyntheticStream:
    values: np.ndarray        # (rows, features)
    labels: np.ndarray        # (rows,) bool
    kinds: tuple[tuple[str, int, int], ...]  # (kind, start, stop) of each injected anomaly
    features: tuple[str, ...] = FEATURES


def normal_stream(rows: int, seed: int, period: float = 50.0) -> np.ndarray:
    """Correlated multivariate readings of a machine in normal operation (rows, 8)."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows, dtype=np.float64)
    phase = rng.uniform(0, 2 * np.pi)
    load = np.sin(2 * np.pi * t / period + phase) + 0.3 * np.sin(2 * np.pi * t / (period * 3.7))
    speed = 1500 + 40 * load + rng.normal(0, 3, rows)
    flow = 30 + 5 * load + rng.normal(0, 0.3, rows)
    pressure = 2.0 + 0.25 * load + 0.1 * np.sin(2 * np.pi * t / 13.0) + rng.normal(0, 0.02, rows)
    current = 3.0 + 0.4 * load + rng.normal(0, 0.05, rows)
    voltage = 230 + rng.normal(0, 1.0, rows) - 2.0 * (current - 3.0)
    temperature = 60 + 2.0 * np.convolve(load, np.ones(25) / 25, mode="same") + rng.normal(0, 0.1, rows)
    vib_x = 0.2 + 0.05 * np.abs(np.sin(2 * np.pi * t / 7.0)) + 0.02 * load + rng.normal(0, 0.01, rows)
    vib_y = 0.8 * vib_x + rng.normal(0, 0.01, rows)
    return np.stack([flow, pressure, current, voltage, temperature, vib_x, vib_y, speed], axis=1)


def anomalous_stream(rows: int, seed: int, anomalies: int = 10) -> SyntheticStream:
    """A normal stream with spikes, level shifts, drifts, frequency changes and stuck sensors."""
    rng = np.random.default_rng(seed + 1)
    period = 50.0
    values = normal_stream(rows, seed, period)
    scale = values.std(axis=0)
    labels = np.zeros(rows, dtype=bool)
    kinds = []
    slots = np.linspace(rows * 0.05, rows * 0.95, anomalies + 1).astype(int)
    for i in range(anomalies):
        kind = ANOMALY_KINDS[i % len(ANOMALY_KINDS)]
        lo, hi = slots[i], slots[i + 1]
        length = int(rng.integers(3, 6)) if kind == "spike" else int(rng.integers(40, 90))
        start = int(rng.integers(lo, max(lo + 1, hi - length - 20)))
        stop = min(rows, start + length)
        feature = int(rng.integers(0, values.shape[1]))
        span = slice(start, stop)
        if kind == "spike":
            values[span, feature] += rng.choice([-1, 1]) * 6 * scale[feature]
        elif kind == "level_shift":
            values[span, feature] += rng.choice([-1, 1]) * 2.5 * scale[feature]
        elif kind == "drift":
            values[span, feature] += np.linspace(0, 3.5, stop - start) * scale[feature]
        elif kind == "frequency":
            fast = normal_stream(rows, seed + 100 + i, period / 3)
            values[span] = fast[span]
        elif kind == "stuck":
            values[span, feature] = values[start, feature]
        labels[span] = True
        kinds.append((kind, start, stop))
    return SyntheticStream(values, labels, tuple(kinds))


def write_csv(path: Path, values: np.ndarray, labels: np.ndarray | None = None,
              features: tuple[str, ...] = FEATURES, start: str = "2026-01-01T00:00:00") -> Path:
    """Write readings as CSV with a ``timestamp`` column (1 Hz) and an optional ``anomaly`` column."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    origin = np.datetime64(start, "s")
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", *features] + (["anomaly"] if labels is not None else []))
        for i, row in enumerate(values):
            cells = [str(origin + np.timedelta64(i, "s")), *(f"{v:.6g}" for v in row)]
            if labels is not None:
                cells.append(str(int(labels[i])))
            writer.writerow(cells)
    return path


def write_sensor_dataset(folder: Path, seed: int = 0, train_rows: int = 6000,
                         test_rows: int = 4000) -> tuple[Path, Path]:
    """A training CSV of normal operation and a labeled test CSV; returns their paths."""
    folder = Path(folder)
    train = write_csv(folder / "train.csv", normal_stream(train_rows, seed))
    test_stream = anomalous_stream(test_rows, seed + 7)
    test = write_csv(folder / "test.csv", test_stream.values, test_stream.labels)
    return train, test
