"""Opening a Vigil .onnx artifact: the one place that reads its metadata.

onnxruntime reads the model and its metadata map; this module checks the file, parses the
``vigil`` JSON entry into a spec, and checks that the graph matches what the spec says.

The file is read once: those bytes are hashed (for the optional sha256 pin), checked for tensors
stored in other files (refused: an artifact is one self-contained file, and onnxruntime would
otherwise open whatever path such a reference names), and handed to onnxruntime, so the model
that runs is exactly the one that was hashed and checked.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import json
import logging
import numbers
import os
import re
import shlex
import sys
from urllib.parse import urlsplit
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import onnxruntime as ort

from .external_data import ModelScan, metadata_text, records_without_metadata, scan_model
from .int8_kernels import saturation_warning
from .providers import session_providers
from .spec import (MAX_THREADS, METADATA_KEY, SIDECAR_SUFFIX, ArtifactError, ImageSpec,
                   SensorSpec, Spec, _short, spec_from_dict)

# Operators that quantize activations with a scale taken from the whole batch at run time: a
# window's score would depend on which other windows share its batch.
BATCH_DEPENDENT_OPS = frozenset({"DynamicQuantizeLinear", "DynamicQuantizeLSTM",
                                 "DynamicQuantizeMatMul", "MatMulIntegerToFloat"})
MAX_MODEL_BYTES = 2**31  # protobuf's limit for one message: a bigger file is not one ONNX model
# the metadata entry: ours are a few kB (a training record naming thousands of files, under 1 MB);
# a bigger one costs several times its size in memory while onnxruntime and json read it
MAX_METADATA_BYTES = 16 << 20
SHA256_PATTERN = re.compile(r"[0-9a-fA-F]{64}")
# The metadata key of the artifact's content digest (``content_digest``), written by
# `vigil export` since 0.3; older artifacts have none and are not checked
CONTENT_DIGEST_KEY = "content_sha256"
log = logging.getLogger("vigil")


@dataclass(frozen=True)
class Artifact:
    path: Path
    session: ort.InferenceSession
    spec: Spec
    sha256: str
    batch_independent: bool = True  # False: score one item per run (see BATCH_DEPENDENT_OPS)
    metadata: Mapping | None = None  # the ``vigil`` entry as written (its digest too)


def sha256_of(path: str | Path) -> str:
    """The sha256 hex digest of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


ZIP_MAGIC = b"PK\x03\x04"  # .keras files (and other zip archives) start with it


def _missing(path: Path) -> str:
    """Why ``path`` is no model file, with what is there instead and the command that helps."""
    if path.is_dir():
        models = sorted(p.name for p in path.glob("*.onnx"))
        held = (f"; it holds {', '.join(models[:3])}: give one of them "
                f"({str(path / models[0])!r})" if models else
                "; give the .onnx file `vigil export` wrote")
        return f"model file {str(path)!r} is a folder{held}"
    if path.exists() or path.is_symlink():  # a device, a pipe, a link to nothing
        return (f"model file {str(path)!r} is not a regular file (a device, a pipe or a link "
                f"whose target is gone); give the .onnx file `vigil export` wrote")
    keras = path.with_suffix(".keras")
    if keras.is_file():
        return (f"model file {str(path)!r} does not exist, but {keras.name} is beside it: export "
                f"it first (vigil export {keras} -o {path.with_suffix('.onnx')})")
    others = sorted(p.name for p in path.parent.glob("*.onnx")) if path.parent.is_dir() else []
    there = (f"; {str(path.parent)!r} holds {', '.join(others[:3])}" if others else
             "; train and export one first (vigil train sensor DATA -o MODEL.keras, or vigil "
             "train image IMAGES -o MODEL.keras; then vigil export MODEL.keras -o MODEL.onnx)")
    return f"model file {str(path)!r} does not exist{there}"


