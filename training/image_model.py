"""A small U-Net that segments defects, and the scoring wrapper that is exported.

Trained on normal images with synthetic anomalies pasted in (see ``anomaly_synthesis``), it
outputs per-pixel defect logits. The exported wrapper takes uint8 frames, scales them inside the
graph, and returns the anomaly map (smoothed probabilities, normalized per pixel by the normal
training maps by default) and the image score (its maximum).
Layers after the network are named ``postprocess_*`` and stay float when quantized.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import keras
import numpy as np
from keras import layers, ops


@dataclass(frozen=True)
class ImageModelOptions:
    size: int = 256                       # square model input (frames are stretched to it)
    train_view: float = 0.5               # train on square views of this fraction of size (1: whole)
    rescale_views: bool = True            # views come from frames resized to a side between the
                                          # view's and size (half of them: the view's, whole frame)
    coarse_pass: bool = True              # also segment the frame at half size; average the maps
    quarter_pass: bool = True             # and at quarter size (with coarse_pass): large, faint
                                          # regions light up as a whole, not only at their edges
    map_normalization: bool = True        # z-score each map pixel by its own mean and std over the
                                          # normal training images (positional bias: borders, parts)
    channels: tuple[int, ...] = (16, 32, 64, 128, 128, 128)  # the last is the bottleneck
    stem: int = 8                         # a stride-2 stem of this width (0: none)
    smoothing_sigma: float = 2.0          # Gaussian smoothing of the map, in model pixels
    score_sigma: float | None = 1.0       # smoothing of the map the image score is taken from
                                          # (None: the map's own; unused with map_normalization,
                                          # where the score is the normalized map's maximum)
    steps: int = 5000
    batch_size: int = 16
    learning_rate: float = 2e-3
    anomaly_rate: float = 0.7             # fraction of training images with a pasted anomaly
    seed: int = 0


@keras.saving.register_keras_serializable(package="vigil")
class ScaleToUnit(layers.Layer):
    """uint8 pixels -> float32 in [0, 1]."""

    def call(self, x):
        return ops.cast(x, "float32") * (1.0 / 255.0)


@keras.saving.register_keras_serializable(package="vigil")
class ToFloat(layers.Layer):
    """uint8 pixels -> float32 of the same values (the scaling is folded into the weights of the
    first convolution, which spares a multiply over every pixel of the frame)."""

    def call(self, x):
        return ops.cast(x, "float32")


def scaled_copy(conv: layers.Conv2D, scale: float, name: str) -> layers.Conv2D:
    """A bias-free convolution like ``conv`` whose kernel is multiplied by ``scale``: on inputs
    divided by ``scale`` it gives ``conv``'s output exactly, zero padding included."""
    if conv.use_bias:
        raise ValueError(f"only a bias-free convolution can absorb the input scale; {conv.name} "
                         f"has a bias")
    copy = layers.Conv2D(conv.filters, conv.kernel_size, strides=conv.strides,
                         padding=conv.padding, use_bias=False, dilation_rate=conv.dilation_rate,
                         name=name)
    copy.build((None, None, None, int(conv.kernel.shape[2])))
    copy.set_weights([np.asarray(conv.kernel) * np.float32(scale)])
    return copy


@keras.saving.register_keras_serializable(package="vigil")
class GaussianSmooth(layers.Layer):
    """Fixed Gaussian blur of a one-channel map (batch, height, width, 1)."""

    def __init__(self, sigma: float, **kwargs):
        super().__init__(**kwargs)
        self.sigma = float(sigma)

    def call(self, x):
        if self.sigma <= 0:
            return x
        radius = max(1, int(round(3 * self.sigma)))
        taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / self.sigma) ** 2)
        taps = (taps / taps.sum()).astype(np.float32)
        # Separable: a column pass then a row pass equals the 2-D blur (zero padding included)
        # at 2 (2r + 1) instead of (2r + 1)^2 multiplies per pixel.
        column = ops.convert_to_tensor(taps.reshape(2 * radius + 1, 1, 1, 1))
        row = ops.convert_to_tensor(taps.reshape(1, 2 * radius + 1, 1, 1))
        return ops.conv(ops.conv(x, column, padding="same"), row, padding="same")

    def get_config(self):
        return {**super().get_config(), "sigma": self.sigma}


