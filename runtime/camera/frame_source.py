"""What every frame source shares: the ``Frame`` item, the counts a source keeps, the live
options, the capture protocol (``cv2.VideoCapture`` or a test's fake) and the reading of a
capture's properties and undecoded JPEG packets."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol

import cv2
import numpy as np

from . import datasets, jpeg
from .image_header import too_large

IMAGE_EXTENSIONS = frozenset(datasets.IMAGE_SUFFIXES)
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg",
                              ".mpeg", ".ts", ".wmv", ".flv", ".3gp"})
LIVE_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
GLOB_CHARACTERS = re.compile(r"[*?\[]")
STREAM_TIMEOUT_MS = 5000  # open/read timeout for network streams, so a cut stream is noticed
JOIN_TIMEOUT_S = 10.0
MAX_GAPS_KEPT = 100
MAX_CORRUPT_RUN = 25  # a video file ends after this many reads in a row fail
MAX_MISSING_ITEMS = 100_000  # missing frames reported one by one up to this many, then in one item


class SourceError(ValueError):
    """A source cannot be opened: no such file, nothing matches, not a video, no such camera."""


@dataclass(frozen=True)
class Frame:
    """One item from a source: a decoded image, or why there is none.

    ``index`` counts items from 0 in source order (for live sources: frames read from the device
    since the run started, so dropped frames leave gaps). ``source`` is the file it came from, or
    the source's name. ``timestamp`` is the wall-clock time (``time.time()``) it was read.
    ``gap_s`` is set on the first frame delivered after a live source was lost and reconnected:
    the seconds without frames. ``position_s`` is where a video file's frame is shown, in
    seconds from its start (its time in the container: right for variable-rate video too, and
    after a damaged region, where frame numbers may be early).
    """

    index: int
    source: str
    image: np.ndarray | None
    error: str | None
    timestamp: float
    gap_s: float | None = None
    position_s: float | None = None
    packet: bytes | None = None  # a live MJPEG frame not decoded yet (``image`` None meanwhile)
    # how the frame was compressed: the quality of the JPEG it was decoded from, or the codec
    # (FOURCC) of the video or stream FFmpeg decoded it from; None when unknown or lossless
    jpeg_quality: int | None = None
    codec: str | None = None


@dataclass(frozen=True)
class Gap:
    """A live source's outage: frames stopped after ``after_index``, resumed at ``resumed_index``."""

    after_index: int | None
    resumed_index: int
    seconds: float
    attempts: int


@dataclass
class SourceStats:
    """What a source did. ``read`` counts items produced (frames and error items)."""

    read: int = 0
    errors: int = 0
    dropped: int = 0
    reconnects: int = 0
    reconnect_attempts: int = 0
    max_queued: int = 0
    expected: int | None = None
    gaps: list[Gap] = field(default_factory=list)
    error: str | None = None  # why a live source gave up, if it did
    reconnecting: str | None = None  # while a live source is lost: why, and the attempt


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a live source is (re)opened: waits of ``initial_delay_s``, times ``factor`` after each
    failure, at most ``max_delay_s``; ``max_attempts`` retries after a failure (None: forever)."""

    initial_delay_s: float = 0.5
    max_delay_s: float = 10.0
    factor: float = 2.0
    max_attempts: int | None = 10

    def __post_init__(self) -> None:
        if not 0 <= self.initial_delay_s <= self.max_delay_s:
            raise ValueError(f"`initial_delay_s` must be in [0, max_delay_s={self.max_delay_s}]; "
                             f"received {self.initial_delay_s}")
        if self.factor < 1:
            raise ValueError(f"`factor` must be >= 1; received {self.factor}")
        if self.max_attempts is not None and (isinstance(self.max_attempts, bool)
                                              or not isinstance(self.max_attempts, int)
                                              or self.max_attempts < 0):
            raise ValueError(f"`max_attempts` must be an integer >= 0 or None (forever); "
                             f"received {self.max_attempts!r}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        return min(self.max_delay_s, self.initial_delay_s * self.factor ** (attempt - 1))

    def exhausted(self, attempt: int) -> bool:
        return self.max_attempts is not None and attempt > self.max_attempts

    def describe(self) -> str:
        return "forever" if self.max_attempts is None else str(self.max_attempts)


@dataclass(frozen=True)
class SourceOptions:
    """Live-source settings: queue size (1 or 2 keeps latency low) and the reconnect policy."""

    queue_size: int = 2
    reconnect: ReconnectPolicy = ReconnectPolicy()

    def __post_init__(self) -> None:
        if isinstance(self.queue_size, bool) or not isinstance(self.queue_size, int) \
                or self.queue_size < 1:
            raise ValueError(f"`queue_size` must be an integer >= 1; received {self.queue_size!r}")


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` a source uses (tests pass fakes)."""

    def isOpened(self) -> bool: ...
    def read(self) -> tuple[bool, Any]: ...
    def release(self) -> None: ...


