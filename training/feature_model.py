"""Pretrained-feature image detector: nearest-neighbour distance to a memory bank of normal
patch features (in the manner of PatchCore), on a frozen ImageNet EfficientNet-Lite0.

Each frame's pixels are first moved to one mean and spread (``frame_contrast``): the backbone then
sees a frame's pattern rather than its exposure, which differs from module to module in
electroluminescence images (it raised image AUROC on ELPV mono, poly and the magnetic tiles;
docs/quality.md, "Three image models"). Where the normal frames all have about the same
contrast it only takes information away (it lost on the synthetic frames), so by default it is
chosen from the training frames: on when their contrast varies between images
(``choose_frame_contrast``).
Nothing is trained by gradient: the training images' patch features (stage 3 at stride 8 and
stage 5 at stride 16, each averaged over its 3 x 3 neighbourhood, upsampled to stride 8 and
concatenated; stage 6 at stride 32 as well where thin cracks drawn into the held-out normal
images say it pays, ``choose_levels``) are reduced to a coreset by greedy k-centre selection,
which becomes a constant of the exported graph. A patch's anomaly is its Euclidean distance to
the nearest bank entry; the map is smoothed and upsampled to the input; the image score is the
mean of the smoothed map's highest 5 % (its maximum is often one stray patch: on the tiles,
ELPV mono and poly the mean of the top 5 % scored higher than the maximum on all three;
docs/quality.md, "Three image models").
With ``global_score`` set the model also gives a ``global_score`` output: how far the whole
frame's feature statistics (each channel's mean and std over the frame) lie from the normal
training frames' (a Mahalanobis distance under a shrunk covariance). A part that is missing or
moved, or a frame that is unusual as a whole, shifts these statistics where no single patch may
stand out; the fused model adds it as a third score when asked (docs/quality.md, "Three image
models": it raised image AUROC on two of three sets but lowered F1 at the calibrated threshold on
all).
Layers after the backbone are named ``postprocess_*``, the frame's standardization before it
``preprocess_*``; both stay float when quantized. The one exception is the distance's product
with the bank (``bank_similarity``), which INT8 export quantizes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import keras
import numpy as np
from keras import layers, ops

from . import efficientnet_lite
from .image_model import GaussianSmooth, ToFloat, scorer_from_maps
from .progress import StepProgress

log = logging.getLogger("vigil")


@dataclass(frozen=True)
class FeatureModelOptions:
    size: int = 256                      # square model input (frames are stretched to it)
    levels: tuple[int, ...] | None = None  # EfficientNet-Lite0 stages whose features are
                                         # used; None: (3, 5) or (3, 5, 6), which adds stride-32
                                         # context, chosen from the data (choose_levels)
    neighbourhood: int = 3               # features averaged over k x k patches
    bank: int | None = None              # memory-bank (coreset) entries; None: chosen from
                                         # the training patches (bank_size)
    components: int = 96                 # patch features projected on their first principal
                                         # components before the bank (0: as they are)
    max_patches: int = 200_000           # training patches the coreset is chosen from
    projection: int = 128                # coreset selection runs on a random projection
    frame_contrast: bool | None = None   # FrameContrast before the backbone (None: chosen
                                         # from the training frames, choose_frame_contrast)
    smoothing_sigma: float = 4.0         # Gaussian smoothing of the map, in input pixels
    score_top: float = 0.05              # image score: mean of the map's highest 5 % (0: its max)
    global_score: bool = False           # fused only: add the global score as a third term
    global_shrinkage: float = 0.01       # the global branch's covariance shrinkage toward identity
    fused_map_weight: float = 0.25       # fused only: this model's standardized map's weight in
                                         # the fused map beside the U-Net's (0: the U-Net's alone)
    seed: int = 0


# ``bank`` and ``components``: image AUROC (numpy scoring of cached features on training's split at
# seed 0; docs/quality.md, "the seventh part") of the magnetic tiles (stage 6) / ELPV mono / poly /
# the synthetic frames: 2,048 entries as they were 0.949 / 0.972 / 0.915 / 0.973; 4,096 0.963 /
# 0.974 / 0.915 / 0.973; 8,192 0.967 / 0.972 / 0.920 / 0.968; on 96 principal components, 4,096
# entries 0.967 / 0.971 / 0.920 / 0.973 (8,192: 0.969 / 0.972 / 0.923 / 0.963; 64 components lose
# on the synthetic frames). A larger bank covers the tiles' varied texture; the projection pays
# for it: 4,096 x 96 costs 1.26x the product of 2,048 x 152 (stages 3 and 5) and 0.56x that of
# 2,048 x 344 (with stage 6). End to end over seeds 0-2 the tiles rose from 0.946 to 0.958.
# The bank is also held to 1/16 of the patches it is chosen from (``bank_size``), the way PatchCore
# keeps a fraction of them: with few training images a 4,096-entry coreset takes in their rarest
# patches. Image AUROC through `vigil train image` / `vigil eval` (docs/quality.md, "the eighth
# part") with about 35,000 coreset patches, 4,096 / 2,048 / 1,024 entries
# (1/8.5, 1/17, 1/34 of them): the demo's synthetic frames at 128 px, seed 0, 0.954 / 0.981 /
# 0.984; seed 1 0.890 / 0.908 / 0.891; 40 magnetic tiles 0.781 / 0.781 / 0.790; 40 ELPV mono
# cells 0.960 / 0.961 / 0.954. The full sets' 200,000 patches, and the latency benchmark's
# 69,632, keep 4,096 entries.
# ``fused_map_weight``: pixel AUROC of the fused map, each map standardized by the held-out normal
# images' pixels (a fused model fitted to each set; docs/quality.md, "Explored on 2026-12-03, the
# third part"): the magnetic tiles 0.861 with the U-Net's map alone, 0.872 / 0.877 / 0.878 with the
# feature map at weight 1 / 0.5 / 0.25; the synthetic frames 0.997 alone, 0.994 / 0.996 / 0.997.
# 0.25 was the best of the three on both sets.
# ``levels``' candidates: stages 3 and 5, and with them stage 6 (stride 32). Image AUROC of each
# fitted to a set's training split (Keras FP32; docs/quality.md, "Levels chosen from the data"): the
# magnetic tiles 0.925 / 0.943, ELPV poly 0.916 / 0.896, mono 0.972 / 0.973, the synthetic frames
# 0.955 / 0.967 (pixel AUROC 0.951 / 0.896). No one set of levels serves every set, so training
# chooses: it draws faint thin cracks (``anomaly_synthesis.thin_crack``) into the held-out normal
# images and keeps stage 6 where it lifts them above the clean ones, in the clean ones' std, by more
# than the margin, since it costs more arithmetic (1.8x before the projection on 96 principal
# components, about 1.2x with it). Over training's splits at seeds 0, 1
# and 2 stage 6 gains real image AUROC on the tiles at every seed (0.019-0.024) and loses on poly at
# every seed (0.019-0.030); the cracks' separation with stage 6 against without it was tiles +57 /
# +27 / +36 %, poly -21 / -3 / -25 %, mono -19 / -4 / -8 % (the benchmarks' runs), the synthetic
# frames -7 % (`vigil demo`): the margin keeps stage 6 on the tiles alone. The U-Net's pasted
# defects, the first judge, kept it on the tiles at seeds 0 (+27 %) and 2 (+11 %) but not at seed 1
# (+4 %; docs/quality.md, "the sixth part"). With both projected on 96 principal components
# (the default since) stage 6's lead shrinks: the tiles +9 / +19 / 0 % at seeds 0-2 (kept at seed
# 1 only), poly -23 / -21 / -25 %, mono -30 / -25 / -22 %; the tiles score 0.955-0.962 either way.
BANK_ENTRIES = 4096         # the bank's entries where the training patches allow (bank_size)
BANK_PATCHES_PER_ENTRY = 16  # a chosen bank holds at most one entry per this many patches
BANK_MIN_ENTRIES = 16        # the smallest bank, given or chosen
BASE_LEVELS = (3, 5)
CONTEXT_LEVELS = (3, 5, 6)
LEVELS_MARGIN = 0.10        # stage 6's separation must exceed the base's by this fraction
LEVELS_COPIES = 3           # copies of each held-out normal image with thin cracks drawn in
LEVELS_MIN_HELD_OUT = 10    # fewer held-out normal images: the base levels, unchosen
FEATURE_STRIDE = 8  # the stride of stage 3, the finest level used: the map's resolution
# The frame contrast is on when the normal frames' contrast varies more than this between images
# (the coefficient of variation of their pixel std): ELPV mono 0.185, poly 0.235 and the
# magnetic tiles 0.335, where it gained, against 0.024 for the synthetic frames, where it lost;
# 0.07 lies midway between on a log scale (docs/quality.md, "Three image models").
CONTRAST_VARIATION = 0.07


@keras.saving.register_keras_serializable(package="vigil")
class BankSimilarity(layers.Layer):
    """(batch, h, w, c) features -> (batch * h * w, entries): x.b - |b|^2 / 2 for each patch x and
    each row b of the bank, a fixed (entries, c) weight; that is (|x|^2 - |x - b|^2) / 2, largest
    for the nearest row. With ``chunks`` > 1, a list of that many (batch * h * w, part) products
    over consecutive parts of the bank instead.

    It is the distance's whole cost (1,024 patches x 4,096 entries at 256 px) and the one part of
    it that INT8 export quantizes (its name carries no ``postprocess``): one product with a bias,
    which tf2onnx writes as a Gemm and onnxruntime runs as a uint8 x int8 product with a float
    result, the bias added in int32. Folding |b|^2 into the weights instead would let it set each
    entry's weight scale, which destroyed the scores (docs/quality.md, "Where the time goes"). The
    rows stay flat so that nothing after the product is quantizable. In parts each product's
    result stays in the cache for the maximum that follows it: in parts of about 512 entries the
    product and the maximum took 2.65 ms instead of 2.97 in one (onnxruntime, one thread); parts
    of 256 (a 1 MB result at 1,024 patches) took the whole INT8 graph from 7.28 to 6.64 ms on an
    AMX machine with 2 MB of L2 per core (128: 6.83; the same scores to the last bit)."""

    def __init__(self, entries: int, chunks: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.entries = int(entries)
        self.chunks = int(chunks)
        if not 1 <= self.chunks <= self.entries:
            raise ValueError(f"`chunks` must be in [1, entries={self.entries}]; received {chunks}")

    def build(self, input_shape):
        self.bank = self.add_weight(shape=(self.entries, int(input_shape[-1])),
                                    initializer="zeros", trainable=False, name="bank")

    def call(self, x):
        flat = ops.reshape(x, (-1, ops.shape(x)[-1]))
        bounds = np.linspace(0, self.entries, self.chunks + 1).round().astype(int)
        parts = []
        for start, stop in zip(bounds[:-1], bounds[1:]):
            bank = self.bank[int(start):int(stop)]
            # an Add of the negated offsets, not a Sub: onnxruntime fuses only the Add into a Gemm
            parts.append(ops.matmul(flat, ops.transpose(bank))
                         + -0.5 * ops.sum(bank * bank, axis=-1))
        return parts[0] if self.chunks == 1 else parts

    def get_config(self):
        return {**super().get_config(), "entries": self.entries, "chunks": self.chunks}


BANK_CHUNK_ENTRIES = 256  # entries per part of the bank product (``BankSimilarity``)
PCA_BLOCK_ROWS = 20_000   # rows per block of ``principal_axes``' covariance sum


@keras.saving.register_keras_serializable(package="vigil")
class NearestFromSimilarity(layers.Layer):
    """[features (batch, h, w, c), then their ``BankSimilarity`` (batch * h * w, entries), or its
    parts] -> (batch, h, w, 1) Euclidean distance to the nearest bank row: sqrt(|x|^2 - 2 max_b
    s). Stays in float."""

    def call(self, inputs):
        x, *similarities = inputs
        height, width, channels = x.shape[1:]
        best = ops.max(similarities[0], axis=-1, keepdims=True)
        for part in similarities[1:]:
            best = ops.maximum(best, ops.max(part, axis=-1, keepdims=True))
        # Static shapes and flat rows: reading x's shape at run time made onnxruntime dequantize
        # and transpose the whole feature map just to learn it. |x|^2 is a product with ones:
        # onnxruntime's ReduceSum over the channels took 0.5 ms of the graph's 11 at 256 px.
        flat = ops.reshape(x, (-1, channels))
        squared = ops.matmul(flat * flat, ops.ones((channels, 1), x.dtype)) - 2.0 * best
        return ops.reshape(ops.sqrt(ops.maximum(squared, 0.0)), (-1, height, width, 1))


def nearest_distance(features, bank: np.ndarray):
    """The (batch, h, w, 1) Euclidean distance of each patch of ``features`` (a Keras tensor) to
    the nearest row of ``bank`` (entries, c): a quantizable product, then float arithmetic."""
    chunks = max(1, round(len(bank) / BANK_CHUNK_ENTRIES))
    similarity = BankSimilarity(len(bank), chunks, name="bank_similarity")
    nearness = similarity(features)
    similarity.set_weights([np.asarray(bank, np.float32)])
    parts = nearness if isinstance(nearness, (list, tuple)) else [nearness]
    return NearestFromSimilarity(name="postprocess_nearest")([features, *parts])


@keras.saving.register_keras_serializable(package="vigil")
class NearestDistance(BankSimilarity):
    """The distance as one float layer, as models saved before the split into ``BankSimilarity``
    and ``NearestFromSimilarity`` hold it; kept so that they load. (batch, h, w, c) features ->
    (batch, h, w, 1) Euclidean distance to the nearest of the fixed (entries, c) bank's rows
    (the same ``entries`` and ``bank`` weight as ``BankSimilarity``)."""

    def call(self, x):
        shape = ops.shape(x)
        flat = ops.reshape(x, (-1, shape[-1]))
        augmented = ops.concatenate([flat, ops.ones_like(flat[:, :1])], axis=-1)
        table = ops.concatenate([-2.0 * ops.transpose(self.bank),
                                 ops.sum(self.bank * self.bank, axis=-1)[None, :]], axis=0)
        nearest = ops.min(ops.matmul(augmented, table), axis=-1, keepdims=True)
        squared = ops.sum(flat * flat, axis=-1, keepdims=True) + nearest
        return ops.reshape(ops.sqrt(ops.maximum(squared, 0.0)), (shape[0], shape[1], shape[2], 1))


@keras.saving.register_keras_serializable(package="vigil")
class NeighbourhoodMean(layers.Layer):
    """(batch, h, w, c) -> each position's mean over its ``size`` x ``size`` neighbourhood inside
    the frame, as ``AveragePooling2D(size, strides=1, padding="same")`` gives it (the padding is
    not counted): a depthwise convolution with weights 1 / size^2, then a fixed per-position
    factor size^2 / (the neighbours inside the frame). Quantized, onnxruntime runs it as a
    depthwise convolution and a product; its quantized average pool took 0.64 ms of the
    feature model's 10 at 256 px (docs/quality.md, "Where the time goes")."""

    def __init__(self, size: int, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, x):
        height, width, channels = x.shape[1:]
        kernel = ops.full((self.size, self.size, channels, 1), 1.0 / self.size ** 2, x.dtype)
        total = ops.depthwise_conv(x, kernel, strides=1, padding="same")
        return total * ops.convert_to_tensor(self._border_factor(height, width), x.dtype)

    def _border_factor(self, height: int, width: int) -> np.ndarray:
        reach = self.size // 2

        def inside(n: int) -> np.ndarray:
            index = np.arange(n)
            return np.minimum(index + reach, n - 1) - np.maximum(index - reach, 0) + 1

        counts = np.outer(inside(height), inside(width)).astype(np.float32)
        return (self.size ** 2 / counts)[None, :, :, None]

    def get_config(self):
        return {**super().get_config(), "size": self.size}


