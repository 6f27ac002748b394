"""``vigil demo``: the whole sensor path on built-in synthetic data, in a few minutes on a CPU."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np


def run_demo(output: Path, seed: int = 0, quick: bool = False) -> dict:
    """Generate data, train, export INT8, stream the test part through the runtime, report."""
    from runtime import load
    from runtime.bench import latency_stats, time_calls
    from runtime.evaluation import evaluate
    from runtime.report import write_report
    from runtime.scoring import score_source
    from training.sensor_data import DataOptions
    from training.sensor_model import ModelOptions
    from training.synthetic import write_sensor_dataset
    from training.train_sensor import SensorTrainingOptions, train_sensor

    from .export_sensor import export_sensor

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print(f"[1/5] synthetic sensor data (seed {seed}) -> {output / 'data'}")
    train_csv, test_csv = write_sensor_dataset(output / "data", seed=seed)

    print("[2/5] training an LSTM autoencoder on normal data")
    options = SensorTrainingOptions(data=DataOptions(window=32),
                                    model=ModelOptions(epochs=3 if quick else 30, seed=seed))
    trained = train_sensor(train_csv, output / "sensor.keras", options, verbose="auto")
    print(f"      {trained.epochs} epochs in {trained.seconds:.1f} s; threshold "
          f"{trained.threshold.value:.4g} ({trained.threshold.method})")

    print("[3/5] exporting INT8 ONNX with parity check")
    exported = export_sensor(output / "sensor.keras", output / "sensor.onnx")
    for message in exported.messages:
        print(f"      {message}")
    parity = exported.parity
    print(f"      {exported.precision}: Keras vs FP32 max |diff| {parity['fp32_max_abs_diff']:.2e}"
          + (f", INT8 rank correlation {parity['int8_rank_correlation']:.4f}"
             if "int8_rank_correlation" in parity else ""))

    print("[4/5] streaming the labeled test stream through the runtime")
    detector = load(exported.path)
    with open(output / "scores.jsonl", "w") as out:
        summary = score_source(detector, str(test_csv), out)
    result, files = evaluate(detector, test_csv)
    report = write_report(result, files, output / "report", exported.path.name)

    print("[5/5] batch-1 latency through the runtime")
    window = np.ascontiguousarray(files and _first_window(detector, test_csv))
    stats = latency_stats(time_calls(lambda: detector.score(window), 1.0), 1)

    metrics = {k: round(float(result[k]), 4) for k in
               ("precision", "recall", "f1", "auroc", "auprc", "event_f1", "point_adjusted_f1")}
    summary_json = {
        "metrics": metrics, "threshold": result["threshold"],
        "events": f"{result['events_hit']}/{result['events']} hit, "
                  f"{result['false_alarm_runs']} false alarm runs",
        "stream": summary.to_json(),
        "latency_batch1_ms": {"p50": round(stats["p50_ms"], 4), "p99": round(stats["p99_ms"], 4)},
        "artifact": str(exported.path), "precision": exported.precision,
        "report": str(report), "seconds": round(time.perf_counter() - started, 1),
    }
    (output / "demo.json").write_text(json.dumps(summary_json, indent=2))
    print(json.dumps(summary_json, indent=2))
    return summary_json


def _first_window(detector, csv_path: Path) -> np.ndarray:
    from runtime.tables import read_table

    table = read_table(csv_path, features=detector.features)
    return table.values[: detector.input_shape[0]].astype(np.float32)
