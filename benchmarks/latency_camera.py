"""Camera-model latency in one run: runtime INT8 vs runtime FP32 vs Keras vs TFLite INT8/FP32.

Batch 1, one thread, medians of interleaved rounds (every engine sees the same machine noise).
Also the end-to-end pipeline (decode JPEG + preprocess + infer + overlay) against inference
alone, in frames per second, and the arithmetic limit: the INT8 graph's operations over this
machine's measured one-thread u8s8 GEMM rate, the time no engine's kernels here beat, set beside
the runtime and the times the speed goals ask for. Prints ratios; writes JSON.

    python benchmarks/latency_camera.py --json results/latency_camera.json
    python benchmarks/latency_camera.py --architecture unet --json results/latency_unet.json
    python benchmarks/latency_camera.py --levels 3,5,6 [--bank 8192] [--components 96] \
        --json results/latency_356.json
    python benchmarks/latency_camera.py --size 192 --json results/latency_192.json
    python benchmarks/latency_camera.py --keras M.keras --int8 M.onnx --fp32 M32.onnx

Feature models are fitted with stages 3 and 5 unless ``--levels`` says otherwise: training
chooses those or 3,5,6 from the data, so each is timed on its own. Feature models (``features``,
``fused``) are also timed in mixed precision (the network FP32,
the memory-bank product INT8: what ``vigil export`` writes for them without labeled defects).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from vigil.runtime.core.report import json_text  # noqa: E402
from vigil.benchmarks.script_args import check_given_artifacts, positive_integer, whole_number

if TYPE_CHECKING:
    from vigil.runtime import ImageDetector

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_default(folder: Path, steps: int, architecture: str = "features",
                  width: int | None = None, levels: str | None = None,
                  neighbourhood: int | None = None, bank: int | None = None,
                  components: int | None = None, size: int | None = None
                  ) -> tuple[Path, Path, Path, Path | None]:
    """Fit a camera model on synthetic frames (a U-Net is trained ``steps`` steps); export INT8,
    FP32 and, for feature models, mixed precision (else None)."""
    from vigil.export.export_image import export_image
    from vigil.export import ExportOptions, Precision
    from vigil.training.synthetic_frames import write_mvtec
    from vigil.training.train_image import ImageTrainingOptions, train_image

    root = write_mvtec(folder / "frames", seed=0, train=80, test_good=8, test_defects=8)
    defaults = ImageTrainingOptions()
    from vigil.benchmarks.image_runs import architecture_options, size_options, width_options

    # The frame contrast on, as training chooses it on the real sets (ELPV, the magnetic tiles);
    # the synthetic frames' even contrast would leave it out.
    options = width_options(replace(defaults, architecture=architecture,
                                    model=replace(defaults.model, steps=steps),
                                    features=replace(defaults.features, frame_contrast=True)),
                            width)
    if levels is None and architecture != "unet":
        levels = "3,5"  # training chooses these or 3,5,6 from the data: each is timed alone
    options = architecture_options(options, None, bank, neighbourhood=neighbourhood,
                                   levels=levels, components=components)
    options = size_options(options, size)
    keras_path = folder / "camera.keras"
    train_image(root, keras_path, options, verbose=0)
    int8 = export_image(keras_path, folder / "int8.onnx", ExportOptions(precision=Precision.INT8, force=True)).path
    fp32 = export_image(keras_path, folder / "fp32.onnx",
                        ExportOptions(precision=Precision.FP32)).path
    mixed = (export_image(keras_path, folder / "mixed.onnx",
                          ExportOptions(precision=Precision.MIXED, force=True)).path
             if architecture in ("features", "fused") else None)
    return keras_path, int8, fp32, mixed


def pipeline_fps(detector: ImageDetector, raw: list[np.ndarray], folder: Path,
                 repeats: int = 20) -> dict:
    """Frames/s of the runtime's own frame loop over a video file (decode on a read-ahead
    thread, preprocess, infer, boxes, overlays of anomalous frames) against inference alone."""
    import io

    from vigil.runtime.camera.scoring import FrameScoringOptions, score_frames
    from vigil.runtime.camera.sources import open_source, prefetched

    height, width = raw[0].shape[:2]
    video = folder / "pipeline.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter.fourcc(*"MJPG"), 30.0, (width, height))
    for _ in range(repeats):
        for frame in raw:
            writer.write(frame)
    writer.release()
    prepared = [detector.prepare(f) for f in raw]
    count = len(raw) * repeats
    start = time.perf_counter()
    for i in range(count):
        detector.run_prepared(prepared[i % len(prepared)])
    inference = count / (time.perf_counter() - start)
    summary = score_frames(detector, prefetched(open_source(str(video))), io.StringIO(),
                           FrameScoringOptions(overlay_dir=folder / "overlays"))
    end_to_end = summary.scored / summary.seconds
    return {"inference_fps": inference, "pipeline_fps": end_to_end, "frames": summary.scored,
            "pipeline_over_inference": end_to_end / inference}


def arithmetic_limit(int8_path: Path, p50_ms: dict[str, float],
                     roof_before: float | None = None) -> dict:
    """The INT8 graph's floor on this machine (its operations at the measured one-thread u8s8
    GEMM rate, the larger of ``roof_before``, measured before the timings, and one measured
    now, as `vigil bench` keeps the larger: one 1-s measure varied 1.19x on a busy machine)
    beside the runtime's p50 and the goals' times (1.2x faster than TFLite INT8, 5x faster than
    Keras under tf.function), each as a multiple of the floor (below 1: faster than the kernels
    can run)."""
    from vigil.benchmarks.bench import measured_roof
    from vigil.benchmarks.flops import count_flops

    ops = count_flops(int8_path)["ops"]
    roof = max(measured_roof()["u8s8_ops_per_s"], roof_before or 0.0)
    floor_ms = ops / roof * 1e3
    times = {"runtime_int8": p50_ms["runtime_int8"]}
    if "tflite_int8" in p50_ms:
        times["goal_1.2x_faster_than_tflite_int8"] = p50_ms["tflite_int8"] / 1.2
    if "keras_tf_function" in p50_ms:
        times["goal_5x_faster_than_keras_tf_function"] = p50_ms["keras_tf_function"] / 5
    return {"ops_per_frame": ops, "u8s8_ops_per_s_one_thread": roof, "floor_ms": floor_ms,
            "ms": times, "over_floor": {k: v / floor_ms for k, v in times.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keras", type=Path, help="a trained .keras image model to time (with "
                        "--int8 and --fp32, its exports; default: train one)")
    parser.add_argument("--int8", type=Path, help="the INT8 artifact exported from --keras")
    parser.add_argument("--fp32", type=Path, help="the FP32 artifact exported from --keras")
    parser.add_argument("--mixed", type=Path, help="with --keras, --int8, --fp32: a mixed-"
                        "precision export of the same feature model to time beside them")
    parser.add_argument("--steps", type=positive_integer, default=None,
                        help="unet/fused: the U-Net's training steps (default 60)")
    parser.add_argument("--architecture", choices=["unet", "features", "fused"],
                        default=None,
                        help="the image model to train and time (default features, as "
                             "`vigil train image`)")
    parser.add_argument("--width", type=positive_integer, default=None,
                        help="unet/fused: the U-Net's first-level channels (default: library)")
    parser.add_argument("--levels", default=None, metavar="S,S,...",
                        help="features/fused: EfficientNet-Lite0 stages (default 3,5: training "
                             "chooses 3,5 or 3,5,6 from the data, so each is timed on its own; "
                             "3,5,6 for the other)")
    parser.add_argument("--neighbourhood", type=positive_integer, default=None,
                        help="features/fused: K x K neighbourhood averaging, K odd (default: "
                             "library)")
    parser.add_argument("--bank", type=positive_integer, default=None,
                        help="features/fused: memory-bank entries (default: library)")
    parser.add_argument("--components", type=whole_number, default=None,
                        help="features/fused: principal components the patch features are "
                             "projected on before the bank (default: library; 0: none)")
    parser.add_argument("--size", type=positive_integer, default=None,
                        help="the model's square input side in pixels (default: library, 256)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    training = [f"--{name}" for name in ("steps", "architecture", "width", "levels",
                                          "neighbourhood", "bank", "components", "size")
                if getattr(args, name) is not None]
    if training and any(getattr(args, f) is not None for f in ("keras", "int8", "fp32")):
        parser.error(f"{', '.join(training)} appl{'ies' if len(training) == 1 else 'y'} to the "
                     f"model this benchmark trains; the given --keras, --int8 and --fp32 keep "
                     f"their own")
    args.steps = 60 if args.steps is None else args.steps
    args.architecture = args.architecture or "features"
    given = check_given_artifacts(parser, args, {"int8": "int8", "fp32": "fp32",
                                                 "mixed": "mixed"})
    from vigil.benchmarks.artifacts import load_image
    from vigil.benchmarks.bench import BenchOptions, baselines
    from vigil.training.synthetic_frames import frames

    with tempfile.TemporaryDirectory() as scratch:
        if given:
            keras_path, int8_path, fp32_path, mixed_path = (args.keras, args.int8, args.fp32,
                                                            args.mixed)
        else:
            # Trained in a child process: TensorFlow's thread settings for the Keras baseline
            # (one thread) can only be made before TensorFlow starts in this one.
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
                try:
                    keras_path, int8_path, fp32_path, mixed_path = pool.submit(
                        build_default, Path(scratch), args.steps, args.architecture,
                        args.width, args.levels, args.neighbourhood, args.bank,
                        args.components, args.size).result()
                except ValueError as error:  # an option the training refuses, said as one
                    parser.error(str(error))
        artifacts = [int8_path, fp32_path] + ([mixed_path] if mixed_path else [])
        from vigil.benchmarks.bench import measured_roof

        roof_before = measured_roof()["u8s8_ops_per_s"]  # and again after: the larger is kept
        base = baselines(keras_path, artifacts, BenchOptions())
        int8 = load_image(int8_path, flag="--int8")
        raw = [f.image for f in frames(24, seed=9, defect_rate=0.3, height=int8.spec.height,
                                       width=int8.spec.width)]
        p50 = {name: s["p50_ms"] for name, s in base["stats"].items()}
        # the goals are the INT8 artifact's: the pipeline and the limit are measured on it
        result = {**base, "input": list(int8.input_shape), "measured_on": "int8",
                  "pipeline_one_inference_thread": pipeline_fps(int8, raw, Path(scratch)),
                  "arithmetic_limit": arithmetic_limit(int8_path, p50, roof_before)}
    text = json_text(result)  # strict JSON: an undefined figure is null, never NaN
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    for name, s in result["stats"].items():
        print(f"{name:>13}: p50 {s['p50_ms']:.3f} ms  p99 {s['p99_ms']:.3f} ms")
    print(", ".join(f"{k} = {v:.2f}x" for k, v in result["ratios"].items()))
    limit = result["arithmetic_limit"]
    print(f"arithmetic limit {limit['floor_ms']:.2f} ms ({limit['ops_per_frame'] / 1e9:.2f} G ops "
          f"at {limit['u8s8_ops_per_s_one_thread'] / 1e9:.0f} G ops/s): "
          + ", ".join(f"{k} {limit['ms'][k]:.2f} ms = {v:.2f}x"
                      for k, v in limit["over_floor"].items()))
    p = result["pipeline_one_inference_thread"]
    print(f"pipeline {p['pipeline_fps']:.0f} fps vs inference {p['inference_fps']:.0f} fps "
          f"({p['pipeline_over_inference']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
