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
what it read, dropped and reconnected.
"""

from __future__ import annotations

import glob
import logging
import os
import queue
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol
from urllib.parse import urlsplit

import cv2
import numpy as np

from ..core import interrupts
from . import datasets, jpeg
from .avi_index import mjpg_frames

log = logging.getLogger("vigil")

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
    the seconds without frames.
    """

    index: int
    source: str
    image: np.ndarray | None
    error: str | None
    timestamp: float
    gap_s: float | None = None


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


def open_source(spec: str, options: SourceOptions = SourceOptions(),
                capture_factory: CaptureFactory = default_capture) -> FrameSource:
    """Open what ``spec`` names: a camera index, stream URL, video, image, folder or glob.

    Raises SourceError when it cannot be opened (for live sources, after the reconnect policy's
    attempts).
    """
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
        if _only_masks(matches):
            raise SourceError(f"`source` glob {spec!r} matches only masks ({len(matches)} files "
                              f"named NAME_mask, or PNGs beside an image of their name, e.g. "
                              f"{str(matches[0])!r}), not camera frames: match the images "
                              f"(their suffix, .jpg say) instead")
        frames = _without_masks(matches, f"glob {spec!r}")  # MVTec AD's ground_truth/ too
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


DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "http": 80, "https": 443}
PROBE_TIMEOUT_S = 2.0


