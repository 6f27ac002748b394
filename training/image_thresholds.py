"""Image and pixel thresholds from validation scores and maps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from vigil.runtime.core import metrics
from vigil.runtime.core.spec import ScoreStats, Threshold
from vigil.runtime.core.thresholds import ThresholdMethod, calibrate, calibrate_labeled, score_stats

PIXEL_SAMPLE = 500_000


@dataclass(frozen=True)
class ImageThresholds:
    image: Threshold
    pixel: Threshold
    score_stats: ScoreStats
    map_stats: ScoreStats


def fit_image_thresholds(calibration: dict, scores: np.ndarray, maps: np.ndarray,
                         labels: np.ndarray, masks: np.ndarray | None) -> ImageThresholds:
    """Thresholds by the recorded rule.

    ``calibration`` holds ``method``/``params`` for the image score and ``pixel_method``/
    ``pixel_params`` for the map. Gaussian and percentile use the normal images only; ``f1``
    needs labeled validation images (and masks, for pixels).
    """
    labels = np.asarray(labels, dtype=bool)
    normal = ~labels
    if not normal.any():
        raise ValueError("validation holds no normal image; thresholds need some")
    image = calibrate_labeled(calibration["method"], scores, labels, calibration.get("params", {}))
    rng = np.random.default_rng(0)
    normal_pixels = _sample(maps[normal].reshape(-1), rng)
    pixel_method = ThresholdMethod(calibration["pixel_method"])
    if pixel_method is ThresholdMethod.F1 and masks is not None and masks[labels].any():
        flat_maps, flat_masks = maps.reshape(-1), masks.reshape(-1)
        keep = rng.choice(len(flat_maps), min(len(flat_maps), PIXEL_SAMPLE * 4), replace=False)
        pixel = calibrate(pixel_method, normal_pixels, scores=flat_maps[keep],
                          labels=flat_masks[keep])
    else:
        if pixel_method is ThresholdMethod.F1:
            pixel_method = ThresholdMethod.PERCENTILE
        pixel = calibrate(pixel_method, normal_pixels, **calibration.get("pixel_params", {}))
    return ImageThresholds(image, pixel, score_stats(scores[normal]), score_stats(normal_pixels))


# Held-out normal images a threshold may reject before training warns: a line rejects few good
# parts (an F1 threshold fitted where defects were 70 of 92 validation images rejected 10 of the 22
# good ones, and 117 of 200 unseen good tiles, without a word)
MAX_NORMAL_REJECTED = 0.05


def image_validation_check(scores: np.ndarray, labels: np.ndarray, threshold: Threshold,
                           method: str, k: float | None = None,
                           names: Sequence[str] | None = None) -> tuple[dict, list[str]]:
    """What the image threshold does on the validation images (held-out normal ones, and the
    labeled defects where given), and a warning when it rejects more than
    ``MAX_NORMAL_REJECTED`` of the normal ones (``k``: the Gaussian rule's, named in it), or
    names (``names``: the images', in order) the few it rejects."""
    labels = np.asarray(labels, dtype=bool)
    # a NaN score rejects the image on the device (the runtime reads it as +inf), so here too
    scores = np.asarray(scores, dtype=np.float64)
    scores = np.where(np.isnan(scores), np.inf, scores)
    above = scores > threshold.value
    normal = ~labels
    check = {"normal_images": int(normal.sum()), "normal_rejected": int((above & normal).sum()),
             "normal_rejected_rate": float(above[normal].mean()) if normal.any() else 0.0}
    if labels.any():
        counts = metrics.counts(above, labels)
        check.update({"defect_images": int(labels.sum()), "defects_caught": int(counts.tp),
                      "recall": counts.recall, "precision": counts.precision, "f1": counts.f1,
                      "auroc": metrics.auroc(np.asarray(scores), labels)})
    warnings = []
    if check["normal_rejected_rate"] > MAX_NORMAL_REJECTED and normal.sum() >= 10:
        why = (" (an F1 threshold favours recall where defects are a large share of the "
               f"validation images: {int(labels.sum())} of {len(labels)} here, far more than on a "
               "line)" if method == "f1" else "")
        warnings.append(
            f"the image threshold {threshold.value:.4g} ({method}) rejects "
            f"{check['normal_rejected']} of the {check['normal_images']} held-out normal images "
            f"({100 * check['normal_rejected_rate']:.0f} %){why}; on a line that is as many good "
            f"parts rejected: " + (f"train with a larger --k (now {k:g}), or score with a "
                                   f"higher --threshold" if method == "gaussian" and k is not None
                                   else "train with --threshold-method gaussian (the default) "
                                        "and a --k that suits, or score with a higher "
                                        "--threshold"))
    elif check["normal_rejected"] and names is not None:
        # one unusual good image among few lifts a Gaussian threshold over itself and costs
        # recall (a review's ELPV cell at 36.2 among 22: threshold 33.6, the rest at most 28.7)
        rejected = [(float(scores[i]), names[int(i)]) for i in np.flatnonzero(above & normal)]
        rejected.sort(reverse=True)
        others = np.asarray(scores)[normal & ~above]
        warnings.append(
            f"{len(rejected)} held-out normal image(s) score above the image threshold "
            f"{threshold.value:.4g} ({method}) fitted on them: "
            + ", ".join(f"{name} ({score:.4g})" for score, name in rejected[:3])
            + (", ..." if len(rejected) > 3 else "")
            + (f"; the other held-out normal images score at most {others.max():.4g}" if
               others.size else "")
            + ": look at them; a defect among the normal images, or one unlike the rest, "
              "lifts the threshold and costs recall: remove it and train again, or check the "
              "threshold with vigil eval on good images it has not seen")
    return check, warnings


def _sample(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if len(values) <= PIXEL_SAMPLE:
        return values
    return values[rng.choice(len(values), PIXEL_SAMPLE, replace=False)]