CaptureFactory = Callable[[Any], Capture]


class FrameSource(Protocol):
    name: str
    live: bool

    def __iter__(self) -> Iterator[Frame]: ...
    def close(self) -> None: ...
    @property
    def stats(self) -> SourceStats: ...
    @property
    def fps(self) -> float | None: ...


def default_capture(target: int | str) -> cv2.VideoCapture:
    """``cv2.VideoCapture`` of a camera index or URL; network streams get open/read timeouts."""
    if isinstance(target, str) and target.startswith(LIVE_SCHEMES):
        return cv2.VideoCapture(target, cv2.CAP_FFMPEG,
                                [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, STREAM_TIMEOUT_MS,
                                 cv2.CAP_PROP_READ_TIMEOUT_MSEC, STREAM_TIMEOUT_MS])
    return cv2.VideoCapture(target)


def decode_jpeg_frame(data: bytes) -> tuple[np.ndarray | None, str | None]:
    """(image, None) for a whole JPEG frame (of an MJPG AVI or an MJPEG stream), or (None, why
    it cannot be scored): damaged, cut off, or refused by the decoder (OpenCV raises, rather than
    returning None, for a header claiming more pixels than it allows)."""
    if not data:
        return None, "this frame is empty"
    oversized = too_large(data)  # OpenCV refuses it too, without saying why (review r3)
    if oversized is not None:
        return None, f"this frame's {oversized}"
    why = jpeg.damage(data, frame=True)  # libjpeg would fill in what is lost and only warn
    if why is not None:
        return None, f"this frame is a damaged JPEG: {why}"
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    return (image, None) if image is not None else (None, "this frame could not be decoded")


def jpeg_packets(capture: Capture) -> bool:
    """Switch an FFmpeg capture of an MJPEG stream to its undecoded JPEG packets, so that each
    frame is checked before it is decoded (``decode_jpeg_frame``): FFmpeg fills a frame cut off in
    transit with the previous frame's pixels and only warns. Whether it did."""
    # cv2.VideoCapture's, beyond ``Capture``: a test's fake may have none of them
    backend = getattr(capture, "getBackendName", None)
    get = getattr(capture, "get", None)
    set_property = getattr(capture, "set", None)
    if backend is None or get is None or set_property is None:
        return False
    try:
        if backend() != "FFMPEG" or (capture_codec(capture) or "").upper() != "MJPG":
            return False
        return bool(set_property(cv2.CAP_PROP_FORMAT, -1))
    except (AttributeError, cv2.error, TypeError, ValueError):
        return False


def capture_codec(capture: Capture) -> str | None:
    """The FOURCC of the video a capture decodes (``H264``, ``FMP4``, ``MJPG``, ...), or None when
    the capture does not say (a test's fake, a backend without it)."""
    value = capture_property(capture, cv2.CAP_PROP_FOURCC)
    if not value:
        return None
    code = (int(value) & 0xFFFFFFFF).to_bytes(4, "little")
    text = code.decode("ascii", errors="replace").strip("\x00 ")
    return text if text.isprintable() and text else None


def capture_property(capture: Capture, prop: int) -> float | None:
    get = getattr(capture, "get", None)
    if get is None:
        return None
    try:
        value = float(get(prop))
    except (TypeError, ValueError, cv2.error):
        return None
    return value if np.isfinite(value) else None
