"""Vigil runtime: load a self-describing .onnx artifact; score sensor windows or camera frames.

Needs only onnxruntime, numpy and OpenCV; never TensorFlow, Keras, tf2onnx or onnx.
"""

from .detector import SensorDetector, load
from .image_detector import ImageDetector
from .spec import ArtifactError, ImageSpec, SensorSpec
from .streaming import Result, StreamingScorer

__version__ = "0.1.0"

__all__ = ["load", "SensorDetector", "ImageDetector", "SensorSpec", "ImageSpec", "StreamingScorer",
           "Result", "ArtifactError", "__version__"]