def open_artifact(
    path: str | Path,
    providers: Sequence[str] | None = None,
    threads: int | None = None,
    expect_sha256: str | None = None,
) -> Artifact:
    """Open ``path`` as a Vigil artifact; raises ArtifactError saying what is wrong with it."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise TypeError(f"`path` must be the path of a Vigil .onnx artifact (a str or Path); "
                        f"received {path!r}")
    if threads is not None and (isinstance(threads, bool)
                                or not isinstance(threads, numbers.Integral)):
        raise TypeError(f"`threads` must be an integer >= 1 or None; received {threads!r}")
    if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://", str(path)):  # Path() would mangle it
        # shown without a password, a query or a fragment (a signed URL's token): not into logs
        try:
            parts = urlsplit(str(path))
            user, at, host = parts.netloc.rpartition("@")  # host as written: [::1]:8080 too
            user = user.split(":", 1)[0] + ":***" if ":" in user else user
            shown = f"{parts.scheme}://{user}{at}{host}{parts.path}"
            query = (" (with its query, as you have it)" if parts.query or parts.fragment
                     else "")
        except ValueError:  # not a URL urlsplit reads (an unclosed [): its scheme alone
            shown, query = str(path).split("://", 1)[0] + "://...", " (as you have it)"
        raise ArtifactError(f"model file {shown!r} is a URL; the runtime loads a file on this "
                            f"machine: download it first (curl -fLo model.onnx "
                            f"{shlex.quote(shown)}{query}) and give its path (pin it with "
                            f"--expect-sha256)")
    path = Path(path)
    pin = check_sha256_pin(expect_sha256)
    if not path.is_file():
        raise ArtifactError(_missing(path))
    size = path.stat().st_size
    if size == 0:
        raise ArtifactError(f"model file {str(path)!r} is empty; expected a Vigil .onnx artifact "
                            f"(copy it again, or export one: vigil export MODEL.keras -o "
                            f"{path.with_suffix('.onnx')})")
    if size > MAX_MODEL_BYTES:
        raise ArtifactError(f"model file {str(path)!r} is {size} bytes; a single-file ONNX model "
                            f"is at most {MAX_MODEL_BYTES} bytes")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if pin is not None and digest != pin:
        raise ArtifactError(f"model file {str(path)!r} has sha256 {digest}; expected {pin}: it "
                            f"is not the approved file (copy the approved one again, or pin the "
                            f"file you mean to run: sha256sum {path})")
    if data.startswith(ZIP_MAGIC):
        raise ArtifactError(_zip_archive(path))
    compressed = next((name for name, magic in COMPRESSED_MAGIC if data.startswith(magic)), None)
    if compressed is not None:
        fix = COMPRESSED_FIX[compressed].split()[0]  # gunzip -k ignores a name without .gz
        unpacked = path.with_name(f"{path.stem}-unpacked.onnx")
        raise ArtifactError(f"model file {str(path)!r} is {compressed}-compressed; decompress it "
                            f"first ({fix} -c {shlex.quote(str(path))} > "
                            f"{shlex.quote(str(unpacked))}) and load the .onnx inside")
    if data[4:8] == b"TFL3":
        raise ArtifactError(f"model file {str(path)!r} is a TensorFlow Lite model; the runtime "
                            f"runs the .onnx artifact `vigil export` writes: vigil export "
                            f"MODEL.keras -o MODEL.onnx")
    if data.startswith(b"version https://git-lfs.github.com/spec/"):
        raise ArtifactError(f"model file {str(path)!r} is a Git LFS pointer, not the model: the "
                            f"repository was cloned without its large files; fetch them (git lfs "
                            f"pull, in that repository) and load the file again")
    text = _text_start(data)
    if text is not None:
        raise ArtifactError(f"model file {str(path)!r} is a text file (it begins {text!r}), not "
                            f"an ONNX model: give the .onnx that `vigil export` wrote (a CSV or "
                            f"folder of data goes after the model: vigil score MODEL.onnx DATA)")
    scan = _check_self_contained(data, path)
    _check_metadata_entries(scan, path)
    # before onnxruntime or the schema reads it: a damaged file is named as damaged (a flipped
    # bit in an operator's name read as "needs a newer onnxruntime", in a field as its range)
    text = metadata_text(data, METADATA_KEY)
    written = _check_content(data, text, path) if text is not None else None
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        if not 1 <= threads <= MAX_THREADS:  # each is a thread with its own stack and buffers
            raise ValueError(f"`threads` must be in [1, {MAX_THREADS}]; received {threads}")
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    chosen = session_providers(providers)  # a bad device name is the caller's error, not the file's
    try:
        # onnxruntime prints its provider-fallback banner on stdout, where results go
        with contextlib.redirect_stdout(sys.stderr):
            session = ort.InferenceSession(data, sess_options=options, providers=chosen)
    except Exception as error:  # onnxruntime raises its own untyped errors for bad files
        raise ArtifactError(_load_failure(path, error)) from None
    try:
        try:
            entries = session.get_modelmeta().custom_metadata_map
        except UnicodeDecodeError as error:
            raise ArtifactError(f"its metadata is not valid UTF-8 text ({error})") from None
        spec = parse_metadata(entries)
    except ArtifactError as error:
        raise ArtifactError(f"model file {str(path)!r}: {error}") from None
    _check_graph(session, spec, path)
    running = session.get_providers()
    if chosen[0] not in running:  # onnxruntime could not start it (a missing CUDA library)
        log.warning("%s: onnxruntime could not start %s and runs the model on %s (its own "
                    "message above says why)", path.name, chosen[0], ", ".join(running))
    for warning in (saturation_warning(spec, path), _floored_spread_warning(spec, path),
                    _older_runtime_warning(spec, path)):
        if warning is not None:
            log.warning("%s", warning)
    # absolute: a service that changes its working folder still names (and pickles) this file
    return Artifact(path=path.absolute(), session=session, spec=spec, sha256=digest,
                    batch_independent=not scan.op_types & BATCH_DEPENDENT_OPS, metadata=written)


def _text_start(data: bytes) -> str | None:
    """The first line of ``data`` where its first bytes are plain text (an ONNX model's are
    binary protobuf), else None."""
    head = data[:256]
    for bom, encoding in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):  # a CSV saved as "Unicode text"
            head = head[2:].decode(encoding, errors="ignore").encode("utf-8")
            break
    try:  # not final: a character the cut falls inside is left out, not an error
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    if not text or any(c < " " and c not in "\t\r\n" for c in text):
        return None
    return text.splitlines()[0][:60] if text.strip() else None


def _zip_archive(path: Path) -> str:
    """What to do with a zip archive given as an artifact: a Keras model, the calibration data
    training writes beside one, or another archive (a Keras model renamed, say)."""
    head = f"model file {str(path)!r} is"
    if path.suffix == ".keras":
        return (f"{head} a Keras model, not a Vigil .onnx artifact; export it first: vigil export "
                f"{path} -o {path.with_suffix('.onnx')}")
    if path.name.endswith(SIDECAR_SUFFIX):
        model = path.with_name(path.name.removesuffix(SIDECAR_SUFFIX) + ".keras")
        return (f"{head} the calibration data `vigil train` writes beside a Keras model, not a "
                f"Vigil .onnx artifact; export the model it belongs to: vigil export {model} -o "
                f"{model.with_suffix('.onnx')}")
    return (f"{head} a zip archive (as Keras models are), not a Vigil .onnx artifact; if it is a "
            f"Keras model, give it the .keras suffix and export it: vigil export "
            f"{path.with_suffix('.keras')} -o {path.with_name(path.stem + '-exported.onnx')}")


# What differs between two exports of one .keras with the same options and versions: the file's
# own digest, and the parity check's timings and graph sizes (tf2onnx orders a graph's nodes
# differently from run to run)
EXPORT_VOLATILE_KEYS = (CONTENT_DIGEST_KEY, "parity")


def scoring_identity(metadata: Mapping | None) -> str | None:
    """A digest of an artifact's metadata without what varies from one export of the same
    .keras to the next: two files that share it were exported from one Keras model (its
    ``training.keras_sha256``) with the same options and versions, so they score alike (what a
    stream learned by one serves the other). None where the metadata names no Keras file
    (artifacts exported before it was recorded)."""
    if not metadata:
        return None
    training = metadata.get("training")
    if not isinstance(training, Mapping) or not training.get("keras_sha256"):
        return None
    kept = {k: v for k, v in metadata.items() if k not in EXPORT_VOLATILE_KEYS}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode("utf-8")).hexdigest()


def content_digest(model_bytes: bytes | memoryview, metadata: Mapping) -> str:
    """The sha256 that `vigil export` records in the metadata and the loader checks: over the
    model's fields other than its metadata (graph, weights, opsets) and the ``vigil`` entry's
    fields other than the digest itself, as canonical JSON. A bit flipped by a storage card or a
    transfer, or a field edited after export, changes it."""
    fields = {k: v for k, v in metadata.items() if k != CONTENT_DIGEST_KEY}
    digest = hashlib.sha256(b"vigil content v1\0")
    for record in records_without_metadata(model_bytes):  # hashed in place, not copied
        digest.update(record)
    digest.update(b"\0" + json.dumps(fields, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()


def _check_content(data: bytes, text: str, path: Path) -> dict | None:
    """The ``vigil`` entry ``text`` as written (None where it is no JSON object, which
    parse_metadata then names); ArtifactError where the file's content is not what `vigil
    export` recorded."""
    try:
        metadata = json.loads(text)
    except (ValueError, RecursionError):  # parse_metadata names what is wrong with it
        return None
    if not isinstance(metadata, dict):
        return None
    recorded = metadata.get(CONTENT_DIGEST_KEY)
    if recorded is None:
        return metadata  # written before the digest (0.3's first artifacts): nothing to compare
    if not isinstance(recorded, str) or not SHA256_PATTERN.fullmatch(recorded):
        raise ArtifactError(f"model file {str(path)!r}: its metadata's {CONTENT_DIGEST_KEY} must "
                            f"be 64 hexadecimal digits; received {str(recorded)[:80]!r}")
    try:
        computed = content_digest(data, metadata)
    except RecursionError:  # nested too deeply to write again: parse_metadata names it
        return None
    if computed != recorded.lower():
        raise ArtifactError(
            f"model file {str(path)!r} is not the file `vigil export` wrote: its content does "
            "not match the digest recorded in it, so it was damaged (a storage card or a "
            "transfer that changed some bytes) or edited after export, and its scores cannot be "
            "trusted. Copy it again from where it was exported (compare their sha256sum), or "
            "export it again: vigil export MODEL.keras -o MODEL.onnx")
    return metadata


def _load_failure(path: Path, error: Exception) -> str:
    """What onnxruntime's error on loading ``path`` means, without its source locations: a
    graph newer than this onnxruntime (an opset or operator it lacks) is not a corrupt file."""
    text = " ".join(str(error).split()) or type(error).__name__
    text = re.sub(r"Load model from .*? failed:\s*", "", text)
    text = re.sub(r"/\S+\.(?:h|cc|cpp):\d+ .*?\(.*?\)\s*(?=[A-Z])", "", text)
    opset = re.search(r"Opset (\d+)\b.*?till opset (\d+)", text)
    operator = re.search(r"No Op registered for (\S+)", text)
    needs = None  # what the graph needs that this onnxruntime lacks
    if opset:
        needs = f"ONNX opset {opset.group(1)}, where it supports up to {opset.group(2)}"
    elif operator:
        needs = f"operator {operator.group(1)}, which it does not have"
    if needs is not None:
        return (f"model file {str(path)!r} needs a newer onnxruntime: the installed "
                f"{ort.__version__} cannot run it ({needs}); upgrade onnxruntime (pip install -U "
                "onnxruntime) or export the model with the onnxruntime this device has")
    custom = re.search(r"(\S+:\S+)\(-?\d+\) is not a registered function/op", text)
    if custom and not custom.group(1).startswith(("com.microsoft:", "ai.onnx")):
        return (f"model file {str(path)!r} uses operator {custom.group(1)}, of a domain "
                f"onnxruntime does not know (a custom operator): `vigil export` writes none, so "
                f"the graph was edited or comes from elsewhere; export the model again")
    if "Type Error" in text or "Type (" in text and "does not match" in text:
        return (f"model file {str(path)!r} has a graph whose types do not fit together (edited "
                f"after export?): {text[:300]}")
    return (f"model file {str(path)!r} is not a loadable ONNX model (truncated or corrupt?): "
            f"{text[:300]}; copy it again from where it was exported (compare its sha256 with "
            f"the original's), or export it again: vigil export MODEL.keras -o MODEL.onnx")


def check_sha256_pin(expect_sha256: str | None) -> str | None:
    """The pin in lower case, or ValueError if it is not a sha256 hex digest."""
    if expect_sha256 is None:
        return None
    text = expect_sha256.strip() if isinstance(expect_sha256, str) else expect_sha256
    if not isinstance(text, str) or not SHA256_PATTERN.fullmatch(text):
        raise ValueError(f"`expect_sha256` must be 64 hexadecimal characters (a sha256 digest); "
                         f"received {expect_sha256!r}")
    return text.lower()


COMPRESSED_MAGIC = (("gzip", b"\x1f\x8b"), ("bzip2", b"BZh"), ("xz", b"\xfd7zXZ\x00"),
                    ("zstd", b"\x28\xb5\x2f\xfd"))
COMPRESSED_FIX = {"gzip": "gunzip -k", "bzip2": "bunzip2 -k", "xz": "unxz -k", "zstd": "unzstd"}


def _check_metadata_entries(scan: ModelScan, path: Path) -> None:
    """Refuse a ``vigil`` entry given twice (onnxruntime keeps the last, a reader of the file
    may see the first), or entries too large in all to be ours, before onnxruntime reads them."""
    ours = [size for key, size in scan.metadata if key == METADATA_KEY]
    if len(ours) > 1:
        raise ArtifactError(f"model file {str(path)!r} has {len(ours)} {METADATA_KEY!r} metadata "
                            f"entries; an artifact has one (the file was edited after export)")
    total = sum(size for _, size in scan.metadata)  # onnxruntime copies every entry
    if total > MAX_METADATA_BYTES:
        raise ArtifactError(f"model file {str(path)!r}: its metadata entries hold {total:,} "
                            f"bytes, over the {MAX_METADATA_BYTES:,} an artifact's can; it was "
                            f"not written by `vigil export`, or was edited")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object whose keys are unique: a repeated key (the last would win silently) is an
    ArtifactError naming it."""
    counts = Counter(key for key, _ in pairs)
    repeated = sorted(key for key, count in counts.items() if count > 1)
    if repeated:
        raise ArtifactError(f"the {METADATA_KEY!r} metadata entry names {repeated} more than once "
                            f"in one object; each field is given once")
    return dict(pairs)


def parse_metadata(entries: Mapping[str, str]) -> Spec:
    """The spec in a model's metadata map; ArtifactError if the entry is missing or malformed."""
    if METADATA_KEY not in entries:
        raise ArtifactError(
            f"has no {METADATA_KEY!r} metadata entry: it is an ONNX model but not a Vigil "
            "artifact (export it with `vigil export`)"
        )
    text = entries[METADATA_KEY]
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except ArtifactError:
        raise
    except (ValueError, RecursionError) as error:  # JSONDecodeError, or an int of 4300+ digits
        raise ArtifactError(
            f"the {METADATA_KEY!r} metadata entry is not valid JSON ({str(error)[:200]}): the "
            f"file was damaged or edited; copy it again from where it was exported, or export "
            f"it again: vigil export MODEL.keras -o MODEL.onnx"
        ) from None
    try:
        return spec_from_dict(data)
    except RecursionError:
        raise ArtifactError(f"the {METADATA_KEY!r} metadata entry is nested too deeply") from None


def _check_self_contained(data: bytes, path: Path) -> ModelScan:
    """Refuse tensors stored in other files (and files that are not protobuf at all)."""
    try:
        scan = scan_model(data)
        external = scan.external
    except ValueError as error:
        raise ArtifactError(f"model file {str(path)!r} is not a loadable ONNX model (truncated or "
                            f"corrupt?): {error}; copy it again from where it was exported "
                            f"(compare its sha256 with the original's), or export it again: "
                            f"vigil export MODEL.keras -o MODEL.onnx") from None
    if external:
        first = external[0]
        where = (f"{first.location!r}, outside the model's folder"
                 if _outside(first.location, path.parent) else repr(first.location))
        raise ArtifactError(
            f"model file {str(path)!r}: tensor {first.name!r} stores its data in another file "
            f"({where}){f' and {len(external) - 1} more' if len(external) > 1 else ''}; a Vigil "
            "artifact must be one self-contained file, so external data is refused"
        )
    return scan


def _outside(location: str, folder: Path) -> bool:
    try:
        return not (folder / location).resolve().is_relative_to(folder.resolve())
    except (OSError, ValueError, RuntimeError):
        return True


def _check_graph(session: ort.InferenceSession, spec: Spec, path: Path) -> None:
    inputs = {i.name: i for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    if spec.input_name not in inputs:
        raise ArtifactError(f"model file {str(path)!r}: metadata names input "
                            f"{_short(spec.input_name)}, the graph has {_short(sorted(inputs))}")
    # what the graph returns per item besides its score: a map (height, width) per frame, a
    # row of errors per window
    if isinstance(spec, ImageSpec):
        named = (spec.score_output, spec.map_output)
        expected = list(spec.input_shape)
        other_dims = list(spec.input_shape[:2])
    else:
        named = (spec.score_output, spec.feature_output)
        expected = [spec.window, len(spec.features)]
        other_dims = [len(spec.features)]
    for name in named:
        if name not in outputs:
            raise ArtifactError(f"model file {str(path)!r}: metadata names output "
                                f"{_short(name)}, the graph has {_short(sorted(outputs))}")
    shape = list(inputs[spec.input_name].shape)
    if len(shape) != len(expected) + 1 or [d if isinstance(d, int) else None
                                           for d in shape[1:]] != expected:
        raise ArtifactError(f"model file {str(path)!r}: graph input shape {shape} does not match "
                            f"the metadata's {expected}")
    # What the detectors feed and read, checked here rather than met as a wrong score or an
    # onnxruntime error at the first frame or window (a graph edited or made by hand).
    image = isinstance(spec, ImageSpec)
    fed = "tensor(uint8)" if image else "tensor(float)"
    given = inputs[spec.input_name]
    problem = None
    if given.type != fed:
        problem = (f"graph input {_short(spec.input_name)} takes {given.type}; "
                   f"{'an image' if image else 'a sensor'} artifact takes {fed}")
    elif isinstance(shape[0], int):
        problem = (f"graph input {_short(spec.input_name)} has a fixed batch of {shape[0]} (shape "
                   f"{shape}); a Vigil artifact takes any batch")
    else:
        by_name = {o.name: o for o in session.get_outputs()}
        per_item: dict[str, list[int]] = {spec.score_output: [], named[1]: other_dims}
        for name, dims in per_item.items():
            output = by_name[name]
            known = [d if isinstance(d, int) else None for d in output.shape]
            if output.type != "tensor(float)":
                problem = (f"graph output {_short(name)} is {output.type}; expected "
                           f"tensor(float)")
            elif output.shape and (len(known) != len(dims) + 1 or isinstance(known[0], int) or any(
                    k is not None and k != d for k, d in zip(known[1:], dims))):
                problem = (f"graph output {_short(name)} has shape {list(output.shape)}; expected "
                           f"[batch{''.join(f', {d}' for d in dims)}] (one "
                           f"{'value' if not dims else 'map' if image else 'row'} per "
                           f"{'frame' if image else 'window'})")
            if problem:
                break
    if problem is None:
        problem = _probe_problem(session, spec, named)
    if problem:
        raise ArtifactError(f"model file {str(path)!r}: {problem}: it was not written by `vigil "
                            f"export`, or was changed since (export the model again)")