@keras.saving.register_keras_serializable(package="vigil")
class MapNormalization(layers.Layer):
    """softplus((map - mean) / std) per pixel, with the mean and std (height, width) of the maps
    of normal images held as fixed weights. Monotone per pixel and positive; unlike a sigmoid it
    does not saturate in float32, so strong detections keep their order."""

    def build(self, input_shape):
        self.mean = self.add_weight(shape=tuple(input_shape[1:3]), initializer="zeros",
                                    trainable=False, name="mean")
        self.std = self.add_weight(shape=tuple(input_shape[1:3]), initializer="ones",
                                   trainable=False, name="std")

    def call(self, x):
        return ops.softplus((x - self.mean[None, :, :, None]) / self.std[None, :, :, None])


STD_FLOOR = 0.02  # added to the per-pixel std of normal maps (probabilities), against noise


def normalization_statistics(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std + STD_FLOOR) per pixel of (n, height, width) maps of normal images."""
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3 or len(maps) < 2:
        raise ValueError(f"map statistics need (n >= 2, height, width) maps; received shape "
                         f"{maps.shape}")
    return (maps.mean(axis=0).astype(np.float32),
            (maps.std(axis=0) + STD_FLOOR).astype(np.float32))


@keras.saving.register_keras_serializable(package="vigil")
class MapScore(layers.Layer):
    """(batch, height, width, 1) map -> (image score = its maximum, map (batch, height, width))."""

    def call(self, x):
        amap = ops.squeeze(x, axis=-1)
        return ops.max(amap, axis=(1, 2)), amap


@keras.saving.register_keras_serializable(package="vigil")
class TopMeanScore(layers.Layer):
    """(batch, height, width, 1) map -> image score: the mean of its ``top_fraction`` highest
    values (at least one). Where a map is noisy, its maximum is often one stray patch; the mean of
    its highest few percent weighs how much of the image looks anomalous."""

    def __init__(self, top_fraction: float, **kwargs):
        super().__init__(**kwargs)
        if not 0 < top_fraction <= 1:
            raise ValueError(f"`top_fraction` must be in (0, 1]; received {top_fraction}")
        self.top_fraction = float(top_fraction)

    def call(self, x):
        cells = int(x.shape[1]) * int(x.shape[2])
        values, _ = ops.top_k(ops.reshape(x, (-1, cells)), top_count(cells, self.top_fraction))
        return ops.mean(values, axis=-1)

    def get_config(self):
        return {**super().get_config(), "top_fraction": self.top_fraction}


def top_count(cells: int, top_fraction: float) -> int:
    """How many of a map's ``cells`` a ``TopMeanScore`` averages."""
    return max(1, int(round(top_fraction * cells)))


