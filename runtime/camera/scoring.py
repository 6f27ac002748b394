"""Scoring a frame source with an image detector: one JSON line per frame, overlays, a summary.

``score_frames(detector, source, out)`` reads every item a source delivers and writes one JSON
line for it: ``frame``, ``source``, ``score``, ``anomaly``, ``latency_ms``, ``width`` and
``height`` (the frame as read) and ``boxes`` (the regions above the pixel threshold in the frame's
pixels, for anomalous frames), or ``score: null`` and ``skipped``
with the reason for an item that could not be scored. Live sources add ``time`` (when the frame
was read, ISO 8601 UTC to the millisecond), ``dropped_before`` (frames
replaced by newer ones since the last line) and ``gap_s`` (seconds without frames before a
reconnect). Optionally it writes heatmap overlays to a folder, an annotated video, and shows a
preview window. A bad frame is a counted skip; it never ends a run.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Callable

import cv2
import numpy as np

from .frames import (CHECK_NAMES, FRAME_CHECKS, GRAY_CHECKS, compression_mismatch, frame_boxes,
                     lossy_codec, overlay, to_model_input)
from ..core import interrupts
from ..core.health import HealthReporter
from .detector import ImageDetector
from ..core.output import JsonLines, OutputError, flush_quietly, made_folders
from ..core.results import decide_line, result_line, skip_line
from ..core.spec import ArtifactError
from ..core.thresholds import over_threshold
from .sources import FrameSource, ImageFiles

log = logging.getLogger("vigil")
# frames skipped in a row after which a run is said to inspect nothing (every frame damaged in
# transit, a camera sending what cannot be decoded): 4 s at 25 fps; the first few are named
UNSCORED_FRAMES_WARNING = 100

VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG"}
DEFAULT_VIDEO_FPS = 10.0
HELD_FRAMES_MAX_S = 10.0  # a live video holds its last picture over at most this long a drop
# ... and spends at most this share of the time the held frames stand for on encoding them, so
# a slow encoder (1080p) never slows the scoring by more than a third (1 / (1 - 0.25))
HOLD_ENCODING_SHARE = 0.25
PREVIEW_KEYS = (27, ord("q"))  # Esc or q closes the preview and ends the run


@dataclass(frozen=True)
class FrameScoringOptions:
    """What to write besides the JSON lines, and when to stop.

    ``overlay_dir``: heatmap overlays (JPEG) of anomalous frames, or of every scored frame with
    ``overlay_all``. ``overlay_video``: an annotated video of every scored frame (.mp4 or .avi) at
    ``video_fps`` (default: the source's rate, else 10); from a live source, a picture is held
    over the time until the next picture, by the frames' times (up to 10 s, and as many copies
    as encode in a quarter of the time they stand for), so the video keeps the stream's time
    even where its claimed rate is not its own. ``show``: a preview window (needs an OpenCV with a GUI).
    ``max_frames``: stop after this many items. ``latency_window``: the p50/p99 latencies cover
    this many most recent frames.
    """

    overlay_dir: str | os.PathLike | None = None
    overlay_all: bool = False
    overlay_video: str | os.PathLike | None = None
    video_fps: float | None = None
    show: bool = False
    max_frames: int | None = None
    latency_window: int = 65536
    skips_said: int = 5  # skipped frames named on stderr (then counted): a caller that scores
                         # one run in parts (`vigil batch`) passes what is left of its own

    def __post_init__(self) -> None:
        if self.max_frames is not None and (isinstance(self.max_frames, bool)
                                            or not isinstance(self.max_frames, int)
                                            or self.max_frames < 1):
            raise ValueError(f"`max_frames` must be an integer >= 1 or None; "
                             f"received {self.max_frames!r}")
        if self.overlay_video is not None:
            suffix = Path(self.overlay_video).suffix.lower()
            if suffix not in VIDEO_CODECS:
                raise ValueError(f"`overlay_video` must end in one of {sorted(VIDEO_CODECS)}; "
                                 f"received {str(self.overlay_video)!r}")
        if self.video_fps is not None and not 0 < self.video_fps <= 1000:
            raise ValueError(f"`video_fps` must be in (0, 1000]; received {self.video_fps}")
        if self.latency_window < 1:
            raise ValueError(f"`latency_window` must be >= 1; received {self.latency_window}")
        if self.overlay_all and self.overlay_dir is None:
            raise ValueError("`overlay_all` needs `overlay_dir`, the folder to write overlays to")


@dataclass
class FrameSummary:
    """Totals of a run: ``frames_in == scored + skipped``; live drops are counted apart.

    ``stopped`` is ``end``, ``max_frames``, ``interrupted`` (Ctrl-C or SIGTERM),
    ``preview_closed``, ``source_lost`` (a live source gave up reconnecting; ``last_error`` says
    why) or ``output_failed`` (the result lines could not be written; ``last_error`` says where
    it stopped). ``lines_written`` lines reached the output and ``lines_lost`` did not (with
    ``on_error="continue"``); ``last_written`` names the frame of the last line written.
    """

    source: str
    frames_in: int = 0
    scored: int = 0
    skipped: int = 0
    anomalies: int = 0
    dropped: int = 0
    reconnects: int = 0
    overlays: int = 0
    video_frames: int = 0
    video: str | None = None  # the annotated video's path (beside an existing one: <stem>-2...)
    seconds: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    stopped: str = "end"
    last_error: str | None = None
    lines_written: int = 0
    lines_lost: int = 0
    last_written: str | None = None
    gaps: list[dict] = field(default_factory=list)
    # frames found unlike the training frames (colour, aspect, size): every file of a folder,
    # a stream's first frames after each change (their lines carry ``unlike_training``)
    frames_unlike_training: int = 0
    # frames skipped in a row since the last one scored (at the end, or when reported): a camera
    # whose every frame is damaged inspects nothing while its process runs
    frames_unscored: int = 0

    @property
    def fps(self) -> float | None:
        return self.scored / self.seconds if self.seconds > 0 else None

    def to_json(self) -> dict:
        record = asdict(self)
        record["seconds"] = round(self.seconds, 4)
        record["fps"] = round(self.fps, 2) if self.fps else None
        for key in ("p50_ms", "p99_ms"):
            record[key] = round(record[key], 3) if record[key] is not None else None
        return record


CLOCK_STEP_S = 1.0  # a live frame this far behind the video's time: the clock stepped back
DROP_SPAN_S = 10.0  # drops are looked at over spans of this many seconds
DROP_WARN_SHARE = 0.1  # a span in which more of the stream's frames were dropped is warned of
DROP_WARN_EVERY_S = 600.0  # then at most this often


class DropWatch:
    """Warns when a live source's frames are dropped because scoring does not keep up (the queue
    keeps the newest): over each ``DROP_SPAN_S``, the frames scored against those offered. Said
    the first time, then at most every ``DROP_WARN_EVERY_S``: a run of weeks never reaches its
    summary, where the drops are counted."""

    def __init__(self, name: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self._clock = clock
        self._start = clock()
        self._frames = self._dropped = 0
        self._warned_at: float | None = None

    def frame(self, dropped_before: int) -> None:
        """One frame taken, after ``dropped_before`` frames the source dropped."""
        self._frames += 1
        self._dropped += dropped_before
        now = self._clock()
        span = now - self._start
        if span < DROP_SPAN_S:
            return
        offered = self._frames + self._dropped
        if self._dropped > DROP_WARN_SHARE * offered and (
                self._warned_at is None or now - self._warned_at >= DROP_WARN_EVERY_S):
            self._warned_at = now
            log.warning("%s: scoring keeps up with %.1f of the stream's %.1f frames/s: %d of its "
                        "last %d frames (%.0f %%) were dropped in %.0f s, the newest scored "
                        "(dropped_before on the lines, dropped in the summary and health "
                        "report); a defect seen only in dropped frames is missed. With several "
                        "scorers on this machine, --threads 1 each (by default each takes "
                        "every core, and they contend); else a smaller model (vigil train "
                        "image --size), a GPU (--device cuda), fewer other processes or a "
                        "lower camera frame rate keeps up (said at most every %.0f min)", self.name,
                        self._frames / span, offered / span, self._dropped, offered,
                        100 * self._dropped / offered, span, DROP_WARN_EVERY_S / 60)
        self._start, self._frames, self._dropped = now, 0, 0


class LatencyWindow:
    """The most recent latencies in a preallocated ring, for percentiles of a long run."""

    def __init__(self, size: int) -> None:
        self._values = np.empty(size, dtype=np.float64)
        self._count = 0

    def add(self, seconds: float) -> None:
        self._values[self._count % len(self._values)] = seconds
        self._count += 1

    def percentiles_ms(self, *qs: float) -> list[float] | None:
        if self._count == 0:
            return None
        filled = self._values[:min(self._count, len(self._values))]
        return [float(v) for v in np.percentile(filled, qs) * 1e3]


def preview_unavailable() -> str | None:
    """Why a preview window cannot open here (a headless OpenCV, no display), or None if it can."""
    match = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    if match and match.group(1).upper() == "NONE":
        return ("`--show` needs an OpenCV built with a GUI; this one has none (the "
                "opencv-python-headless wheel). Install the GUI wheel instead (pip uninstall "
                "opencv-python-headless && pip install opencv-python), or write an annotated video "
                "with --overlay-video")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        return ("`--show` needs a display, and neither DISPLAY nor WAYLAND_DISPLAY is set; write "
                "an annotated video with --overlay-video instead")
    return None


def _fitted(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``picture`` scaled to fit ``size`` (width, height) with its shape kept, centred on black:
    stretched, a tile of another shape came out squeezed (a review's 593 x 261 tile in a
    172 x 316 video)."""
    width, height = size
    scale = min(width / picture.shape[1], height / picture.shape[0])
    inner = (max(1, round(picture.shape[1] * scale)), max(1, round(picture.shape[0] * scale)))
    scaled = cv2.resize(picture, inner, interpolation=cv2.INTER_AREA if scale < 1
                        else cv2.INTER_LINEAR)
    canvas = np.zeros((height, width, *picture.shape[2:]), dtype=picture.dtype)
    top, left = (height - inner[1]) // 2, (width - inner[0]) // 2
    canvas[top:top + inner[1], left:left + inner[0]] = scaled
    return canvas