def network_reason(url: int | str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why a TCP stream URL may not open, from one connection attempt to its host and port (the
    capture itself gives no reason): the name does not resolve, nothing listens, no answer, or
    the server answers (so the path, credentials or codec failed). None for other targets."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:  # live_target refuses such an address before any attempt
        return None
    host = parts.hostname
    if not host or port is None or parts.scheme.lower() not in (*DEFAULT_PORTS, "tcp"):
        return None
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except socket.gaierror:
        return f"the host name {host!r} does not resolve (check the address, or DNS)"
    except ConnectionRefusedError:
        return f"nothing accepts connections at {where} (connection refused: is the camera or " \
               f"server on, and is the port right?)"
    except (socket.timeout, TimeoutError):
        return f"{where} did not answer within {timeout:g} s (a firewall, or the wrong address)"
    except OSError as error:
        return f"{where} cannot be reached ({error.strerror or error})"
    return (f"{where} accepts connections, so the stream itself did not open: check the URL's "
            f"path, the credentials and the codec")


def redact(spec: str) -> str:
    """The source's text with any password in a URL replaced, safe to print and log."""
    # up to the last @: a password may hold a / (over-redacting a rare @ in a path is safe)
    return re.sub(r"(://[^/@:]*):.*@", r"\1:***@", spec)


def folder_files(folder: Path, subfolders_hint: str | None = None,
                 argument: str = "source") -> list[Path]:
    """A folder's files in name order, without hidden files and the masks beside their images
    (as training reads the folder); other files are kept, to be reported as unusable.
    ``subfolders_hint`` says how to read its subfolders (default: a quoted glob, as `vigil
    score` takes one); ``argument`` names the folder in errors."""
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    # a link whose target is gone is a file that cannot be read: kept, to get its skipped line
    files = [p for p in entries if p.is_file() or (p.is_symlink() and not p.exists())]
    subfolders = [p.name for p in entries if p.is_dir()]
    files = _without_masks(files, str(folder))
    shown = ", ".join(subfolders[:5]) + (", ..." if len(subfolders) > 5 else "")
    hint = subfolders_hint or (_glob_hint(folder) if subfolders else "")
    if files and subfolders:
        log.warning("%s: its subfolders (%s) are not read; give each, or %s", folder, shown, hint)
    if not files:
        if subfolders:
            raise SourceError(
                f"`{argument}` folder {str(folder)!r} holds no files, only folders ({shown}), and "
                f"subfolders are not read: give one of them, or {hint}")
        raise SourceError(f"`{argument}` folder {str(folder)!r} contains no files")
    return files


def _glob_hint(folder: Path, limit: int = 2000) -> str:
    """A quoted glob that reaches the camera images below ``folder``: by their suffix as
    written (``*.JPG`` where they are so named) when one suffix holds them all, else every file
    (``_without_masks`` then leaves the masks out). Masks are not counted: ``NAME_mask`` files,
    and PNGs beside an image of the same name (the magnetic-tile layout). At most ``limit``
    files are looked at."""
    counts: dict[str, int] = {}
    seen = 0
    for root, subfolders, names in os.walk(folder):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        images = [Path(root) / n for n in names if Path(n).suffix.lower() in IMAGE_EXTENSIONS]
        masks = datasets.masks_among(images)
        for image in images:
            if image not in masks and not image.stem.endswith("_mask"):
                counts[image.suffix] = counts.get(image.suffix, 0) + 1
        seen += len(names)
        if seen >= limit:
            break
    pattern = f"*{next(iter(counts))}" if len(counts) == 1 else "*"
    return f"a glob that reaches into them ('{folder}/**/{pattern}', quoted)"


def _only_masks(files: list[Path]) -> bool:
    """Whether every file is a mask: named ``NAME_mask``, or a PNG beside an image of its name
    (``x.png`` beside ``x.jpg``), as ``datasets.masks_among`` reads them on disk."""
    for path in files:
        if path.stem.endswith("_mask"):
            continue
        if path.suffix.lower() == ".png" and any(
                path.with_suffix(suffix).exists() for suffix in IMAGE_EXTENSIONS
                if suffix != ".png"):
            continue
        return False
    return True


def _without_masks(files: list[Path], where: str) -> list[Path]:
    """``files`` without the masks of images among them (``x.png`` beside ``x.jpg``, or
    ``x_mask.png`` beside ``x.png``: ``datasets.masks_among``), as training reads them."""
    masks = datasets.masks_among(files)
    if masks:
        log.info("%s: %d mask file(s) of images it holds are not scored as frames (e.g. %s)",
                 where, len(masks), sorted(masks)[0].name)
    return [p for p in files if p not in masks]


class ImageFiles:
    """Image files in the given order; each yields one item, with an error if it is unusable.
    Frames are numbered from ``first_index`` (a part of a folder scored apart, as ``vigil batch``
    does, keeps the numbers a run over the whole folder gives)."""

    live = False
    fps = None

    def __init__(self, paths: list[Path], name: str, first_index: int = 0) -> None:
        self.paths = list(paths)
        self.name = name
        self.first_index = first_index
        self._stats = SourceStats(expected=len(self.paths))

    @property
    def stats(self) -> SourceStats:
        return self._stats

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths, self.first_index):
            image, error = try_read_image(path)
            self._stats.read += 1
            self._stats.errors += error is not None
            yield Frame(index, str(path), image, error, time.time())

    def close(self) -> None:
        pass

    def __enter__(self) -> ImageFiles:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_images(paths: list[Path], source: str) -> None:
    """SourceError naming ``source`` unless one of ``paths`` decodes: a run that could score no
    frame is refused before its output is made (files are read until the first good one)."""
    first = None
    for path in paths:
        image, error = try_read_image(Path(path))
        if image is not None:
            return
        first = first or f"{Path(path).name}: {error}"
    raise SourceError(f"`source` {source!r}: none of its {len(paths)} files is an image that "
                      f"can be read; the first, {first}")


def try_read_image(path: Path) -> tuple[np.ndarray | None, str | None]:
    """(uint8 image, None) or (None, why it cannot be used)."""
    suffix = path.suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        return None, f"not an image file (extension {suffix or 'none'!r})"
    try:
        return datasets.read_image(path), None
    except ValueError as error:
        return None, str(error)