@keras.saving.register_keras_serializable(package="vigil")
class SpaceToDepth(layers.Layer):
    """(batch, h, w, c) -> (batch, h/2, w/2, 4c): each 2 x 2 block's pixels side by side in row,
    column, channel order (``tf.nn.space_to_depth`` with block 2; ONNX's SpaceToDepth)."""

    def call(self, x):
        import tensorflow as tf  # keras.ops has no space-to-depth; a reshape and 6-D transpose
        # exported as a generic Transpose that took 0.6 ms in onnxruntime, SpaceToDepth 0.13
        return tf.nn.space_to_depth(x, 2)


CONTRAST_MEAN, CONTRAST_STD = 128.0, 50.0   # what FrameContrast moves each frame's pixels to


@keras.saving.register_keras_serializable(package="vigil")
class FrameContrast(layers.Layer):
    """(batch, h, w, c) float pixels -> each frame's pixels moved to mean ``CONTRAST_MEAN`` and
    std ``CONTRAST_STD`` (over all its pixels and channels; a std under 1 counts as 1) and
    clipped to [0, 255]. The export makes the clip one ONNX Clip (``convert.fuse_clips``), which
    onnxruntime drops before the quantization that follows it in INT8."""

    def call(self, x):
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        variance = ops.mean(ops.square(x - mean), axis=(1, 2, 3), keepdims=True)
        scale = CONTRAST_STD / ops.sqrt(ops.maximum(variance, 1.0))
        return ops.clip((x - mean) * scale + CONTRAST_MEAN, 0.0, 255.0)


