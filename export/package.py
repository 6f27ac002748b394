"""Writing a Vigil artifact: the one place that puts the metadata entry into an .onnx file."""

from __future__ import annotations

import json
import os
from pathlib import Path

from vigil.runtime.core.spec import METADATA_KEY, SensorSpec, spec_to_dict
from vigil.training.checkpoint import atomic_path


def write_artifact(proto, spec: SensorSpec, path: str | Path) -> Path:
    """Attach ``spec`` as the ``vigil`` metadata entry and write the model atomically.

    The model goes to a temporary file in the same folder, is synced to disk and renamed over
    ``path``: an interrupted write leaves any previous file at ``path`` whole, and no temporary
    file behind.
    """
    import onnx

    path = Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"`output` must end in .onnx; received {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(spec_to_dict(spec), sort_keys=True)
    model.producer_name = "vigil"
    model.producer_version = spec.versions.get("vigil", "")
    onnx.checker.check_model(model)
    with atomic_path(path) as temporary:
        onnx.save_model(model, temporary)
        _sync(temporary)
    return path


def _sync(path: str) -> None:
    """Flush a file's bytes to the disk, so the rename never publishes an empty file after a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
