"""A video file as a frame source: every frame in order, none dropped; a frame that does not
decode, or a file shorter than its container says, gives error items rather than a silent end
(MJPG AVIs are read by their index, so damage fails frame by frame)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from . import jpeg
from .avi_index import AviFrames, mjpg_frames
from .frame_source import (IMAGE_EXTENSIONS, MAX_CORRUPT_RUN, MAX_MISSING_ITEMS, VIDEO_EXTENSIONS,
                           Capture, CaptureFactory, Frame, SourceError, SourceStats,
                           capture_codec, capture_property, decode_jpeg_frame, default_capture,
                           jpeg_packets)

log = logging.getLogger("vigil")


class VideoFile:
    """Every frame of a video file, in order; a read failure before the end is an error item."""

    live = False

    def __init__(self, path: Path, capture_factory: CaptureFactory = default_capture) -> None:
        self.path = Path(path)
        self.name = str(path)
        if path.stat().st_size == 0:
            raise SourceError(f"`source` {self.name!r} is an empty file; expected a video, an "
                              f"image, a folder or a stream")
        self._capture_factory = capture_factory
        capture = capture_factory(str(path))
        self._capture: Capture | None = capture  # None once closed
        if not capture.isOpened():
            capture.release()
            if path.suffix.lower() in VIDEO_EXTENSIONS:
                hint = ("it may be truncated or damaged (a recording cut off before its index "
                        "was written); check it with ffprobe, or re-encode what is left")
            else:
                hint = f"images must end in one of {', '.join(sorted(IMAGE_EXTENSIONS))}"
            raise SourceError(f"`source` {self.name!r} cannot be opened as a video (OpenCV could "
                              f"not read it); {hint}")
        count = capture_property(capture, cv2.CAP_PROP_FRAME_COUNT)
        self._reported_count = count
        rate = capture_property(capture, cv2.CAP_PROP_FPS)
        self._fps = rate if rate and 0 < rate < 1000 else None
        self._index = mjpg_frames(self.path)
        if self._index is not None and self._index.listed and count and count > len(self._index):
            self._index = None  # the container holds frames its idx1 does not list: read them all
        if self._index is not None:  # a file cut short: as many as its header counted
            count = (len(self._index) if self._index.listed
                     else max(int(count or 0), len(self._index)))
        self._stats = SourceStats(expected=int(count) if count and count > 0 else None)
        self._iterated = False
        # an MJPG video OpenCV reads (MOV, MKV, MP4, an AVI without its index): its JPEG packets,
        # each checked before it is decoded, as an indexed AVI's frames are
        self._packets = self._index is None and jpeg_packets(capture)
        self._codec = capture_codec(capture)  # what FFmpeg decodes, where it decodes the frames

    @property
    def stats(self) -> SourceStats:
        return self._stats

    @property
    def fps(self) -> float | None:
        return self._fps

    def check(self) -> None:
        """SourceError naming the video unless one of its frames decodes (read on a capture of
        its own, up to the first that does: a run that could score no frame is refused before
        its output is made)."""
        listed = self._index  # the frames an AVI index lists
        first_why: str | None = None  # why the first frame read did not decode
        if listed is not None:
            with open(self.path, "rb") as handle:
                for offset, size in zip(listed.offsets, listed.sizes):
                    handle.seek(offset)
                    image, why = decode_jpeg_frame(handle.read(size))
                    if image is not None:
                        return
                    first_why = first_why or why
            tried = len(listed)
        else:
            capture = self._capture_factory(str(self.path))
            packets = self._packets and jpeg_packets(capture)
            tried, limit = 0, MAX_CORRUPT_RUN  # as far as scoring reads before it gives up
            try:
                while tried < limit:
                    ok, image = capture.read()
                    if ok and image is not None:
                        data = np.asarray(image).tobytes() if packets else b""
                        if not packets or not data.startswith(b"\xff\xd8"):
                            return  # (packets that are not JPEGs: FFmpeg decodes them)
                        decoded, why = decode_jpeg_frame(data)
                        if decoded is not None:
                            return
                        first_why = first_why or why
                    tried += 1
            finally:
                capture.release()
        if self._index is None and self._reported_count == 0:  # stopped before its first frame
            raise SourceError(f"`source` {self.name!r} holds no frames (its container reports 0 "
                              f"and none could be read): an empty recording")
        if first_why is not None:  # a reason known (a frame over the pixel limit, damage)
            raise SourceError(f"`source` {self.name!r}: none of its frames decodes ({tried} "
                              f"read; the first: {first_why})")
        raise SourceError(f"`source` {self.name!r}: none of its frames decodes ({tried} read; "
                          f"the video is damaged, or its codec is one this OpenCV cannot "
                          f"decode): check it with ffprobe, or re-encode it")

    def __iter__(self) -> Iterator[Frame]:
        if self._iterated:
            raise RuntimeError(f"video source {self.name!r} can be iterated once")
        self._iterated = True
        if self._index is not None:
            yield from self._indexed(self._index)
            return
        capture = self._capture
        if capture is None:
            raise RuntimeError(f"video source {self.name!r} was closed before it was iterated")
        expected = self._stats.expected
        index = 0
        first_damage: int | None = None  # the first frame that did not decode
        failed = 0  # consecutive reads that failed before the end the container reports
        try:
            while True:
                ok, image = capture.read()
                why, quality = None, None
                if ok and image is not None and self._packets:
                    data = np.asarray(image).tobytes()
                    if index == 0 and failed == 0 and not data.startswith(b"\xff\xd8"):
                        log.info("%s: its MJPG packets are not JPEG files; FFmpeg decodes "
                                 "them", self.name)  # read it again, decoded, from the start
                        capture.release()
                        capture = self._capture = self._capture_factory(str(self.path))
                        self._packets = False
                        continue
                    quality = jpeg.quality(data)
                    image, why = decode_jpeg_frame(data)  # damaged: an error item, and on
                    if why is not None and first_damage is None:
                        first_damage = index  # the demuxer may have skipped frames with it
                if not ok or (image is None and why is None):
                    first_damage = index if first_damage is None else first_damage
                    failed += 1
                    more = expected is None or index + failed < expected
                    if more and failed < MAX_CORRUPT_RUN and (index > 0 or expected is not None):
                        continue  # a corrupt frame mid-file: the next one may decode
                    if index == 0 or (expected is not None and index < expected):
                        yield from self._missing(index, expected, first_damage)
                    return
                for _ in range(failed):  # frames that did not decode, then the video went on
                    self._stats.read += 1
                    self._stats.errors += 1
                    yield Frame(index, self.name, None, "this frame could not be decoded "
                                "(corrupt data); the video goes on", time.time())
                    index += 1
                failed = 0
                self._stats.read += 1
                if why is not None:
                    self._stats.errors += 1
                    yield Frame(index, self.name, None, f"{why} (corrupt data); the video goes "
                                "on", time.time())
                else:
                    shown = capture_property(capture, cv2.CAP_PROP_POS_MSEC)
                    yield Frame(index, self.name, image, None, time.time(),
                                position_s=shown / 1000 if shown is not None else None,
                                jpeg_quality=quality,
                                codec=None if self._packets else self._codec)
                index += 1
        finally:
            self.close()

    def _indexed(self, frames: AviFrames) -> Iterator[Frame]:
        """Every frame the AVI index (``frames``) lists, decoded at its own position."""
        try:
            with open(self.path, "rb") as handle:
                for index, (offset, size) in enumerate(zip(frames.offsets, frames.sizes)):
                    handle.seek(offset)
                    data = handle.read(size)
                    self._stats.read += 1
                    if len(data) < size:  # a decoder would fill in the rest and call it whole
                        self._stats.errors += 1
                        yield Frame(index, self.name, None, f"this frame was cut off: the file "
                                    f"ends {len(data)} bytes into its {size} (truncated or "
                                    f"corrupt: a recording cut short)", time.time())
                        continue
                    image, why = decode_jpeg_frame(data)
                    if image is None:
                        self._stats.errors += 1
                        yield Frame(index, self.name, None, f"{why} (corrupt data); the video "
                                    "goes on", time.time())
                    else:  # an AVI's frames are shown at its constant rate
                        yield Frame(index, self.name, image, None, time.time(),
                                    position_s=index / self._fps if self._fps else None,
                                    jpeg_quality=jpeg.quality(data))
            found, expected = len(frames), self._stats.expected or 0
            if expected > found:  # counted by the header, gone with the cut
                yield from self._missing_items(found, expected - found, (
                    f"frame missing: the file ends after {found} frames, of the {expected} its "
                    f"container reports (truncated or corrupt: a recording cut short)"))
        finally:
            self.close()

    def _missing(self, index: int, expected: int | None,
                 first_damage: int | None) -> Iterator[Frame]:
        """Error items for the frames the container reports but that could not be read."""
        reported = f" of the {expected} its container reports" if expected else ""
        message = (f"frame missing: the video gave {index} readable frame"
                   f"{'s' if index != 1 else ''}{reported} (truncated or corrupt: a damaged "
                   "region or a cut-off file)")
        if first_damage is not None and first_damage < index:
            message += (f"; frames after the damage at frame {first_damage} may be numbered "
                        "early, as the demuxer skipped over it")
        yield from self._missing_items(index, max(1, (expected or 0) - index), message)

    def _missing_items(self, first: int, missing: int, message: str) -> Iterator[Frame]:
        """``missing`` error items from frame ``first`` on, or one that counts them past
        ``MAX_MISSING_ITEMS``."""
        if missing > MAX_MISSING_ITEMS:
            message += f"; {missing} frames missing in all, reported in this one item"
            missing = 1
        for number in range(first, first + missing):
            self._stats.read += 1
            self._stats.errors += 1
            yield Frame(number, self.name, None, message, time.time())

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
