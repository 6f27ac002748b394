"""Vigil runtime: load a self-describing .onnx artifact; score sensor windows or camera frames.

Needs only onnxruntime, numpy and OpenCV; never TensorFlow, Keras, tf2onnx or onnx, and nothing
else of Vigil's. ``core/`` holds what both sides share (the artifact reader, its spec, providers,
output, health, metrics, thresholds), ``sensor/`` turns rows into windows and scores them,
``camera/`` reads frame sources and scores frames.
"""

from typing import TYPE_CHECKING

from .core.spec import ArtifactError, ImageSpec, SensorSpec
from .loader import load
from .sensor.detector import SensorDetector
from .sensor.streaming import Result, StreamingScorer

if TYPE_CHECKING:  # imported on first use (below); named here for type checkers and help()
    from .camera.detector import ImageDetector


def __getattr__(name: str):
    # The frame side needs OpenCV, whose import costs ~0.1 s: sensor devices never pay for it.
    if name == "ImageDetector":
        from .camera.detector import ImageDetector

        return ImageDetector
    raise AttributeError(f"module 'vigil.runtime' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = ["load", "SensorDetector", "ImageDetector", "SensorSpec", "ImageSpec", "StreamingScorer",
           "Result", "ArtifactError"]
