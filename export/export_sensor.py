"""Export a trained sensor model: Keras -> ONNX FP32 -> INT8, parity gate, threshold re-fit."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from vigil.runtime.core.metrics import counts
from vigil.runtime.core.progress import Progress, silent
from vigil.runtime.core.spec import (AdaptiveThresholdSpec, LikelihoodSpec,
                                     RunningNormalizationSpec, ScoreStats, SensorSpec, Threshold,
                                     TimeStepSpec)
from vigil.runtime.core.thresholds import calibrate_labeled, score_stats
from vigil.runtime.sensor.alarms import consecutive_alarms
from vigil.runtime.sensor.detector import MAX_BATCH
from vigil.training.checkpoint import TrainingRun, keras_identity, load_keras_model, load_run
from vigil.training.versions import library_versions

from .convert import cpu_session, keras_to_onnx
from .options import ExportOptions, ExportReport
from .package import write_artifact
from .precision import (Precision, check_fp32_parity, check_read_back, keep_int8,
                        max_finite_diff, rank_correlation)
from .quantize import (INT8_WEIGHT_BITS, calibration_batches, quantize_static_int8,
                       quantized_nodes)

log = logging.getLogger("vigil")

BATCH1_WINDOWS = 1024  # validation windows scored alone and in a batch, compared


def export_sensor(model_path: str | Path, output: str | Path,
                  options: ExportOptions = ExportOptions(),
                  progress: Progress = silent) -> ExportReport:
    """Write ``output`` (.onnx) from a model written by ``vigil train sensor``."""
    if Precision(options.precision) is Precision.MIXED:
        raise ValueError(f"--precision mixed applies to image feature models (it quantizes their "
                         f"memory-bank product); {str(model_path)!r} is a sensor model: use "
                         f"--precision auto, int8 or fp32")
    run = load_run(model_path)
    progress("export: Keras to ONNX, FP32 parity", 0, 1)
    model = load_keras_model(model_path, "sensor")
    fp32 = keras_to_onnx(model)
    loops = sum(node.op_type in ("Loop", "Scan") for node in fp32.graph.node)
    windows = run.validation
    keras_scores = np.asarray(model.predict(windows, batch_size=MAX_BATCH, verbose=0)["score"],
                              dtype=np.float64).reshape(-1)
    fp32_scores = _onnx_scores(fp32, windows)
    parity: dict = {"windows": int(len(windows))}
    check_fp32_parity(keras_scores, fp32_scores, options.fp32_tolerance, parity)
    messages: list[str] = []
    notes: list[str] = []
    if loops:  # tf2onnx writes Keras 3's GRU step by step, where an LSTM becomes one LSTM node
        messages.append(f"the graph runs its recurrent layer as {loops} ONNX Loop node(s), one "
                        f"step at a time (tf2onnx does not convert Keras 3's GRU to ONNX's GRU): "
                        f"about 15x the time of the same model with an LSTM at batch 1 (a "
                        f"review's gru-ae: 2.38 ms against lstm-ae's 0.157 ms); for a fast "
                        f"device, train with --architecture lstm-forecast or lstm-ae")
    chosen, chosen_scores = fp32, fp32_scores
    precision = Precision(options.precision)
    threshold = _refit(run, fp32_scores)
    progress("export: Keras to ONNX, FP32 parity", 1, 1)
    int8 = (_quantize(fp32, run.calibration, progress)
            if precision in (Precision.INT8, Precision.AUTO) else None)
    if int8 is not None and not quantized_nodes(int8):  # no dense layer outside what stays float
        architecture = run.record.get("training", {}).get("model", {}).get("architecture", "?")
        if precision is Precision.INT8:
            raise ValueError(f"--precision int8: {str(model_path)!r} (architecture "
                             f"{architecture!r}) has no layer that quantizes (sensor models "
                             f"quantize their dense layers; its convolutions and score stay "
                             f"float), so an INT8 artifact would be FP32 under another name; use "
                             f"--precision fp32 (or auto)")
        notes.append(f"wrote FP32: nothing in this model quantizes (architecture "
                     f"{architecture!r}: sensor models quantize their dense layers)")
        int8, precision = None, Precision.FP32
    if int8 is not None:
        parity["int8_weight_bits"] = INT8_WEIGHT_BITS
        progress("export: INT8 parity and timing", 0, 1)
        int8_session = cpu_session(int8)
        int8_scores = _session_scores(int8_session, windows)
        int8_threshold = _refit(run, int8_scores)
        # Fixed activation scales: a window scores the same alone as in a batch, to float
        # rounding, or one quantization step where that rounding crosses one; measured here.
        # (every validation window up to 1,024: a review's GRU INT8 differed by 0.0106 at one
        # window of 753 after the 64th, where a float step crossed a quantization step)
        single = np.concatenate([_session_scores(int8_session, windows[i:i + 1])
                                 for i in range(min(BATCH1_WINDOWS, len(windows)))])
        parity["int8_batch1_max_abs_diff"] = max_finite_diff(single, int8_scores[:len(single)])
        parity.update(_int8_parity(run, fp32_scores, threshold, int8_scores, int8_threshold))
        misses = []
        if parity["int8_rank_correlation"] < options.min_rank_correlation:
            misses.append(f"rank correlation {parity['int8_rank_correlation']:.6g} < "
                          f"{options.min_rank_correlation}")
        if parity.get("int8_f1_drop", 0.0) > options.max_f1_drop:
            misses.append(f"validation F1 drop {parity['int8_f1_drop']:.6g} > {options.max_f1_drop}")
        parity["int8_within_tolerance"] = not misses
        keep, warned, noted = keep_int8(misses, precision, options.force, int8, fp32,
                                        {"window": windows[:1]}, parity)
        messages += warned
        notes += noted
        progress("export: INT8 parity and timing", 1, 1)
        if keep:
            chosen, chosen_scores, threshold = int8, int8_scores, int8_threshold
            precision = Precision.INT8
        else:
            precision = Precision.FP32
    spec = _spec(run, threshold, score_stats(chosen_scores[run.normal_mask]), precision, parity)

    def read_back(detector) -> None:
        # the runtime's batch, as _onnx_scores runs
        check_read_back(detector.score(windows[:MAX_BATCH]), chosen_scores)

    path = write_artifact(chosen, spec, output, verify=read_back)
    return ExportReport(path, precision.value, threshold, parity, tuple(messages), tuple(notes))


CALIBRATION_BATCH = 256
QUANTIZED_OPS = ("MatMul", "Gemm")  # the dense layers; recurrent cells and the score stay float


def _quantize(fp32, calibration: np.ndarray, progress: Progress = silent):
    """Static INT8 of the dense layers, calibrated on normal training windows.

    The recurrent cells stay in float: onnxruntime has no static INT8 LSTM/GRU kernel (only a
    dynamic one, which makes scores batch-dependent), and their outputs are bounded by tanh, so the
    dense layers' calibrated input ranges hold for any reading. Normalization and the error that
    makes the score stay in float too, so an extreme reading is never clipped out of the score.
    """
    from vigil.training.sensor_model import NEIGHBOUR_LAYER  # keras: loaded only to export

    windows = np.asarray(calibration, dtype=np.float32)
    batches = calibration_batches(windows, CALIBRATION_BATCH, progress)
    return quantize_static_int8(fp32, batches, "window", exclude_substrings=(NEIGHBOUR_LAYER,),
                                op_types=QUANTIZED_OPS)


def _onnx_scores(proto, windows: np.ndarray) -> np.ndarray:
    return _session_scores(cpu_session(proto), windows)


def _session_scores(session, windows: np.ndarray) -> np.ndarray:
    out = [session.run(["score"], {"window": windows[i:i + MAX_BATCH]})[0]
           for i in range(0, len(windows), MAX_BATCH)]
    return np.concatenate(out).astype(np.float64).reshape(-1)


def _refit(run: TrainingRun, scores: np.ndarray) -> Threshold:
    """The training threshold rule applied to this model's own validation scores."""
    calibration = run.record["calibration"]
    use = run.calibration_mask  # the normal windows and the labeled ones, as training fitted
    return calibrate_labeled(calibration["method"], scores[use], run.validation_labels[use],
                             calibration["params"])


