"""Vigil runtime: load a self-describing .onnx artifact; score sensor windows or camera frames.

Needs only onnxruntime, numpy and OpenCV; never TensorFlow, Keras, tf2onnx or onnx.
"""

from .detector import SensorDetector, load
from .spec import ArtifactError, ImageSpec, SensorSpec
from .streaming import Result, StreamingScorer

__version__ = "0.1.0"


def __getattr__(name: str):
    # The frame side needs OpenCV, whose import costs ~0.1 s: sensor devices never pay for it.
    if name == "ImageDetector":
        from .image_detector import ImageDetector

        return ImageDetector
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")

__all__ = ["load", "SensorDetector", "ImageDetector", "SensorSpec", "ImageSpec", "StreamingScorer",
           "Result", "ArtifactError", "__version__"]