@keras.saving.register_keras_serializable(package="vigil")
class GlobalDistance(layers.Layer):
    """(batch, h, w, c) features -> (batch,) Mahalanobis distance of the frame's statistics
    e = [each channel's mean, each channel's std] over the frame from the normal frames':
    |((e - center) * inverse_scale) @ whitening|, with fixed center and inverse_scale (2c,) and
    whitening (2c, 2c), the Cholesky factor of the inverse covariance of the scaled statistics."""

    def build(self, input_shape):
        width = 2 * int(input_shape[-1])
        self.center = self.add_weight(shape=(width,), initializer="zeros", trainable=False,
                                      name="center")
        self.inverse_scale = self.add_weight(shape=(width,), initializer="ones",
                                             trainable=False, name="inverse_scale")
        self.whitening = self.add_weight(shape=(width, width), initializer="identity",
                                         trainable=False, name="whitening")

    def call(self, x):
        statistics = frame_statistics(x)
        whitened = ops.matmul((statistics - self.center) * self.inverse_scale, self.whitening)
        return ops.sqrt(ops.sum(whitened * whitened, axis=-1))


def frame_statistics(x):
    """(batch, h, w, c) -> (batch, 2c): each channel's mean, then its std, over the frame."""
    mean = ops.mean(x, axis=(1, 2))
    spread = ops.sqrt(ops.maximum(ops.mean(x * x, axis=(1, 2)) - mean * mean, 0.0))
    return ops.concatenate([mean, spread], axis=-1)


