"""Writing a Vigil artifact: the one place that puts the metadata entry into an .onnx file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

from vigil.runtime.core.artifact import CONTENT_DIGEST_KEY, ArtifactError, content_digest
from vigil.runtime.core.spec import METADATA_KEY, Spec, spec_to_dict
from vigil.runtime.core.output import atomic_path, made_folders


def write_artifact(proto, spec: Spec, path: str | Path,
                   verify: Callable[[Any], None] | None = None) -> Path:
    """Attach ``spec`` as the ``vigil`` metadata entry and write the model atomically.

    The model goes to a temporary file in the same folder, is synced to disk and renamed over
    ``path``: an interrupted write leaves any previous file at ``path`` whole, and no temporary
    file behind. ``verify(detector)`` gets the temporary file loaded by the runtime before the
    rename; if it raises (or the runtime refuses the file), the previous file stays too, and the
    refusal is an ArtifactError naming ``path``.
    """
    from vigil.runtime import load
    import onnx

    path = Path(path)
    if path.suffix != ".onnx":
        raise ValueError(f"`output` must end in .onnx; received {str(path)!r}")
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    del model.metadata_props[:]
    model.producer_name = "vigil"
    model.producer_version = spec.versions.get("vigil", "")
    fields = spec_to_dict(spec)
    # the digest covers the model as serialized without its metadata, which the entry added
    # below leaves byte for byte as it is (a field of its own, after the graph's)
    fields[CONTENT_DIGEST_KEY] = content_digest(model.SerializeToString(), fields)
    entry = model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(fields, sort_keys=True)
    onnx.checker.check_model(model)
    with made_folders(path.parent), atomic_path(path) as temporary:  # once the model is good
        onnx.save_model(model, temporary)
        _sync(temporary)
        if verify is not None:
            try:
                verify(load(temporary))
            except ArtifactError as error:
                reason = str(error).replace(f"model file {temporary!r}: ", "")
                raise ArtifactError(f"{str(path)!r} was not written: the runtime refuses the "
                                    f"model as exported ({reason.replace(temporary, 'it')}); any "
                                    "previous file there is kept") from None
    return path


def _sync(path: str) -> None:
    """Flush a file's bytes to the disk, so the rename never publishes an empty file after a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
