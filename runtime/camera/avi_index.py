"""Where each frame of an MJPG AVI file lies, from the file's own index (``idx1``).

OpenCV reads an AVI front to back; after a damaged region its demuxer resynchronizes on the next
intact chunk and numbers the frames it finds from there on consecutively, so every later frame
number is early by the frames it skipped. An AVI written by OpenCV (and most cameras) ends in an
``idx1`` chunk that gives the offset and size of every frame, outside the damaged region. For
MJPG, where each frame is a whole JPEG image, the frames can then be decoded one by one at their
true positions: a damaged frame fails alone and every other frame keeps its number.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

MAX_FRAMES = 10_000_000


@dataclass(frozen=True)
class AviFrames:
    """Byte ranges of the video frames of stream ``00``, in order."""

    path: Path
    offsets: tuple[int, ...]
    sizes: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.offsets)


def mjpg_frames(path: str | Path) -> AviFrames | None:
    """The frame index of an MJPG AVI file, or None when it is not one or has no usable index."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"AVI ":
                return None
            size = path.stat().st_size
            movi, index, codec = _chunks(handle, size)
            if movi is None or index is None or codec not in (b"MJPG", b"mjpg"):
                return None
            handle.seek(index[0])
            entries = handle.read(index[1])
    except OSError:
        return None
    offsets, sizes = [], []
    for start in range(0, len(entries) - 15, 16):
        chunk, _, offset, length = struct.unpack("<4sIII", entries[start:start + 16])
        if chunk[:2] == b"00" and chunk[2:] in (b"dc", b"db"):
            offsets.append(offset)
            sizes.append(length)
            if len(offsets) > MAX_FRAMES:
                return None
    if not offsets:
        return None
    # idx1 offsets count from the 'movi' fourcc (usual) or from the start of the file.
    base = movi if offsets[0] + movi + 8 <= size else 0
    absolute = tuple(base + o + 8 for o in offsets)
    if any(a + s > size for a, s in zip(absolute, sizes)):
        return None
    return AviFrames(path, absolute, tuple(sizes))


def _chunks(handle, size: int) -> tuple[int | None, tuple[int, int] | None, bytes | None]:
    """(position of the 'movi' fourcc, (data position, length) of idx1, the video codec)."""
    movi = index = codec = None
    position = 12
    while position + 8 <= size:
        handle.seek(position)
        kind, length = struct.unpack("<4sI", handle.read(8))
        if kind == b"LIST":
            form = handle.read(4)
            if form == b"movi":
                movi = position + 8
            elif form == b"hdrl":
                codec = _codec(handle.read(min(length - 4, 1 << 16)))
        elif kind == b"idx1":
            index = (position + 8, length)
        position += 8 + length + (length & 1)
    return movi, index, codec


def _codec(header: bytes) -> bytes | None:
    """The handler fourcc of the first video stream header ('strh' with type 'vids')."""
    found = header.find(b"strh")
    while found >= 0:
        if header[found + 8:found + 12] == b"vids":
            return header[found + 12:found + 16]
        found = header.find(b"strh", found + 4)
    return None
