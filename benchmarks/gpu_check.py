"""The GPU check to run once when a session is lent a GPU machine.

For each artifact (by default: a sensor and a camera model with the default architectures and
sizes, trained briefly here on the built-in synthetic data) and each execution provider onnxruntime offers among TensorRT, CUDA and CPU: do
the scores match the CPU's within the export's parity tolerance, and what are the p50/p99 latency
at batch 1 and the throughput at batch 32. A provider that is not there is reported as missing,
not skipped silently; on a machine without a GPU the script still runs (CPU only) and says so.

    python benchmarks/gpu_check.py --json results/gpu_check.json
    python benchmarks/gpu_check.py --models sensor.onnx camera.onnx --seconds 5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from vigil.benchmarks.bench import inputs_for
from vigil.benchmarks.harness import latency_stats, time_calls
from vigil.runtime import ImageDetector, load
from vigil.runtime.core.report import json_text

PROVIDERS = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider",
             "cpu": "CPUExecutionProvider"}
SCORE_TOLERANCE = 1e-3  # relative to the score's scale, as the export's FP32 parity check


def demo_models(folder: Path) -> list[Path]:
    """A sensor and a camera artifact with the default architectures and input sizes, trained
    briefly on the built-in synthetic data (their speed is what is measured, not their quality)."""
    from dataclasses import replace

    from vigil.export.export_image import export_image
    from vigil.export.export_sensor import export_sensor
    from vigil.training.synthetic import write_sensor_dataset
    from vigil.training.synthetic_frames import write_mvtec
    from vigil.training.train_image import ImageTrainingOptions, train_image
    from vigil.training.train_sensor import SensorTrainingOptions, train_sensor

    train_csv, _ = write_sensor_dataset(folder / "sensor-data", seed=0)
    sensor = SensorTrainingOptions()
    train_sensor(train_csv, folder / "sensor.keras",
                 replace(sensor, model=replace(sensor.model, epochs=3)), verbose=0)
    category = write_mvtec(folder / "frames", seed=0)
    image = ImageTrainingOptions()
    train_image(category, folder / "camera.keras",
                replace(image, model=replace(image.model, steps=100)), verbose=0)
    return [export_sensor(folder / "sensor.keras", folder / "sensor.onnx").path,
            export_image(folder / "camera.keras", folder / "camera.onnx").path]


def check_model(model: Path, seconds: float) -> dict:
    available = ort.get_available_providers()
    reference = load(model, providers="cpu", threads=1)
    items, described = inputs_for(reference, None, count=32)
    run = (lambda d, x: d.run_prepared(x)[0]) if isinstance(reference, ImageDetector) else \
        (lambda d, x: d.score(x))
    expected = np.asarray(run(reference, items), dtype=np.float64)
    scale = max(1.0, float(np.max(np.abs(expected))))
    rows = []
    for device, provider in PROVIDERS.items():
        if provider not in available:
            rows.append({"device": device, "available": False})
            continue
        started = time.perf_counter()
        detector = load(model, providers=device)
        session_s = time.perf_counter() - started
        got = np.asarray(run(detector, items), dtype=np.float64)
        difference = float(np.max(np.abs(got - expected)))
        one = items[:1]
        batch1 = latency_stats(time_calls(lambda: run(detector, one), seconds), 1)
        batch32 = latency_stats(time_calls(lambda: run(detector, items), seconds), len(items))
        rows.append({"device": device, "available": True, "providers": detector.providers,
                     "session_create_s": session_s, "max_abs_diff_vs_cpu": difference,
                     "within_parity": difference <= SCORE_TOLERANCE * scale,
                     "batch1_p50_ms": batch1["p50_ms"], "batch1_p99_ms": batch1["p99_ms"],
                     "batch32_items_per_s": batch32["items_per_s"]})
    return {"model": str(model), "kind": reference.spec.kind, "precision": reference.spec.precision,
            "input": described, "devices": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="*", type=Path, default=None,
                        help="artifacts to check (default: a sensor and a camera model with the "
                             "default architectures, trained briefly here on synthetic data)")
    parser.add_argument("--seconds", type=float, default=3.0, help="time budget per cell")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        models = args.models or demo_models(Path(scratch) / "demo")
        result = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "onnxruntime": ort.__version__, "providers": ort.get_available_providers(),
                  "models": [check_model(m, args.seconds) for m in models]}
    gpu = any(r["available"] for m in result["models"] for r in m["devices"]
              if r["device"] != "cpu")
    result["gpu_tested"] = gpu
    result["verdict"] = ("every available provider matches the CPU within parity" if all(
        r.get("within_parity", True) for m in result["models"] for r in m["devices"])
        else "a provider's scores differ from the CPU's beyond parity")
    if not gpu:
        result["verdict"] += "; no CUDA or TensorRT provider here: the GPU path is untested"
    text = json_text(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
