"""A tiny golden image artifact, built without TensorFlow: its scores are known in closed form.

The graph takes uint8 gray frames (N, 32, 32, 1), scales them to [0, 1], and calls the distance of
each pixel from mid-gray its anomaly: ``anomaly_map = |x / 255 - 0.5|`` (N, 32, 32) and
``score = max(anomaly_map)``. With both thresholds at 0.4, a frame whose pixels all lie in
[26, 229] is normal and a frame with a black or white patch is anomalous, boxed where the patch is.
``reference_scores`` computes the same in numpy. Run this file to write ``tiny-image.onnx``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from vigil.export.package import write_artifact
from vigil.runtime.core.spec import ImageSpec, ScoreStats, Threshold

SIZE = 32
THRESHOLD = 0.4
OPSET = 17


def tiny_image_graph():
    """Opset-17 graph: image uint8 (N, 32, 32, 1) -> score (N,), anomaly_map (N, 32, 32)."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["pixels", "full_scale"], ["scaled"]),
        helper.make_node("Sub", ["scaled", "mid_gray"], ["centered"]),
        helper.make_node("Abs", ["centered"], ["distance"]),
        helper.make_node("Squeeze", ["distance", "channel_axis"], ["anomaly_map"]),
        helper.make_node("ReduceMax", ["anomaly_map"], ["score"], axes=[1, 2], keepdims=0),
    ]
    initializers = [
        helper.make_tensor("full_scale", TensorProto.FLOAT, [], [255.0]),
        helper.make_tensor("mid_gray", TensorProto.FLOAT, [], [0.5]),
        helper.make_tensor("channel_axis", TensorProto.INT64, [1], [3]),
    ]
    graph = helper.make_graph(
        nodes, "vigil_tiny_image",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", SIZE, SIZE, 1])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"]),
         helper.make_tensor_value_info("anomaly_map", TensorProto.FLOAT, ["N", SIZE, SIZE])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8,
                             producer_name="vigil-tests")


def tiny_image_spec() -> ImageSpec:
    stats = ScoreStats(count=64, mean=0.2, std=0.05, p50=0.2, p95=0.3, p99=0.33, max=0.35)
    return ImageSpec(
        height=SIZE, width=SIZE, channels=1, color="gray", resize="stretch",
        threshold=Threshold(THRESHOLD, "fixed"), pixel_threshold=Threshold(THRESHOLD, "fixed"),
        score_reduction="max", score_stats=stats,
        map_stats=ScoreStats(count=64 * SIZE * SIZE, mean=0.1, std=0.08, p50=0.1, p95=0.25,
                             p99=0.3, max=0.5),
        precision="fp32", versions={"vigil": "tests"},
        training={"note": "closed-form test model from tests/image_fixtures.py"},
    )


def write_tiny_image_artifact(path: str | Path) -> Path:
    """Write the tiny image artifact to ``path`` (.onnx) and return it."""
    return write_artifact(tiny_image_graph(), tiny_image_spec(), path)


def reference_scores(frames: list[np.ndarray]) -> np.ndarray:
    """The tiny model's scores computed in numpy, for BGR or gray uint8 frames of any size."""
    scores = []
    for frame in frames:
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        interpolation = cv2.INTER_AREA if gray.shape[0] > SIZE else cv2.INTER_LINEAR
        small = cv2.resize(gray, (SIZE, SIZE), interpolation=interpolation)
        scores.append(np.abs(small.astype(np.float32) / 255.0 - 0.5).max())
    return np.asarray(scores, dtype=np.float64)


def normal_frame(rng: np.random.Generator, height: int = 48, width: int = 64) -> np.ndarray:
    """A BGR frame whose pixels stay in [60, 190]: well below the threshold."""
    return rng.integers(60, 191, size=(height, width, 3), dtype=np.uint8)


def defect_frame(rng: np.random.Generator, height: int = 48, width: int = 64,
                 box: tuple[int, int, int, int] = (16, 8, 24, 20)) -> np.ndarray:
    """A normal frame with a white patch at ``box`` (x, y, w, h): score 0.5, one region there."""
    frame = normal_frame(rng, height, width)
    x, y, w, h = box
    frame[y:y + h, x:x + w] = 255
    return frame


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "tiny-image.onnx")
    print(write_tiny_image_artifact(target))
