"""``vigil demo``: the sensor path and the camera path on built-in synthetic data, on a CPU."""

from __future__ import annotations

import contextlib
import re
import sys
import time
from pathlib import Path

import numpy as np

from vigil.runtime.core.report import json_text


def run_demo(output: Path, seed: int = 0, quick: bool = False, only: str | None = None,
             architecture: str | None = None) -> dict:
    """Both demos (or ``only`` one of ``sensor``, ``camera``); returns their summaries. The
    camera demo trains ``architecture`` (default: ``vigil train image``'s)."""
    started = time.perf_counter()
    result: dict[str, object] = {}
    if only in (None, "sensor"):
        result["sensor"] = run_sensor_demo(Path(output) / "sensor", seed, quick)
    if only in (None, "camera"):
        result["camera"] = run_camera_demo(Path(output) / "camera", seed, quick,
                                            architecture)
    result["seconds"] = round(time.perf_counter() - started, 1)
    (Path(output) / "demo.json").write_text(json_text(result))
    print(f"\nall artifacts and reports are in {Path(output).resolve()} "
          f"({result['seconds']} s)")
    print(next_steps(Path(output), only))
    return result


def _path_hint() -> str | None:
    """How to call the ``vigil`` the steps below name, where that is not the command on PATH
    (the README runs `.venv/bin/vigil demo` before any `activate`), else None."""
    import os
    import shlex
    import shutil

    found = shutil.which("vigil")
    ran = Path(sys.argv[0])
    if ran.name != "vigil":  # `python -m vigil demo` (or a test)
        if found is not None:
            return None
        return (f"vigil is not on PATH here: write {shlex.quote(sys.executable)} -m vigil for "
                f"vigil below")
    if found is not None and os.path.realpath(found) == os.path.realpath(ran):
        return None
    relative = os.path.relpath(ran)
    command = relative if not relative.startswith("..") else str(ran.resolve())
    activate = ran.parent / "activate"
    return ("vigil is not on PATH here: " + (f"source {Path(command).parent}/activate, or "
                                            if activate.is_file() else "")
            + f"write {command} for vigil below")


def next_steps(output: Path, only: str | None) -> str:
    """Commands to try next on what the demo wrote, then on one's own data."""
    sensor, camera = output / "sensor", output / "camera"
    lines = ["\nnext:"]
    hint = _path_hint()
    if hint:
        lines.append(f"  ({hint})")
    if only in (None, "sensor"):
        lines += [f"  vigil score {sensor / 'sensor.onnx'} {sensor / 'data' / 'test.csv'} "
                  f"--jsonl scores.jsonl    # one line per window",
                  f"  report: {sensor / 'report' / 'report.md'}    # what it caught, and why"]
    if only in (None, "camera"):
        lines += [f"  vigil score {camera / 'camera.onnx'} {camera / 'line.avi'} --jsonl "
                  f"frames.jsonl    # one line per frame, with boxes",
                  f"  report: {camera / 'report' / 'report.md'}"]
    lines += ["  your own data: vigil train sensor DATA.csv -o m.keras (or vigil train image "
              "NORMAL_IMAGES/ -o m.keras), vigil export m.keras -o m.onnx, vigil score m.onnx "
              "INPUT; the README's \"Command line\" has the rest"]
    return "\n".join(lines)


def _clear_earlier_pictures(output: Path) -> None:
    """Remove an earlier demo run's overlays and annotated video from the demo's own folder, so
    that a run again leaves only its own (`vigil score` never replaces a picture; a demo folder is
    the demo's). Only files named as the demo names them are removed."""
    names = re.compile(r"(\d{8}(-\d+)?\.jpg|annotated(-\d+)?\.avi)")
    for folder in (output / "overlays", output):
        if folder.is_dir():
            for path in folder.iterdir():
                if path.is_file() and names.fullmatch(path.name):
                    path.unlink()


