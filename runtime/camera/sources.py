"""Frame sources: image files, video files and live cameras or streams, read with OpenCV.

``open_source(spec)`` picks the kind from the text a user typed:

* a camera index (``0``), a ``/dev/video*`` device, or an ``rtsp://``, ``rtmp://``, ``http://``,
  ``https://`` or ``udp://`` URL is *live*: a capture thread reads it into a small queue that keeps
  the newest frames (older ones are dropped and counted), and a source that stops is reopened with
  exponential backoff, each loss and reconnect reported;
* a file with an image extension, a folder (its files, sorted by name) or a glob pattern is a set
  of *image files*: every file yields one item, unreadable or truncated ones with an error;
* any other file is a *video file*: every frame is read in order, none is dropped; a frame that
  does not decode yields an error item and reading goes on, and a file that ends before the frame
  count its container reports yields an error item for each frame it is short (a damaged region
  the demuxer skipped over, or a truncated file) rather than stopping silently. An MJPG AVI with
  its index (``idx1``) is read frame by frame at the positions the index gives, so a damaged
  region fails frame by frame and every other frame keeps its number; elsewhere, after a damaged
  region OpenCV numbers the frames it finds consecutively, and the items say that later numbers
  may be early.

Every source is a single-pass iterable of ``Frame`` items and a context manager; ``stats`` says
what it read, dropped and reconnected. Each kind has its module (``image_files``, ``video_file``,
``live_source``), what they share is in ``frame_source``; this module chooses among them.
"""

from __future__ import annotations

import glob
import os
import queue
import re
import threading
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

from ..core import interrupts
from ..core.redact import redact
# the sources and their parts, importable from here as before the split
from .avi_index import mjpg_frames
from .frame_source import (GLOB_CHARACTERS, IMAGE_EXTENSIONS, JOIN_TIMEOUT_S, LIVE_SCHEMES,
                           MAX_CORRUPT_RUN, MAX_GAPS_KEPT, MAX_MISSING_ITEMS, STREAM_TIMEOUT_MS,
                           VIDEO_EXTENSIONS, Capture, CaptureFactory, Frame, FrameSource, Gap,
                           ReconnectPolicy, SourceError, SourceOptions, SourceStats,
                           decode_jpeg_frame, default_capture)
from .image_files import (ImageFiles, check_images, folder_files, only_masks, try_read_image,
                          without_masks)
from .live_source import DEFAULT_PORTS, PROBE_TIMEOUT_S, LiveSource, network_reason
from .video_file import VideoFile

__all__ = ["DEFAULT_PORTS", "MAX_CORRUPT_RUN", "MAX_GAPS_KEPT", "MAX_MISSING_ITEMS",
           "PROBE_TIMEOUT_S", "STREAM_TIMEOUT_MS", "mjpg_frames", "IMAGE_EXTENSIONS",
           "VIDEO_EXTENSIONS", "Capture", "Frame", "FrameSource", "Gap",
           "ImageFiles", "LiveSource", "Prefetched", "ReconnectPolicy", "SourceError",
           "SourceOptions", "SourceStats", "VideoFile", "check_images", "decode_jpeg_frame",
           "default_capture", "folder_files", "live_target", "network_reason", "open_source",
           "prefetched", "redact", "try_read_image"]


def open_source(spec: str | int | os.PathLike, options: SourceOptions = SourceOptions(),
                capture_factory: CaptureFactory = default_capture) -> FrameSource:
    """Open what ``spec`` names: a camera index (``0`` or ``"0"``), stream URL, video, image,
    folder or glob (a ``Path`` too).

    Raises SourceError when it cannot be opened (for live sources, after the reconnect policy's
    attempts).
    """
    if isinstance(spec, int) and not isinstance(spec, bool) and spec >= 0:
        spec = str(spec)  # a camera index, as the command line gives it
    elif isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str) or not spec.strip():
        raise SourceError(f"`source` must be a camera index, URL, file, folder or glob; "
                          f"received {spec!r}")
    target = live_target(spec)
    if target is not None:
        return LiveSource(target, options, capture_factory)
    path = Path(spec)
    if path.is_dir():
        return ImageFiles(folder_files(path), name=spec)
    if path.is_file():
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            return ImageFiles([path], name=spec)
        return VideoFile(path, capture_factory)
    if GLOB_CHARACTERS.search(spec):
        matches = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        if not matches:
            raise SourceError(f"`source` glob {spec!r} matches no files")
        if only_masks(matches):
            raise SourceError(f"`source` glob {spec!r} matches only masks ({len(matches)} files "
                              f"named NAME_mask, or PNGs beside an image of their name, e.g. "
                              f"{str(matches[0])!r}), not camera frames: match the images "
                              f"(their suffix, .jpg say) instead")
        frames = without_masks(matches, f"glob {spec!r}")  # MVTec AD's ground_truth/ too
        return ImageFiles(frames or matches, name=spec)
    raise SourceError(f"`source` {spec!r} is not a camera index, a stream URL "
                      f"({', '.join(s[:-3] for s in LIVE_SCHEMES)}), or an existing file, folder "
                      "or glob")


def live_target(spec: str) -> int | str | None:
    """The capture target of a live source (an int for a camera index), or None if not live."""
    text = spec.strip()
    if re.fullmatch(r"\d{1,4}", text):
        if Path(spec).exists():
            raise SourceError(f"`source` {spec!r} is both a camera index and an existing path; "
                              f"write ./{spec} to read the path")
        return int(text)
    if text.lower().startswith(LIVE_SCHEMES):
        try:
            urlsplit(text).port  # a port outside 0-65535, or not a number, fails here
        except ValueError:  # its text may quote part of a password: not repeated here
            raise SourceError(f"`source` {redact(text)!r} is not a valid stream address (what "
                              f"follows the host's : is not a port number); expected "
                              f"scheme://[user:password@]host[:port]/path with a port in "
                              f"1-65535 (a / ? # or @ in the user name or password is written "
                              f"%2F %3F %23 %40)") from None
        return text
    if re.fullmatch(r"/dev/video\d+", text):
        return text
    return None


class Prefetched:
    """Reads a file source ahead on its own thread, so decoding overlaps scoring.

    The queue is bounded and blocking: nothing is ever dropped, the reader just waits. Live
    sources already capture on their own thread and are returned unwrapped by ``prefetched``.
    """

    live = False

    def __init__(self, source: FrameSource, depth: int = 4) -> None:
        if depth < 1:
            raise ValueError(f"`depth` must be >= 1; received {depth}")
        self._source = source
        self._queue: "queue.Queue[Frame | BaseException | None]" = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    name = property(lambda self: self._source.name)
    fps = property(lambda self: self._source.fps)
    stats = property(lambda self: self._source.stats)
    inner = property(lambda self: self._source)

    def _read(self) -> None:
        try:
            for frame in self._source:
                while not self._stop.is_set():
                    try:
                        self._queue.put(frame, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._put_final(None)
        except BaseException as error:  # handed to the consumer, raised there
            self._put_final(error)

    def _put_final(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[Frame]:
        self._thread = threading.Thread(target=self._read, name="vigil-prefetch", daemon=True)
        self._thread.start()
        while True:
            with interrupts.waiting():  # no frame is in flight while waiting for the reader
                item = self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(JOIN_TIMEOUT_S)
        self._source.close()


def prefetched(source: FrameSource, depth: int = 4) -> FrameSource:
    """``source`` read ahead on a thread when it is a file source; live sources as they are."""
    return source if source.live else Prefetched(source, depth)
