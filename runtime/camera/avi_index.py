"""Where each frame of an MJPG AVI file lies, from the file's own index (``idx1``).

OpenCV reads an AVI front to back; after a damaged region its demuxer resynchronizes on the next
intact chunk and numbers the frames it finds from there on consecutively, so every later frame
number is early by the frames it skipped. An AVI written by OpenCV (and most cameras) ends in an
``idx1`` chunk that gives the offset and size of every frame, outside the damaged region. For
MJPG, where each frame is a whole JPEG image, the frames can then be decoded one by one at their
true positions: a damaged frame fails alone and every other frame keeps its number.

A recording cut short (power lost, a copy interrupted) has no ``idx1``: its frames are then found
by walking the ``movi`` list's chunks, and a last frame whose chunk runs past the end of the file
is known to be cut off, which a JPEG decoder would otherwise fill in and return as a whole frame.
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
    listed: bool = True  # from the file's idx1; False: found by walking the 'movi' list

    def __len__(self) -> int:
        return len(self.offsets)


def mjpg_frames(path: str | Path) -> AviFrames | None:
    """The frame index of an MJPG AVI file, or None when it is not one or has no usable index
    (then OpenCV reads the file front to back): an OpenDML file past 1 GB ('AVIX' parts, whose
    frames idx1 does not list), or an idx1 whose first entry is not where it points."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"AVI ":
                return None
            size = path.stat().st_size
            movi, index, codec, extended = _chunks(handle, size)
            if movi is None or codec not in (b"MJPG", b"mjpg") or extended:
                return None
            if index is None:  # cut short before its index was written
                return _walk_movi(handle, path, movi, size)
            handle.seek(index[0])
            entries = handle.read(index[1])
            chunks, offsets, sizes = [], [], []
            for start in range(0, len(entries) - 15, 16):
                chunk, _, offset, length = struct.unpack("<4sIII", entries[start:start + 16])
                if chunk[:2] == b"00" and chunk[2:] in (b"dc", b"db"):
                    chunks.append(chunk)
                    offsets.append(offset)
                    sizes.append(length)
                    if len(offsets) > MAX_FRAMES:
                        return None
            if not offsets:
                return None
            # idx1 offsets count from the 'movi' fourcc (usual) or from the start of the file:
            # the one where the first entry's chunk id lies is the one the file uses.
            base = _offset_base(handle, chunks[0], offsets[0], (movi, 0))
    except OSError:
        return None
    if base is None:
        return None
    absolute = tuple(base + o + 8 for o in offsets)
    if any(a + s > size for a, s in zip(absolute, sizes)):
        return None
    return AviFrames(path, absolute, tuple(sizes))


def _walk_movi(handle, path: Path, movi: int, size: int) -> AviFrames | None:
    """The frames of the 'movi' list (its fourcc at ``movi``), chunk by chunk to the end of the
    file, for a file without idx1; None when it holds no video frame."""
    offsets, sizes = [], []
    position = movi + 4
    while position + 8 <= size:
        handle.seek(position)
        kind, length = struct.unpack("<4sI", handle.read(8))
        if kind == b"LIST":  # a 'rec ' group of chunks: its chunks follow its form
            position += 12
            continue
        if not _stream_chunk(kind):  # damaged data: OpenCV's demuxer resynchronizes past it
            return None
        if kind[:2] == b"00" and kind[2:] in (b"dc", b"db"):
            offsets.append(position + 8)
            sizes.append(length)
            if len(offsets) > MAX_FRAMES:
                return None
        if position + 8 + length >= size:
            break
        position += 8 + length + (length & 1)
    if not offsets:
        return None
    return AviFrames(path, tuple(offsets), tuple(sizes), listed=False)


def _stream_chunk(kind: bytes) -> bool:
    """Whether ``kind`` is a chunk id a 'movi' list holds: a stream's data ('00dc', '01wb', ...),
    its index ('ix00'), or padding ('JUNK')."""
    return (kind == b"JUNK" or (kind[:2] == b"ix" and kind[2:].isdigit())
            or (kind[:2].isdigit() and kind[2:] in (b"dc", b"db", b"wb", b"pc", b"tx")))


def _offset_base(handle, chunk: bytes, offset: int, bases: tuple[int, ...]) -> int | None:
    """The first of ``bases`` from which ``offset`` lands on ``chunk``'s id, or None."""
    for base in bases:
        handle.seek(base + offset)
        if handle.read(4) == chunk:
            return base
    return None


def _chunks(handle, size: int) -> tuple[int | None, tuple[int, int] | None, bytes | None, bool]:
    """(position of the 'movi' fourcc, (data position, length) of idx1, the video codec, whether
    the file goes on in OpenDML 'AVIX' parts)."""
    movi = index = codec = None
    extended = False
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
        elif kind == b"RIFF":
            extended = True
        position += 8 + length + (length & 1)
    return movi, index, codec, extended


def _codec(header: bytes) -> bytes | None:
    """The handler fourcc of the first video stream header ('strh' with type 'vids')."""
    found = header.find(b"strh")
    while found >= 0:
        if header[found + 8:found + 12] == b"vids":
            return header[found + 12:found + 16]
        found = header.find(b"strh", found + 4)
    return None