def global_statistics(features: np.ndarray, shrinkage: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``GlobalDistance``'s (center, inverse_scale, whitening) from normal training frames'
    features (n, h, w, c): the statistics are centred and scaled per dimension, their
    correlation shrunk toward the identity by ``shrinkage`` and inverted."""
    if len(features) < 2:
        raise ValueError(f"the global branch needs at least 2 training images; received "
                         f"{len(features)}")
    if not 0 < shrinkage <= 1:
        raise ValueError(f"`global_shrinkage` must be in (0, 1]; received {shrinkage}")
    flat = features.reshape(len(features), -1, features.shape[-1]).astype(np.float64)
    statistics = np.concatenate([flat.mean(axis=1), flat.std(axis=1)], axis=1)
    center = statistics.mean(axis=0)
    scale = np.maximum(statistics.std(axis=0), 1e-6)
    scaled = (statistics - center) / scale
    covariance = (1 - shrinkage) * np.cov(scaled, rowvar=False) + shrinkage * np.eye(len(center))
    whitening = np.linalg.cholesky(np.linalg.inv(covariance))
    return (center.astype(np.float32), (1 / scale).astype(np.float32),
            whitening.astype(np.float32))


def size_problem(options: FeatureModelOptions) -> str | None:
    """Why ``options`` do not fit the backbone, or None. Undecided ``levels`` are checked as the
    default, ``BASE_LEVELS``; ``choose_levels`` tries the wider ones only where the size fits."""
    levels = BASE_LEVELS if options.levels is None else options.levels
    stages = len(efficientnet_lite.STAGE_STRIDES)
    if (not levels or any(not 1 <= s <= stages for s in levels)
            or list(levels) != sorted(set(levels))):
        return (f"`levels` must be distinct EfficientNet-Lite0 stages in 1..{stages}, in "
                f"increasing order; received {list(levels)}")
    coarsest = max(efficientnet_lite.STAGE_STRIDES[s - 1] for s in levels)
    if options.size % coarsest or options.size < 4 * coarsest:
        return (f"`size` must be a multiple of {coarsest} and at least {4 * coarsest} for stages "
                f"{list(levels)}; received {options.size}")
    if min(efficientnet_lite.STAGE_STRIDES[s - 1] for s in levels) != FEATURE_STRIDE:
        return f"`levels` must include stage 3 (stride {FEATURE_STRIDE}); received {levels}"
    if options.neighbourhood < 1 or options.neighbourhood % 2 == 0:
        return f"`neighbourhood` must be odd and positive; received {options.neighbourhood}"
    if options.bank is not None and options.bank < BANK_MIN_ENTRIES:
        return (f"`bank` must be at least {BANK_MIN_ENTRIES}, or left out to have it chosen from "
                f"the training patches; received {options.bank}")
    if options.components < 0:
        return (f"`components` must be 0 (the features as they are) or more; received "
                f"{options.components}")
    if not 0 < options.global_shrinkage <= 1:
        return (f"`global_shrinkage` must be in (0, 1]; received {options.global_shrinkage}")
    if not 0 <= options.fused_map_weight < float("inf"):
        return (f"`fused_map_weight` must be 0 or more (0: the U-Net's map alone); received "
                f"{options.fused_map_weight}")
    if not 0 <= options.score_top <= 1:
        return (f"`score_top` must be in [0, 1] (0: the map's maximum); received "
                f"{options.score_top}")
    return None


def parse_levels(text: str) -> tuple[int, ...]:
    """``--levels``' comma-separated stage numbers ("3,5,6") as a tuple."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"`levels` must be comma-separated EfficientNet-Lite0 stage numbers "
                         f"such as 3,5,6; received {text!r}") from None


