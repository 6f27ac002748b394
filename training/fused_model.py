"""Two image detectors in one graph: the image score is the sum of the U-Net's and the
pretrained-feature model's scores, each standardized by the mean and std of its scores on the
held-out normal images; the anomaly map is the U-Net's.

The U-Net, trained on synthetic defects, finds thin and faint surface defects and localizes them
at full resolution; the feature model compares against normal appearance and finds what ImageNet
features tell apart. Their scores are on unrelated scales, so each is put in units of its own
normal spread first. The feature map (stride 8, a distance whose baseline varies from image to
image) is not added to the map: summed alike, it took the tiles' pixel AUROC from the U-Net's
0.858 down to 0.617.
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


def normal_statistics(scorer: keras.Model, normal: np.ndarray) -> tuple[float, float]:
    """(mean, std) of ``scorer``'s scores on uint8 normal images (std floored above zero)."""
    if len(normal) < 2:
        raise ValueError(f"standardizing needs at least 2 normal images; received {len(normal)}")
    scores = np.asarray(scorer.predict(normal, batch_size=8, verbose=0)["score"],
                        np.float64).reshape(-1)
    return float(scores.mean()), float(max(scores.std(), 1e-6 * max(abs(scores.mean()), 1.0)))


def build_fused_model(unet: keras.Model, features: keras.Model,
                      unet_stats: tuple[float, float], feature_stats: tuple[float, float]
                      ) -> keras.Model:
    """uint8 frames in; the sum of the two standardized scores, and the U-Net's map, out."""
    frames = keras.Input(unet.input.shape[1:], dtype="uint8", name="image")
    if tuple(features.input.shape[1:]) != tuple(unet.input.shape[1:]):
        raise ValueError(f"the two models must take the same frames; received "
                         f"{unet.input.shape[1:]} and {features.input.shape[1:]}")
    unet_out, feature_out = unet(frames), features(frames)
    scores = [ScoreStandardize(*stats, name=f"postprocess_standardize_score_{name}")(
                  out["score"])
              for name, out, stats in (("unet", unet_out, unet_stats),
                                       ("features", feature_out, feature_stats))]
    score = layers.Identity(name="score")(layers.Add(name="postprocess_fuse_score")(scores))
    amap = layers.Identity(name="anomaly_map")(unet_out["anomaly_map"])
    return keras.Model(frames, {"score": score, "anomaly_map": amap}, name="vigil_fused_scorer")
