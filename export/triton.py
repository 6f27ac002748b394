"""A Triton Inference Server model repository for a Vigil artifact.

The artifact's graph already holds the preprocessing and the score reduction, so Triton's stock
onnxruntime backend serves it as it is: ``REPO/<name>/1/model.onnx`` plus a ``config.pbtxt`` with
the real input and output names, types and dims read from the graph, dynamic batching, and CPU
instances; ``configs/gpu.pbtxt`` is the GPU variant (``tritonserver --model-config-name=gpu``),
with TensorRT as the backend's accelerator. What stays on the client is written in
docs/deploying.md ("Serving on Triton"): windowing and alarm smoothing for sensors, boxes for
frames.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

from vigil.runtime import load
from vigil.runtime.core.artifact import sha256_of
from vigil.runtime.core.output import atomic_path, made_folders, write_atomically

TRITON_TYPES = {"tensor(float)": "TYPE_FP32", "tensor(float16)": "TYPE_FP16",
                "tensor(double)": "TYPE_FP64", "tensor(uint8)": "TYPE_UINT8",
                "tensor(int8)": "TYPE_INT8", "tensor(int32)": "TYPE_INT32",
                "tensor(int64)": "TYPE_INT64", "tensor(bool)": "TYPE_BOOL"}
NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
log = logging.getLogger("vigil")


def write_triton_repository(artifact: str | Path, repository: str | Path, name: str | None = None,
                            max_batch_size: int = 64, cpu_instances: int = 2,
                            queue_delay_us: int = 500) -> Path:
    """Write ``repository/<name>/`` for ``artifact``; returns that folder.

    Args:
        artifact: a .onnx written by ``vigil export`` (checked by loading it).
        repository: the model repository folder (created; other models in it are left alone).
        name: the model's name in Triton (default: the artifact's file stem).
        max_batch_size: the largest batch Triton's dynamic batcher forms.
        cpu_instances: model instances in the CPU configuration.
        queue_delay_us: how long the batcher waits to fill a batch.
    """
    artifact = Path(artifact)
    detector = load(artifact)  # a Vigil artifact, or a clear error naming what is wrong
    if name is not None and not name:
        raise ValueError("`name` must not be empty; leave it out to use the artifact's file name")
    name = name or re.sub(r"[^A-Za-z0-9_.-]", "_", artifact.stem)
    if not NAME.match(name) or set(name) == {"."}:
        raise ValueError(f"`name` must be letters, digits, '_', '.' or '-', and not only dots "
                         f"(it names a folder inside the repository); received {name!r}")
    for label, value, lowest in (("max_batch_size", max_batch_size, 1),
                                 ("cpu_instances", cpu_instances, 1),
                                 ("queue_delay_us", queue_delay_us, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
            raise ValueError(f"`{label}` must be an integer >= {lowest}; received {value!r}")
    inputs, outputs = detector.graph_inputs, detector.graph_outputs  # of the file checked
    batched = all(not isinstance(t.shape[0], int) for t in [*inputs, *outputs])
    if batched and not detector.batch_independent:
        log.warning("%s quantizes its activations per run (an INT8 artifact of 0.1): a batch "
                    "Triton forms would let one request's readings change every other's "
                    "scores, so the configs turn dynamic batching off (max_batch_size 0); "
                    "re-export it with this release to batch it", artifact)
        batched = False
    shown = re.sub(r"[^\x20-\x7e]", "?", artifact.name)  # a comment ends at a line's end
    header = (f"# Vigil {detector.spec.kind} artifact {shown} (sha256 {detector.sha256});\n"
              "# the graph holds preprocessing and the score reduction. Written by vigil triton.\n")
    # both configs built and their folders made before anything is placed: a config that
    # cannot be written leaves the repository as it was, not a new model with half its configs
    body = _config(name, inputs, outputs, max_batch_size if batched else 0, queue_delay_us)
    cpu_config = (header + body + f"instance_group [ {{ kind: KIND_CPU count: {cpu_instances} }} ]\n"
                  'parameters { key: "intra_op_thread_count" value: { string_value: "1" } }\n')
    gpu_config = (header + body + "instance_group [ { kind: KIND_GPU count: 1 } ]\n"
                  "optimization { execution_accelerators {\n"
                  '  gpu_execution_accelerator: [ { name: "tensorrt" } ]\n} }\n')
    folder = Path(repository) / name
    # every path of the model's folder of the kind it must be, before anything is placed: a
    # repository is never left with a new model beside old or missing configs
    for path, folder_wanted in ((Path(repository), True), (folder, True), (folder / "1", True),
                                (folder / "configs", True), (folder / "1" / "model.onnx", False),
                                (folder / "config.pbtxt", False),
                                (folder / "configs" / "gpu.pbtxt", False)):
        if path.exists() and path.is_dir() != folder_wanted:
            have, need = ("a file", "a folder") if folder_wanted else ("a folder", "a file")
            raise ValueError(f"{str(path)!r} is {have} where the model repository needs {need}; "
                             f"move it away, or give another --name")
    # the model's folders, removed again when the model cannot be placed (its file changed)
    with made_folders(folder / "1"), made_folders(folder / "configs"):
        _place_model(artifact, folder / "1" / "model.onnx", detector.sha256)
    others = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name.isdigit()
                    and p.name != "1")
    if others:
        log.warning("%s: version folders %s are left as they were and not served: the configs "
                    "serve version 1, the model written now (remove them, or serve them with "
                    "a model name of their own)", folder, others)
    # whole or not at all, as the model: a server polling the repository never reads half a config
    write_atomically(folder / "configs" / "gpu.pbtxt", gpu_config)
    write_atomically(folder / "config.pbtxt", cpu_config)  # last: what Triton loads
    return folder


def _place_model(artifact: Path, target: Path, sha256: str) -> None:
    """Copy ``artifact`` to ``target`` whole or not at all (a temporary file, then a rename):
    a server that loads the repository meanwhile never reads half a model. The copy must be the
    file that was loaded and checked (``sha256``): ValueError when the artifact changed since (a
    new export over it), nothing placed. Nothing to do when ``artifact`` is ``target`` already."""
    if target.exists() and os.path.samefile(artifact, target):
        return
    if target.exists():
        log.info("%s: replaced by %s", target, artifact)
    with atomic_path(target) as temporary:
        try:
            shutil.copyfile(artifact, temporary)
        except OSError as error:  # shutil names the source: a full disk is the target's
            raise OSError(error.errno, error.strerror or str(error), str(target)) from None
        copied = sha256_of(temporary)
        if copied != sha256:
            raise ValueError(f"{str(artifact)!r} changed while the repository was written (sha256 "
                             f"{copied[:12]}, where the file checked had {sha256[:12]}): nothing "
                             f"was placed; run vigil triton again once the export is done")


def _config(name: str, inputs, outputs, max_batch_size: int, queue_delay_us: int) -> str:
    lines = [f"name: {_quoted(name)}", 'backend: "onnxruntime"', f"max_batch_size: {max_batch_size}",
             # version 1 only: older or later version folders never take its place unseen
             "version_policy: { specific: { versions: [ 1 ] } }"]
    lines.append("input [\n" + ",\n".join(_tensor(t, max_batch_size) for t in inputs) + "\n]")
    lines.append("output [\n" + ",\n".join(_tensor(t, max_batch_size) for t in outputs) + "\n]")
    if max_batch_size:
        lines.append(f"dynamic_batching {{ max_queue_delay_microseconds: {queue_delay_us} }}")
    return "\n".join(lines) + "\n"


def _tensor(tensor, max_batch_size: int) -> str:
    if tensor.type not in TRITON_TYPES:
        raise ValueError(f"tensor {tensor.name!r} has type {tensor.type}, which this writer "
                         f"does not map to Triton (known: {sorted(TRITON_TYPES)})")
    dims = [d if isinstance(d, int) else -1 for d in tensor.shape[1 if max_batch_size else 0:]]
    text = f"  {{ name: {_quoted(tensor.name)} data_type: {TRITON_TYPES[tensor.type]} "
    if not dims:  # one value per item: Triton needs a dim, reshaped away
        return text + "dims: [ 1 ] reshape: { shape: [ ] } }"
    return text + f"dims: [ {', '.join(map(str, dims))} ] }}"


def _quoted(text: str) -> str:
    """``text`` as a protobuf text-format string, every byte it holds kept and none able to end
    the string or the line: a graph's tensor names come from the artifact, which a vendor may
    have written (a name holding a quote and a newline wrote lines of its own into the config,
    such as ``default_model_filename``; review r3)."""
    escaped = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in '"\\':
            escaped.append("\\" + char)
        elif 0x20 <= byte < 0x7F:
            escaped.append(char)
        else:  # control characters and UTF-8's bytes as octal escapes
            escaped.append(f"\\{byte:03o}")
    return '"' + "".join(escaped) + '"'
