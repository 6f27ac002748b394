"""How often the runtime's check of readings that stop changing fires on the four sensor sets.

Training records each scored column's longest run of one unchanged reading in its normal training
rows (``training.sensor_data.steady_runs``, over the columns ``feature_roles`` scores); the
runtime flags a run of ``STEADY_FACTOR`` times that, at least ``STEADY_MIN_ROWS`` rows. This
applies the same functions to each benchmark's own split (SKAB: each file's first 400 rows; SMD:
``train.csv``; ECG: each record's first quarter; NAB: each file's probationary 15 %; a quarter of
each held out for validation, as training does) and counts the runs flagged in the test part:
those wholly on normal rows and those touching labeled rows. No model is trained.

    python benchmarks/explore_unchanged_readings.py --data ../shared/data [--factor 4 --minimum 64]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from vigil.runtime.sensor.streaming import STEADY_FACTOR, STEADY_MIN_ROWS
from vigil.runtime.sensor.tables import Table
from vigil.training.sensor_data import feature_roles, steady_runs

VALIDATION_FRACTION = 0.25


def flagged_runs(values: np.ndarray, labels: np.ndarray, train_rows: int, features: list[str],
                 factor: int, minimum: int) -> tuple[int, int, int, list[tuple]]:
    """(runs flagged on normal rows, runs touching labeled rows, scored columns, each run's
    (feature, reading, training's longest, limit, touches a label))."""
    values = values.astype(np.float32)  # as the runtime reads and compares them
    split = int(round(train_rows * (1 - VALIDATION_FRACTION)))
    table = Table("train", tuple(features), values[:train_rows], None, labels[:train_rows],
                  None, None)
    normal = values[:split][~labels[:split]]
    roles = feature_roles(normal, normal.mean(axis=0))
    scored = [f for f, role in zip(features, roles) if role == "scored"]
    test, test_labels = values[train_rows:], labels[train_rows:]
    on_normal = on_labeled = 0
    found = []
    for feature, longest in steady_runs([table], [split], scored).items():
        column, limit = test[:, features.index(feature)], max(factor * longest, minimum)
        run = 1
        for i in range(1, len(column)):
            run = run + 1 if column[i] == column[i - 1] else 1
            if run == limit:
                labeled = bool(test_labels[i - limit + 1:i + 1].any())
                on_labeled += labeled
                on_normal += not labeled
                found.append((feature, float(column[i]), longest, limit, labeled))
    return on_normal, on_labeled, len(scored), found


def cases(data: Path):
    """(set, file, values, labels, training rows, features) per file of the four sets."""
    for path in sorted((data / "skab").glob("*/*.csv")):
        if path.parent.name == "anomaly-free":
            continue
        table = pd.read_csv(path, sep=";")
        features = [c for c in table.columns if c not in ("datetime", "anomaly", "changepoint")]
        yield ("skab", f"{path.parent.name}/{path.name}", table[features].to_numpy(float),
               table["anomaly"].to_numpy() > 0, 400, features)
    for folder in sorted((data / "smd" / "csv").glob("machine-*")):
        train, test = pd.read_csv(folder / "train.csv"), pd.read_csv(folder / "test.csv")
        label = next(c for c in test.columns if c.lower() in ("anomaly", "label"))
        features = [c for c in train.columns if c in test.columns and c != label
                    and c.lower() not in ("time", "timestamp")]
        yield ("smd", folder.name, np.vstack([train[features], test[features]]).astype(float),
               np.concatenate([np.zeros(len(train), bool), test[label].to_numpy() > 0]),
               len(train), features)
    for path in sorted((data / "ecg-mitbih" / "csv").glob("*.csv")):
        table = pd.read_csv(path)
        features = [c for c in table.columns if c not in ("time", "anomaly", "beat")]
        yield ("ecg", path.name, table[features].to_numpy(float),
               table["anomaly"].to_numpy() > 0, len(table) // 4, features)
    windows = json.loads((data / "nab" / "labels" / "combined_windows.json").read_text())
    for name, spans in sorted(windows.items()):
        table = pd.read_csv(data / "nab" / "data" / name)
        times = pd.to_datetime(table["timestamp"])
        labels = np.zeros(len(table), bool)
        for start, end in spans:
            labels |= ((times >= pd.Timestamp(start)) & (times <= pd.Timestamp(end))).to_numpy()
        yield ("nab", name, table[["value"]].to_numpy(float), labels, int(len(table) * 0.15),
               ["value"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--factor", type=int, default=STEADY_FACTOR)
    parser.add_argument("--minimum", type=int, default=STEADY_MIN_ROWS)
    args = parser.parse_args()
    totals: dict[str, list] = {}
    for name, source, values, labels, train_rows, features in cases(args.data):
        normal, labeled, scored, found = flagged_runs(values, labels, train_rows, features,
                                                      args.factor, args.minimum)
        total = totals.setdefault(name, [0, 0, 0, 0, 0])
        total[0] += 1
        total[1] += scored
        total[2] += normal
        total[3] += labeled
        total[4] += bool(found)
        for feature, reading, longest, limit, touches in found:
            print(f"  {name} {source}: {feature} at {reading:g} for {limit} rows (training's "
                  f"longest {longest}){' touching labeled rows' if touches else ''}")
    print(f"factor {args.factor}, minimum {args.minimum} rows")
    for name, (files, scored, normal, labeled, with_runs) in totals.items():
        print(f"{name}: {files} files, {scored} scored columns: {normal} runs flagged on normal "
              f"rows, {labeled} touching labeled rows, in {with_runs} files")


if __name__ == "__main__":
    main()