def decode_jpeg_frame(data: bytes) -> tuple[np.ndarray | None, str | None]:
    """(image, None) for a whole JPEG frame (of an MJPG AVI or an MJPEG stream), or (None, why
    it cannot be scored): damaged, cut off, or refused by the decoder (OpenCV raises, rather than
    returning None, for a header claiming more pixels than it allows)."""
    if not data:
        return None, "this frame is empty"
    why = jpeg.damage(data)  # libjpeg would fill in what is lost and only warn
    if why is not None:
        return None, f"this frame is a damaged JPEG: {why}"
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        image = None
    return (image, None) if image is not None else (None, "this frame could not be decoded")


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
        self._capture = capture_factory(str(path))
        if not self._capture.isOpened():
            self._capture.release()
            if path.suffix.lower() in VIDEO_EXTENSIONS:
                hint = ("it may be truncated or damaged (a recording cut off before its index "
                        "was written); check it with ffprobe, or re-encode what is left")
            else:
                hint = f"images must end in one of {', '.join(sorted(IMAGE_EXTENSIONS))}"
            raise SourceError(f"`source` {self.name!r} cannot be opened as a video (OpenCV could "
                              f"not read it); {hint}")
        count = _prop(self._capture, cv2.CAP_PROP_FRAME_COUNT)
        self._reported_count = count
        rate = _prop(self._capture, cv2.CAP_PROP_FPS)
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
        self._packets = self._index is None and jpeg_packets(self._capture)

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
        if self._index is not None:
            with open(self.path, "rb") as handle:
                for offset, size in zip(self._index.offsets, self._index.sizes):
                    handle.seek(offset)
                    if decode_jpeg_frame(handle.read(size))[0] is not None:
                        return
            tried = len(self._index)
        else:
            capture = self._capture_factory(str(self.path))
            packets = self._packets and jpeg_packets(capture)
            tried, limit = 0, MAX_CORRUPT_RUN  # as far as scoring reads before it gives up
            try:
                while tried < limit:
                    ok, image = capture.read()
                    if ok and image is not None:
                        data = np.asarray(image).tobytes() if packets else b""
                        if not packets or not data.startswith(b"\xff\xd8") \
                                or decode_jpeg_frame(data)[0] is not None:
                            return  # (packets that are not JPEGs: FFmpeg decodes them)
                    tried += 1
            finally:
                capture.release()
        if self._index is None and self._reported_count == 0:  # stopped before its first frame
            raise SourceError(f"`source` {self.name!r} holds no frames (its container reports 0 "
                              f"and none could be read): an empty recording")
        raise SourceError(f"`source` {self.name!r}: none of its frames decodes ({tried} read; "
                          f"the video is damaged, or its codec is one this OpenCV cannot "
                          f"decode): check it with ffprobe, or re-encode it")

    def __iter__(self) -> Iterator[Frame]:
        if self._iterated:
            raise RuntimeError(f"video source {self.name!r} can be iterated once")
        self._iterated = True
        if self._index is not None:
            yield from self._indexed()
            return
        expected = self._stats.expected
        index = 0
        first_damage: int | None = None  # the first frame that did not decode
        failed = 0  # consecutive reads that failed before the end the container reports
        try:
            while True:
                ok, image = self._capture.read()
                why = None
                if ok and image is not None and self._packets:
                    data = np.asarray(image).tobytes()
                    if index == 0 and failed == 0 and not data.startswith(b"\xff\xd8"):
                        log.info("%s: its MJPG packets are not JPEG files; FFmpeg decodes "
                                 "them", self.name)  # read it again, decoded, from the start
                        self._capture.release()
                        self._capture = self._capture_factory(str(self.path))
                        self._packets = False
                        continue
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
                    yield Frame(index, self.name, image, None, time.time())
                index += 1
        finally:
            self.close()

    def _indexed(self) -> Iterator[Frame]:
        """Every frame the AVI index lists, decoded at its own position."""
        try:
            with open(self.path, "rb") as handle:
                for index, (offset, size) in enumerate(zip(self._index.offsets, self._index.sizes)):
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
                    else:
                        yield Frame(index, self.name, image, None, time.time())
            found, expected = len(self._index), self._stats.expected or 0
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


def jpeg_packets(capture: Capture) -> bool:
    """Switch an FFmpeg capture of an MJPEG stream to its undecoded JPEG packets, so that each
    frame is checked before it is decoded (``decode_jpeg_frame``): FFmpeg fills a frame cut off in
    transit with the previous frame's pixels and only warns. Whether it did."""
    try:
        if capture.getBackendName() != "FFMPEG":
            return False
        fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)) & 0xFFFFFFFF
        if fourcc.to_bytes(4, "little").upper() != b"MJPG":
            return False
        return bool(capture.set(cv2.CAP_PROP_FORMAT, -1))
    except (AttributeError, cv2.error, TypeError, ValueError):
        return False


def _prop(capture: Capture, prop: int) -> float | None:
    get = getattr(capture, "get", None)
    if get is None:
        return None
    try:
        value = float(get(prop))
    except (TypeError, ValueError, cv2.error):
        return None
    return value if np.isfinite(value) else None


