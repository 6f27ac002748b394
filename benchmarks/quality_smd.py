"""SMD quality benchmark: server-machine telemetry (38 metrics), trained and scored as a user would.

Protocol (OmniAnomaly's split): for each machine, a model is trained on its unlabeled ``train.csv``
(which may hold anomalies; nothing says it is clean) with the CLI's defaults, exported as users
get it (``--precision auto``), and ``test.csv`` is scored through the runtime. Reported per machine
and pooled: point-wise ``f1`` (no point adjustment), ``event_f1`` (an event is hit if an alarm
falls in it; an alarm run is false if it overlaps no event), ``auroc`` of the scores, and which
columns training left out of the score (constant, binary or categorical in normal operation).

    python benchmarks/quality_smd.py --data ../shared/data/smd --json results/smd.json
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
from vigil.benchmarks.sensor_options import add_model_arguments, with_model_arguments  # noqa: E402
from vigil.benchmarks.score_dump import save_streams, stream_of  # noqa: E402
from vigil.runtime.core import metrics  # noqa: E402
from vigil.runtime.core.report import json_text  # noqa: E402
from vigil.runtime.sensor.evaluation import episode_gap, score_file, summarize  # noqa: E402
from vigil.training.train_sensor import SensorTrainingOptions, train_sensor  # noqa: E402

TIME_COLUMN = "t"  # SMD's row index: a time key, not a metric


def machines(root: Path) -> list[Path]:
    found = sorted(p for p in (root / "csv").glob("machine-*") if (p / "train.csv").is_file())
    if not found:
        raise ValueError(f"`data` must be SMD's folder with csv/machine-*/train.csv and test.csv; "
                         f"found none under {root}")
    return found


def run_machine(folder: Path, options: SensorTrainingOptions, scratch: Path,
                train_rows: int | None = None) -> dict:
    train_csv = folder / "train.csv"
    if train_rows is not None:
        lines = train_csv.read_text().splitlines()[: train_rows + 1]
        train_csv = scratch / f"{folder.name}-train.csv"
        train_csv.write_text("\n".join(lines) + "\n")
    started = time.perf_counter()
    result = train_sensor(train_csv, scratch / f"{folder.name}.keras", options, verbose=0)
    report = export_sensor(scratch / f"{folder.name}.keras", scratch / f"{folder.name}.onnx",
                           ExportOptions())
    detector = load_sensor(report.path)
    scored = score_file(detector, folder / "test.csv", "anomaly", name=folder.name)
    seconds = time.perf_counter() - started
    run = result.run
    stream = stream_of(folder.name, detector, scored.scores, scored.labels, 0,
                       run.normal_validation)
    return {"scores": scored, "precision_chosen": report.precision, "seconds": seconds,
            "stream": stream, "gap": episode_gap(detector),
            "inputs_only": result.run.record["training"].get("inputs_only", {}),
            "threshold": detector.threshold}


def smd_protocol(root: Path, options: SensorTrainingOptions, scratch: Path, log=print,
                 train_rows: int | None = None) -> dict:
    per_machine, parts, streams = [], [], []
    for folder in machines(root):
        run = run_machine(folder, options, scratch, train_rows)
        scored = run["scores"]
        summary = summarize(scored.scores, scored.alarms, scored.labels, run["gap"])
        per_machine.append({"machine": folder.name, **{k: summary[k] for k in (
            "f1", "precision", "recall", "event_f1", "event_precision", "event_recall", "auroc",
            "events", "events_hit", "alarm_runs", "false_alarm_runs")},
            "precision_chosen": run["precision_chosen"], "inputs_only": run["inputs_only"],
            "seconds": round(run["seconds"], 1)})
        log(f"  {folder.name}: f1 {summary['f1']:.3f}  event_f1 {summary['event_f1']:.3f}  "
            f"auroc {summary['auroc']:.3f}  ({len(run['inputs_only'])} columns inputs only)")
        parts.append(scored)
        gap = run["gap"]
        streams.append(run["stream"])
    alarms = np.concatenate([p.alarms for p in parts])
    labels = np.concatenate([p.labels for p in parts])
    c = metrics.counts(alarms, labels)
    return {
        "protocol": "smd: train on each machine's unlabeled train half with the defaults, score "
                    "its test half through the runtime; no point adjustment",
        "f1": c.f1, "precision": c.precision, "recall": c.recall,
        "event_f1": metrics.pooled_event_f1(((p.alarms, p.labels) for p in parts), gap),
        "auroc": float(np.mean([m["auroc"] for m in per_machine])),
        "machines": per_machine, "streams": streams,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/smd"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--train-rows", type=int, default=None,
                        help="train on only the first N rows of each train half (smoke runs)")
    add_model_arguments(parser)
    parser.add_argument("--save-scores", type=Path, default=None, metavar="NPZ",
                        help="save every stream's scores for benchmarks/sweep_alarms.py")
    args = parser.parse_args(argv)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    options = SensorTrainingOptions()
    options = replace(options, data=replace(options.data, time_column=TIME_COLUMN))
    options = with_model_arguments(options, args)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        result = smd_protocol(args.data, options, Path(scratch), train_rows=args.train_rows)
    streams = result.pop("streams")
    if args.save_scores:
        save_streams(args.save_scores, "smd", streams)
    result["seconds"] = time.perf_counter() - started
    text = json_text(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(json_text({k: result[k] for k in ("f1", "event_f1", "auroc")}, indent=None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
