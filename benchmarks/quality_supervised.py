"""Supervised against unsupervised, on SKAB and on the MIT-BIH ECG records, file-disjoint.

Two folds: the files (SKAB) or records (ECG) with even positions train one supervised model
(``vigil train sensor --supervised``: all their rows, labels included), which scores the others,
then the other way round, so no file is ever on both sides. Each test file is scored on the rows
its unsupervised protocol scores (SKAB: after the first 400 rows; ECG: the last three quarters),
through the runtime with the exported artifact, so the pooled figures sit beside
``quality_skab.py`` (point F1) and ``quality_ecg.py`` (point F1, event F1, AUROC) on the same
rows. ECG leads are named differently between records: here they are taken by position.

    python benchmarks/quality_supervised.py --set skab --data ../shared/data/skab --json results/supervised-skab.json
    python benchmarks/quality_supervised.py --set ecg --data ../shared/data/ecg-mitbih --json results/supervised-ecg.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from vigil.benchmarks.quality_ecg import TRAIN_FRACTION, records  # noqa: E402
from vigil.benchmarks.quality_skab import TRAIN_ROWS, labeled_files  # noqa: E402
from vigil.benchmarks.sensor_options import add_model_arguments, with_model_arguments  # noqa: E402
from vigil.export import ExportOptions  # noqa: E402
from vigil.export.export_sensor import export_sensor  # noqa: E402
from vigil.benchmarks.artifacts import load_sensor  # noqa: E402
from vigil.benchmarks.labels import labels_of  # noqa: E402
from vigil.runtime.core import metrics  # noqa: E402
from vigil.runtime.core.report import json_text  # noqa: E402
from vigil.runtime.sensor.evaluation import between_windows, episode_gap, row_decisions  # noqa: E402
from vigil.runtime.sensor.tables import fill_gaps, read_table  # noqa: E402
from vigil.training.synthetic import write_csv  # noqa: E402
from vigil.training.train_sensor import SensorTrainingOptions  # noqa: E402
from vigil.training.train_supervised import (SupervisedOptions, supervised_calibration,  # noqa: E402
                                             train_supervised)

LEADS = ("lead1", "lead2")


def load_set(name: str, root: Path, scratch: Path) -> list[tuple[Path, int]]:
    """(CSV to train or score, first test row) per file, with common feature names."""
    if name == "skab":
        return [(path, TRAIN_ROWS) for path in labeled_files(root)]
    out = []
    for path in records(root):
        header = path.open().readline().strip().split(",")
        table = read_table(path, features=tuple(header[1:3]), time_column="time",
                           label_column="anomaly")
        csv = write_csv(scratch / f"{path.stem}.csv", table.values, labels_of(table, "anomaly"),
                        features=LEADS)
        out.append((csv, int(len(table) * TRAIN_FRACTION)))
    return out


def run(name: str, root: Path, options: SensorTrainingOptions, supervised: SupervisedOptions,
        scratch: Path, log=print) -> dict:
    files = load_set(name, root, scratch)
    scores, alarms, labels, folds = [], [], [], []
    for fold in (0, 1):
        train = [path for n, (path, _) in enumerate(files) if n % 2 == fold]
        test = [(path, first) for n, (path, first) in enumerate(files) if n % 2 != fold]
        started = time.perf_counter()
        model = scratch / f"fold{fold}.keras"
        result = train_supervised(train, model, options, supervised, verbose=0)
        report = export_sensor(model, scratch / f"fold{fold}.onnx", ExportOptions())
        detector = load_sensor(report.path)
        trained = time.perf_counter() - started
        for path, first in test:
            table = read_table(path, features=detector.features,
                               time_column=detector.spec.time_column or "auto")
            values = fill_gaps(table.values, detector.spec.max_gap, table.source, table.features)
            row_scores, row_alarms = row_decisions(detector, values)
            scores.append(between_windows(row_scores, row_scores, np.nan)[first:])
            alarms.append(row_alarms[first:])
            labels.append(labels_of(table)[first:])
        gap = episode_gap(detector)
        folds.append({"fold": fold, "train_files": [f"{p.parent.name}/{p.name}" for p in train],
                      "test_files": [f"{p.parent.name}/{p.name}" for p, _ in test],
                      "epochs": result.epochs,
                      "threshold": result.threshold.value, "precision": report.precision,
                      "train_windows": result.run.record["training"]["train_windows"],
                      "seconds": round(trained, 1)})
        log(f"  fold {fold}: trained on {len(train)} files in {trained:.0f} s, "
            f"{result.epochs} epochs, {report.precision}")
    all_alarms, all_labels = np.concatenate(alarms), np.concatenate(labels)
    c = metrics.counts(all_alarms, all_labels)
    aurocs = [metrics.auroc(s, l) for s, l in zip(scores, labels)]
    aurocs = [a for a in aurocs if a == a]
    return {"set": name, "protocol": "two folds, file-disjoint; each file scored on the rows of "
                                     "its unsupervised protocol",
            "f1": c.f1, "precision": c.precision, "recall": c.recall,
            "far": 100 * c.false_alarm_rate, "mar": 100 * c.missed_alarm_rate,
            "event_f1": metrics.pooled_event_f1(zip(alarms, labels), gap),
            "auroc": float(np.mean(aurocs)) if aurocs else None, "folds": folds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", choices=["skab", "ecg"], required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--synthetic-anomalies", type=float, default=0.0)
    parser.add_argument("--max-windows", type=int, default=None,
                        help="training windows per fold (default: all for SKAB, 60000 for ECG)")
    add_model_arguments(parser)
    args = parser.parse_args(argv)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    options = with_model_arguments(SensorTrainingOptions(), args)
    # as `vigil train sensor --supervised` trains by default: F1-optimal, no adaptive threshold
    options = replace(options, calibration=supervised_calibration(options.calibration)[0])
    if args.set == "ecg":  # the unsupervised ECG protocol's window stride
        options = replace(options, data=replace(options.data, stride=4))
    supervised = SupervisedOptions(
        synthetic_fraction=args.synthetic_anomalies,
        max_windows=args.max_windows or (60_000 if args.set == "ecg" else None))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        result = run(args.set, args.data, options, supervised, Path(scratch))
    result["seconds"] = round(time.perf_counter() - started, 1)
    text = json_text(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(json_text({k: result[k] for k in ("f1", "event_f1", "auroc", "far", "mar")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
