"""An image's width and height from its header, read before anything is decoded.

A 390 KB PNG can hold 20000 x 20000 pixels and take gigabytes to decode; the frame sources refuse
such a file by its header (``MAX_PIXELS``) instead of running out of memory. PNG, JPEG, BMP, TIFF,
WebP and PNM headers are read here; for other formats OpenCV's own check applies, at the same
limit in the `vigil` command's process (it sets ``OPENCV_IO_MAX_IMAGE_PIXELS``; a program that
imports the runtime keeps its own).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterator

MAX_PIXELS = 1 << 26  # 67 megapixels: an 8192 x 8192 frame; larger files are refused
HEADER_BYTES = 1 << 16
MAX_HEADER_SEARCH = 1 << 26  # a JPEG's or TIFF's header is looked for in a file's first 64 MB
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def image_size(image: bytes | str | Path) -> tuple[int, int] | None:
    """(width, height) from an image's header (its bytes, or a file to read them from), or None
    when the format is not one read here or the header is malformed (the decoder then says what
    is wrong)."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
    else:
        try:
            with open(image, "rb") as handle:
                data = handle.read(HEADER_BYTES)
                if data[:2] in (b"\xff\xd8", b"II", b"MM"):  # JPEG, TIFF: read on, to a limit
                    data += handle.read(MAX_HEADER_SEARCH - HEADER_BYTES)
        except OSError:
            return None
    head = data[:HEADER_BYTES]
    try:
        # A JPEG's metadata (EXIF, ICC, XMP) may put its frame header past the first 64 KB, and
        # a TIFF's directory usually follows the pixels: those two read all that was read.
        for reader, given in ((_png, head), (_jpeg, data), (_bmp, head), (_tiff, data),
                              (_webp, head), (_pnm, head)):
            size = reader(given)
            if size is not None:
                return size
    except (struct.error, ValueError, IndexError):
        return None
    return None


def _png(head: bytes) -> tuple[int, int] | None:
    if head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _jpeg(head: bytes) -> tuple[int, int] | None:
    if head[:2] != b"\xff\xd8":
        return None
    position = 2
    while position + 4 <= len(head):
        if head[position] != 0xFF:
            return None
        marker = head[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            position += 2
            continue
        (length,) = struct.unpack(">H", head[position + 2:position + 4])
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            height, width = struct.unpack(">HH", head[position + 5:position + 9])
            return width, height
        position += 2 + length
    return None


def _bmp(head: bytes) -> tuple[int, int] | None:
    if head[:2] != b"BM":
        return None
    (header_size,) = struct.unpack("<I", head[14:18])
    if header_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack("<HH", head[18:22])
    else:
        width, height = struct.unpack("<ii", head[18:26])
    return abs(width), abs(height)


def _tiff(head: bytes) -> tuple[int, int] | None:
    order = {b"II": "<", b"MM": ">"}.get(head[:2])
    if order is None or struct.unpack(order + "H", head[2:4])[0] != 42:
        return None
    (offset,) = struct.unpack(order + "I", head[4:8])
    (entries,) = struct.unpack(order + "H", head[offset:offset + 2])
    size: dict[int, int] = {}
    for i in range(entries):
        entry = head[offset + 2 + 12 * i:offset + 14 + 12 * i]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            value = struct.unpack(order + ("H" if kind == 3 else "I"), entry[8:10 if kind == 3 else 12])[0]
            size[tag] = value
    return (size[256], size[257]) if len(size) == 2 else None


def _webp(head: bytes) -> tuple[int, int] | None:
    if head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return None
    chunk = head[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L":
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _pnm(head: bytes) -> tuple[int, int] | None:
    if len(head) < 3 or head[0:1] != b"P" or head[1:2] not in b"123456":
        return None
    tokens: list[bytes] = []
    for line in head[2:].split(b"\n"):
        tokens += line.split(b"#", 1)[0].split()
        if len(tokens) >= 2:
            return int(tokens[0]), int(tokens[1])
    return None


def too_large(image: bytes | str | Path, max_pixels: int = MAX_PIXELS) -> str | None:
    """Why the image must not be decoded (its header says it is larger than ``max_pixels``)."""
    size = image_size(image)
    if size is None:
        return None
    width, height = size
    if width * height > max_pixels:
        return (f"image is {width} x {height} pixels ({width * height / 1e6:.0f} MP) by its "
                f"header; more than the {max_pixels / 1e6:.0f} MP limit, so it was not decoded")
    return None


def png_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """A PNG's chunks in order, each whose 8-byte head is in ``data``: (type, where its data
    begins, its length), up to IEND; a chunk's data may run past ``data``'s end."""
    position, size = len(PNG_SIGNATURE), len(data)
    while position + 8 <= size:
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        yield kind, position + 8, length
        if kind == b"IEND":
            return
        position += 12 + length  # length, type, data, CRC


def png_damage(data: bytes) -> str | None:
    """Why ``data`` (a PNG file) is cut off, or None: its chunks must run whole to an IEND chunk
    (a truncated PNG made libpng print "PNG input buffer is incomplete" on stderr, as plain text
    under --log-json). The chunks' contents are libpng's to judge."""
    if not data.startswith(PNG_SIGNATURE):
        return None
    if any(kind == b"IEND" and start + length + 4 <= len(data)
           for kind, start, length in png_chunks(data)):
        return None
    return (f"it was cut off: its chunks end at byte {len(data)} before the IEND chunk that "
            f"closes a PNG")
