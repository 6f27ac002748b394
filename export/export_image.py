"""Export a trained image model: Keras -> ONNX FP32 -> static INT8 QDQ, parity, threshold re-fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vigil.runtime.core.metrics import auroc
from vigil.runtime.core.progress import Progress, silent
from vigil.runtime.core.spec import AREA_WHEN_ROWS_SHRINK, ImageSpec
from vigil.training.checkpoint import TrainingRun, keras_identity, load_keras_model, load_run
from vigil.training.image_thresholds import fit_image_thresholds
from vigil.training.versions import library_versions

from .convert import cpu_session, keras_to_onnx
from .options import ExportOptions, ExportReport
from .precision import (Precision, check_fp32_parity, check_read_back, keep_int8,
                        max_finite_diff, rank_correlation)
from .package import write_artifact
from .quantize import (INT8_WEIGHT_BITS, calibration_batches, quantize_static_int8,
                       quantized_nodes)

CALIBRATION_BATCH = 8


def export_image(model_path: str | Path, output: str | Path,
                 options: ExportOptions = ExportOptions(),
                 progress: Progress = silent) -> ExportReport:
    """Write ``output`` (.onnx) from a model written by ``vigil train image``."""
    run = load_run(model_path)
    record = run.record
    if (Precision(options.precision) is Precision.MIXED
            and record["training"].get("architecture", "unet") not in PROBE_BLIND):
        raise ValueError(_no_bank_product(model_path))
    progress("export: Keras to ONNX, FP32 parity", 0, 1)
    model = load_keras_model(model_path, "image")
    fp32 = keras_to_onnx(model, input_name="image", dtype="uint8")
    images = run.validation
    keras_out = model.predict(images, batch_size=CALIBRATION_BATCH, verbose=0)
    keras_scores = np.asarray(keras_out["score"], dtype=np.float64).reshape(-1)
    fp32_scores, fp32_maps = _onnx_outputs(fp32, images)
    keras_maps = np.asarray(keras_out["anomaly_map"], dtype=np.float64)
    parity: dict = {"images": int(len(images))}
    check_fp32_parity(keras_scores, fp32_scores, options.fp32_tolerance, parity)
    # the map is checked as the score is: each pixel within the tolerance of its Keras value
    map_parity: dict = {}
    check_fp32_parity(keras_maps.ravel(), np.asarray(fp32_maps, np.float64).ravel(),
                      options.fp32_tolerance, map_parity)
    parity["fp32_map_max_abs_diff"] = map_parity["fp32_max_abs_diff"]
    messages: list[str] = []
    notes: list[str] = []
    precision = Precision(options.precision)
    chosen, scores, maps = fp32, fp32_scores, fp32_maps
    progress("export: Keras to ONNX, FP32 parity", 1, 1)
    unverified = _unverified_int8(run, precision)
    target = Precision.INT8 if precision in (Precision.INT8, Precision.AUTO) else precision
    if unverified is not None:  # auto may quantize only the bank's product: the network stays FP32
        notes.append(unverified)
        parity["int8_unverified"] = True
        target = Precision.MIXED
    # auto with labeled defects tries the whole network in INT8 first, then the bank's product
    # alone (a network whose INT8 maps drift may keep parity with only its product quantized)
    banked = record["training"].get("architecture", "unet") in PROBE_BLIND
    attempts = ([target, Precision.MIXED] if precision is Precision.AUTO
                and target is Precision.INT8 and banked else
                [target] if target in (Precision.INT8, Precision.MIXED) else [])
    final = Precision.FP32
    deferred = None  # the network's parity miss, warned as before if nothing else is tried
    for number, attempt in enumerate(attempts):
        int8 = _quantize(fp32, run.calibration, attempt, progress)
        if attempt is Precision.MIXED and not quantized_nodes(int8):
            if precision is not Precision.AUTO:
                raise ValueError(_no_bank_product(model_path))
            notes.append("wrote FP32: this feature model was saved before its memory-bank "
                         "product became its own layer, so only its network could be "
                         "quantized; retrain it for the mixed precision")
            continue  # nothing more to try
        quantized = "INT8" if attempt is Precision.INT8 else "the INT8 bank product"
        later = number + 1 < len(attempts)
        tried: dict = {}
        tried["int8_weight_bits"] = INT8_WEIGHT_BITS
        tried["int8_scope"] = "network" if attempt is Precision.INT8 else "bank product"
        progress("export: INT8 parity and timing", 0, 1)
        int8_scores, int8_maps = _onnx_outputs(int8, images)
        tried.update(_int8_parity(run, fp32_scores, fp32_maps, int8_scores, int8_maps))
        if not run.validation_labels.any():
            tried.update(_synthetic_parity(fp32, int8, images[~run.validation_labels]))
        misses = _parity_misses(tried, options)
        tried["int8_within_tolerance"] = not misses
        if misses and later and not options.force:  # the next attempt may hold: no warning yet
            notes.append(f"{quantized} missed the parity tolerance ({'; '.join(misses)}); "
                         f"tried the INT8 bank product alone")
            parity["network_int8_misses"] = misses
            deferred = (tried, misses, quantized)
            progress("export: INT8 parity and timing", 1, 1)
            continue
        deferred = None
        parity.update(tried)
        keep, warned, noted = keep_int8(misses, precision, options.force, int8, fp32,
                                        {"image": images[:1]}, parity, quantized,
                                        "; --precision mixed quantizes only the memory-bank "
                                        "product" if banked and attempt is Precision.INT8
                                        else "")
        messages += warned
        # a copy that does not pay off is not yet FP32 where another attempt follows
        notes += [n.removeprefix("wrote FP32: ") if later and not keep else n for n in noted]
        progress("export: INT8 parity and timing", 1, 1)
        if keep:
            chosen, scores, maps = int8, int8_scores, int8_maps
            final = attempt
            break
        if later:  # it held parity but does not pay off here: the bank product alone may
            notes.append("tried the INT8 bank product alone")
    if deferred is not None:  # the network missed, and no bank product could be tried
        tried, misses, quantized = deferred
        parity.update(tried)
        messages += keep_int8(misses, precision, False, None, fp32, {}, parity, quantized)[1]
    precision = final
    thresholds = fit_image_thresholds(record["calibration"], scores, maps, run.validation_labels,
                                      run.validation_masks)
    if precision is not Precision.FP32:  # training printed the float model's thresholds
        floating = fit_image_thresholds(record["calibration"], fp32_scores, fp32_maps,
                                        run.validation_labels, run.validation_masks)
        notes.append(f"thresholds fitted on this {precision.value} artifact's own scores of the "
                     f"held-out images: image {thresholds.image.value:.6g}, pixel "
                     f"{thresholds.pixel.value:.6g} (the float model's, as training gave them: "
                     f"{floating.image.value:.6g}, {floating.pixel.value:.6g})")
    spec = _spec(run, thresholds, precision, parity)

    def read_back(detector) -> None:
        check_read_back(detector.run_prepared(images[:CALIBRATION_BATCH])[0], scores)

    path = write_artifact(chosen, spec, output, verify=read_back)
    return ExportReport(path, precision.value, thresholds.image, parity, tuple(messages),
                        tuple(notes), pixel_threshold=thresholds.pixel)


def _parity_misses(parity: dict, options: ExportOptions) -> list[str]:
    """The parity tolerances a quantized copy missed (``parity``: its ``_int8_parity`` and
    ``_synthetic_parity`` figures)."""
    misses = []
    # Normal images' scores nearly tie, so their rank correlation says little: gate on the
    # maps' agreement and, when labeled images exist, on the AUROC they give.
    # Without labeled defects, the maps are compared on the normal images plus the same
    # images with synthetic defects pasted in: normal maps alone vary little, so their
    # correlation measures quantization noise against noise, not whether defects still show.
    correlation = parity.get("int8_synthetic_map_correlation", parity["int8_map_correlation"])
    if correlation < options.min_rank_correlation:
        misses.append(f"anomaly-map correlation {correlation:.4f} < "
                      f"{options.min_rank_correlation}")
    # An AUROC over n normal and n pasted images moves by up to 1/n when one image moves.
    synthetic_tolerance = max(options.max_f1_drop, 2.0 / parity.get("synthetic_images", 2))
    if parity.get("int8_synthetic_auroc_drop", 0.0) > synthetic_tolerance:
        misses.append(f"AUROC drop on synthetic defects "
                      f"{parity['int8_synthetic_auroc_drop']:.4f} > {synthetic_tolerance:.4f}")
    if parity.get("int8_auroc_drop", 0.0) > options.max_f1_drop:
        misses.append(f"validation AUROC drop {parity['int8_auroc_drop']:.4f} > "
                      f"{options.max_f1_drop}")
    return misses


def _quantize(fp32, calibration: np.ndarray, target: Precision, progress: Progress):
    """The static INT8 copy ``target`` names: the whole network (INT8) or only the memory-bank
    product (MIXED). The feature model's Gemms are that product and, where the features are
    projected on principal components, the projection before it: their results stay float
    (rounded to 8 bits, they would blur the nearest entry's distance)."""
    batches = calibration_batches(calibration, CALIBRATION_BATCH, progress)
    return quantize_static_int8(fp32, batches, "image",
                                op_types=BANK_PRODUCT_OPS if target is Precision.MIXED else None,
                                float_output_op_types=BANK_PRODUCT_OPS)


# Architectures whose INT8 loss the synthetic probe did not show when it was chosen. Measured
# (test image AUROC, default options, one model per set, runtime FP32 -> INT8), `features` with
# 8-bit weights: ELPV mono 0.961 -> 0.939, poly 0.871 -> 0.849, magnetic tiles 0.864 -> 0.866,
# while the probe's AUROC dropped 0.002, 0.017 and 0.008; with 7-bit weights (this release):
# 0.961 -> 0.929, 0.871 -> 0.854, 0.864 -> 0.852 (pixel 0.737 -> 0.730), the probe's map
# correlation 0.955, 0.970 and 0.972 (the 0.98 gate would refuse all three, but its AUROC dropped
# 0.000, 0.019 and 0.012). `fused` with the global score, Keras FP32 -> runtime INT8 (8-bit
# weights): mono 0.965 -> 0.940, poly 0.890 -> 0.864, tiles 0.912 -> 0.915. With each frame's
# contrast standardized (the default since), `features` FP32 -> INT8 (one run each): mono 0.972 ->
# 0.972, poly 0.916 -> 0.909, tiles 0.925 -> 0.923 (pixel 0.769 -> 0.765); the memory-bank product
# alone in INT8 (mixed): 0.972, 0.915, 0.924 (pixel 0.769).
PROBE_BLIND = ("features", "fused")


# The operator that holds a feature model's product with its memory bank (``BankSimilarity``,
# written by tf2onnx as MatMul + Add and fused to a Gemm before quantization).
BANK_PRODUCT_OPS = ("Gemm", "MatMul")


def _unverified_int8(run: TrainingRun, precision: Precision) -> str | None:
    """Why ``auto`` keeps a feature model's network in FP32 when no labeled defect image can
    check its INT8 loss (decided before any INT8 copy is built), or None where INT8 can be
    judged (another architecture, labeled defects, or a precision the user chose)."""
    architecture = run.record["training"].get("architecture", "unet")
    if (precision is not Precision.AUTO or architecture not in PROBE_BLIND
            or run.validation_labels.any()):
        return None
    return (f"kept the network in FP32: the INT8 loss of a '{architecture}' model's network shows "
            "only on real defects (measured: 0.017-0.032 image AUROC on ELPV mono and poly, 0.012 "
            "on magnetic tiles before the frame contrast, up to 0.007 with it), and this model "
            "was trained without labeled defect images; only its memory-bank product (and the "
            "projection before it) may be INT8 (precision 'mixed': at most 0.0015 image AUROC "
            "on the same sets before the projection). To let the export measure the network's "
            "loss, train with --anomalous DIR on defect images kept apart from the ones you "
            "evaluate on (an MVTec AD category's test/ defects are not given to training: they "
            "are for vigil eval, so the export cannot measure the loss on them), or export "
            "with --precision int8 to quantize it anyway")


def _no_bank_product(model_path) -> str:
    return (f"--precision mixed quantizes a feature model's memory-bank product, and "
            f"{str(model_path)!r} has none that can be quantized (a 'unet' model, or a feature "
            f"model trained before that product became its own layer); use --precision fp32 or "
            f"int8, or retrain it: vigil train image DATA -o MODEL.keras --architecture features")


def _onnx_outputs(proto, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    session = cpu_session(proto)
    scores, maps = [], []
    for start in range(0, len(images), CALIBRATION_BATCH):
        score, amap = session.run(["score", "anomaly_map"],
                                  {"image": images[start:start + CALIBRATION_BATCH]})
        scores.append(score.reshape(-1))
        maps.append(amap)
    return np.concatenate(scores).astype(np.float64), np.concatenate(maps)


def _correlation(fp32_maps: np.ndarray, int8_maps: np.ndarray) -> float:
    """Pearson correlation of the two exports' map pixels (a sample of 200,000)."""
    flat_fp32, flat_int8 = fp32_maps.reshape(-1), int8_maps.reshape(-1)
    sample = np.random.default_rng(0).choice(len(flat_fp32), min(200_000, len(flat_fp32)),
                                             replace=False)
    a, b = flat_fp32[sample], flat_int8[sample]
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = float(np.corrcoef(a, b)[0, 1])
    if not np.isfinite(correlation):  # a constant map (collapsed quantization) tells nothing
        correlation = 1.0 if np.array_equal(a, b) else 0.0
    return correlation


def _int8_parity(run: TrainingRun, fp32_scores, fp32_maps, int8_scores, int8_maps) -> dict:
    parity = {
        "int8_rank_correlation": rank_correlation(fp32_scores, int8_scores),
        "int8_max_abs_diff": max_finite_diff(int8_scores, fp32_scores),
        "int8_map_correlation": _correlation(fp32_maps, int8_maps),
    }
    labels = run.validation_labels
    if labels.any() and not labels.all():
        a32, a8 = auroc(fp32_scores, labels), auroc(int8_scores, labels)
        parity.update(fp32_auroc=a32, int8_auroc=a8, int8_auroc_drop=a32 - a8)
    return parity


SYNTHETIC_SEED = 0


def pasted_defects(normal: np.ndarray, seed: int = SYNTHETIC_SEED) -> np.ndarray:
    """Each uint8 normal image with one synthetic defect pasted in (``anomaly_synthesis``, as in
    training), the texture source being the next image."""
    from vigil.training.anomaly_synthesis import paste_anomaly

    rng = np.random.default_rng(seed)
    unit = normal.astype(np.float32) / 255.0
    gray = unit.shape[-1] == 1
    if gray:  # paste_anomaly takes (h, w) gray images, as training passes them
        unit = unit[..., 0]
    pasted = np.stack([paste_anomaly(rng, np.ascontiguousarray(image),
                                     np.ascontiguousarray(unit[(i + 1) % len(unit)]))[0]
                       for i, image in enumerate(unit)])
    if gray:
        pasted = pasted[..., None]
    return np.clip(np.round(pasted * 255.0), 0, 255).astype(np.uint8)


def _synthetic_parity(fp32, int8, normal: np.ndarray) -> dict:
    """INT8 vs FP32 on the normal validation images and their synthetic-defect copies: the map
    correlation over both, and the AUROC each gives the copies against the originals."""
    probe = np.concatenate([normal, pasted_defects(normal)])
    labels = np.repeat([False, True], len(normal))
    fp32_scores, fp32_maps = _onnx_outputs(fp32, probe)
    int8_scores, int8_maps = _onnx_outputs(int8, probe)
    a32, a8 = auroc(fp32_scores, labels), auroc(int8_scores, labels)
    return {"synthetic_images": int(len(probe)),
            "int8_synthetic_map_correlation": _correlation(fp32_maps, int8_maps),
            "fp32_synthetic_auroc": a32, "int8_synthetic_auroc": a8,
            "int8_synthetic_auroc_drop": a32 - a8}


def _spec(run: TrainingRun, thresholds, precision: Precision, parity: dict) -> ImageSpec:
    record = run.record
    return ImageSpec(
        height=int(record["height"]), width=int(record["width"]),
        channels=int(record["channels"]), color=record["color"], resize=record["resize"],
        # models trained before it was recorded read their images by the older rule
        interpolation=record.get("interpolation", AREA_WHEN_ROWS_SHRINK),
        threshold=thresholds.image, pixel_threshold=thresholds.pixel,
        score_reduction=record["score_reduction"],
        score_stats=thresholds.score_stats, map_stats=thresholds.map_stats,
        precision=precision.value,
        versions={**record.get("versions", {}), **library_versions()},
        # the libraries that trained it, apart from those that exported it (``versions``)
        training={**record["training"], "calibration": record["calibration"],
                  "versions": dict(record.get("versions", {})),
                  **keras_identity(record)},
        parity=parity,
    )