def build_extractor(channels: int, color: str, options: FeatureModelOptions,
                    weights: dict | None = None) -> keras.Model:
    """uint8 frames (batch, size, size, channels) -> patch features at stride 8 (undecided
    ``levels``: ``BASE_LEVELS``)."""
    levels = BASE_LEVELS if options.levels is None else options.levels
    problem = size_problem(options)
    if problem is not None:
        raise ValueError(problem)
    if (color == "gray") != (channels == 1):
        raise ValueError(f"`channels` {channels} does not match `color` {color!r}")
    frames = keras.Input((options.size, options.size, channels), dtype="uint8", name="image")
    # The stem reads 2 x 2 blocks (``build_trunk``'s space_to_depth); the frame contrast is
    # per-pixel arithmetic with statistics over the whole frame, so it may follow the arrangement.
    # It is made in float: TFLite has no uint8 space-to-depth.
    pixels = SpaceToDepth(name="space_to_depth")(ToFloat(name="to_float")(frames))
    if options.frame_contrast:
        pixels = FrameContrast(name="preprocess_frame_contrast")(pixels)
    trunk = efficientnet_lite.build_trunk(max(levels), tuple(levels), weights,
                                          color=color, space_to_depth=True)
    outputs = trunk(pixels)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    parts = []
    for stage, x in zip(levels, outputs):
        if options.neighbourhood > 1:
            x = NeighbourhoodMean(options.neighbourhood, name=f"neighbourhood_{stage}")(x)
        factor = efficientnet_lite.STAGE_STRIDES[stage - 1] // FEATURE_STRIDE
        if factor > 1:
            x = layers.UpSampling2D(factor, interpolation="bilinear", name=f"upsample_{stage}")(x)
        parts.append(x)
    features = parts[0] if len(parts) == 1 else layers.Concatenate(name="features")(parts)
    return keras.Model(frames, features, name="vigil_feature_extractor")


def principal_axes(features: np.ndarray, components: int
                   ) -> tuple[np.ndarray, np.ndarray, float]:
    """(mean (c,), axes (c, components), the share of the variance they hold) of the rows of
    ``features`` (n, c): the projection on their first principal components. The covariance is
    summed over blocks of rows in float64 (200,000 x 344 at once would take about 1.4 GB)."""
    mean = features.mean(axis=0, dtype=np.float64)
    covariance = np.zeros((features.shape[1],) * 2)
    for start in range(0, len(features), PCA_BLOCK_ROWS):
        block = features[start:start + PCA_BLOCK_ROWS].astype(np.float64) - mean
        covariance += block.T @ block
    covariance /= max(len(features) - 1, 1)
    variances, vectors = np.linalg.eigh(covariance)
    order = np.argsort(variances)[::-1][:components]
    held = float(variances[order].sum() / max(variances.sum(), 1e-30))
    return mean.astype(np.float32), vectors[:, order].astype(np.float32), held


@keras.saving.register_keras_serializable(package="vigil")
class FeatureProjection(layers.Layer):
    """(batch, h, w, c) -> (batch, h, w, components): each patch's features on fixed principal
    axes, x @ axes + offset (offset = -mean @ axes). One product on flat rows with static shapes:
    a Dense layer on the 4-D map read its shape at run time, which made onnxruntime dequantize
    and transpose the whole map (as ``NearestFromSimilarity`` notes)."""

    def __init__(self, components: int, **kwargs):
        super().__init__(**kwargs)
        self.components = int(components)
        if self.components < 1:
            raise ValueError(f"`components` must be at least 1; received {components}")

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.axes = self.add_weight(shape=(channels, self.components), initializer="zeros",
                                    trainable=False, name="axes")
        self.offset = self.add_weight(shape=(self.components,), initializer="zeros",
                                      trainable=False, name="offset")

    def call(self, x):
        height, width, channels = x.shape[1:]
        flat = ops.reshape(x, (-1, channels))
        return ops.reshape(ops.matmul(flat, self.axes) + self.offset,
                           (-1, height, width, self.components))

    def get_config(self):
        return {**super().get_config(), "components": self.components}