PROBE_BATCH = 2


def _probe_problem(session: ort.InferenceSession, spec: Spec, named: Sequence[str]) -> str | None:
    """Run the graph once on a batch of two blank items: what is wrong with its answer (one
    score per item, one map or row of errors per item), or None. A graph's declared shapes may
    leave the batch symbolic, so only a run shows that it answers for each item."""
    # an item's shape, and the values the graph returns for it besides its score
    if isinstance(spec, ImageSpec):
        image = True
        item: tuple[int, ...] = spec.input_shape
        per_item = spec.input_shape[0] * spec.input_shape[1]
    else:
        image = False
        item = (spec.window, len(spec.features))
        per_item = len(spec.features)
    blank = np.zeros((PROBE_BATCH, *item), dtype=np.uint8 if image else np.float32)
    try:
        score, other = session.run(list(named), {spec.input_name: blank})
    except Exception as error:  # onnxruntime's own untyped errors
        return f"the graph fails on a batch of {PROBE_BATCH} blank items ({str(error)[:200]})"
    if np.size(score) != PROBE_BATCH or np.size(other) != PROBE_BATCH * per_item:
        return (f"for a batch of {PROBE_BATCH} it returned {np.size(score)} scores and "
                f"{np.size(other)} values of {named[1]!r}; expected {PROBE_BATCH} and "
                f"{PROBE_BATCH * per_item} (one score and one "
                f"{'map' if image else 'row of errors'} per {'frame' if image else 'window'})")
    return None


