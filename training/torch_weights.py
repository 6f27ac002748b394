"""Read a legacy PyTorch state dict (the pre-1.6, non-zip ``torch.save`` format) into NumPy.

No PyTorch and no pickle module: a small interpreter of the few opcodes a state dict uses reads
the records, resolves only the three names a state dict of plain tensors holds
(``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and the ``torch.*Storage``
types) to inert readers of our own, and refuses every other global and opcode.
"""

from __future__ import annotations

import collections
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


@dataclass(frozen=True)
class _StorageType:
    dtype: np.dtype


@dataclass(frozen=True)
class _StorageRef:
    key: str
    dtype: np.dtype
    elements: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, offset, shape, stride, *_unused) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(shape), tuple(stride))


class WeightsFormatError(ValueError):
    """The file is not a plain legacy state dict, or asks for something it may not have."""


def _resolve(module: str, name: str):
    if (module, name) == ("collections", "OrderedDict"):
        return collections.OrderedDict
    if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
        return _rebuild_tensor
    if module == "torch" and name in STORAGE_DTYPES:
        return _StorageType(np.dtype(STORAGE_DTYPES[name]))
    raise WeightsFormatError(f"refused to load {module}.{name}: a weights file may hold only "
                             f"tensors in ordered dicts")


def _storage_ref(pid) -> _StorageRef:
    if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)):
        raise WeightsFormatError(f"unexpected persistent id {pid!r}; expected a tensor storage")
    _, storage_type, key, _location, elements, view = pid
    if view is not None:
        raise WeightsFormatError("storage views are not supported")
    return _StorageRef(str(key), storage_type.dtype, int(elements))


_MARK = object()


def _read_record(f) -> object:
    """One pickled record, read by a small interpreter of the opcodes a state dict uses (protocol
    2). It is not Python's pickle: globals resolve only through ``_resolve``, and nothing but our
    own inert constructors is ever called."""
    stack: list = []
    memo: dict = {}

    def take(n: int) -> bytes:
        data = f.read(n)
        if len(data) != n:
            raise WeightsFormatError("the file ends inside a record")
        return data

    def pop_mark() -> list:
        for i in range(len(stack) - 1, -1, -1):
            if stack[i] is _MARK:
                items = stack[i + 1:]
                del stack[i:]
                return items
        raise WeightsFormatError("unbalanced mark")

    while True:
        op = take(1)
        if op == b"\x80":
            take(1)                                              # PROTO
        elif op == b".":
            return stack.pop()                                   # STOP
        elif op == b"\x8a":
            stack.append(int.from_bytes(take(take(1)[0]), "little", signed=True))  # LONG1
        elif op == b"J":
            stack.append(struct.unpack("<i", take(4))[0])        # BININT
        elif op == b"K":
            stack.append(take(1)[0])                             # BININT1
        elif op == b"M":
            stack.append(struct.unpack("<H", take(2))[0])        # BININT2
        elif op == b"G":
            stack.append(struct.unpack(">d", take(8))[0])        # BINFLOAT
        elif op == b"X":
            stack.append(take(struct.unpack("<I", take(4))[0]).decode("utf-8"))  # BINUNICODE
        elif op == b"\x8c":
            stack.append(take(take(1)[0]).decode("utf-8"))       # SHORT_BINUNICODE
        elif op == b"T":
            stack.append(take(struct.unpack("<i", take(4))[0]).decode("latin-1"))  # BINSTRING
        elif op == b"U":
            stack.append(take(take(1)[0]).decode("latin-1"))     # SHORT_BINSTRING
        elif op == b"N":
            stack.append(None)
        elif op in (b"\x88", b"\x89"):
            stack.append(op == b"\x88")                          # NEWTRUE, NEWFALSE
        elif op == b"}":
            stack.append({})
        elif op == b"]":
            stack.append([])
        elif op == b")":
            stack.append(())
        elif op == b"(":
            stack.append(_MARK)
        elif op == b"t":
            stack.append(tuple(pop_mark()))
        elif op in (b"\x85", b"\x86", b"\x87"):
            n = op[0] - 0x84
            items = stack[-n:]
            del stack[-n:]
            stack.append(tuple(items))
        elif op == b"s":
            value, key = stack.pop(), stack.pop()
            stack[-1][key] = value
        elif op == b"u":
            items = pop_mark()
            for key, value in zip(items[::2], items[1::2]):
                stack[-1][key] = value
        elif op == b"a":
            value = stack.pop()
            stack[-1].append(value)
        elif op == b"e":
            items = pop_mark()
            stack[-1].extend(items)
        elif op == b"q":
            memo[take(1)[0]] = stack[-1]                         # BINPUT
        elif op == b"r":
            memo[struct.unpack("<I", take(4))[0]] = stack[-1]    # LONG_BINPUT
        elif op == b"h":
            stack.append(memo[take(1)[0]])                       # BINGET
        elif op == b"j":
            stack.append(memo[struct.unpack("<I", take(4))[0]])  # LONG_BINGET
        elif op == b"c":
            module = f.readline().decode("ascii").rstrip("\n")
            name = f.readline().decode("ascii").rstrip("\n")
            stack.append(_resolve(module, name))                 # GLOBAL
        elif op == b"R":
            args, target = stack.pop(), stack.pop()
            if target is collections.OrderedDict and args == ():
                stack.append(collections.OrderedDict())
            elif target is _rebuild_tensor:
                stack.append(_rebuild_tensor(*args))
            else:
                raise WeightsFormatError(f"refused to call {target!r}")
        elif op == b"b":
            stack.pop()                  # BUILD: an ordered dict's attributes (_metadata)
        elif op == b"Q":
            stack.append(_storage_ref(stack.pop()))              # BINPERSID
        else:
            raise WeightsFormatError(f"unsupported pickle opcode {op!r}")


