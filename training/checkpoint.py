"""A training run on disk: ``NAME.keras`` plus ``NAME.vigil.npz`` beside it.

The .keras file is the scoring model (raw window -> score); the .npz holds what export needs to
calibrate and check the quantized model: validation windows and labels, calibration windows, and
the training record as JSON. It is read without pickle. This is the one place that reads and
writes that pair.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vigil.runtime.core.artifact import sha256_of
from vigil.runtime.core.output import atomic_path
from vigil.runtime.core.spec import SIDECAR_SUFFIX, sidecar_path


@dataclass(frozen=True)
class TrainingRun:
    model_path: Path
    record: dict[str, Any]            # kind, normalization, threshold, files, ...
    validation: np.ndarray            # raw validation inputs: windows, or uint8 images
    validation_labels: np.ndarray     # (n,) bool
    calibration: np.ndarray           # normal inputs for quantization
    validation_masks: np.ndarray | None = None  # images: (n, height, width) bool defect masks
    # sensor windows: True where no row of the window is labeled (None: every window not labeled
    # as an anomaly is normal, as for images and sidecars written before 2026-12-05)
    validation_clean: np.ndarray | None = None

    @property
    def normal_mask(self) -> np.ndarray:
        """The validation items that are normal: no labeled row in a sensor window. A window that
        holds a labeled row but ends after it is neither normal nor an anomaly."""
        return (self.validation_clean if self.validation_clean is not None
                else ~self.validation_labels)

    @property
    def calibration_mask(self) -> np.ndarray:
        """The validation items a threshold is fitted and judged on: the normal ones and those
        labeled anomalous, not the windows that only touch a labeled row."""
        return self.normal_mask | self.validation_labels

    @property
    def normal_validation(self) -> np.ndarray:
        return self.validation[self.normal_mask]


def save_run(model, run: TrainingRun) -> None:
    """Write the Keras model and its sidecar, each atomically: both are written whole before
    either replaces an earlier pair, so a failed write (a full disk) keeps the earlier pair."""
    path = Path(run.model_path)
    if path.suffix != ".keras":
        raise ValueError(f"`output` must end in .keras; received {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as model_temporary:  # renamed last, after the sidecar
        model.save(model_temporary)
        # the sidecar names its model: one left from an earlier run (a crash between the two
        # renames) is refused at export instead of calibrating another network
        record = {**run.record, "model_sha256": sha256_of(model_temporary)}
        with atomic_path(sidecar_path(path)) as temporary:
            _write_sidecar(temporary, run, record)


def _write_sidecar(temporary: str, run: TrainingRun, record: dict) -> None:
    with open(temporary, "wb") as handle:
        arrays = dict(record=np.array(json.dumps(record)),
                      validation_labels=run.validation_labels.astype(bool),
                      calibration=run.calibration)
        packed = _pack_windows(run.validation, run.record)
        if packed is None:
            arrays["validation"] = run.validation
        else:
            arrays["validation_rows"], arrays["validation_starts"] = packed
        if run.validation_masks is not None:
            arrays["validation_masks"] = run.validation_masks.astype(bool)
        if run.validation_clean is not None:
            arrays["validation_clean"] = run.validation_clean.astype(bool)
        # numpy's stubs let **arrays fill savez's allow_pickle (numpy >= 2.1); these names never
        # do, and passing allow_pickle itself would add an array of that name on numpy < 2.1
        np.savez(handle, **arrays)  # type: ignore[arg-type]


class _OtherModel(ValueError):
    """A sidecar that belongs to another model file."""


def load_run(model_path: str | Path) -> TrainingRun:
    """Read the sidecar of a trained model (the Keras model itself is loaded by the caller)."""
    model_path = Path(model_path)
    if not model_path.is_file():
        what = "is a folder" if model_path.is_dir() else "does not exist"
        raise ValueError(f"`model` {str(model_path)!r} {what}; expected a .keras file "
                         "written by `vigil train`")
    sidecar = sidecar_path(model_path)
    if not sidecar.is_file():
        raise ValueError(f"{str(sidecar)!r} is missing: `vigil export` needs the calibration "
                         f"data that `vigil train` writes beside {model_path.name}; a model "
                         f"copied or renamed needs its NAME{SIDECAR_SUFFIX} copied or renamed "
                         f"with it (the file beside the original model), else train again "
                         f"(vigil train ... -o {model_path.name})")
    try:
        with np.load(sidecar, allow_pickle=False) as data:
            record = json.loads(str(data["record"]))
            masks = data["validation_masks"] if "validation_masks" in data.files else None
            validation = (_unpack_windows(data["validation_rows"], data["validation_starts"],
                                          int(record["window"]))
                          if "validation_rows" in data.files else data["validation"])
            clean = data["validation_clean"] if "validation_clean" in data.files else None
            written_with = record.get("model_sha256")
            if (written_with is not None and zipfile.is_zipfile(model_path)  # else: unreadable
                    and written_with != sha256_of(model_path)):
                raise _OtherModel(f"{str(sidecar)!r} was not written with this "
                                  f"{model_path.name} (their hashes differ: an interrupted or "
                                  "overlapping training, a model copied without its sidecar, or "
                                  "either file damaged since); its calibration does not fit this "
                                  f"model: train again (vigil train ... -o {model_path.name})")
            return TrainingRun(model_path, record, validation,
                               data["validation_labels"], data["calibration"], masks, clean)
    except _OtherModel:
        raise
    except (KeyError, ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        # numpy's own advice for a file it takes for a pickle (allow_pickle) is not given: the
        # sidecar never holds one, and a pickle is never loaded
        reason = ("it is not the .npz archive `vigil train` writes (truncated, or another file)"
                  if isinstance(error, (zipfile.BadZipFile, EOFError)) or "pickle" in str(error)
                  else str(error))
        raise ValueError(f"{str(sidecar)!r} is not a readable Vigil training sidecar: {reason}; "
                         f"train again to write both files (vigil train ... -o "
                         f"{model_path.name})") from None


def register_layers() -> None:
    """Register every custom Keras layer a Vigil model may hold (Keras finds them by name only
    once their modules are imported), so that any of our models loads."""
    from . import feature_model, fused_model, image_model, sensor_model  # noqa: F401


def load_keras_model(model_path: str | Path, kind: str):
    """The Keras model ``vigil train`` wrote (safe mode, no compiling); ValueError naming the file
    when it is cut short, not a .keras archive (Keras itself says "file not found"), or not a
    model ``vigil train {kind}`` wrote (``kind``: what its sidecar says it is)."""
    import keras

    register_layers()

    model_path = Path(model_path)
    again = f"train again to write it (vigil train {kind} ... -o {model_path.name})"
    if not zipfile.is_zipfile(model_path):
        raise ValueError(f"`model` {str(model_path)!r} is not a readable .keras model (truncated, "
                         f"or another file); {again}")
    try:
        model = keras.models.load_model(model_path, safe_mode=True, compile=False)
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"`model` {str(model_path)!r} is not a readable .keras model ({error}); "
                         f"{again}") from None
    except (TypeError, ValueError, KeyError) as error:  # layers Keras cannot rebuild
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise ValueError(f"`model` {str(model_path)!r} cannot be read as the {kind} model its "
                         f"sidecar ({sidecar_path(model_path).name}) describes ({first}); a "
                         f"model of another kind, damaged, or not written by vigil train: "
                         f"{again}") from None
    try:
        output = model.output
    except (AttributeError, ValueError):  # a model never built: no outputs at all
        output = None
    if not isinstance(output, dict) or "score" not in output:
        raise ValueError(f"`model` {str(model_path)!r} is not a model `vigil train {kind}` wrote "
                         f"(a {type(model).__name__} without its `score` output), though its "
                         f"sidecar ({sidecar_path(model_path).name}) describes one; {again}")
    return model


def _pack_windows(windows: np.ndarray, record: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """Sensor windows that overlap their predecessor by all but ``stride`` rows as (rows, the
    row each window starts at): a long history's validation windows in a window's fraction of
    the space. Exact, since a window shares its first rows with the one before only where they
    are equal; None for anything else (images, a stride as long as the window)."""
    stride, window = record.get("stride"), record.get("window")
    if (record.get("kind") != "sensor" or windows.ndim != 3 or not isinstance(stride, int)
            or not isinstance(window, int) or windows.shape[1] != window or not 0 < stride < window
            or len(windows) < 2):
        return None
    follows = np.concatenate([[False], [
        bool(np.array_equal(windows[i, :-stride], windows[i - 1, stride:]))
        for i in range(1, len(windows))]])
    counts = np.where(follows, stride, window)
    ends = np.cumsum(counts)
    starts = ends - window
    rows = np.empty((int(ends[-1]), windows.shape[2]), dtype=windows.dtype)
    for i in range(len(windows)):
        rows[ends[i] - counts[i]:ends[i]] = windows[i, window - counts[i]:]
    return rows, starts.astype(np.int64)


def _unpack_windows(rows: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    return rows[starts[:, None] + np.arange(window)]


def keras_identity(record: dict) -> dict:
    """``{"keras_sha256": ...}``: the sha256 of the .keras file a run's record was written with
    (recorded since 0.3), for the artifact's training record, where ``vigil bench --against``
    checks that the Keras model timed is the one exported; {} for older runs."""
    return {"keras_sha256": record["model_sha256"]} if record.get("model_sha256") else {}