def project_features(features, projection: tuple[np.ndarray, np.ndarray]):
    """``features`` (a Keras tensor, (batch, h, w, c)) on the fixed ``projection`` (mean (c,),
    axes (c, k)): (x - mean) @ axes."""
    mean, axes = projection
    layer = FeatureProjection(axes.shape[1], name="feature_projection")
    projected = layer(features)
    layer.set_weights([axes, -(mean @ axes)])
    return projected


def build_scoring_model(extractor: keras.Model, bank: np.ndarray,
                        options: FeatureModelOptions,
                        global_weights: tuple[np.ndarray, ...] | None = None,
                        projection: tuple[np.ndarray, np.ndarray] | None = None) -> keras.Model:
    """uint8 frames in; score and anomaly_map (size x size) out, like the U-Net's scorer; with
    ``global_weights`` (from ``global_statistics``) also global_score (batch,); with
    ``projection`` (``principal_axes``' mean and axes) the bank holds projected features."""
    frames = extractor.input
    features = (extractor.output if projection is None
                else project_features(extractor.output, projection))
    distance = nearest_distance(features, bank)
    smooth = GaussianSmooth(options.smoothing_sigma / FEATURE_STRIDE,
                            name="postprocess_smooth")(distance)
    scorer = scorer_from_maps(frames, smooth, smooth, FEATURE_STRIDE, "vigil_feature_scorer",
                              top_fraction=options.score_top)
    if global_weights is None:
        return scorer
    branch = GlobalDistance(name="postprocess_global")
    global_score = branch(extractor.output)
    branch.set_weights(list(global_weights))
    outputs = {**scorer.output, "global_score": layers.Identity(name="global_score")(global_score)}
    return keras.Model(frames, outputs, name="vigil_feature_scorer")


def greedy_coreset(features: np.ndarray, size: int, projection: int,
                   rng: np.random.Generator, progress=None) -> np.ndarray:
    """Indices of ``size`` rows chosen by greedy k-centre selection (each next row is the one
    farthest from those chosen), run on a random Gaussian projection of the rows.

    Each step's squared distances are |x|^2 - 2 x.c + |c|^2, one matrix-vector product over the
    points instead of a difference array: 5-8x faster (2,048 of 35,000 and 512 of 200,000 random
    rows, the same rows chosen)."""
    if size >= len(features):
        return np.arange(len(features))
    dims = features.shape[1]
    if projection and projection < dims:
        matrix = rng.normal(size=(dims, projection)).astype(np.float32) / np.sqrt(projection)
        points = features @ matrix
    else:
        points = features
    norms = np.einsum("ij,ij->i", points, points)

    def squared_distances(centre: int) -> np.ndarray:
        result = points @ points[centre]
        result *= -2.0
        result += norms
        result += norms[centre]
        return result

    chosen = np.empty(size, np.int64)
    chosen[0] = rng.integers(len(points))
    distance = squared_distances(chosen[0])
    for i in range(1, size):
        chosen[i] = int(distance.argmax())
        np.minimum(distance, squared_distances(chosen[i]), out=distance)
        if progress is not None:
            progress.update(i + 1, float(distance.max()))
    return chosen


def contrast_variation(images: np.ndarray) -> float:
    """How much the contrast differs between ``images`` (uint8, (n, h, w, c)): the coefficient
    of variation of each image's pixel std."""
    stds = np.array([image.std(dtype=np.float64) for image in images])
    return float(stds.std() / max(stds.mean(), 1.0))


def choose_frame_contrast(options: FeatureModelOptions, images: np.ndarray
                          ) -> tuple[FeatureModelOptions, dict]:
    """(``options`` with ``frame_contrast`` decided, what was decided and why): a given value is
    kept; None turns it on when the training ``images``' contrast varies more than
    ``CONTRAST_VARIATION`` between them."""
    variation = contrast_variation(images)
    record = {"frame_contrast_choice": "given" if options.frame_contrast is not None else "chosen",
              "contrast_variation": round(variation, 4),
              "contrast_variation_limit": CONTRAST_VARIATION}
    if options.frame_contrast is None:
        options = replace(options, frame_contrast=variation > CONTRAST_VARIATION)
    return options, {**record, "frame_contrast": options.frame_contrast}


def fit(train_images: np.ndarray, color: str, options: FeatureModelOptions,
        verbose: int = 1, held_out: np.ndarray | None = None) -> tuple[keras.Model, dict]:
    """(the scoring model, what was done) from uint8 normal images (n, size, size, c); with
    ``options.global_score`` the model also outputs ``global_score``. An undecided
    ``frame_contrast`` is chosen from ``train_images`` (``choose_frame_contrast``), undecided
    ``levels`` with the ``held_out`` normal images, never trained on (``choose_levels``)."""
    options, contrast = choose_frame_contrast(options, train_images)
    if contrast.get("frame_contrast_choice") == "chosen":  # a decision, said as a log line
        log.info("frame contrast %s: the normal frames' contrast varies %.1f%% between images "
                 "(%s %.0f%%; --frame-contrast / --no-frame-contrast to set it)",
                 "on" if options.frame_contrast else "off",
                 100 * contrast["contrast_variation"],
                 "above" if options.frame_contrast else "at most", 100 * CONTRAST_VARIATION)
    if options.levels is not None:
        scorer, fitted = _fit_levels(train_images, color, options, verbose)
        fitted = {**contrast, "levels_choice": "given", **fitted}
    else:
        scorer, fitted = choose_levels(train_images, color, options, held_out, contrast, verbose)
    if fitted.get("bank_choice") == "chosen" and fitted["bank"] < BANK_ENTRIES:
        log.info("memory bank: %d entries for the %s training patches (at most one per %d, at "
                 "least %d: a larger bank takes in their rarest patches; more training images "
                 "allow up to %d; --bank N to set it)", fitted["bank"],
                 f"{fitted['patches_used']:,}", BANK_PATCHES_PER_ENTRY, BANK_MIN_ENTRIES,
                 BANK_ENTRIES)
    return scorer, fitted