# training's default --relative-std-floor (1 % of |mean|) when artifacts did not yet record the
# training rows' spread (schema_version < 6): a fact about those old files, fixed, not a
# restatement of today's default, which new artifacts never need (they carry the spread)
LEGACY_STD_FLOOR = 0.01


def _older_runtime_warning(spec: Spec, path: str | Path) -> str | None:
    """A warning where this onnxruntime is an older release (major.minor) than the one export
    checked the graph's parity with: its kernels (INT8 rounding, fused operators) may score the
    graph differently, which nothing here has checked. Said once a process and file."""
    recorded = _release(spec.versions.get("onnxruntime"))
    installed = _release(ort.__version__)
    if recorded is None or installed is None or installed >= recorded:
        return None
    key = (str(path), ort.__version__)
    if key in _OLDER_RUNTIME_SAID:
        return None
    _OLDER_RUNTIME_SAID.add(key)
    wanted = spec.versions["onnxruntime"]
    return (f"model file {str(path)!r} was exported, and its parity checked, with onnxruntime "
            f"{wanted}; this one is {ort.__version__}, an older release whose kernels may score "
            f"the graph differently: check it here on labeled data (vigil eval "
            f"{shlex.quote(str(path))} DATA) or install the release it was checked with (pip "
            f"install {shlex.quote(f'{_runtime_distribution()}>={wanted}')})")


