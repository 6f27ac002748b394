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

Past 1 GB a writer (FFmpeg's, which OpenCV uses) goes on in OpenDML ``AVIX`` parts, each with a
``movi`` list of its own; ``idx1`` lists the first part's frames alone, and each part's frames are
listed by an ``ix00`` chunk that the stream's ``indx`` (in its header) points to. Those are read
part by part, and a part whose ``ix00`` is missing (the recording cut short in it) is walked.
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
    (then OpenCV reads the file front to back): an idx1 whose first entry is not where it
    points, an OpenDML index that does not match its part, damaged data where chunks are
    walked."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"AVI ":
                return None
            size = path.stat().st_size
            layout = _chunks(handle, size)
            if layout is None:
                return None
            movi, index, codec, parts, master = layout
            if movi is None or codec not in (b"MJPG", b"mjpg"):
                return None
            offsets: list[int] = []
            sizes: list[int] = []
            listed = True
            for number, part in enumerate([movi, *parts]):
                end = _list_end(handle, part, size)
                standard = [p for p in master if part < p < end]
                if standard:  # an OpenDML part's own index
                    found = _standard_index(handle, standard, end)
                elif number == 0 and index is not None:
                    found = _legacy_index(handle, index, movi, size)
                elif number == len(parts):  # the last part, cut short before its index
                    found, listed = _walk_movi(handle, part, end), False
                else:
                    return None
                if found is None:
                    return None
                offsets += found[0]
                sizes += found[1]
                if len(offsets) > MAX_FRAMES:
                    return None
    except OSError:
        return None
    if not offsets:
        return None
    return AviFrames(path, tuple(offsets), tuple(sizes), listed)


Found = tuple[list[int], list[int]]  # data positions and sizes of frames


def _list_end(handle, fourcc: int, size: int) -> int:
    """Where the list whose fourcc lies at ``fourcc`` ends, or the file's end where it runs
    past it or its size was never written (a recording cut short)."""
    handle.seek(fourcc - 4)
    length = struct.unpack("<I", handle.read(4))[0]
    return min(size, fourcc + length) if length >= 4 else size


def _legacy_index(handle, index: tuple[int, int], movi: int, size: int) -> Found | None:
    """The frames idx1 (its data position and length) lists, checked to lie in the file."""
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
    if base is None:
        return None
    absolute = [base + o + 8 for o in offsets]
    if any(a + n > size for a, n in zip(absolute, sizes)):
        return None
    return absolute, sizes


def _standard_index(handle, positions: list[int], end: int) -> Found | None:
    """The video frames that OpenDML standard index chunks ('ix00' at ``positions``) list,
    checked to lie before ``end``; None where one is not such a chunk, or its first entry is
    not a frame chunk's data."""
    offsets: list[int] = []
    sizes: list[int] = []
    for position in positions:
        handle.seek(position)
        header = handle.read(32)
        if len(header) < 32:
            return None
        kind, length, per_entry, _, index_type, count, chunk, base = struct.unpack_from(
            "<4sIHBBI4sQ", header)
        if (kind[:2] != b"ix" or per_entry != 2 or index_type != 1 or chunk[:2] != b"00"
                or chunk[2:] not in (b"dc", b"db") or 24 + 8 * count > length
                or count > MAX_FRAMES):
            return None
        entries = handle.read(8 * count)
        if len(entries) < 8 * count:
            return None
        first = len(offsets)
        for start in range(0, len(entries), 8):
            offset, length = struct.unpack("<II", entries[start:start + 8])
            offsets.append(base + offset)  # the frame's data, after its chunk header
            sizes.append(length & 0x7FFFFFFF)  # the top bit marks a frame that is no key frame
        if len(offsets) > first:
            handle.seek(offsets[first] - 8)
            if handle.read(4) != chunk:
                return None
    if any(o + n > end for o, n in zip(offsets, sizes)):
        return None
    return offsets, sizes


def _master_index(header: bytes) -> list[int]:
    """Positions of the standard index chunks that the video stream's OpenDML master index
    (an 'indx' chunk of index type 0, index of indexes, in ``header``, the 'hdrl' list's bytes)
    lists; empty where there is none."""
    found = header.find(b"indx")
    while 0 <= found <= len(header) - 32:
        per_entry, _, index_type, count, chunk = struct.unpack_from("<HBBI4s", header, found + 8)
        if per_entry == 4 and index_type == 0 and chunk[:2] == b"00":
            table = found + 32
            return [struct.unpack_from("<Q", header, table + 16 * i)[0]
                    for i in range(count) if table + 16 * (i + 1) <= len(header)]
        found = header.find(b"indx", found + 4)
    return []


def _walk_movi(handle, movi: int, end: int) -> Found | None:
    """The frames of a 'movi' list (its fourcc at ``movi``, ending at ``end``), chunk by chunk,
    for a part without an index; None when it holds no video frame or damaged data."""
    offsets, sizes = [], []
    position = movi + 4
    while position + 8 <= end:
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
        if position + 8 + length >= end:
            break
        position += 8 + length + (length & 1)
    return (offsets, sizes) if offsets else None


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


def _chunks(handle, size: int) -> tuple[int | None, tuple[int, int] | None, bytes | None,
                                         list[int], list[int]] | None:
    """(position of the 'movi' fourcc, (data position, length) of idx1, the video codec, the
    'movi' fourcc positions of the OpenDML 'AVIX' parts the file goes on in, the standard index
    positions its master index lists); None where a part is not an 'AVIX' part with its 'movi'
    list first."""
    movi = index = codec = None
    parts: list[int] = []
    master: list[int] = []
    position = 12
    while position + 8 <= size:
        handle.seek(position)
        kind, length = struct.unpack("<4sI", handle.read(8))
        if kind == b"LIST":
            form = handle.read(4)
            if form == b"movi":
                movi = position + 8
            elif form == b"hdrl":
                header = handle.read(min(length - 4, 1 << 16))
                codec = _codec(header)
                master = _master_index(header)
        elif kind == b"idx1":
            index = (position + 8, length)
        elif kind == b"RIFF":
            form, inner, _, first = struct.unpack("<4s4sI4s", handle.read(16).ljust(16, b"\0"))
            if (form, inner, first) != (b"AVIX", b"LIST", b"movi"):
                return None
            parts.append(position + 20)
        position += 8 + length + (length & 1)
    return movi, index, codec, parts, master


def _codec(header: bytes) -> bytes | None:
    """The handler fourcc of the first video stream header ('strh' with type 'vids')."""
    found = header.find(b"strh")
    while found >= 0:
        if header[found + 8:found + 12] == b"vids":
            return header[found + 12:found + 16]
        found = header.find(b"strh", found + 4)
    return None
