"""A tiny sensor artifact built without TensorFlow: its scores are known in closed form.

The graph takes windows (N, 4, 3) of features ``a, b, c`` and calls the mean absolute reading its
anomaly: ``feature_errors = mean over steps of |x|`` (N, 3) and ``score = mean(feature_errors)``
(N,). With the threshold at 1.0, readings near 0 are normal and readings of 5 are anomalous. The
artifact fills gaps of up to 2 rows and reads timestamps from a ``timestamp`` column. Fault and
fuzz tests use it where the scores themselves do not matter, only that every row is accounted for.
Run this file to write ``tiny-sensor.onnx``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from vigil.export.package import write_artifact
from vigil.runtime.core.spec import ScoreStats, SensorSpec, Threshold

FEATURES = ("a", "b", "c")
WINDOW = 4
MAX_GAP = 2
THRESHOLD = 1.0
OPSET = 17


def tiny_sensor_graph():
    """Opset-17 graph: window float (N, 4, 3) -> score (N,), feature_errors (N, 3)."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Abs", ["window"], ["distance"]),
        helper.make_node("ReduceMean", ["distance"], ["feature_errors"], axes=[1], keepdims=0),
        helper.make_node("ReduceMean", ["feature_errors"], ["score"], axes=[1], keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "vigil_tiny_sensor",
        [helper.make_tensor_value_info("window", TensorProto.FLOAT, ["N", WINDOW, len(FEATURES)])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["N"]),
         helper.make_tensor_value_info("feature_errors", TensorProto.FLOAT, ["N", len(FEATURES)])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8,
                             producer_name="vigil-tests")


def tiny_sensor_spec() -> SensorSpec:
    stats = ScoreStats(count=100, mean=0.3, std=0.1, p50=0.3, p95=0.5, p99=0.6, max=0.7)
    return SensorSpec(
        features=FEATURES, window=WINDOW, stride=1, mean=(0.0,) * 3, std=(1.0,) * 3,
        score_reduction="mean", threshold=Threshold(THRESHOLD, "fixed"), consecutive=1,
        score_stats=stats, precision="fp32", max_gap=MAX_GAP, time_column="timestamp",
        versions={"vigil": "tests"},
        training={"note": "closed-form test model from tests/sensor_fixtures.py"},
    )


def write_tiny_sensor_artifact(path: str | Path) -> Path:
    """Write the tiny sensor artifact to ``path`` (.onnx) and return it."""
    return write_artifact(tiny_sensor_graph(), tiny_sensor_spec(), path)


def reference_score(window: np.ndarray) -> float:
    """The tiny model's score of one (4, 3) window, in numpy."""
    return float(np.abs(np.asarray(window, dtype=np.float64)).mean())


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "tiny-sensor.onnx")
    print(write_tiny_sensor_artifact(target))
