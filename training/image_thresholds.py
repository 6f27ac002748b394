"""Image and pixel thresholds from validation scores and maps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vigil.runtime.core.spec import ScoreStats, Threshold
from vigil.runtime.core.thresholds import ThresholdMethod, calibrate, score_stats

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
    method = ThresholdMethod(calibration["method"])
    if method is ThresholdMethod.F1:
        image = calibrate(method, scores[normal], scores=scores, labels=labels)
    else:
        image = calibrate(method, scores[normal], **calibration.get("params", {}))
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


def _sample(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if len(values) <= PIXEL_SAMPLE:
        return values
    return values[rng.choice(len(values), PIXEL_SAMPLE, replace=False)]