def _runtime_distribution() -> str:
    """The onnxruntime wheel installed here (the GPU build replaces the CPU one: naming the
    CPU one to a GPU device would install both, which breaks both)."""
    from importlib import metadata

    for name in ("onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino"):
        try:
            metadata.version(name)
            return name
        except metadata.PackageNotFoundError:
            continue
    return "onnxruntime"


_OLDER_RUNTIME_SAID: set[tuple[str, str]] = set()


def _release(version: object) -> tuple[int, int] | None:
    """``major.minor`` of a version text (``1.20.1``, ``1.19.0.dev2024``), or None."""
    match = re.match(r"(\d+)\.(\d+)", version) if isinstance(version, str) else None
    return (int(match.group(1)), int(match.group(2))) if match else None


def _floored_spread_warning(spec: Spec, path: str | Path) -> str | None:
    """A warning for running normalization written before artifacts recorded the training
    rows' spread, where a feature's std was floored: once warm it maps that feature's readings
    onto the floored std, scaling their deviations up."""
    if not isinstance(spec, SensorSpec):
        return None
    normalization = spec.running_normalization
    if normalization is None or normalization.spread is not None:
        return None
    floored = [name for name, mean, std in zip(spec.features, spec.mean, spec.std)
               if mean != 0 and abs(std - LEGACY_STD_FLOOR * abs(mean)) <= 1e-6 * std]
    if not floored:
        return None
    return (f"model file {str(path)!r} uses running normalization without the training rows' "
            f"spread (written before vigil recorded it), and the std of {floored} was floored "
            f"at 1 % of the mean: once warm, their deviations are scaled up (a mains voltage's "
            f"about 2x) and false alarms follow. Retrain it with --running-normalization and "
            f"export it again")
