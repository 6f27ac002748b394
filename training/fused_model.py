"""Two image detectors in one graph: the image score is the sum of the U-Net's score and the
pretrained-feature model's patch score (with ``global_score``, also its global score: the frame's
feature statistics against the normal frames'), each standardized by the mean and std of its
scores on the held-out normal images; the anomaly map is the sum of the two models' maps, each
standardized alike by the mean and std of its pixels on those images, the feature model's
weighted (``FeatureModelOptions.fused_map_weight``: a quarter by default).

The U-Net, trained on synthetic defects, finds thin and faint surface defects and localizes them
at full resolution; the feature model compares against normal appearance and finds what ImageNet
features tell apart; the global score is meant for what shifts the whole frame (a part missing
or moved) more than any one patch. Their scores are on unrelated scales, so each is put in units
of its own normal spread first. On the magnetic tiles the summed maps localize better than the
U-Net's alone (docs/quality.md, "Explored on 2026-12-03, the third part"); before each frame's
contrast was standardized in the feature model, its map's baseline varied from image to image and
the sum lost, so models fitted without map statistics (``map_stats`` None) keep the U-Net's map.
Layers after the two networks are named ``postprocess_*`` and stay float when quantized.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from .feature_model import FeatureModelOptions


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
                      global_stats: tuple[float, float] | None = None,
                      map_stats: tuple[tuple[float, float], tuple[float, float]] | None = None,
                      map_weight: float = FeatureModelOptions.fused_map_weight
                      ) -> keras.Model:
    """uint8 frames in; the sum of the standardized scores (the U-Net's, the feature model's
    and, given ``global_stats``, its ``global_score``) out, and the map: given ``map_stats``
    (the U-Net's map's (mean, std), then the feature model's), the sum of the two standardized
    maps, the feature model's times ``map_weight``; else (or with ``map_weight`` 0) the U-Net's
    map."""
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
    amap = unet_out["anomaly_map"]
    if map_stats is not None and map_weight > 0:
        (unet_mean, unet_std), (feature_mean, feature_std) = map_stats
        # The weight is folded into the feature map's divisor: w (x - mean) / std.
        maps = [ScoreStandardize(mean, std, name=f"postprocess_standardize_map_{name}")(part)
                for name, part, mean, std in (
                    ("unet", amap, unet_mean, unet_std),
                    ("features", feature_out["anomaly_map"], feature_mean,
                     feature_std / map_weight))]
        amap = layers.Add(name="postprocess_fuse_map")(maps)
    amap = layers.Identity(name="anomaly_map")(amap)
    return keras.Model(frames, {"score": score, "anomaly_map": amap}, name="vigil_fused_scorer")
