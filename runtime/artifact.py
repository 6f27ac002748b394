"""Opening a Vigil .onnx artifact: the one place that reads its metadata.

onnxruntime reads the model and its metadata map; this module checks the file, parses the
``vigil`` JSON entry into a spec, and checks that the graph matches what the spec says.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import onnxruntime as ort

from .providers import session_providers
from .spec import METADATA_KEY, ArtifactError, ImageSpec, Spec, spec_from_dict


@dataclass(frozen=True)
class Artifact:
    path: Path
    session: ort.InferenceSession
    spec: Spec
    sha256: str


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_artifact(
    path: str | Path,
    providers: Sequence[str] | None = None,
    threads: int | None = None,
    expect_sha256: str | None = None,
) -> Artifact:
    """Open ``path`` as a Vigil artifact; raises ArtifactError saying what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"model file {str(path)!r} does not exist or is not a file")
    if path.stat().st_size == 0:
        raise ArtifactError(f"model file {str(path)!r} is empty; expected a Vigil .onnx artifact")
    digest = sha256_of(path)
    if expect_sha256 is not None and digest != expect_sha256.strip().lower():
        raise ArtifactError(
            f"model file {str(path)!r} has sha256 {digest}; expected {expect_sha256.strip()}"
        )
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        if threads < 1:
            raise ValueError(f"`threads` must be >= 1; received {threads}")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), sess_options=options,
                                       providers=session_providers(providers))
    except Exception as error:  # onnxruntime raises its own untyped errors for bad files
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ArtifactError(
            f"model file {str(path)!r} is not a loadable ONNX model (truncated or corrupt?): "
            f"{first_line[:300]}"
        ) from None
    try:
        spec = spec_from_dict(_metadata(session, path))
    except ArtifactError as error:
        message = str(error)
        if not message.startswith("model file"):
            message = f"model file {str(path)!r}: {message}"
        raise ArtifactError(message) from None
    _check_graph(session, spec, path)
    return Artifact(path=path, session=session, spec=spec, sha256=digest)


def _metadata(session: ort.InferenceSession, path: Path) -> object:
    entries = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in entries:
        raise ArtifactError(
            f"model file {str(path)!r} has no {METADATA_KEY!r} metadata entry: it is an ONNX model "
            "but not a Vigil artifact (export it with `vigil export`)"
        )
    try:
        return json.loads(entries[METADATA_KEY])
    except (json.JSONDecodeError, RecursionError) as error:
        raise ArtifactError(
            f"model file {str(path)!r}: the {METADATA_KEY!r} metadata entry is not valid JSON ({error})"
        ) from None


def _check_graph(session: ort.InferenceSession, spec: Spec, path: Path) -> None:
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    if spec.input_name not in inputs:
        raise ArtifactError(f"model file {str(path)!r}: metadata names input {spec.input_name!r}, "
                            f"the graph has {sorted(inputs)}")
    if isinstance(spec, ImageSpec):
        named = (spec.score_output, spec.map_output)
        expected = list(spec.input_shape)
    else:
        named = (spec.score_output, spec.feature_output)
        expected = [spec.window, len(spec.features)]
    for name in named:
        if name not in outputs:
            raise ArtifactError(f"model file {str(path)!r}: metadata names output {name!r}, "
                                f"the graph has {sorted(outputs)}")
    shape = list(inputs[spec.input_name].shape)
    if len(shape) != len(expected) + 1 or [d if isinstance(d, int) else None
                                           for d in shape[1:]] != expected:
        raise ArtifactError(f"model file {str(path)!r}: graph input shape {shape} does not match "
                            f"the metadata's {expected}")