def _int8_parity(run: TrainingRun, fp32_scores, fp32_threshold: Threshold, int8_scores,
                 int8_threshold: Threshold) -> dict:
    consecutive, hold = int(run.record["consecutive"]), int(run.record.get("hold", 0))
    fp32_alarms = consecutive_alarms(fp32_scores > fp32_threshold.value, consecutive, hold)
    int8_alarms = consecutive_alarms(int8_scores > int8_threshold.value, consecutive, hold)
    parity = {
        "int8_rank_correlation": rank_correlation(fp32_scores, int8_scores),
        "int8_max_abs_diff": max_finite_diff(int8_scores, fp32_scores),
        "int8_decision_agreement": float(np.mean(fp32_alarms == int8_alarms)),
        "fp32_threshold": fp32_threshold.value,
        "int8_threshold": int8_threshold.value,
    }
    labels = run.validation_labels
    if labels.any():
        f1_fp32 = counts(fp32_alarms, labels).f1
        f1_int8 = counts(int8_alarms, labels).f1
        parity.update(fp32_f1=f1_fp32, int8_f1=f1_int8, int8_f1_drop=f1_fp32 - f1_int8)
    return parity


def _spec(run: TrainingRun, threshold: Threshold, stats: ScoreStats, precision: Precision,
          parity: dict) -> SensorSpec:
    record = run.record
    return SensorSpec(
        features=tuple(record["features"]),
        window=int(record["window"]),
        stride=int(record["stride"]),
        mean=tuple(record["mean"]),
        std=tuple(record["std"]),
        score_reduction=record["score_reduction"],
        threshold=threshold,
        consecutive=int(record["consecutive"]),
        score_stats=stats,
        precision=precision.value,
        max_gap=int(record["max_gap"]),
        hold=int(record.get("hold", 0)),
        rearm=int(record.get("rearm", 0)),
        time_column=record.get("time_column"),
        label_column=record.get("label_column"),
        versions={**record.get("versions", {}), **library_versions()},
        # the libraries that trained it, apart from those that exported it (``versions``)
        training={**record["training"], "calibration": record["calibration"],
                  "versions": dict(record.get("versions", {})),
                  **keras_identity(record),
                  "keras_threshold": record["threshold"], "keras_score_stats": record["score_stats"]},
        parity=parity,
        adaptive=AdaptiveThresholdSpec(**record["adaptive"]) if record.get("adaptive") else None,
        running_normalization=_running_normalization(record.get("running_normalization")),
        likelihood=LikelihoodSpec(**record["likelihood"]) if record.get("likelihood") else None,
        time_step=TimeStepSpec(**record["time_step"]) if record.get("time_step") else None,
    )


def _running_normalization(record: dict | None) -> RunningNormalizationSpec | None:
    """The training record's running normalization (models trained before 0.3.1 have no
    ``spread``: the runtime then maps onto the model's std, as it did)."""
    if not record:
        return None
    spread = record.get("spread")
    return RunningNormalizationSpec(memory=int(record["memory"]), warmup=int(record["warmup"]),
                                    spread=tuple(float(s) for s in spread) if spread else None)