def train_side(options: ImageModelOptions) -> int:
    """The side of the square views the segmenter is trained on (even, at most ``size``)."""
    if not 0 < options.train_view <= 1:
        raise ValueError(f"`train_view` must be in (0, 1]; received {options.train_view}")
    return max(2, int(options.size * options.train_view) // 2 * 2)


def score_sigma(options: ImageModelOptions) -> float:
    """The smoothing of the map the image score is the maximum of."""
    return options.smoothing_sigma if options.score_sigma is None else options.score_sigma


def unet_channels(width: int) -> tuple[int, ...]:
    """The U-Net's level widths for a first level of ``width`` channels: doubling to 8x, then
    held (16 gives the default (16, 32, 64, 128, 128, 128))."""
    if not isinstance(width, int) or isinstance(width, bool) or width < 4:
        raise ValueError(f"the U-Net `width` must be an integer >= 4; received {width!r}")
    return (width, 2 * width, 4 * width, 8 * width, 8 * width, 8 * width)


def _conv(x, width: int, strides: int = 1):
    x = layers.Conv2D(width, 3, strides=strides, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x)


def working_side(options: ImageModelOptions) -> int:
    size = train_side(options)
    return size // 2 if options.stem else size


def size_problem(options: ImageModelOptions) -> str | None:
    """Why ``options.size`` does not fit the U-Net (every pass's side must pool evenly), or None."""
    working = working_side(options)
    if working % 2 or working < 4:
        return (f"the training view ({options.size} x train_view {options.train_view:g}"
                f"{', halved by the stem' if options.stem else ''}) is {working} px, which must be "
                f"even and at least 4")
    encoder = levels(working, options.channels)
    multiple = 2 ** (len(encoder) - 1 + bool(options.stem))
    sides = {"the full size": options.size}
    for factor in downscales(options):
        sides[f"the 1/{factor} pass"] = options.size // factor
    for name, side in sides.items():
        if side % multiple or side < multiple:
            return (f"{name} ({side} px) must be a multiple of {multiple} ({len(encoder) - 1} "
                    f"poolings{', and the stem' if options.stem else ''})")
    return None


def levels(working: int, channels: tuple[int, ...]) -> tuple[int, ...]:
    """The encoder widths that fit: each pooling halves the map, which must stay >= 2 pixels
    and even; deeper levels are dropped for small inputs, the bottleneck width is kept."""
    pools = 0
    while pools < len(channels) - 1 and working % 2 == 0 and working // 2 >= 2:
        working //= 2
        pools += 1
    return (*channels[:pools], channels[-1])


def build_segmenter(channels_in: int, options: ImageModelOptions) -> keras.Model:
    """U-Net on [0, 1] images (any side that is a multiple of its pooling) -> defect logits at
    the same size. Its depth is set by the side it is trained on (``train_side``).

    Decoders use bilinear upsampling + convolution (ConvTranspose does not quantize on CPU).
    """
    problem = size_problem(options)
    if problem is not None:
        near = [side for side in range(max(8, options.size - 64), options.size + 65)
                if size_problem(replace(options, size=side)) is None]
        closest = sorted(near, key=lambda side: (abs(side - options.size), side))[:2]
        raise ValueError(f"`size` {options.size} does not fit this U-Net: {problem}; the nearest "
                         f"sizes that do: {', '.join(map(str, sorted(closest))) or 'none near'} "
                         f"(--size)")
    encoder = levels(working_side(options), options.channels)
    inputs = keras.Input((None, None, channels_in), name="pixels")
    x = _conv(inputs, options.stem, strides=2) if options.stem else inputs
    skips = []
    for width in encoder[:-1]:
        x = _conv(_conv(x, width), width)
        skips.append(x)
        x = layers.MaxPooling2D()(x)
    x = _conv(_conv(x, encoder[-1]), encoder[-1])
    for width, skip in zip(reversed(encoder[:-1]), reversed(skips)):
        x = layers.UpSampling2D(interpolation="bilinear")(x)
        x = layers.Concatenate()([x, skip])
        x = _conv(_conv(x, width), width)
    logits = layers.Conv2D(1, 1, name="logits")(x)
    if options.stem:
        logits = layers.UpSampling2D(interpolation="bilinear", name="logits_full")(logits)
    return keras.Model(inputs, logits, name="vigil_unet")


def _native_resolution(segmenter: keras.Model) -> tuple[keras.Model, int]:
    """(the segmenter without its final upsampling, that upsampling's factor): the map is
    post-processed at the resolution the network computes it at, then upsampled once."""
    upsample = next((layer for layer in segmenter.layers if layer.name == "logits_full"), None)
    if upsample is None:
        return segmenter, 1
    return keras.Model(segmenter.input, upsample.input, name="vigil_unet_native"), 2


def downscales(options: ImageModelOptions) -> tuple[int, ...]:
    """The factors by which the frame is also shrunk and segmented, besides its full size."""
    if not options.coarse_pass:
        return ()
    return (2, 4) if options.quarter_pass else (2,)


def _stem_and_body(network: keras.Model) -> tuple[layers.Conv2D, keras.Model]:
    """(the stride-2 stem convolution, the rest of the network after it)."""
    stem = next(layer for layer in network.layers if isinstance(layer, layers.Conv2D))
    return stem, keras.Model(stem.output, network.output, name="vigil_unet_body")


def _coarse_stem(stem: layers.Conv2D, factor: int = 2) -> keras.Sequential:
    """The stem applied to the frame averaged over ``factor`` x ``factor`` blocks, as one
    convolution of the frame itself.

    A k x k stride-2 "same" convolution of the f-times smaller average covers full-size pixels
    2fi - fp .. 2fi - fp + fk - 1 for output i (p: its top padding); so does an fk x fk
    stride-2f "valid" convolution of the frame padded f times as much, whose kernel repeats
    each tap over f x f at 1 / f^2 of its weight. Exact (zero padding included), and it spares
    a pooling pass over the frame.
    """
    size = stem.kernel_size[0]
    if (stem.strides != (2, 2) or stem.padding != "same" or stem.kernel_size != (size, size)
            or size % 2 == 0 or stem.use_bias or stem.dilation_rate != (1, 1)):
        raise ValueError(f"the coarse stem needs an odd, bias-free, stride-2 'same' stem; "
                         f"received kernel {size}, strides {stem.strides}, {stem.padding}")
    total = max(size - 2, 0)            # 'same' padding of the shrunk image, in its pixels
    before, after = factor * (total // 2), factor * (total - total // 2)
    kernel = np.asarray(stem.kernel)
    coarse = keras.Sequential([
        layers.ZeroPadding2D(((before, after), (before, after)), name=f"coarse_pad_{factor}"),
        layers.Conv2D(kernel.shape[-1], factor * size, strides=2 * factor, padding="valid",
                      use_bias=False, name=f"coarse_stem_conv_{factor}"),
    ], name=f"coarse_stem_{factor}")
    coarse.build((None, None, None, kernel.shape[2]))
    expanded = np.repeat(np.repeat(kernel, factor, axis=0), factor, axis=1) / factor ** 2
    coarse.layers[-1].set_weights([expanded])
    return coarse


def native_map_model(segmenter: keras.Model, channels_in: int,
                     options: ImageModelOptions) -> keras.Model:
    """uint8 frames -> the smoothed defect-probability map at the network's native resolution
    (half the input side with a stem): the map that map normalization's statistics describe."""
    frames = keras.Input((options.size, options.size, channels_in), dtype="uint8", name="image")
    probability, factor = _native_probability(frames, segmenter, options)
    smooth = GaussianSmooth(options.smoothing_sigma / factor, name="postprocess_smooth")(probability)
    return keras.Model(frames, smooth, name="vigil_native_map")


def _native_probability(frames, segmenter: keras.Model, options: ImageModelOptions):
    """(the defect-probability map at native resolution (batch, h, w, 1), averaged over the
    full-size pass and the shrunk ones (``downscales``); its upsampling factor to the input)."""
    network, factor = _native_resolution(segmenter)
    shrinks = downscales(options)
    if factor > 1:
        # The stem takes the uint8 values as they are, its kernel divided by 255.
        stem, body = _stem_and_body(network)
        stem = scaled_copy(stem, 1.0 / 255.0, "stem_from_uint8")
        pixels = ToFloat(name="to_float")(frames)
        logits = body(stem(pixels))
        shrunk_logits = [body(_coarse_stem(stem, f)(pixels)) for f in shrinks]
    else:
        pixels = ScaleToUnit(name="scale_to_unit")(frames)
        logits = network(pixels)
        shrunk_logits = [network(layers.AveragePooling2D(f, name=f"coarse_downscale_{f}")(pixels))
                         for f in shrinks]
    probabilities = [layers.Activation("sigmoid", name="postprocess_sigmoid")(logits)]
    for f, shrunk in zip(shrinks, shrunk_logits):
        # The first shrink keeps the layer names artifacts and tools already know.
        suffix = "" if f == 2 else f"_{f}"
        shrunk = layers.Activation("sigmoid", name=f"postprocess_coarse_sigmoid{suffix}")(shrunk)
        probabilities.append(layers.UpSampling2D(f, interpolation="bilinear",
                                                 name=f"postprocess_coarse_up{suffix}")(shrunk))
    if len(probabilities) == 1:
        return probabilities[0], factor
    return layers.Average(name="postprocess_scales")(probabilities), factor


def build_scoring_model(segmenter: keras.Model, channels_in: int, options: ImageModelOptions,
                        map_statistics: tuple[np.ndarray, np.ndarray] | None = None
                        ) -> keras.Model:
    """uint8 frames (batch, size, size, channels) in; score and anomaly_map (size x size) out.

    Sigmoid, scale averaging, smoothing and map normalization run at the network's native
    resolution (half the input with a stem; sigmas are scaled to match); the map is upsampled
    once at the end. With ``map_statistics`` (per-pixel mean and std of the native maps of
    normal images, see ``native_map_model`` and ``normalization_statistics``) the map is
    normalized by them and the score is its maximum.
    """
    size = options.size
    frames = keras.Input((size, size, channels_in), dtype="uint8", name="image")
    probability, factor = _native_probability(frames, segmenter, options)
    smooth = GaussianSmooth(options.smoothing_sigma / factor, name="postprocess_smooth")(probability)
    if map_statistics is None:
        amap = for_score = smooth
        sigma = score_sigma(options)
        if sigma != options.smoothing_sigma:
            for_score = GaussianSmooth(sigma / factor, name="postprocess_score_smooth")(probability)
    else:
        native = size // factor
        mean, std = (np.asarray(a, np.float32) for a in map_statistics)
        if mean.shape != (native, native) or std.shape != (native, native) or not (std > 0).all():
            raise ValueError(f"`map_statistics` must be a mean and a positive std of shape "
                             f"{(native, native)} (the network's output resolution); received "
                             f"{mean.shape} and {std.shape}")
        normalize = MapNormalization(name="postprocess_map_normalization")
        amap = for_score = normalize(smooth)
        normalize.set_weights([mean, std])
    return scorer_from_maps(frames, amap, for_score, factor, "vigil_image_scorer")


def scorer_from_maps(frames, native_map, score_map, factor: int, name: str,
                     top_fraction: float = 0.0) -> keras.Model:
    """The scoring model's outputs: ``score`` (the maximum of ``score_map``, or the mean of its
    ``top_fraction`` highest values) and ``anomaly_map`` (``native_map`` upsampled ``factor`` times
    to the input size), both (batch, h, w, 1) maps."""
    if factor > 1:
        native_map = layers.UpSampling2D(factor, interpolation="bilinear",
                                         name="postprocess_map_up")(native_map)
    if top_fraction > 0:
        score = TopMeanScore(top_fraction, name="postprocess_score_top")(score_map)
    else:
        score, _ = MapScore(name="postprocess_score_max")(score_map)
    _, amap = MapScore(name="postprocess_score")(native_map)
    score = layers.Identity(name="score")(score)
    amap = layers.Identity(name="anomaly_map")(amap)
    return keras.Model(frames, {"score": score, "anomaly_map": amap}, name=name)


def segmentation_loss(labels, logits):
    """Focal BCE (gamma 2) plus soft Dice: small defects against a vast normal background."""
    import tensorflow as tf

    probability = tf.sigmoid(logits)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels, logits)
    pt = labels * probability + (1 - labels) * (1 - probability)
    focal = tf.reduce_mean((1 - pt) ** 2 * bce) * 10.0
    intersection = tf.reduce_sum(probability * labels)
    dice = 1 - (2 * intersection + 1) / (tf.reduce_sum(probability) + tf.reduce_sum(labels) + 1)
    return focal + 0.5 * dice