def choose_levels(train_images: np.ndarray, color: str, options: FeatureModelOptions,
                  held_out: np.ndarray | None, record: dict, verbose: int = 1
                  ) -> tuple[keras.Model, dict]:
    """(the scoring model, what was done) for ``BASE_LEVELS`` or ``CONTEXT_LEVELS``: both are
    fitted and stage 6 is kept where faint thin cracks drawn into the ``held_out`` normal
    images stand further above those images' own scores, in their std, by more than
    ``LEVELS_MARGIN`` of the base levels' separation. Where the size does not suit stage 6, or
    fewer than ``LEVELS_MIN_HELD_OUT`` images are held out, the base levels are fitted alone."""
    held_images = train_images[:0] if held_out is None else held_out  # none: an empty set
    held = len(held_images)
    reason = (size_problem(replace(options, levels=CONTEXT_LEVELS))
              or (f"{held} held-out normal images, fewer than the {LEVELS_MIN_HELD_OUT} the "
                  f"choice needs" if held < LEVELS_MIN_HELD_OUT else None))
    if reason is not None:
        scorer, fitted = _fit_levels(train_images, color, replace(options, levels=BASE_LEVELS),
                                     verbose)
        return scorer, {**record, "levels_choice": "default", "levels_reason": reason, **fitted}
    rng = np.random.default_rng(options.seed)
    defects = crack_copies(held_images, LEVELS_COPIES, rng)
    # The base levels' features are the context levels' first channels: extracted once.
    started = time.perf_counter()
    context_options = replace(options, levels=CONTEXT_LEVELS)
    features = extract_features(build_extractor(train_images.shape[-1], color, context_options),
                                train_images, verbose)
    extracted = time.perf_counter() - started
    base_channels = sum(efficientnet_lite.STAGES[s - 1][3] for s in BASE_LEVELS)
    fits, separations = {}, {}
    for fit, (levels, part) in enumerate(((BASE_LEVELS, features[..., :base_channels]),
                                          (CONTEXT_LEVELS, features)), 1):
        label = f"coreset of levels {','.join(map(str, levels))} (fit {fit} of 2)"
        fits[levels] = _fit_levels(train_images, color, replace(options, levels=levels), verbose,
                                   part, extracted, label)
        separations[levels] = defect_separation(fits[levels][0], held_images, defects)
    base, context = separations[BASE_LEVELS], separations[CONTEXT_LEVELS]
    chosen = CONTEXT_LEVELS if context > base * (1 + LEVELS_MARGIN) else BASE_LEVELS
    log.info("levels %s: faint thin cracks drawn into the %d held-out normal images score %.2f "
             "of those images' std above them with stage 6, %.2f without (stage 6 is kept above "
             "%.2fx; --levels 3,5 or --levels 3,5,6 to set it)", ",".join(map(str, chosen)),
             held, context, base, 1 + LEVELS_MARGIN)
    scorer, fitted = fits[chosen]
    return scorer, {**record, "levels_choice": "chosen",
                    "levels_separation": {",".join(map(str, k)): round(float(v), 3)
                                          for k, v in separations.items()},
                    "levels_margin": LEVELS_MARGIN, "levels_defects": int(len(defects)),
                    **fitted}


def crack_copies(images: np.ndarray, copies: int, rng: np.random.Generator) -> np.ndarray:
    """``copies`` of each uint8 image (n, h, w, c) with faint thin cracks drawn in
    (``anomaly_synthesis.thin_crack``), uint8."""
    from .anomaly_synthesis import thin_crack

    def unit(image: np.ndarray) -> np.ndarray:  # thin_crack's form: [0, 1], gray as 2-D
        return np.ascontiguousarray(
            (image[:, :, 0] if image.shape[-1] == 1 else image).astype(np.float32) / 255.0)

    out = []
    for _ in range(copies):
        for image in images:
            pasted, _ = thin_crack(rng, unit(image))
            out.append(np.clip(np.round(pasted * 255.0), 0, 255).astype(np.uint8)
                       .reshape(image.shape))
    return np.stack(out)


def defect_separation(scorer: keras.Model, normal: np.ndarray, defects: np.ndarray) -> float:
    """How far ``defects``' mean image score lies above the ``normal`` images' mean, in the
    normal images' std."""
    score = lambda x: np.asarray(  # noqa: E731
        scorer.predict(x, batch_size=8, verbose=0)["score"], np.float64).reshape(-1)
    clean = score(normal)
    return float((score(defects).mean() - clean.mean()) / max(clean.std(), 1e-12))


FEATURE_CHUNK = 32  # training images whose features are extracted between progress lines