def read_legacy_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """{parameter name: array} from a legacy ``torch.save`` file of a state dict."""
    path = Path(path)
    with path.open("rb") as f:
        magic = _read_record(f)
        if magic != LEGACY_MAGIC:
            raise ValueError(f"{path} is not a legacy PyTorch file (magic {magic!r})")
        protocol = _read_record(f)
        if protocol != LEGACY_PROTOCOL:
            raise ValueError(f"{path}: legacy protocol {protocol!r}, expected {LEGACY_PROTOCOL}")
        _read_record(f)  # system info (endianness, type sizes)
        state = _read_record(f)
        if not isinstance(state, dict):
            raise ValueError(f"{path} holds a {type(state).__name__}, expected a state dict")
        key_record = _read_record(f)
        if not isinstance(key_record, list):
            raise ValueError(f"{path}: its storage keys are of type "
                             f"{type(key_record).__name__!r}, expected a list")
        keys = [str(k) for k in key_record]
        tensors = {name: v for name, v in state.items() if isinstance(v, _TensorRef)}
        refs = {t.storage.key: t.storage for t in tensors.values()}
        storages = {}
        for key in keys:
            ref = refs.get(key)
            if ref is None:
                raise ValueError(f"{path}: storage {key} belongs to no tensor (the tensors' "
                                 f"storages: {sorted(refs)})")
            header = f.read(8)
            count = struct.unpack("<q", header)[0] if len(header) == 8 else -1
            data = f.read(count * ref.dtype.itemsize) if count >= 0 else b""
            if count != ref.elements or len(data) != count * ref.dtype.itemsize:
                raise ValueError(f"{path}: storage {key} is truncated or inconsistent")
            storages[key] = np.frombuffer(data, dtype=ref.dtype)
    missing = sorted(set(refs) - set(storages))
    if missing:
        raise ValueError(f"{path}: the tensors' storages {missing} are not in the file")
    arrays = {}
    for name, t in tensors.items():
        flat = storages[t.storage.key]
        item = flat.itemsize
        last = t.offset + sum((n - 1) * s for n, s in zip(t.shape, t.stride) if n > 0)
        if t.offset < 0 or min(t.stride, default=0) < 0 or (all(t.shape) and last >= len(flat)):
            raise ValueError(f"{path}: tensor {name} reaches outside its storage")
        arrays[name] = np.lib.stride_tricks.as_strided(
            flat[t.offset:], t.shape, [s * item for s in t.stride]).copy()
    return arrays
