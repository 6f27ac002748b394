"""A training run on disk: ``NAME.keras`` plus ``NAME.vigil.npz`` beside it.

The .keras file is the scoring model (raw window -> score); the .npz holds what export needs to
calibrate and check the quantized model: validation windows and labels, calibration windows, and
the training record as JSON. It is read without pickle. This is the one place that reads and
writes that pair.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class TrainingRun:
    model_path: Path
    record: dict[str, Any]            # kind, normalization, threshold, files, ...
    validation: np.ndarray            # raw validation inputs: windows, or uint8 images
    validation_labels: np.ndarray     # (n,) bool
    calibration: np.ndarray           # normal inputs for quantization
    validation_masks: np.ndarray | None = None  # images: (n, height, width) bool defect masks

    @property
    def normal_validation(self) -> np.ndarray:
        return self.validation[~self.validation_labels]


def sidecar_path(model_path: str | Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + ".vigil.npz")


def save_run(model, run: TrainingRun) -> None:
    """Write the Keras model and its sidecar, each atomically."""
    path = Path(run.model_path)
    if path.suffix != ".keras":
        raise ValueError(f"`output` must end in .keras; received {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        model.save(temporary)
    with atomic_path(sidecar_path(path)) as temporary:
        with open(temporary, "wb") as handle:
            arrays = dict(record=np.array(json.dumps(run.record)), validation=run.validation,
                          validation_labels=run.validation_labels.astype(bool),
                          calibration=run.calibration)
            if run.validation_masks is not None:
                arrays["validation_masks"] = run.validation_masks.astype(bool)
            np.savez(handle, **arrays)


def load_run(model_path: str | Path) -> TrainingRun:
    """Read the sidecar of a trained model (the Keras model itself is loaded by the caller)."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise ValueError(f"`model` {str(model_path)!r} does not exist; expected a .keras file "
                         "written by `vigil train`")
    sidecar = sidecar_path(model_path)
    if not sidecar.is_file():
        raise ValueError(f"{str(sidecar)!r} is missing: `vigil export` needs the calibration "
                         f"data that `vigil train` writes beside {model_path.name}")
    try:
        with np.load(sidecar, allow_pickle=False) as data:
            record = json.loads(str(data["record"]))
            masks = data["validation_masks"] if "validation_masks" in data.files else None
            return TrainingRun(model_path, record, data["validation"],
                               data["validation_labels"], data["calibration"], masks)
    except (KeyError, ValueError, OSError) as error:
        raise ValueError(f"{str(sidecar)!r} is not a readable Vigil training sidecar: {error}") from None


class atomic_path:
    """Context manager yielding a temporary path in the target's folder, renamed on success."""

    def __init__(self, target: Path) -> None:
        self.target = Path(target)

    def __enter__(self) -> str:
        fd, self.temporary = tempfile.mkstemp(dir=self.target.parent, prefix=".tmp-",
                                              suffix=self.target.suffix)
        os.close(fd)
        return self.temporary

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            os.replace(self.temporary, self.target)
        elif os.path.exists(self.temporary):
            os.unlink(self.temporary)
