"""What OpenCV's JPEG decoder does not say, read from a JPEG's own bytes: damage, orientation
and the quality it was encoded at.

libjpeg, behind ``cv2.imdecode``, only warns on stderr ("Corrupt JPEG data: premature end of data
segment") when a JPEG is cut off or its compressed data is damaged, and returns a whole image
with the rest filled in: gray, or in FFmpeg's decoder the previous frame's pixels. A defect in the
lost part then passes unseen, and the damage itself scores as a defect. ``damage`` walks the
marker structure instead: a JPEG is whole when every segment fits, its compressed data holds only
stuffed bytes and restart markers in order, and an end-of-image marker closes it; with JPEG's
example Huffman tables (cameras' MJPEG), a run of zero bytes in it is a stretch lost in transfer.
Damage that keeps that structure (a changed byte with no 0xFF near it) still decodes to wrong
pixels.

OpenCV also ignores the EXIF orientation when it decodes with ``IMREAD_UNCHANGED`` (and applies it
otherwise): ``orientation`` reads it (a JPEG's, and a PNG's eXIf or a WebP's EXIF chunk, which
the same decoding ignores), ``upright`` applies it as ``cv2.imread`` does.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import cv2
import numpy as np

from .image_header import PNG_SIGNATURE, png_chunks

SOI, EOI, SOS = 0xD8, 0xD9, 0xDA
RESTARTS = range(0xD0, 0xD8)
# Markers with no length field that may not stand between segments: a restart outside compressed
# data, TEM, or the 0x00 of a stuffed byte.
STRAY = frozenset(RESTARTS) | {0x00, 0x01}
# Frame headers (SOF0-SOF15 without DHT, JPG and DAC): a second one is a damaged file.
FRAME_HEADERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
ORIENTATION_TAG = 0x0112
DHT = 0xC4
BASELINE_HUFFMAN = frozenset({0xC0, 0xC1})  # sequential Huffman frames (others: progressive, ...)
# The code-length counts (lengths 1 to 16) of JPEG's example Huffman tables (ITU T.81, Annex K.3),
# which cameras' MJPEG frames use (most leave them out, as MJPEG allows) and encoders write by
# default. With them, image data never holds ZERO_RUN zero bytes in a row: every luminance block
# of a natural image ends in a code with a 1 bit (measured: at most 4 in a row over the 1,344
# magnetic-tile JPEGs, 3 over ELPV's 900 cells encoded at quality 75 and 95, none flagged;
# docs/quality.md, "Zero runs in JPEG data"); a run of zeros is a stretch of the frame lost in
# transfer (USB packet loss, a DMA buffer never filled), which libjpeg decodes into a block of
# wrong pixels. Optimized or progressive encodings give flat areas all-zero codes: not checked.
STANDARD_TABLES = frozenset({
    (0, (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)),           # DC luminance, 12 symbols
    (0, (0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0)),           # DC chrominance
    (1, (0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D)),        # AC luminance, 162 symbols
    (1, (0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77)),        # AC chrominance
})
ZERO_RUN = 32


# after an MJPEG frame's end-of-image marker: padding (an AVI chunk's, a multipart part's CRLF)
FRAME_PADDING = b"\x00\r\n \xff"


def damage(data: bytes, frame: bool = False) -> str | None:
    """Why ``data`` (a whole JPEG file or, with ``frame``, an MJPEG frame) is not a whole JPEG,
    or None. A frame holds one picture: bytes after its end-of-image marker other than padding
    mean an end marker inside lost or spliced data (libjpeg decodes the part before it, the rest
    gray, and only warns); a file may carry more (a phone's second picture, a trailer)."""
    array = np.frombuffer(data, dtype=np.uint8)
    size = len(array)
    if size < 4 or array[0] != 0xFF or array[1] != SOI:
        return "it does not begin with a JPEG start-of-image marker"
    position, scans, frames = 2, 0, 0
    standard = True  # the example Huffman tables (or none given) and a sequential frame
    while True:
        cut = ("its image data is damaged or cut off (no end-of-image marker where its structure "
               f"ends, at byte {position})" if scans else
               "it was cut off before its image data")
        if position >= size:
            return cut
        if array[position] != 0xFF:  # bytes between segments: libjpeg skips them to the next
            following = np.flatnonzero(array[position:] == 0xFF)  # marker, and so do we
            if not len(following):
                return cut
            position += int(following[0])
        while position < size and array[position] == 0xFF:  # fill bytes before a marker
            position += 1
        if position >= size:
            return cut
        marker = int(array[position])
        position += 1
        if marker == EOI:
            if not scans:
                return "it ends before any image data"
            rest = bytes(array[position:]).strip(FRAME_PADDING) if frame else b""
            if rest:
                return (f"{len(rest)} bytes of data after its end-of-image marker at byte "
                        f"{position - 2} (data lost in transfer, or another frame's spliced in)")
            return None
        if marker in STRAY or marker < 0xC0:
            return f"a stray marker 0xFF{marker:02X} at byte {position - 2}"
        if position + 2 > size:
            return cut
        length = int(array[position]) << 8 | int(array[position + 1])
        if length < 2:
            return f"a segment of impossible length {length} at byte {position - 2}"
        if position + length > size:
            return cut
        if marker in FRAME_HEADERS:
            frames += 1
            if frames > 1:
                return f"a second frame header at byte {position - 2}"
            standard &= marker in BASELINE_HUFFMAN
        if marker == DHT:
            standard &= _standard_tables(array[position + 2:position + length])
        position += length
        if marker == SOS:
            if not frames:
                return "image data before its frame header"
            scans += 1
            position, problem = _scan_end(array, position, zero_run=ZERO_RUN if standard else 0)
            if problem:
                return problem


def _standard_tables(segment: np.ndarray) -> bool:
    """Whether every Huffman table a DHT segment defines is one of JPEG's example tables."""
    position = 0
    while position + 17 <= len(segment):
        kind = int(segment[position]) >> 4
        counts = tuple(int(c) for c in segment[position + 1:position + 17])
        if (kind, counts) not in STANDARD_TABLES:
            return False
        position += 17 + sum(counts)
    return position == len(segment)


def _scan_end(array: np.ndarray, start: int, zero_run: int = 0) -> tuple[int, str | None]:
    """(the position of the marker that ends the compressed data from ``start``, or why it is
    damaged): inside it an 0xFF is followed only by a stuffed 0x00 or by the next restart marker,
    RST0 to RST7 in turn, and, with ``zero_run``, no that many zero bytes stand in a row."""
    ffs = np.flatnonzero(array[start:-1] == 0xFF) + start
    following = array[ffs + 1]
    last = following != 0xFF  # the last 0xFF of a run: fill bytes may stand before any marker
    ffs, following = ffs[last], following[last]
    inside = (following == 0x00) | ((following >= 0xD0) & (following <= 0xD7))
    ends = np.flatnonzero(~inside)
    if not len(ends):
        return len(array), "it was cut off (no end-of-image marker after its image data)"
    end = int(ends[0])
    restarts = following[:end][following[:end] != 0x00].astype(np.int64) - 0xD0
    if len(restarts) and (restarts[0] != 0 or np.any(np.diff(restarts) % 8 != 1)):
        return 0, ("its compressed data is damaged (restart markers out of order near byte "
                   f"{int(ffs[0])})")
    stop = int(ffs[end])
    if zero_run:
        # the bytes that are not zero, with both ends: zero runs lie between neighbours
        bounds = np.concatenate([[-1], np.flatnonzero(array[start:stop]), [stop - start]])
        gaps = np.diff(bounds)
        longest = int(gaps.max()) - 1
        if longest >= zero_run:
            at = start + int(bounds[int(np.argmax(gaps))]) + 1
            return 0, (f"its compressed data is damaged ({longest} zero bytes in a row from "
                       f"byte {at}: a stretch lost in transfer)")
    return stop, None


def orientation(data: bytes) -> int:
    """The EXIF orientation of a JPEG, PNG (its eXIf chunk) or WebP (its EXIF chunk): 1-8; 1,
    upright, when it has none or it cannot be read."""
    if data.startswith(PNG_SIGNATURE):
        return _png_orientation(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_orientation(data)
    for marker, start, end in _header_segments(data):
        if marker == 0xE1 and data[start:start + 6] == b"Exif\x00\x00":
            return _tiff_orientation(data[start + 6:end])
    return 1


def _header_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(marker, start, end of its content) of each segment of a JPEG's header: those between its
    start-of-image marker and its image data."""
    position, size = 2, len(data)
    while position + 4 <= size and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xFF:
            position += 1
            continue
        if marker in (SOS, EOI):
            return
        length = int.from_bytes(data[position + 2:position + 4], "big")
        yield marker, position + 4, min(position + 2 + length, size)
        position += 2 + length


DQT = 0xDB
# JPEG's example luminance quantization table (ITU T.81, Annex K.1), which libjpeg and most
# encoders scale by their quality setting; its sum (order-free: files store it in zigzag order)
STANDARD_LUMINANCE_SUM = sum((
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99))


def quality(data: bytes) -> int | None:
    """The quality (1-100, libjpeg's scale) a JPEG was encoded at, estimated from its luminance
    quantization table as libjpeg scales the standard one (within 1 of the setting from 17 to
    100, 100 reading as 99; lower settings read as 11-17, their steps clipped at 255), or None
    when ``data`` is no JPEG or holds no table before its image data. Encoders with tables of
    their own read as the libjpeg quality whose table quantizes as coarsely on average; one
    that encodes less faithfully than its tables say (OpenCV's own MJPG writer) is not seen."""
    if not data.startswith(b"\xff\xd8"):
        return None
    for marker, table, end in _header_segments(data):
        if marker == DQT:  # tables of (precision and id byte, 64 values of 1 or 2 bytes)
            while table < end:
                wide, table_id = data[table] >> 4, data[table] & 0x0F
                width = 2 if wide else 1
                values = data[table + 1:table + 1 + 64 * width]
                if len(values) < 64 * width:
                    return None
                if table_id == 0:
                    steps = (list(values) if not wide else
                             [int.from_bytes(values[i:i + 2], "big") for i in range(0, 128, 2)])
                    if not all(steps):  # a step of 0 is no table (damaged data)
                        return None
                    total = sum(steps)
                    scale = 100 * total / STANDARD_LUMINANCE_SUM  # libjpeg's scaling, in %
                    estimate = (200 - scale) / 2 if scale <= 100 else 5000 / scale
                    return int(min(100, max(1, round(estimate))))
                table += 1 + 64 * width
    return None


def _png_orientation(data: bytes) -> int:
    for kind, start, length in png_chunks(data):
        if kind == b"eXIf":
            return _tiff_orientation(data[start:start + length])
    return 1


def _webp_orientation(data: bytes) -> int:
    position = 12
    while position + 8 <= len(data):
        kind = data[position:position + 4]
        length = int.from_bytes(data[position + 4:position + 8], "little")
        if kind == b"EXIF":  # the TIFF block itself; with JPEG's "Exif" prefix cv2.imread reads
            return _tiff_orientation(data[position + 8:position + 8 + length])  # none: 1
        position += 8 + length + (length & 1)  # chunks are padded to an even size
    return 1


def _tiff_orientation(tiff: bytes) -> int:
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None:
        return 1
    try:
        (directory,) = struct.unpack_from(order + "I", tiff, 4)
        (entries,) = struct.unpack_from(order + "H", tiff, directory)
        for number in range(entries):
            entry = directory + 2 + 12 * number
            tag, kind = struct.unpack_from(order + "HH", tiff, entry)
            if tag == ORIENTATION_TAG and kind == 3:  # SHORT
                (value,) = struct.unpack_from(order + "H", tiff, entry + 8)
                return value if 1 <= value <= 8 else 1
    except struct.error:
        pass
    return 1


def upright(image: np.ndarray, code: int) -> np.ndarray:
    """``image`` turned as EXIF orientation ``code`` asks (as ``cv2.imread`` turns it)."""
    if code in (5, 6, 7, 8):
        image = cv2.transpose(image)
    flip = {2: 1, 3: -1, 4: 0, 6: 1, 7: -1, 8: 0}.get(code)
    return image if flip is None else cv2.flip(image, flip)
