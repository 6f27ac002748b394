"""Sensor-model latency: runtime INT8 vs runtime FP32 vs Keras vs TFLite, in one run.

Batch-1 p50/p99 per window for each, interleaved round by round so that machine noise hits all
alike (the same harness as ``vigil bench --against``); streaming throughput (rows pushed through
StreamingScorer on one thread); cold start (import + load + first score in a fresh process).
Prints ratios; writes JSON.

    python benchmarks/latency_sensor.py --json results/latency_sensor.json [--members N]
    python benchmarks/latency_sensor.py --keras M.keras --int8 M.onnx --fp32 M32.onnx
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vigil.runtime.core.report import json_text  # noqa: E402
from vigil.benchmarks.script_args import check_given_artifacts, load_detector, positive_integer

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_default(folder: Path, architecture: str | None = None,
                  members: int | None = None) -> tuple[Path, Path, Path, int]:
    """Train the default model (the default window, on the demo's 8 synthetic columns; the
    default architecture and number of networks unless given) for 5 epochs and export INT8
    and FP32; also the number of networks."""
    from dataclasses import replace

    from vigil.export import ExportOptions, Precision
    from vigil.export.export_sensor import export_sensor
    from vigil.training.sensor_model import Architecture
    from vigil.training.synthetic import write_sensor_dataset
    from vigil.training.train_sensor import SensorTrainingOptions, train_sensor

    train_csv, _ = write_sensor_dataset(folder / "data", seed=0)
    defaults = SensorTrainingOptions()
    options = replace(defaults, model=replace(
        defaults.model, epochs=5,
        architecture=Architecture(architecture or defaults.model.architecture),
        members=members or defaults.model.members))
    keras_path = folder / "sensor.keras"
    train_sensor(train_csv, keras_path, options, verbose=0)
    int8 = export_sensor(keras_path, folder / "int8.onnx", ExportOptions(precision=Precision.INT8, force=True)).path
    fp32 = export_sensor(keras_path, folder / "fp32.onnx",
                         ExportOptions(precision=Precision.FP32)).path
    return keras_path, int8, fp32, options.model.members


def streaming_rate(int8_path: Path, values: np.ndarray) -> dict:
    from vigil.benchmarks.artifacts import load_sensor
    from vigil.runtime import StreamingScorer

    detector = load_sensor(int8_path)
    scorer = StreamingScorer(detector)
    rows = [(v, i, None, None) for i, v in enumerate(values)]
    start = time.perf_counter()
    for chunk in range(0, len(rows), 1024):
        scorer.push_rows(rows[chunk:chunk + 1024])
    seconds = time.perf_counter() - start
    live = StreamingScorer(detector)
    live_rows = rows[:3000]
    start = time.perf_counter()
    for row in live_rows:
        live.push_rows([row])
    live_seconds = time.perf_counter() - start
    return {"chunked_windows_per_s": scorer.windows_scored / seconds,
            "row_by_row_windows_per_s": live.windows_scored / live_seconds,
            "rows": len(rows)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keras", type=Path, help="a trained .keras model to time (with "
                        "--int8 and --fp32, its exports; default: train one)")
    parser.add_argument("--int8", type=Path, help="the INT8 artifact exported from --keras")
    parser.add_argument("--fp32", type=Path, help="the FP32 artifact exported from --keras")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--architecture", default=None,
                        help="train this sensor architecture (default: the library's)")
    parser.add_argument("--members", type=positive_integer, default=None, metavar="N",
                        help="networks whose errors are averaged (default: the library's, 3)")
    args = parser.parse_args(argv)
    given = check_given_artifacts(parser, args, {"int8": "int8", "fp32": "fp32"})
    if given and (args.members is not None or args.architecture is not None):
        parser.error("--members and --architecture apply to the model this benchmark trains; "
                     "the given --keras, --int8 and --fp32 keep their own")
    from vigil.benchmarks.bench import BenchOptions, baselines
    from vigil.benchmarks.harness import cold_start
    from vigil.training.synthetic import normal_stream

    with tempfile.TemporaryDirectory() as scratch:
        if given:
            keras_path, int8_path, fp32_path = args.keras, args.int8, args.fp32
            members = (load_detector(fp32_path).spec.training.get("model") or {}).get("members")
        else:
            # Trained in a child process: TensorFlow's thread settings for the Keras baseline
            # (one thread) can only be made before TensorFlow starts in this one.
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                try:
                    keras_path, int8_path, fp32_path, members = pool.submit(
                        build_default, Path(scratch), args.architecture, args.members).result()
                except ValueError as error:  # an option the training refuses, said as one
                    parser.error(str(error))
        base = baselines(keras_path, [int8_path, fp32_path], BenchOptions())
        from vigil.runtime import load

        features = load(fp32_path).input_shape[1]
        values = normal_stream(20_000, seed=5)[:, :features].astype(np.float32)
        # the default export of a sensor model is FP32 (`vigil export`, "Precision"): its
        # streaming rate and cold start are what a device gets
        result = {**base, "members": members, "measured_on": "fp32",
                  "streaming_one_thread": streaming_rate(fp32_path, values),
                  "cold_start": cold_start(fp32_path)}
    text = json_text(result)  # strict JSON: an undefined figure is null, never NaN
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    for name, s in result["stats"].items():
        print(f"{name:>13}: p50 {s['p50_ms']:.4f} ms  p99 {s['p99_ms']:.4f} ms")
    print(", ".join(f"{k} = {v:.2f}x" for k, v in result["ratios"].items()))
    s = result["streaming_one_thread"]
    print(f"streaming: {s['chunked_windows_per_s']:.0f} windows/s chunked, "
          f"{s['row_by_row_windows_per_s']:.0f} windows/s row by row")
    print(f"cold start {result['cold_start']}")
    for note in result["notes"]:
        print(f"note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
