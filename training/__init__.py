"""Vigil training: Keras models for sensor windows and camera frames, trained on normal data
(labels choose thresholds, evaluate, and drive ``--supervised``), written as ``NAME.keras`` with
its calibration data beside it (``NAME.vigil.npz``) for ``vigil.export``.

The options are imported on first use (their modules load TensorFlow); the training functions
live in their modules: ``vigil.training.train_sensor.train_sensor`` and
``vigil.training.train_image.train_image``.
"""

import importlib.util as _util
from typing import TYPE_CHECKING

# on a runtime-only install (a device), say what to install, not "No module named 'keras'"
for _package in ("tensorflow", "keras"):
    if _util.find_spec(_package) is None:
        raise ImportError(f"vigil.training needs the training extras ({_package} is not "
                          f"installed; a device needs only vigil.runtime): pip install "
                          f"'vigil-edge[train]'", name=_package)

if TYPE_CHECKING:
    from .sensor_data import DataOptions
    from .sensor_model import ModelOptions
    from .train_image import ImageTrainingOptions
    from .train_sensor import CalibrationOptions, SensorTrainingOptions

_LAZY = {"SensorTrainingOptions": ".train_sensor", "CalibrationOptions": ".train_sensor",
         "DataOptions": ".sensor_data", "ModelOptions": ".sensor_model",
         "ImageTrainingOptions": ".train_image"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'vigil.training' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = list(_LAZY)