def run_camera_demo(output: Path, seed: int = 0, quick: bool = False,
                    architecture: str | None = None) -> dict:
    """Synthetic textured frames -> the image model (``architecture``, default the training
    default) -> ONNX -> a video -> the live-source scoring loop."""
    from dataclasses import replace

    from vigil.runtime.camera.detector import ImageDetector
    from vigil.runtime.camera.scoring import FrameScoringOptions, score_frames
    from vigil.runtime.camera.evaluation import evaluate_images, test_items
    from vigil.runtime.camera.report import write_image_report
    from vigil.runtime.camera.sources import open_source, prefetched
    from vigil.runtime.core.artifact import open_artifact
    from vigil.runtime.core.output import read_results
    from vigil.training.synthetic_frames import write_mvtec, write_video
    from vigil.training.train_image import ImageTrainingOptions, train_image

    from vigil.export.export_image import export_image

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print(f"\n== camera path ==\n[1/5] synthetic textured frames with scratches, spots and cracks "
          f"(seed {seed}) -> {output / 'frames'} (MVTec AD layout)")
    root = write_mvtec(output / "frames", seed=seed)
    defaults = ImageTrainingOptions()
    architecture = architecture or defaults.architecture
    print("[2/5] " + {"unet": "training a U-Net defect segmenter on normal frames + synthetic "
                              "anomalies",
                      "features": "fitting a memory bank of pretrained patch features of the "
                                  "normal frames",
                      "fused": "training a U-Net and fitting a memory bank of pretrained "
                               "features"}[architecture])
    # The synthetic frames are 128 px: the model takes them at their own size.
    options = replace(defaults, architecture=architecture,
                      model=replace(defaults.model, size=128, steps=40 if quick else 400,
                                    seed=seed),
                      features=replace(defaults.features, size=128, seed=seed,
                                       bank=256 if quick else defaults.features.bank))
    trained = train_image(root, output / "camera.keras", options)
    print(f"      {trained.seconds:.1f} s; image threshold {trained.threshold.value:.4g}, "
          f"pixel threshold {trained.pixel_threshold.value:.4g}")
    print("[3/5] exporting ONNX (--precision auto: static INT8, QDQ per-channel, of the whole "
          "network or of its memory-bank product alone, where it holds parity and pays off)")
    exported = export_image(output / "camera.keras", output / "camera.onnx")
    for message in exported.messages + exported.notes:
        print(f"      {message}")
    print(f"      {exported.precision}; map correlation INT8 vs FP32 "
          f"{exported.parity.get('int8_map_correlation', float('nan')):.4f}")
    detector = ImageDetector(open_artifact(exported.path))  # vigil.load's, typed as an image's
    print("[4/5] writing a video with OpenCV and scoring it through the live-source loop")
    video, kinds = write_video(output / "line.avi", seed=seed + 11)
    _clear_earlier_pictures(output)
    with open(output / "frames.jsonl", "w") as out:
        summary = score_frames(detector, prefetched(open_source(str(video))), out,
                               FrameScoringOptions(overlay_dir=output / "overlays",
                                                   overlay_video=output / "annotated.avi"))
    flagged = [record for _, record in read_results(output / "frames.jsonl")]
    hits = sum(1 for r, k in zip(flagged, kinds) if r.get("anomaly") and k != "good")
    false_alarms = sum(1 for r, k in zip(flagged, kinds) if r.get("anomaly") and k == "good")
    print("[5/5] evaluating on the synthetic test frames")
    result, scored = evaluate_images(detector, test_items(root))
    report = write_image_report(result, scored, detector, output / "report", str(exported.path),
                                str(root))
    camera = {
        "architecture": architecture,
        "metrics": {k: (round(result[k], 4) if isinstance(result[k], float) else result[k])
                    for k in ("image_auroc", "pixel_auroc", "pro", "precision", "recall", "f1")},
        "video": {"frames": len(kinds), "defective": sum(k != "good" for k in kinds),
                  "flagged_defective": hits, "false_alarms": false_alarms,
                  "summary": summary.to_json()},
        "artifact": str(exported.path), "precision": exported.precision,
        "report": str(report), "seconds": round(time.perf_counter() - started, 1),
    }
    print(json_text(camera))
    return camera


def run_sensor_demo(output: Path, seed: int = 0, quick: bool = False) -> dict:
    """Generate data, train, export INT8, stream the test part through the runtime, report."""
    from vigil.benchmarks.harness import latency_stats, time_calls
    from vigil.runtime.core.artifact import open_artifact
    from vigil.runtime.sensor.detector import SensorDetector
    from vigil.runtime.sensor.evaluation import evaluate
    from vigil.runtime.sensor.report import write_report
    from vigil.runtime.sensor.scoring import score_source
    from vigil.training.sensor_model import ModelOptions
    from vigil.training.synthetic import write_sensor_dataset
    from vigil.training.progress import keras_verbose
    from vigil.training.train_sensor import SensorTrainingOptions, train_sensor

    from vigil.export.export_sensor import export_sensor

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    print(f"== sensor path ==\n[1/5] synthetic sensor data (seed {seed}) -> {output / 'data'}")
    train_csv, test_csv = write_sensor_dataset(output / "data", seed=seed)

    options = SensorTrainingOptions(model=ModelOptions(epochs=2 if quick else 20, seed=seed))
    members = options.model.members
    print("[2/5] training " + ("an LSTM forecaster" if members == 1 else
                               f"{members} LSTM forecasters (seeds {seed}-{seed + members - 1}; "
                               "their errors averaged)") + " on normal data")
    with contextlib.redirect_stdout(sys.stderr):  # Keras' epoch lines, as `vigil train` has them
        trained = train_sensor(train_csv, output / "sensor.keras", options,
                               verbose=keras_verbose(False, sys.stderr))
    print(f"      {trained.epochs} epochs in {trained.seconds:.1f} s; threshold "
          f"{trained.threshold.value:.4g} ({trained.threshold.method})")

    print("[3/5] exporting ONNX (--precision auto: INT8 where it holds parity and pays off)")
    exported = export_sensor(output / "sensor.keras", output / "sensor.onnx")
    for message in exported.messages + exported.notes:
        print(f"      {message}")
    parity = exported.parity
    print(f"      {exported.precision}: Keras vs FP32 max |diff| {parity['fp32_max_abs_diff']:.2e}"
          + (f", INT8 rank correlation {parity['int8_rank_correlation']:.4f}"
             if "int8_rank_correlation" in parity else ""))

    print("[4/5] streaming the labeled test stream through the runtime")
    detector = SensorDetector(open_artifact(exported.path))  # vigil.load's, typed as a sensor's
    with open(output / "scores.jsonl", "w") as out:
        summary = score_source(detector, str(test_csv), out)
    result, files = evaluate(detector, test_csv)
    report = write_report(result, files, output / "report", str(exported.path), test_csv)

    print("[5/5] batch-1 latency through the runtime")
    window = _first_window(detector, test_csv)
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
    print(json_text(summary_json))
    return summary_json


def _first_window(detector, csv_path: Path) -> np.ndarray:
    from vigil.runtime.sensor.tables import read_table

    table = read_table(csv_path, features=detector.features)
    return table.values[: detector.input_shape[0]].astype(np.float32)
