"""Read a legacy PyTorch state dict (the pre-1.6, non-zip ``torch.save`` format) into NumPy.

No PyTorch is needed and no pickle code is run: the unpickler resolves only the three names a
state dict of plain tensors holds (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``
and the ``torch.*Storage`` types) to inert readers of our own, and refuses every other global.
"""

from __future__ import annotations

import collections
import pickle
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


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(np.dtype(STORAGE_DTYPES[name]))
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: a weights file may hold "
                                     f"only tensors in ordered dicts")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}; expected a tensor "
                                         f"storage")
        _, storage_type, key, _location, elements, view = pid
        if view is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        return _StorageRef(str(key), storage_type.dtype, int(elements))


def read_legacy_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """{parameter name: array} from a legacy ``torch.save`` file of a state dict."""
    path = Path(path)
    with path.open("rb") as f:
        def load():
            return _RestrictedUnpickler(f).load()

        magic = load()
        if magic != LEGACY_MAGIC:
            raise ValueError(f"{path} is not a legacy PyTorch file (magic {magic!r})")
        protocol = load()
        if protocol != LEGACY_PROTOCOL:
            raise ValueError(f"{path}: legacy protocol {protocol!r}, expected {LEGACY_PROTOCOL}")
        load()  # system info (endianness, type sizes)
        state = load()
        keys = [str(k) for k in load()]
        if not isinstance(state, dict):
            raise ValueError(f"{path} holds a {type(state).__name__}, expected a state dict")
        tensors = {name: v for name, v in state.items() if isinstance(v, _TensorRef)}
        refs = {t.storage.key: t.storage for t in tensors.values()}
        storages = {}
        for key in keys:
            ref = refs[key]
            (count,) = struct.unpack("<q", f.read(8))
            data = f.read(count * ref.dtype.itemsize)
            if count != ref.elements or len(data) != count * ref.dtype.itemsize:
                raise ValueError(f"{path}: storage {key} is truncated or inconsistent")
            storages[key] = np.frombuffer(data, dtype=ref.dtype)
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