class _VideoOut:
    """An annotated video, opened at the first frame's size; later frames of another size are
    scaled to fit it, their shape kept (padded with black), and said once.
    It never replaces a file: where ``path`` exists (an earlier run's video), it is written
    beside it as ``<stem>-2<suffix>``, ``-3``, ..., as overlay pictures are, and says so."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path = path
        self.fps = fps
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self._last: np.ndarray | None = None
        self._encode_s = 0.0  # the last encoding's time
        self._started_at: float | None = None  # a live stream's time of the video's start
        self._resized_said = False  # a frame of another size was said

    def write(self, picture: np.ndarray) -> None:
        size = (picture.shape[1], picture.shape[0])
        writer, video_size = self._writer, self._size
        if writer is None or video_size is None:  # the first frame: the video takes its size
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path = _unused_path(self.path)
            fourcc = cv2.VideoWriter.fourcc(*VIDEO_CODECS[self.path.suffix.lower()])
            writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, size)
            if not writer.isOpened():
                codec = VIDEO_CODECS[self.path.suffix.lower()]
                other = (f"; --overlay-video {self.path.with_suffix('.avi').name} (MJPG) takes "
                         "most sizes" if codec != "MJPG" else "")
                raise ValueError(f"`overlay_video` {str(self.path)!r} cannot be written at the "
                                 f"frames' size, {size[0]} x {size[1]}: this OpenCV's {codec} "
                                 f"encoder refused it (a size beyond what the codec takes, or "
                                 f"no such encoder in this build){other}")
            self._writer = writer
            self._size = video_size = size
        if size != video_size:
            picture = _fitted(picture, video_size)
            if not self._resized_said:
                self._resized_said = True
                log.warning("%s: a frame of %d x %d is drawn into the video's %d x %d (its first "
                            "frame's size), scaled and padded with black so that its shape "
                            "stays its own (said once)", self.path, size[0], size[1],
                            *video_size)
        began = time.perf_counter()
        writer.write(picture)
        self._encode_s = time.perf_counter() - began
        self.frames += 1
        self._last = picture

    def write_at(self, picture: np.ndarray, timestamp: float, keep: bool = False) -> None:
        """Write a live stream's picture at its frame's time (``time.time()`` when read), so the
        video plays in the stream's time, not at its claimed rate (FFmpeg guesses 25 for any
        MJPEG stream): the last picture is held until then (``hold``; time it cannot hold is let
        go, not caught up), and a picture that would run ahead of its time is left out unless
        ``keep``. A clock stepped back (NTP, an RTC) starts the timing again."""
        if self._started_at is not None and \
                timestamp < self._started_at + (self.frames - 1) / self.fps - CLOCK_STEP_S:
            self._started_at = timestamp - self.frames / self.fps
        if self._started_at is None:
            self._started_at = timestamp
        due = round((timestamp - self._started_at) * self.fps)  # video frames before this one
        if due < self.frames - 1 and not keep:
            return
        held = due - self.frames
        written = self.hold(held)
        if written < held:
            self._started_at += (held - written) / self.fps
        self.write(picture)

    def hold(self, count: int) -> int:
        """Write the last picture again over ``count`` frames of a live stream that have no
        picture, so the video plays in the stream's time: up to 10 s of them, and only as many
        as encode in a quarter of the time they stand for (the scoring comes first). How many
        were written."""
        if self._writer is None or self._last is None or count <= 0:
            return 0
        affordable = HOLD_ENCODING_SHARE * count / self.fps / max(self._encode_s, 1e-6)
        count = min(count, int(self.fps * HELD_FRAMES_MAX_S), int(affordable))
        for _ in range(count):
            self._writer.write(self._last)
        self.frames += count
        return count

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


def utc_time(timestamp: float) -> str:
    """``time.time()`` as ISO 8601 UTC to the millisecond: 2026-12-05T21:41:32.123Z."""
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def score_frames(detector: ImageDetector, source: FrameSource, out: IO[str] | JsonLines,
                 options: FrameScoringOptions = FrameScoringOptions(),
                 health: HealthReporter | None = None) -> FrameSummary:
    """Score every item of ``source`` with ``detector``, write JSON lines to ``out``; the summary.

    ``out`` is a text stream or a ``JsonLines`` (which says what happens when writing fails: by
    default the run stops with ``stopped="output_failed"``). The source is closed on return.
    Ctrl-C ends the run with a summary (``stopped="interrupted"``). ``health`` reports progress
    while the run goes on and once at its end. Raises ValueError before reading anything if an
    output cannot be made (no GUI for ``show``).
    """
    if not isinstance(detector, ImageDetector):
        raise TypeError(f"`detector` must be an ImageDetector (an image artifact); received "
                        f"{type(detector).__name__}")
    if options.show:
        why = preview_unavailable()
        if why:
            source.close()
            raise ValueError(why)
    # made at the first overlay written: a run whose frames cannot be read leaves no folder
    overlay_dir = Path(options.overlay_dir) if options.overlay_dir is not None else None
    overlay_made = False
    video = None
    if options.overlay_video is not None:
        video = _VideoOut(Path(options.overlay_video),
                          options.video_fps or source.fps or DEFAULT_VIDEO_FPS)
    per_file = isinstance(getattr(source, "inner", source), ImageFiles)
    window = f"vigil: {source.name}"

    summary = FrameSummary(source=source.name)
    sink = out if isinstance(out, JsonLines) else JsonLines(out, live=source.live)
    sink.time_key = "time" if source.live else None  # a live frame's line carries its time
    latencies = LatencyWindow(options.latency_window)
    batch = np.empty((1, *detector.input_shape), dtype=np.uint8)  # reused for every frame
    last_index: int | None = None
    # frames looked at for a colour or shape the model was not trained on (-1: found, said)
    checks = {check: 0 for check in FRAME_CHECKS}
    standing: set[str] = set()  # a stream's or video's mismatches, until its format changes
    # every JPEG frame's quality is known at no cost, and a camera's may change from frame to
    # frame: each is judged on its own, said once a run; a video's codec is said once (no record
    # tells whether the training images were frames of such video)
    compression_said = False
    codecs_said: set[str] = set()
    last_shape: tuple[int, ...] | None = None  # a live stream's frames may change format
    drops = DropWatch(source.name) if source.live else None
    if health is not None:
        health.start("frames", source.name, lambda: _counts(summary, source, sink), "frames_in")
    failure: BaseException | None = None
    started = time.perf_counter()
    try:
        for frame in source:
            summary.frames_in += 1
            dropped = (frame.index - last_index - 1 if source.live and last_index is not None
                       and frame.index > last_index + 1 else None)
            last_index = frame.index
            if drops is not None:
                drops.frame(dropped or 0)
            # a live frame's time: frame numbers start again at 0 when a supervisor restarts a run
            record = result_line("frame", frame.index, frame.source,
                                 time=utc_time(frame.timestamp) if source.live else None,
                                 dropped_before=dropped,
                                 gap_s=round(frame.gap_s, 3) if frame.gap_s is not None else None,
                                 position_s=(round(frame.position_s, 3)
                                             if frame.position_s is not None else None))
            picture = None
            image, reason = frame.image, frame.error
            if image is None and reason is None:  # a source's frame has its image, or says why not
                reason = "the source gave this frame without an image or a reason"
            if image is not None and reason is None:
                shape = image.shape
                if source.live and last_shape is not None and (shape != last_shape
                                                               or frame.gap_s is not None):
                    # a camera restarted (or reconfigured) into another size or colour: its
                    # first frames are looked at again (a review's, restarted into 640x360
                    # gray, went unsaid and alarmed on 35 % of frames instead of 22 %)
                    checks = {check: 0 for check in FRAME_CHECKS}
                    standing.clear()
                last_shape = shape
                if frame.codec is not None and frame.codec not in codecs_said:
                    codecs_said.add(frame.codec)
                    lossy = lossy_codec(frame.codec, source.live)
                    if lossy is not None:  # a file may be recorded again; a camera is as it is
                        log.log(logging.INFO if source.live else logging.WARNING,
                                "%s: %s (said once)", frame.source, lossy)
                unlike: list[str] = []  # how this frame is unlike the training frames
                try:
                    began = time.perf_counter()
                    # a stream's first frames tell; in a folder each file may differ, so every
                    # file is looked at, and each one found unlike training is marked
                    for check in FRAME_CHECKS:
                        looked = checks[check]
                        if per_file or (looked < GRAY_CHECKS and looked >= 0):
                            checks[check] = looked + 1 if looked >= 0 else looked
                            mismatch = check(image, detector.spec)
                            if mismatch is None:
                                continue
                            name = CHECK_NAMES.get(check, getattr(check, "__name__", "check"))
                            unlike.append(name)
                            if not per_file:  # a stream's frames are alike until it changes
                                standing.add(name)
                            if looked >= 0:
                                checks[check] = -1  # said once, until the format changes
                                log.warning("%s: %s (%s)", frame.source, mismatch,
                                            "said once; every file found so is marked "
                                            "unlike_training and counted in the summary"
                                            if per_file else "said again only if the frames "
                                            "change size or the stream reconnects")
                    unlike += sorted(standing.difference(unlike))
                    compressed = compression_mismatch(frame.jpeg_quality, detector.spec)
                    if compressed is not None:
                        unlike.append("compression")
                        if not compression_said:
                            compression_said = True
                            log.warning("%s: %s (said once; every frame found so is marked "
                                        "unlike_training and counted in the summary)",
                                        frame.source, compressed)
                    summary.frames_unlike_training += bool(unlike)
                    batch[0] = to_model_input(image, detector.spec)
                    scores, maps = detector.run_prepared(batch)
                    score = float(scores[0])
                    anomaly = over_threshold(score, detector.threshold)
                    wants_picture = (video is not None or options.show
                                     or (overlay_dir is not None
                                         and (anomaly or options.overlay_all)))
                    boxes: list[dict] = []
                    full = None  # the anomaly map at the frame's size
                    if anomaly or wants_picture:
                        full, found = detector.locate(image, maps[0])
                        boxes = frame_boxes(full, detector.pixel_threshold, anomaly, found)
                    latency = time.perf_counter() - began
                    if wants_picture and full is not None:
                        # the decision first: a narrow frame's band cuts the label's end
                        # (a review's 120-px tile showed "...ANOMAL")
                        label = ("ANOMALY " * anomaly) + f"#{frame.index} score {score:.4g}"
                        picture = overlay(image, full, detector.spec, boxes, label,
                                          pixel_threshold=detector.pixel_threshold)
                except ArtifactError:
                    raise  # the model, not the frame: no frame would score
                except (ValueError, TypeError, cv2.error) as error:
                    reason = str(error).strip() or type(error).__name__
            if reason is not None:
                summary.skipped += 1
                summary.frames_unscored += 1
                summary.last_error = f"frame {frame.index} of {frame.source}: {reason}"
                skip_line(record, reason)
                if summary.skipped <= options.skips_said:  # named, not only counted
                    log.warning("%s%s", summary.last_error,
                                "; further skipped frames are counted in the summary's skipped "
                                "(each has its line)" if summary.skipped == options.skips_said
                                else "")
                elif summary.frames_unscored == UNSCORED_FRAMES_WARNING:
                    log.warning("%s: no frame scored for the last %d frames: nothing is "
                                "inspected while this lasts (the health report's "
                                "frames_unscored; `vigil health-check --max-unscored` fails on "
                                "it); the last one's reason: %s", source.name,
                                UNSCORED_FRAMES_WARNING, reason)
            else:
                if summary.frames_unscored >= UNSCORED_FRAMES_WARNING:
                    log.warning("%s: frames are scored again from frame %d, after %d unscored",
                                source.name, frame.index, summary.frames_unscored)
                summary.frames_unscored = 0
                summary.scored += 1
                summary.anomalies += anomaly
                latencies.add(latency)
                # the frame as read (boxes are in its pixels), not as the model saw it
                decide_line(record, score, anomaly, threshold=detector.threshold,
                            latency_ms=round(latency * 1e3, 3),
                            # a live frame's age when decided: read to line, queue included
                            **({"age_ms": round((time.time() - frame.timestamp) * 1e3, 1)}
                               if source.live else {}),
                            width=int(shape[1]), height=int(shape[0]),
                            boxes=boxes)
                if unlike:
                    record["unlike_training"] = unlike
                if picture is not None:
                    if overlay_dir is not None and (anomaly or options.overlay_all) \
                            and not overlay_made:
                        try:
                            with made_folders(overlay_dir):  # (a part made is undone)
                                overlay_made = True
                        except OSError as error:  # said once; the frames' lines matter more
                            summary.last_error = (f"`overlay_dir` {str(overlay_dir)!r} cannot be "
                                                  f"made ({error.strerror or error}): no overlay "
                                                  f"is written; the scoring goes on")
                            log.error("%s", summary.last_error)
                            overlay_dir = None
                    if overlay_dir is not None and (anomaly or options.overlay_all):
                        path = overlay_dir / _overlay_name(frame.index, frame.source, per_file)
                        written = _write_picture(path, picture)
                        if written is not None:
                            summary.overlays += 1
                            record["overlay"] = str(written)
                        else:
                            summary.last_error = f"could not write the overlay {path}"
                            log.warning("%s", summary.last_error)
                    if video is not None:
                        try:
                            if source.live:  # a reject is always shown
                                video.write_at(picture, frame.timestamp, keep=anomaly)
                            else:  # a file's every frame, in order
                                video.write(picture)
                        except ValueError as error:  # the scores matter more than the video
                            summary.last_error = str(error)
                            log.warning("%s; the run goes on without the video", error)
                            video.close()
                            video = None
                    if options.show:
                        cv2.imshow(window, picture)
                        if cv2.waitKey(1) & 0xFF in PREVIEW_KEYS:
                            summary.stopped = "preview_closed"
            sink.write(record, mark=f"frame {frame.index} of {frame.source}")
            interrupts.check()  # a safe point: this frame has its line
            if summary.stopped != "end":
                break
            if options.max_frames is not None and summary.frames_in >= options.max_frames:
                summary.stopped = "max_frames"
                break
        sink.flush()
        sink.commit()  # the source was read to its end: the output exists even without a line
    except OutputError as error:
        summary.stopped, summary.last_error = "output_failed", str(error)
    except KeyboardInterrupt:
        summary.stopped = "interrupted"
        flush_quietly(sink, summary)
    except BaseException as error:
        failure = error
        raise
    finally:
        source.close()
        if video is not None:
            video.close()
            summary.video_frames = video.frames
            summary.video = str(video.path) if video.frames else None
        if options.show:
            cv2.destroyAllWindows()
        summary.seconds = time.perf_counter() - started
        summary.lines_written, summary.lines_lost = sink.lines_written, sink.lines_lost
        summary.last_written = sink.last_written
        stats = source.stats
        summary.dropped = stats.dropped
        summary.reconnects = stats.reconnects
        summary.gaps = [asdict(gap) for gap in stats.gaps]
        if stats.error is not None and summary.stopped not in ("output_failed", "max_frames"):
            summary.last_error = stats.error
            if summary.stopped == "end":
                summary.stopped = "source_lost"
        if health is not None:
            health.stop_after(summary.stopped, failure)
    percentiles = latencies.percentiles_ms(50, 99)
    if percentiles is not None:
        summary.p50_ms, summary.p99_ms = percentiles
    return summary


def _counts(summary: FrameSummary, source: FrameSource, sink: JsonLines) -> dict:
    stats = source.stats
    return {"frames_in": summary.frames_in, "scored": summary.scored,
            "skipped": summary.skipped, "frames_unscored": summary.frames_unscored,
            "dropped": stats.dropped, "reconnects": stats.reconnects,
            # a live source lost and being reopened: no frame comes meanwhile
            "reconnecting": stats.reconnecting is not None,
            "anomalies": summary.anomalies, "lines_written": sink.lines_written,
            "lines_lost": sink.lines_lost,
            "last_error": (sink.error or stats.error or stats.reconnecting
                           or summary.last_error)}


def _overlay_name(index: int, source: str, per_file: bool) -> str:
    if per_file:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(source).stem)[:80]
        return f"{index:06d}_{stem}.jpg"
    return f"{index:08d}.jpg"


def _numbered(path: Path, attempt: int) -> Path:
    """``<stem>-<attempt><suffix>`` beside ``path``: where an output goes when ``path`` is taken."""
    return path.with_name(f"{path.stem}-{attempt}{path.suffix}")


def _unused_path(path: Path) -> Path:
    """``path``, or the first of ``<stem>-2<suffix>``, ``-3``, ... that does not exist."""
    target, attempt = path, 1
    while target.exists():
        attempt += 1
        target = _numbered(path, attempt)
    if target != path:
        log.warning("--overlay-video %s exists (an earlier run's video, kept); this run's video "
                    "is %s", path, target)
    return target


def _write_picture(path: Path, picture: np.ndarray) -> Path | None:
    """Write ``picture`` as a JPEG at ``path``, or beside it as ``<stem>-2.jpg``, ``-3``, ...
    when a file of that name exists (an earlier run's, another video's frame of the same
    number): an overlay never replaces another. The path written, or None."""
    try:
        ok, encoded = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 90])
    except cv2.error:
        return None
    if not ok:
        return None
    for attempt in range(1, 1000):
        target = path if attempt == 1 else _numbered(path, attempt)
        try:
            handle = open(target, "xb")
        except FileExistsError:
            continue
        except OSError:
            return None
        try:
            with handle:
                handle.write(encoded.tobytes())
            return target
        except OSError:  # a full disk: no partial picture left behind
            target.unlink(missing_ok=True)
            return None
    return None