class LiveSource:
    """A camera or network stream read on its own thread into a queue that keeps the newest frames.

    The queue holds at most ``options.queue_size`` frames; when it is full the oldest is dropped
    (counted in ``stats.dropped``). When reads fail the capture is released and reopened after
    ``options.reconnect`` delays; each loss and reconnect is logged and the outage is recorded in
    ``stats.gaps`` and on the next frame (``gap_s``). Frames are numbered as read, so none is
    delivered twice. Opening retries the same way and raises SourceError if every attempt fails.
    """

    live = True

    def __init__(self, target: int | str, options: SourceOptions = SourceOptions(),
                 capture_factory: CaptureFactory = default_capture) -> None:
        self.target = target
        self.name = redact(str(target))
        self.options = options
        self._factory = capture_factory
        self._stats = SourceStats()
        self._queue: deque[Frame] = deque()
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._finished = False
        self._thread: threading.Thread | None = None
        self._packets_allowed = True  # off once a stream's packets turn out not to be JPEGs
        self._packets = False  # the open capture gives undecoded JPEG packets (jpeg_packets)
        self._capture = self._open_with_retries()
        self._fps = _prop(self._capture, cv2.CAP_PROP_FPS)
        if not (self._fps and 0 < self._fps < 1000):
            self._fps = None

    @property
    def stats(self) -> SourceStats:
        with self._lock:
            return replace(self._stats, gaps=list(self._stats.gaps))

    @property
    def fps(self) -> float | None:
        return self._fps

    def _describe(self) -> str:
        return f"camera {self.target}" if isinstance(self.target, int) else f"stream {self.name!r}"

    def _try_open(self) -> tuple[Capture | None, str]:
        try:
            capture = self._factory(self.target)
        except (cv2.error, OSError, RuntimeError) as error:
            return None, f"{type(error).__name__}: {error}"
        if capture is not None and capture.isOpened():
            self._packets = self._packets_allowed and jpeg_packets(capture)
            return capture, ""
        if capture is not None:
            capture.release()
        return None, "the capture did not open"

    def _open_with_retries(self) -> Capture:
        policy = self.options.reconnect
        attempt = 0
        while True:
            with interrupts.waiting():  # a stop request while connecting ends the run at once
                capture, why = self._try_open()
            if capture is not None:
                return capture
            attempt += 1
            if attempt == 1 or policy.exhausted(attempt):  # the address's answer, once or twice
                reason = network_reason(self.target)  # None for a camera index
                why += f": {reason}" if reason else ""
            if policy.exhausted(attempt):
                hint = (" (does that camera exist? on Linux see ls /dev/video*)"
                        if isinstance(self.target, int) else "")
                raise SourceError(f"`source` {self._describe()} could not be opened after "
                                  f"{attempt} attempt{'s' if attempt > 1 else ''}: {why}{hint}")
            delay = policy.delay(attempt)
            log.warning("%s did not open (%s); retrying in %.1f s (attempt %d of %s)",
                        self._describe(), why, delay, attempt, policy.describe())
            with interrupts.waiting():
                cancelled = self._stop.wait(delay)
            if cancelled:
                raise SourceError(f"`source` {self._describe()}: opening was cancelled")

    def __iter__(self) -> Iterator[Frame]:
        if self._thread is not None:
            raise RuntimeError(f"live source {self.name!r} can be iterated once")
        self._thread = threading.Thread(target=self._capture_loop, daemon=True,
                                        name=f"vigil-capture-{self.name}")
        self._thread.start()
        try:
            while True:
                with self._ready:
                    while not self._queue and not self._finished and not self._stop.is_set():
                        with interrupts.waiting():  # nothing in flight while waiting for a frame
                            self._ready.wait(0.5)
                    if self._queue:
                        frame = self._queue.popleft()
                    else:
                        if self._stats.error and not self._stop.is_set():
                            # said here, once every frame read before the loss was delivered, not
                            # by the capture thread: a run that stops at --max-frames first is
                            # not told of a loss after the frames it asked for
                            log.error("%s", self._stats.error)
                        return
                yield frame
        finally:
            self.close()

    def _put(self, frame: Frame) -> None:
        with self._ready:
            self._stats.read += 1
            self._stats.errors += frame.error is not None
            if len(self._queue) >= self.options.queue_size:
                old = self._queue.popleft()
                self._stats.dropped += 1
                if old.gap_s is not None:  # keep the outage on the next frame delivered
                    if self._queue:
                        self._queue[0] = replace(self._queue[0], gap_s=old.gap_s)
                    else:
                        frame = replace(frame, gap_s=old.gap_s)
            self._queue.append(frame)
            self._stats.max_queued = max(self._stats.max_queued, len(self._queue))
            self._ready.notify()

    def _capture_loop(self) -> None:
        capture = self._capture
        index = 0
        attempt = 0
        lost_at: float | None = None
        last_frame_at = time.monotonic()  # a failed read may block for the stream's read timeout
        pending_gap: float | None = None
        error: str | None = None
        try:
            while not self._stop.is_set():
                if capture is None:
                    with self._lock:
                        self._stats.reconnect_attempts += 1
                    capture, why = self._try_open()
                    if capture is None:
                        attempt, error = self._failed(attempt, f"reopening failed ({why})")
                        if error:
                            break
                        continue
                ok, image = capture.read()
                if not ok or image is None:
                    capture.release()
                    capture = None
                    if lost_at is None:
                        lost_at = last_frame_at  # the outage began after the last good frame
                        log.warning("%s lost after frame %s; reconnecting", self._describe(),
                                    index - 1 if index else "none")
                    attempt, error = self._failed(attempt, "read failed")
                    if error:
                        break
                    continue
                if lost_at is not None:
                    gap = time.monotonic() - lost_at
                    with self._lock:
                        self._stats.reconnects += 1
                        self._stats.reconnecting = None
                        self._stats.gaps.append(Gap(index - 1 if index else None, index, gap,
                                                    attempt))
                        del self._stats.gaps[:-MAX_GAPS_KEPT]
                    log.warning("%s reconnected after %d attempt%s; %.2f s without frames "
                                "(frames resume at %d)", self._describe(), attempt,
                                "s" if attempt > 1 else "", gap, index)
                    pending_gap, lost_at, attempt = gap, None, 0
                last_frame_at = time.monotonic()
                why = None
                if self._packets:
                    data = np.asarray(image).tobytes()
                    if not data.startswith(b"\xff\xd8"):  # not JFIF after all: FFmpeg decodes
                        log.warning("%s: its MJPEG packets are not JPEG files; FFmpeg decodes "
                                    "them, and a frame damaged in transit may not be noticed",
                                    self._describe())
                        self._packets_allowed = False
                        capture.release()
                        capture = None
                        continue
                    image, why = decode_jpeg_frame(data)
                    if why is not None:
                        why += " (damaged in transit, or sent cut short); the stream goes on"
                self._put(Frame(index, self.name, image, why, time.time(), pending_gap))
                pending_gap = None
                index += 1
        except Exception as failure:  # a capture backend failing must end the run cleanly
            error = f"{self._describe()} failed: {type(failure).__name__}: {failure}"
        finally:
            if capture is not None:
                capture.release()
            with self._ready:
                if error and not self._stop.is_set():
                    self._stats.error = error
                self._finished = True
                self._ready.notify_all()

    def _failed(self, attempt: int, why: str) -> tuple[int, str | None]:
        """Count a failed attempt and wait; returns (attempt, error if we give up)."""
        policy = self.options.reconnect
        attempt += 1
        if policy.exhausted(attempt):
            error = (f"{self._describe()} lost: gave up after {attempt - 1} reconnect "
                     f"attempt{'s' if attempt - 1 != 1 else ''} ({why})")
            return attempt, error  # logged by __iter__ when the frames before it are delivered
        delay = policy.delay(attempt)
        with self._lock:  # for the health report while it lasts
            self._stats.reconnecting = (f"{self._describe()}: {why}; reconnecting (attempt "
                                        f"{attempt} of {policy.describe()})")
        log.warning("%s: %s; retrying in %.1f s (attempt %d of %s)", self._describe(), why,
                    delay, attempt, policy.describe())
        self._stop.wait(delay)
        return attempt, None

    def close(self) -> None:
        """Stop the capture thread, release the device, count frames left unscored as dropped."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.warning("%s: the capture thread did not stop within %.0f s (a blocked read?)",
                            self._describe(), JOIN_TIMEOUT_S)
        elif thread is None and self._capture is not None:
            self._capture.release()
        self._capture = None
        with self._ready:
            self._stats.dropped += len(self._queue)
            self._queue.clear()
            self._finished = True
            self._ready.notify_all()

    def __enter__(self) -> LiveSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
