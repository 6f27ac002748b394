"""Two image detectors in one graph: the image score is the sum of the U-Net's score and the
pretrained-feature model's patch score (with ``global_score``, also its global score: the frame's
feature statistics against the normal frames'), each standardized by the mean and std of its
scores on the held-out normal images; the anomaly map is the U-Net's.

The U-Net, trained on synthetic defects, finds thin and faint surface defects and localizes them
at full resolution; the feature model compares against normal appearance and finds what ImageNet
features tell apart; the global score is meant for what shifts the whole frame (a part missing
or moved) more than any one patch. Their scores are on unrelated scales, so each is put in units
of its own normal spread first. The feature map (stride 8, a distance whose baseline varies from
image to image) is not added to the map: summed alike, it took the tiles' pixel AUROC from the
U-Net's 0.858 down to 0.617.
Layers after the two networks are named ``postprocess_*`` and stay float when quantized.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers


@keras.saving.register_keras_serializable(package="vigil")
class ScoreStandardize(layers.Layer):
    """(x - mean) / std with fixed scalars."""

    def __init__(self, mean: float, std: float, **kwargs):
        super().__init__(**kwargs)
        if not std > 0:
            raise ValueError(f"`std` must be positive; received {std}")
        self.mean, self.std = float(mean), float(std)

    def call(self, x):
        return (x - self.mean) * (1.0 / self.std)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std}


def normal_statistics(scorer: keras.Model, normal: np.ndarray,
                      outputs: tuple[str, ...] = ("score",)) -> list[tuple[float, float]]:
    """(mean, std) of each of ``scorer``'s ``outputs`` on uint8 normal images (std floored
    above zero)."""
    if len(normal) < 2:
        raise ValueError(f"standardizing needs at least 2 normal images; received {len(normal)}")
    predicted = scorer.predict(normal, batch_size=8, verbose=0)
    statistics = []
    for name in outputs:
        scores = np.asarray(predicted[name], np.float64).reshape(-1)
        statistics.append((float(scores.mean()),
                           float(max(scores.std(), 1e-6 * max(abs(scores.mean()), 1.0)))))
    return statistics


def build_fused_model(unet: keras.Model, features: keras.Model,
                      unet_stats: tuple[float, float], feature_stats: tuple[float, float],
                      global_stats: tuple[float, float] | None = None) -> keras.Model:
    """uint8 frames in; the sum of the standardized scores (the U-Net's, the feature model's
    and, given ``global_stats``, its ``global_score``), and the U-Net's map, out."""
    frames = keras.Input(unet.input.shape[1:], dtype="uint8", name="image")
    if tuple(features.input.shape[1:]) != tuple(unet.input.shape[1:]):
        raise ValueError(f"the two models must take the same frames; received "
                         f"{unet.input.shape[1:]} and {features.input.shape[1:]}")
    unet_out, feature_out = unet(frames), features(frames)
    parts = [("unet", unet_out["score"], unet_stats),
             ("features", feature_out["score"], feature_stats)]
    if global_stats is not None:
        parts.append(("global", feature_out["global_score"], global_stats))
    scores = [ScoreStandardize(*stats, name=f"postprocess_standardize_score_{name}")(score)
              for name, score, stats in parts]
    score = layers.Identity(name="score")(layers.Add(name="postprocess_fuse_score")(scores))
    amap = layers.Identity(name="anomaly_map")(unet_out["anomaly_map"])
    return keras.Model(frames, {"score": score, "anomaly_map": amap}, name="vigil_fused_scorer")
