"""SKAB quality benchmark, following SKAB's own protocol through the INT8 runtime.

SKAB protocol: for each of the 34 labeled files, the first 400 rows train a fresh model (normal
operation) and the remaining rows are the test; predictions of all files are pooled and scored
point-wise: F1 = TP / (TP + (FP + FN) / 2), FAR = FP / (FP + TN), MAR = FN / (FN + TP) (SKAB
reports FAR and MAR in percent; so does this script). Windows are causal: the window ending at a
test row may reach back into the training rows, as in SKAB's own notebooks.

Deployment protocol (``--deployment``): train once on anomaly-free.csv without its last 572 rows
(they repeat other/5.csv), test on all 34 files whole.

    python benchmarks/quality_skab.py --data ../shared/data/skab --json results/skab.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from vigil.runtime.core.report import json_text  # noqa: E402
from vigil.export import ExportOptions, Precision  # noqa: E402

from vigil.export.export_sensor import export_sensor  # noqa: E402
from vigil.benchmarks.artifacts import load_sensor  # noqa: E402
from vigil.benchmarks.labels import labels_of  # noqa: E402
from vigil.benchmarks.sensor_options import add_model_arguments, with_model_arguments  # noqa: E402
from vigil.benchmarks.score_dump import save_streams, stream_of  # noqa: E402
from vigil.runtime.core.metrics import counts  # noqa: E402
from vigil.runtime.sensor.evaluation import row_decisions  # noqa: E402
from vigil.runtime.sensor.tables import fill_gaps, read_table  # noqa: E402
from vigil.training.synthetic import write_csv  # noqa: E402
from vigil.training.train_sensor import SensorTrainingOptions, train_sensor  # noqa: E402

TRAIN_ROWS = 400
OVERLAP_ROWS = 572  # anomaly-free.csv's tail repeats other/5.csv


def labeled_files(root: Path) -> list[Path]:
    files = sorted(p for folder in ("valve1", "valve2", "other") for p in (root / folder).glob("*.csv"))
    if len(files) != 34:
        raise ValueError(f"`data` must be SKAB's data folder with 34 labeled CSVs in valve1/, "
                         f"valve2/, other/; found {len(files)} under {root}")
    return files




def skab_protocol(files: list[Path], options: SensorTrainingOptions, scratch: Path,
                  log=print) -> dict:
    """Train on each file's first 400 rows, test on the rest, pool the predictions."""
    predicted, truth, per_file, streams = [], [], [], []
    for path in files:  # a file without labels named before the first of 34 trainings
        labels_of(read_table(path))
    started = time.perf_counter()
    for number, path in enumerate(files, 1):
        table = read_table(path)
        file_labels = labels_of(table)
        values = fill_gaps(table.values, options.data.max_gap, table.source, table.features)
        train_csv = write_csv(scratch / f"{number}-train.csv", values[:TRAIN_ROWS],
                              features=table.features)
        model = scratch / f"{number}.keras"
        run = train_sensor(train_csv, model, options, verbose=0).run
        artifact = export_sensor(model, scratch / f"{number}.onnx",
                                 ExportOptions(precision=Precision.INT8, force=True)).path
        detector = load_sensor(artifact)
        scores, all_alarms = row_decisions(detector, values)
        streams.append(stream_of(f"{path.parent.name}/{path.name}", detector, scores, file_labels,
                                 TRAIN_ROWS, run.normal_validation))
        alarms = all_alarms[TRAIN_ROWS:]
        labels = file_labels[TRAIN_ROWS:]
        c = counts(alarms, labels)
        per_file.append({"file": f"{path.parent.name}/{path.name}", "f1": c.f1,
                         "far": 100 * c.false_alarm_rate, "mar": 100 * c.missed_alarm_rate})
        log(f"  {number:2d}/{len(files)} {per_file[-1]['file']:<14} F1 {c.f1:.3f}")
        predicted.append(alarms)
        truth.append(labels)
    total = counts(np.concatenate(predicted), np.concatenate(truth))
    return {"protocol": "skab: first 400 rows of each file train, the rest test",
            "f1": total.f1, "far": 100 * total.false_alarm_rate,
            "mar": 100 * total.missed_alarm_rate, "files": per_file,
            "seconds": time.perf_counter() - started, "streams": streams}


def deployment_protocol(root: Path, options: SensorTrainingOptions, scratch: Path) -> dict:
    """Train once on anomaly-free operation, test every labeled file whole."""
    table = read_table(root / "anomaly-free" / "anomaly-free.csv")
    train_csv = write_csv(scratch / "anomaly-free-train.csv", table.values[:-OVERLAP_ROWS],
                          features=table.features)
    started = time.perf_counter()
    model = scratch / "deployment.keras"
    train_sensor(train_csv, model, options, verbose=0)
    artifact = export_sensor(model, scratch / "deployment.onnx",
                             ExportOptions(precision=Precision.INT8, force=True)).path
    detector = load_sensor(artifact)
    predicted, truth = [], []
    for path in labeled_files(root):
        test = read_table(path)
        values = fill_gaps(test.values, options.data.max_gap, test.source, test.features)
        predicted.append(row_decisions(detector, values)[1])
        truth.append(labels_of(test))
    total = counts(np.concatenate(predicted), np.concatenate(truth))
    return {"protocol": "deployment: train on anomaly-free.csv (minus last 572 rows), test all 34",
            "f1": total.f1, "far": 100 * total.false_alarm_rate,
            "mar": 100 * total.missed_alarm_rate, "seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/skab"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--deployment", action="store_true", help="also run the deployment protocol")
    parser.add_argument("--limit", type=int, default=None, help="only the first N files (smoke runs)")
    add_model_arguments(parser)
    parser.add_argument("--save-scores", type=Path, default=None, metavar="NPZ",
                        help="save every stream's scores for benchmarks/sweep_alarms.py")
    args = parser.parse_args(argv)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    options = with_model_arguments(SensorTrainingOptions(), args)
    files = labeled_files(args.data)[: args.limit]
    with tempfile.TemporaryDirectory() as scratch:
        result = {"skab": skab_protocol(files, options, Path(scratch))}
        if args.deployment:
            result["deployment"] = deployment_protocol(args.data, options, Path(scratch))
    streams = result["skab"].pop("streams")
    if args.save_scores:
        save_streams(args.save_scores, "skab", streams)
    result.update(f1=result["skab"]["f1"], far=result["skab"]["far"], mar=result["skab"]["mar"])
    result["options"] = _options_json(options)
    text = json_text(result)  # strict JSON: an undefined figure is null, never NaN
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(json.dumps({k: result[k] for k in ("f1", "far", "mar")}))
    return 0


def _options_json(options: SensorTrainingOptions) -> dict:
    from dataclasses import asdict

    return json.loads(json.dumps(asdict(options), default=lambda v: getattr(v, "value", str(v))))


if __name__ == "__main__":
    sys.exit(main())
