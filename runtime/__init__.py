"""Vigil runtime: load a self-describing .onnx artifact and score sensor windows.

Needs only onnxruntime, numpy and OpenCV; never TensorFlow, Keras, tf2onnx or onnx.
"""

from .detector import SensorDetector, load
from .spec import ArtifactError, SensorSpec
from .streaming import Result, StreamingScorer

__version__ = "0.1.0"

__all__ = ["load", "SensorDetector", "SensorSpec", "StreamingScorer", "Result", "ArtifactError",
           "__version__"]
