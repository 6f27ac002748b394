"""What the image benchmarks share: the model choice as `vigil train image` spells it, the
per-image scores they record (so that models can be compared image by image later), and, for a
fused model, what each of its scores contributes."""

from __future__ import annotations

from dataclasses import replace
from itertools import combinations
from pathlib import Path

import numpy as np

from vigil.export import ExportOptions, Precision
from vigil.runtime.core import metrics
from vigil.training import feature_model, image_model
from vigil.training.train_image import ImageTrainingOptions, load_images

PRECISIONS = ("auto", "fp32", "int8", "mixed")
PRECISION_HELP = ("the artifact measured: auto (default, what `vigil export` writes), fp32, "
                  "int8 (kept whatever its parity, as `vigil export --precision int8 --force`) "
                  "or mixed (feature models: only the memory-bank product INT8, kept whatever "
                  "its parity)")


def export_options(precision: str) -> ExportOptions:
    """The export a benchmark's ``--precision`` names: ``int8`` and ``mixed`` are forced, so that
    their figures are theirs even where `auto` or the parity tolerances would write FP32."""
    if precision not in PRECISIONS:
        raise ValueError(f"`precision` must be one of {list(PRECISIONS)}; received {precision!r}")
    return ExportOptions(precision=Precision(precision), force=precision in ("int8", "mixed"))


def architecture_options(options: ImageTrainingOptions, architecture: str | None,
                         bank: int | None, global_score: bool = False,
                         neighbourhood: int | None = None,
                         levels: str | None = None,
                         components: int | None = None) -> ImageTrainingOptions:
    """``options`` with ``--architecture``, ``--bank``, ``--global-score``, ``--neighbourhood``,
    ``--levels`` and ``--components`` applied (None and False keep the defaults)."""
    if architecture is not None:
        options = replace(options, architecture=architecture)
    if global_score:
        if options.architecture != "fused":
            raise ValueError(f"--global-score applies to --architecture fused; received "
                             f"--architecture {options.architecture}")
        options = replace(options, features=replace(options.features, global_score=True))
    chosen_levels = None if levels is None else feature_model.parse_levels(levels)
    given = [name for name, value in (
        ("bank", bank), ("neighbourhood", neighbourhood), ("components", components),
        ("levels", chosen_levels)) if value is not None]
    for name in given:
        if options.architecture not in ("features", "fused"):
            raise ValueError(f"--{name} applies to --architecture features or fused; received "
                             f"--architecture {options.architecture}")
    features = options.features
    if bank is not None:
        features = replace(features, bank=bank)
    if neighbourhood is not None:
        features = replace(features, neighbourhood=neighbourhood)
    if components is not None:
        features = replace(features, components=components)
    if chosen_levels is not None:
        features = replace(features, levels=chosen_levels)
    return replace(options, features=features) if given else options


def seed_options(options: ImageTrainingOptions, seed: int | None) -> ImageTrainingOptions:
    """``options`` with ``--seed`` applied to both models, as `vigil train image --seed` does: it
    draws the held-out split, the U-Net's training and the feature model's coreset (None keeps
    the library's)."""
    if seed is None:
        return options
    return replace(options, model=replace(options.model, seed=seed),
                   features=replace(options.features, seed=seed))


def size_options(options: ImageTrainingOptions, size: int | None) -> ImageTrainingOptions:
    """``options`` with ``--size`` (the model's square input side) applied to both models, as
    `vigil train image --size` does (None keeps the library's)."""
    if size is None:
        return options
    return replace(options, model=replace(options.model, size=size),
                   features=replace(options.features, size=size))


def width_options(options: ImageTrainingOptions, width: int | None) -> ImageTrainingOptions:
    """``options`` with ``--width`` (the U-Net's first-level channels) applied (None keeps it)."""
    if width is None:
        return options
    if options.architecture not in ("unet", "fused"):
        raise ValueError(f"--width applies to --architecture unet or fused; received "
                         f"--architecture {options.architecture}")
    return replace(options, model=replace(options.model, channels=image_model.unet_channels(width)))


def feature_option(record: dict, name: str):
    """The trained feature model's (or ``fused``'s feature half's) option ``name`` as training
    decided it (``frame_contrast``, ``levels``), from the training record; None for the U-Net."""
    model = record["training"]["model"]
    return model.get("features", model).get(name)


def per_image(scored, detector) -> dict:
    """Each test image's file name, label (its defect folder, or "good") and score, with the
    artifact's statistics of held-out normal scores (mean, std) to standardize them by."""
    stats = detector.spec.score_stats
    return {"score_stats": {"count": stats.count, "mean": stats.mean, "std": stats.std},
            "images": [{"file": item.path.name, "defect": item.defect,
                        "score": float(score)} for item, score in zip(scored.items, scored.scores)]}


FUSED_PARTS = ("unet", "features", "global")


def fused_components(keras_path: str | Path, items, detector, held_out: np.ndarray | None = None,
                     calibration: dict | None = None) -> dict:
    """A fused model's ablation on the labeled test ``items``: image AUROC of each of its
    standardized scores alone, of each sum of two and of the whole sum, computed with the Keras
    model (FP32) on the frames the runtime would feed it. With the ``held_out`` normal images
    and the artifact's ``calibration`` rule, also each sum's threshold by that rule (as training
    sets the fused model's) and the precision, recall and F1 it gives on ``items``."""
    import keras

    from vigil.runtime.core.thresholds import ThresholdMethod, calibrate
    from vigil.training.checkpoint import load_keras_model

    model = load_keras_model(keras_path, "image")
    names = [n for n in FUSED_PARTS
             if any(layer.name == f"postprocess_standardize_score_{n}" for layer in model.layers)]
    parts = keras.Model(model.input, [model.get_layer(f"postprocess_standardize_score_{n}").output
                                      for n in names])

    def scores_of(images: np.ndarray) -> dict[str, np.ndarray]:
        outputs = parts.predict(images, batch_size=8, verbose=0)
        return {n: np.asarray(o, np.float64).reshape(-1) for n, o in zip(names, outputs)}

    spec = detector.spec
    images, _ = load_images(items, spec.height, spec.color)
    scores = scores_of(images)
    # the calibration rule where it sets a threshold from normal scores (gaussian, percentile)
    rule = calibration if calibration is not None and ThresholdMethod(calibration["method"]) in (
        ThresholdMethod.GAUSSIAN, ThresholdMethod.PERCENTILE) else None
    normal = scores_of(held_out) if held_out is not None and rule is not None else None
    labels = np.array([i.anomalous for i in items])
    auroc, at_threshold = {}, {}
    for count in range(1, len(names) + 1):
        for group in combinations(names, count):
            key = "+".join(group)
            total = np.sum([scores[n] for n in group], axis=0)
            auroc[key] = metrics.auroc(total, labels)
            if normal is not None and rule is not None:
                threshold = calibrate(rule["method"], np.sum([normal[n] for n in group], axis=0),
                                      **rule.get("params", {})).value
                c = metrics.counts(total > threshold, labels)
                at_threshold[key] = {"threshold": threshold, "precision": c.precision,
                                     "recall": c.recall, "f1": c.f1}
    return {"image_auroc": auroc, **({"at_threshold": at_threshold} if at_threshold else {}),
            "note": "Keras FP32, each score standardized as the graph does; thresholds by the "
                    "artifact's rule on the held-out normal images"}
