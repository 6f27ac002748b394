"""Two image detectors in one graph: the U-Net's and the pretrained-feature model's outputs, each
standardized by the mean and std of its scores on the held-out normal images, then summed.

The U-Net, trained on synthetic defects, finds thin and faint surface defects; the feature
model compares against normal appearance and finds what ImageNet features tell apart. Their
scores are on unrelated scales, so each is put in units of its own normal spread first.
Layers after the two networks are named ``postprocess_*`` and stay float when quantized.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers


@keras.saving.register_keras_serializable(package="vigil")
class Standardize(layers.Layer):
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
    """uint8 frames in; the sum of the two standardized scores and maps out."""
    frames = keras.Input(unet.input.shape[1:], dtype="uint8", name="image")
    if tuple(features.input.shape[1:]) != tuple(unet.input.shape[1:]):
        raise ValueError(f"the two models must take the same frames; received "
                         f"{unet.input.shape[1:]} and {features.input.shape[1:]}")
    outputs = []
    for name, model, (mean, std) in (("unet", unet, unet_stats),
                                     ("features", features, feature_stats)):
        out = model(frames)
        outputs.append((Standardize(mean, std, name=f"postprocess_standardize_score_{name}")(
                            out["score"]),
                        Standardize(mean, std, name=f"postprocess_standardize_map_{name}")(
                            out["anomaly_map"])))
    score = layers.Add(name="postprocess_fuse_score")([o[0] for o in outputs])
    amap = layers.Add(name="postprocess_fuse_map")([o[1] for o in outputs])
    score = layers.Identity(name="score")(score)
    amap = layers.Identity(name="anomaly_map")(amap)
    return keras.Model(frames, {"score": score, "anomaly_map": amap}, name="vigil_fused_scorer")
