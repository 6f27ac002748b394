"""ECG quality benchmark: MIT-BIH Arrhythmia records (two leads, abnormal beats labeled).

Protocol: each record (30 min at 180 Hz, two leads whose names differ between records) trains its
own model on its first quarter with the CLI's defaults (rows near abnormal beats are never
trained on: they are labeled), exported as users get it (``--precision auto``); the other three
quarters are scored through the runtime. Windows are taken every ``--stride`` rows (default 4,
45 decisions a second) so that a record trains in about a minute on two cores. Reported per
record and pooled: point ``f1``, ``event_f1`` (an abnormal beat or run of them is hit if an alarm
falls in it; an alarm run is false if it overlaps none; no point adjustment) and ``auroc``.

Data: MIT-BIH Arrhythmia Database (Moody & Mark 2001; PhysioNet, Goldberger et al. 2000), ODC-By
1.0; see ``../shared/data/ecg-mitbih/README.md``.

    python benchmarks/quality_ecg.py --data ../shared/data/ecg-mitbih --json results/ecg.json
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

from vigil.export import ExportOptions  # noqa: E402

from vigil.export.export_sensor import export_sensor  # noqa: E402
from vigil.benchmarks.artifacts import load_sensor  # noqa: E402
from vigil.benchmarks.labels import labels_of  # noqa: E402
from vigil.benchmarks.sensor_options import add_model_arguments, with_model_arguments  # noqa: E402
from vigil.benchmarks.score_dump import save_streams, stream_of  # noqa: E402
from vigil.runtime.core import metrics  # noqa: E402
from vigil.runtime.core.report import json_text  # noqa: E402
from vigil.runtime.sensor.evaluation import (between_windows, episode_gap, row_decisions,  # noqa: E402
                                              summarize)
from vigil.runtime.sensor.tables import read_table  # noqa: E402
from vigil.training.synthetic import write_csv  # noqa: E402
from vigil.training.train_sensor import SensorTrainingOptions, train_sensor  # noqa: E402

TRAIN_FRACTION = 0.25


def records(root: Path) -> list[Path]:
    found = sorted((root / "csv").glob("*.csv"))
    if not found:
        raise ValueError(f"`data` must be the ecg-mitbih folder with csv/<record>.csv; found none "
                         f"under {root}")
    return found


def run_record(path: Path, options: SensorTrainingOptions, scratch: Path) -> dict:
    header = path.open().readline().strip().split(",")
    leads = tuple(header[1:3])  # time, <lead1>, <lead2>, anomaly, beat
    table = read_table(path, features=leads, time_column="time", label_column="anomaly")
    labels = labels_of(table, "anomaly")
    split = int(len(table) * TRAIN_FRACTION)
    train_csv = write_csv(scratch / f"{path.stem}-train.csv", table.values[:split],
                          features=leads, labels=labels[:split])
    started = time.perf_counter()
    run = train_sensor(train_csv, scratch / f"{path.stem}.keras", options, verbose=0).run
    report = export_sensor(scratch / f"{path.stem}.keras", scratch / f"{path.stem}.onnx",
                           ExportOptions())
    detector = load_sensor(report.path)
    scores, alarms = row_decisions(detector, table.values)
    filled = between_windows(scores, scores, np.nan)  # rows between windows: the last window's
    test = slice(split, None)
    stream = stream_of(path.stem, detector, scores, labels, split,
                       run.normal_validation)
    return {"stream": stream, "gap": episode_gap(detector), "record": path.stem, "leads": list(leads), "alarms": alarms[test],
            "scores": filled[test], "labels": labels[test],
            "precision_chosen": report.precision, "seconds": time.perf_counter() - started}


def ecg_protocol(root: Path, options: SensorTrainingOptions, scratch: Path, log=print,
                 only: tuple[str, ...] = ()) -> dict:
    per_record, runs = [], []
    for path in records(root):
        if only and path.stem not in only:
            continue
        run = run_record(path, options, scratch)
        runs.append(run)
        summary = summarize(run["scores"], run["alarms"], run["labels"], run["gap"])
        per_record.append({"record": run["record"], "leads": run["leads"],
                           **{k: summary[k] for k in ("f1", "precision", "recall", "event_f1",
                                                      "events", "events_hit", "alarm_runs",
                                                      "false_alarm_runs", "auroc")},
                           "precision_chosen": run["precision_chosen"],
                           "seconds": round(run["seconds"], 1)})
        auroc = summary["auroc"]
        log(f"  {run['record']} ({'/'.join(run['leads'])}): f1 {summary['f1']:.3f}  event_f1 "
            f"{summary['event_f1']:.3f}  auroc {'-' if auroc != auroc else f'{auroc:.3f}'}")
    alarms = np.concatenate([r["alarms"] for r in runs])
    labels = np.concatenate([r["labels"] for r in runs])
    c = metrics.counts(alarms, labels)
    aurocs = [r["auroc"] for r in per_record if r["auroc"] == r["auroc"]]
    return {
        "protocol": "ecg: each record trains on its first quarter (labeled rows left out) and "
                    "scores the rest through the runtime; no point adjustment",
        "f1": c.f1, "precision": c.precision, "recall": c.recall,
        "event_f1": metrics.pooled_event_f1(((r["alarms"], r["labels"]) for r in runs),
                                            runs[0]["gap"] if runs else 0),
        "auroc": float(np.mean(aurocs)) if aurocs else None,
        "records": per_record, "streams": [r["stream"] for r in runs],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/ecg-mitbih"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--stride", type=int, default=4, help="rows between windows")
    add_model_arguments(parser)
    parser.add_argument("--records", default="", help="only these records (comma-separated)")
    parser.add_argument("--save-scores", type=Path, default=None, metavar="NPZ",
                        help="save every stream's scores for benchmarks/sweep_alarms.py")
    args = parser.parse_args(argv)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    options = SensorTrainingOptions()
    options = replace(options, data=replace(options.data, stride=args.stride))
    options = with_model_arguments(options, args)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        result = ecg_protocol(args.data, options, Path(scratch),
                              only=tuple(r for r in args.records.split(",") if r))
    streams = result.pop("streams")
    if args.save_scores:
        save_streams(args.save_scores, "ecg", streams)
    result["seconds"] = time.perf_counter() - started
    result["stride"] = args.stride
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json_text(result))
    print(json_text({k: result[k] for k in ("f1", "event_f1", "auroc")}, indent=None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
