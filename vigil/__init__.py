"""Vigil: edge anomaly detection in one self-describing .onnx file.

``vigil.runtime`` is what a device needs (onnxruntime, numpy, OpenCV); ``vigil.training``,
``vigil.export`` and ``vigil.benchmarks`` come with the ``train`` extra; ``vigil.cli`` is the
``vigil`` command. ``vigil.load`` is ``vigil.runtime.load``, imported on first use so that
``import vigil`` stays cheap.
"""

__version__ = "0.3.0"

_RUNTIME_NAMES = ("load", "SensorDetector", "ImageDetector", "StreamingScorer", "ArtifactError")


def __getattr__(name: str):
    if name in _RUNTIME_NAMES:
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module 'vigil' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_RUNTIME_NAMES})


__all__ = ["__version__", *_RUNTIME_NAMES]
