"""Vigil export: a trained Keras model -> one self-describing .onnx artifact (FP32, INT8 or
mixed, chosen by measured parity and speed), and a Triton model repository from an artifact.

The exporters load TensorFlow and live in their modules: ``vigil.export.export_sensor.
export_sensor`` and ``vigil.export.export_image.export_image``; ``write_triton_repository`` is
imported on first use.
"""

from typing import TYPE_CHECKING

from .options import ExportOptions, ExportReport
from .precision import Precision

if TYPE_CHECKING:
    from .triton import write_triton_repository

_LAZY = {"write_triton_repository": ".triton"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'vigil.export' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = ["ExportOptions", "ExportReport", "Precision", "write_triton_repository"]