def extract_features(extractor: keras.Model, images: np.ndarray, verbose: int) -> np.ndarray:
    """The extractor's features of ``images``, a chunk at a time, with progress (on 2 cores a
    few hundred images take a minute or more, which was silent)."""
    chunks = range(0, len(images), FEATURE_CHUNK)
    progress = StepProgress(len(chunks), verbose, label=f"features of {len(images)} images",
                            metric="")
    parts = []
    for step, start in enumerate(chunks, 1):
        parts.append(extractor.predict(images[start:start + FEATURE_CHUNK], batch_size=8,
                                       verbose=0))
        progress.update(step)
    return np.concatenate(parts)


def _fit_levels(train_images: np.ndarray, color: str, options: FeatureModelOptions,
                verbose: int, features: np.ndarray | None = None, extracted: float = 0.0,
                label: str = "coreset") -> tuple[keras.Model, dict]:
    """``fit`` for decided ``frame_contrast`` and ``levels``; ``features``, when given, are
    the extractor's for ``train_images``, extracted in ``extracted`` seconds. ``label`` names
    the coreset's progress lines."""
    started = time.perf_counter() - extracted
    extractor = build_extractor(train_images.shape[-1], color, options)
    if features is None:
        features = extract_features(extractor, train_images, verbose)
    global_weights = (global_statistics(features, options.global_shrinkage)
                      if options.global_score else None)
    n, h, w, c = features.shape
    flat = features.reshape(-1, c)
    rng = np.random.default_rng(options.seed)
    if len(flat) > options.max_patches:
        flat = flat[rng.choice(len(flat), options.max_patches, replace=False)]
    projection = None
    if projected(options):
        mean, axes, held = principal_axes(flat, options.components)
        projection = (mean, axes)
        flat = (flat - mean) @ axes
        reduced = {"components": int(options.components), "components_variance": round(held, 4)}
    else:
        reduced = {"components": 0}  # as many as the levels' channels, or more: not projected
    extracted = time.perf_counter() - started
    size, choice = bank_size(options, len(flat))
    if options.bank is not None and options.bank > size:
        log.warning("--bank %d is more than the %d patches of the training images: the bank "
                    "holds all %d", options.bank, len(flat), size)
    progress = StepProgress(size, verbose, label=label, metric="radius")
    bank = flat[greedy_coreset(flat, size, options.projection, rng, progress)]
    scorer = build_scoring_model(extractor, bank, options, global_weights, projection)
    return scorer, {"frame_contrast": options.frame_contrast,
                    "levels": list(decided_levels(options)),
                    "patches": int(n * h * w), "patches_used": int(len(flat)),
                    "feature_channels": int(c), **reduced, "bank": int(len(bank)),
                    "bank_choice": choice,
                    "feature_seconds": round(extracted, 1),
                    "coreset_seconds": round(time.perf_counter() - started - extracted, 1),
                    "backbone": {"name": "EfficientNet-Lite0 (ImageNet)",
                                 "package": efficientnet_lite.DISTRIBUTION,
                                 "weights_sha256": efficientnet_lite.WEIGHTS_SHA256}}


def bank_size(options: FeatureModelOptions, patches: int) -> tuple[int, str]:
    """(the coreset's entries, "given" or "chosen") for ``patches`` to choose them from: a given
    ``bank``, or ``BANK_ENTRIES`` held to one entry per ``BANK_PATCHES_PER_ENTRY`` patches (at
    least ``BANK_MIN_ENTRIES``); never more than ``patches``."""
    if options.bank is not None:
        return min(options.bank, patches), "given"
    chosen = max(min(BANK_ENTRIES, patches // BANK_PATCHES_PER_ENTRY), BANK_MIN_ENTRIES)
    return min(chosen, patches), "chosen"


def decided_levels(options: FeatureModelOptions) -> tuple[int, ...]:
    """``options.levels``, decided (given, or chosen by ``fit``): what a fitted model reads."""
    if options.levels is None:
        raise ValueError("`levels` is undecided (None): `fit` chooses them; give the fitted "
                         "record's levels (or a tuple of stages such as (3, 5))")
    return options.levels


def projected(options: FeatureModelOptions) -> bool:
    """Whether decided ``levels``' features are projected on ``components`` principal
    components (only when they are fewer than the levels' channels)."""
    channels = sum(efficientnet_lite.STAGES[s - 1][3] for s in decided_levels(options))
    return 0 < options.components < channels


def score_reduction(options: FeatureModelOptions) -> str:
    stages = " and ".join(f"stage {s} (stride {efficientnet_lite.STAGE_STRIDES[s - 1]})"
                          for s in decided_levels(options))
    return ((f"each frame's pixels moved to mean {CONTRAST_MEAN:g} and std {CONTRAST_STD:g} "
             f"over the frame; " if options.frame_contrast else "")
            + f"Euclidean distance of each stride-{FEATURE_STRIDE} patch's features (frozen "
            f"ImageNet EfficientNet-Lite0, {stages}, each averaged over "
            f"{options.neighbourhood} x {options.neighbourhood} patches"
            + (f", projected on their first {options.components} principal components"
               if projected(options) else "")
            + ") to the nearest of a "
            + (f"{options.bank}-entry" if options.bank is not None else
               f"{BANK_ENTRIES}-entry (at most one entry per {BANK_PATCHES_PER_ENTRY} patches)")
            + " coreset of the normal training patches; smoothed by a "
            f"Gaussian of sigma {options.smoothing_sigma} input pixels and upsampled to the "
            f"input size; the image score is "
            + (f"the mean of the smoothed map's highest {options.score_top:.0%}"
               if options.score_top > 0 else "the map's maximum"))
