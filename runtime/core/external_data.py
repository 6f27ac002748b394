"""Finding ONNX tensors whose data lives in other files, without importing onnx.

An ONNX tensor may keep its bytes outside the model (``data_location = EXTERNAL`` with a
``location`` path). onnxruntime follows such references when it builds a session, so a model file
could make the host read any file its path names (``../../etc/shadow``, a device that never ends).
A Vigil artifact is one self-contained file, so the runtime refuses every external reference
before onnxruntime sees the model.

The check reads the protobuf wire format directly: it walks only the messages that can hold
tensors (the graph's initializers, node attributes, nested graphs of control-flow nodes, model
functions and training graphs) and skips every other field by its length, so it costs little
more than a pass over the tags. Anything that is not well-formed protobuf raises ``ValueError``.

The same walk collects the operator types of every node (subgraphs and functions included), so
the runtime can tell, without onnx, whether a graph quantizes its activations per call
(``DynamicQuantizeLinear``), which makes a window's score depend on the batch it is scored in,
and the model's metadata keys with their sizes, so that a duplicated or oversized entry is
refused before onnxruntime reads the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

MAX_DEPTH = 64  # nested graphs (If/Loop/Scan bodies) deeper than this are refused

# Message kinds and, for each, the fields that hold messages worth walking: number -> kind.
MODEL, GRAPH, NODE, ATTRIBUTE, TENSOR, SPARSE, FUNCTION, TRAINING = range(8)
CHILDREN = {
    MODEL: {7: GRAPH, 20: TRAINING, 25: FUNCTION},
    GRAPH: {1: NODE, 5: TENSOR, 15: SPARSE},
    NODE: {5: ATTRIBUTE},
    ATTRIBUTE: {5: TENSOR, 6: GRAPH, 10: TENSOR, 11: GRAPH, 22: SPARSE, 23: SPARSE},
    SPARSE: {1: TENSOR, 2: TENSOR},
    FUNCTION: {7: NODE, 11: ATTRIBUTE},
    TRAINING: {1: GRAPH, 2: GRAPH},
    TENSOR: {},
}
TENSOR_NAME, TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION = 8, 13, 14
NODE_OP_TYPE = 4
MODEL_METADATA = 14  # ModelProto.metadata_props
ENTRY_KEY, ENTRY_VALUE = 1, 2
EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


@dataclass(frozen=True)
class ExternalTensor:
    """A tensor stored outside the model: its name and the ``location`` it names (may be empty)."""

    name: str
    location: str


@dataclass(frozen=True)
class ModelScan:
    """What one pass over a serialized ModelProto found."""

    external: tuple[ExternalTensor, ...]
    op_types: frozenset[str]
    metadata: tuple[tuple[str, int], ...] = ()  # (key, bytes of its value) of each entry


def scan_model(data: bytes | memoryview) -> ModelScan:
    """External tensors and operator types of a serialized ModelProto (ValueError if malformed)."""
    found: list[ExternalTensor] = []
    op_types: set[str] = set()
    metadata: list[tuple[str, int]] = []
    view = memoryview(data)
    _walk(view, MODEL, 0, found, op_types)
    for number, wire, value in _fields(view):
        if number == MODEL_METADATA and wire == 2:
            metadata.append(_entry_size(value))
    return ModelScan(tuple(found), frozenset(op_types), tuple(metadata))


def records_without_metadata(data: bytes | memoryview) -> Iterator[memoryview]:
    """A serialized ModelProto's top-level fields, each whole (tag, length and value) and in
    file order, without its metadata entries: the bytes the artifact's content digest covers
    (ValueError if malformed)."""
    view = memoryview(data)
    for number, _, _, start, end in _records(view):
        if number != MODEL_METADATA:
            yield view[start:end]


def metadata_text(data: bytes | memoryview, key: str) -> str | None:
    """The value of a serialized ModelProto's metadata entry ``key`` as text (its first, where
    repeated; undecodable bytes replaced), or None where it has none (ValueError if malformed)."""
    for number, wire, value in _fields(memoryview(data)):
        if number == MODEL_METADATA and wire == 2:
            found, text = _entry_parts(value)
            if found == key:
                return bytes(text).decode("utf-8", errors="replace")
    return None


def external_tensors(data: bytes | memoryview) -> list[ExternalTensor]:
    """Every tensor in a serialized ModelProto that stores its data outside the file."""
    return list(scan_model(data).external)


def _walk(data: memoryview, kind: int, depth: int, found: list[ExternalTensor],
          op_types: set[str]) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"graphs are nested more than {MAX_DEPTH} levels deep")
    children = CHILDREN[kind]
    name, location, external = "", "", False
    for number, wire, value in _fields(data):
        if kind == TENSOR:
            if number == TENSOR_NAME and wire == 2:
                name = _text(value)
            elif number == TENSOR_DATA_LOCATION and wire == 0:
                external = external or value == EXTERNAL
            elif number == TENSOR_EXTERNAL_DATA and wire == 2:
                external = True
                key, text = _entry(value)
                if key == "location":
                    location = text
        elif kind == NODE and number == NODE_OP_TYPE and wire == 2:
            op_types.add(_text(value))
        elif number in children and wire == 2:
            _walk(value, children[number], depth + 1, found, op_types)
    if external:
        found.append(ExternalTensor(name, location))


def _entry_parts(data: memoryview) -> tuple[str, memoryview]:
    """(key, the value's bytes) of a StringStringEntryProto."""
    key, text = "", memoryview(b"")
    for number, wire, value in _fields(data):
        if wire == 2 and number == ENTRY_KEY:
            key = _text(value)
        elif wire == 2 and number == ENTRY_VALUE:
            text = value
    return key, text


def _entry(data: memoryview) -> tuple[str, str]:
    key, value = _entry_parts(data)
    return key, _text(value)


def _entry_size(data: memoryview) -> tuple[str, int]:
    """(key, bytes of the value) of a StringStringEntryProto."""
    key, value = _entry_parts(data)
    return key, len(value)


def _text(value: memoryview) -> str:
    return bytes(value[:4096]).decode("utf-8", errors="replace")


def _fields(data: memoryview):
    """(field number, wire type, value) of each field but the fixed-size ones: an int for
    varints, else a memoryview."""
    for number, wire, value, _, _ in _records(data):
        if value is not None:
            yield number, wire, value


def _records(data: memoryview):
    """(field number, wire type, value, start, end) of each field, the whole record between
    ``start`` and ``end``: the value an int for varints, a memoryview for lengths, None for the
    fixed-size ones (ValueError if malformed)."""
    position, end = 0, len(data)
    while position < end:
        start = position
        tag, position = _varint(data, position)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise ValueError(f"field number 0 at byte {position}")
        if wire == 0:
            value, position = _varint(data, position)
            yield number, wire, value, start, position
        elif wire == 2:
            length, position = _varint(data, position)
            if length > end - position:
                raise ValueError(f"a field of {length} bytes runs past the end of its message "
                                 f"({end - position} bytes left)")
            yield number, wire, data[position:position + length], start, position + length
            position += length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if size > end - position:
                raise ValueError("a fixed-size field runs past the end of its message")
            position += size
            yield number, wire, None, start, position
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} (field {number})")


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    result = shift = 0
    end = len(data)
    while True:
        if position >= end:
            raise ValueError("a varint runs past the end of its message")
        if shift > 63:
            raise ValueError("a varint is longer than 10 bytes")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
