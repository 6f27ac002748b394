"""A camera or network stream as a frame source: read on its own thread into a queue that keeps
the newest frames, reopened with backoff when it stops, each loss and reconnect reported."""

from __future__ import annotations

import glob
import logging
import os
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import replace
from typing import Iterator
from urllib.parse import urlsplit

import cv2
import numpy as np

from ..core import interrupts
from ..core.redact import redact
from . import jpeg
from .frame_source import (JOIN_TIMEOUT_S, MAX_GAPS_KEPT, Capture, CaptureFactory, Frame, Gap,
                           SourceError, SourceOptions, SourceStats, capture_codec, capture_property,
                           decode_jpeg_frame, default_capture, jpeg_packets)

log = logging.getLogger("vigil")


# an MJPEG stream's packets in a row that are no JPEG, after JPEG ones, before FFmpeg decodes
# them instead (one is a frame damaged in transit, a skipped line; this many, a camera changed)
NOT_JPEG_RUN = 25
DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "http": 80, "https": 443}
PROBE_TIMEOUT_S = 2.0


def network_reason(url: int | str, timeout: float = PROBE_TIMEOUT_S,
                   frames_read: int = 0) -> str | None:
    """Why a TCP stream URL may not open, from one connection attempt to its host and port (the
    capture itself gives no reason): the name does not resolve, nothing listens, no answer, or
    the server answers (so the path, credentials or codec failed; or, after ``frames_read``
    frames, the server ended the stream). None for other targets."""
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
    if frames_read:  # it streamed: the server ended or dropped the stream, the address is right
        return (f"{where} still accepts connections, so the server ended or stalled the "
                f"stream after {frames_read} frame{'s' if frames_read != 1 else ''} (a camera or "
                f"server that stopped, restarted or stopped sending it; more "
                f"--reconnect-attempts wait for it to come back)")
    return (f"{where} accepts connections, so the stream itself did not open: check the URL's "
            f"path, the credentials and the codec")


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
        self._jpeg_packets_seen = False  # a packet of this run was a JPEG: the stream's are
        self._packets = False  # the open capture gives undecoded JPEG packets (jpeg_packets)
        self._codec: str | None = None  # the open capture's (capture_codec)
        capture = self._open_with_retries()
        self._capture: Capture | None = capture  # the capture thread's once started; None: closed
        self._fps = capture_property(capture, cv2.CAP_PROP_FPS)
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
            self._codec = capture_codec(capture)  # read once a connection, not once a frame
            return capture, ""
        if capture is not None:
            capture.release()
        return None, "the capture did not open"

    def _open_with_retries(self) -> Capture:
        policy = self.options.reconnect
        missing = self._missing_device()
        if missing is not None and policy.max_attempts is not None:
            # OpenCV would retry a device that is not there for a minute, warning each time
            raise SourceError(f"`source` {self._describe()}: {missing}; give the camera that is "
                              f"there, or --reconnect-attempts forever to wait for one to be "
                              f"plugged in")
        attempt = 0
        while True:
            # A stop request while connecting ends the run once the attempt returns, never within
            # it: OpenCV's binding runs pending handlers (PyObject_Str, for the error of an
            # overload it tried) and crashed the process (SIGSEGV) on the one raised there.
            interrupts.check()
            capture, why = self._try_open()
            try:
                interrupts.check()
            except KeyboardInterrupt:
                if capture is not None:  # opened as the stop came: no output is opened for it
                    capture.release()
                raise
            if capture is not None:
                return capture
            attempt += 1
            if attempt == 1 or policy.exhausted(attempt):  # the address's answer, once or twice
                with interrupts.waiting():  # a socket's connect, up to PROBE_TIMEOUT_S
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

    def _missing_device(self) -> str | None:
        """Why a local camera cannot be there (Linux: its /dev/video node is absent), or None;
        only for OpenCV's own capture (tests pass fakes)."""
        if self._factory is not default_capture or not sys.platform.startswith("linux") \
                or not os.path.isdir("/dev") or (isinstance(self.target, int)
                                                 and self.target >= 100):
            return None  # (OpenCV reads 200 as V4L2's camera 0: a backend plus a camera number)
        node = f"/dev/video{self.target}" if isinstance(self.target, int) else str(self.target)
        if not node.startswith("/dev/video") or os.path.exists(node):
            return None
        present = sorted(glob.glob("/dev/video[0-9]*"))
        return (f"{node} does not exist (cameras here: "
                f"{', '.join(present[:8]) if present else 'none'})")

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
                if frame.packet is not None:  # decoded only now that it is taken, outside the lock
                    frame = self._decoded(frame, frame.packet)
                yield frame
        finally:
            self.close()

    def _decoded(self, frame: Frame, packet: bytes) -> Frame:
        """``frame`` with its JPEG ``packet`` decoded, a damaged one counted in ``stats.errors``."""
        image, why = decode_jpeg_frame(packet)
        if why is not None:
            why += " (damaged in transit, or sent cut short); the stream goes on"
            with self._lock:
                self._stats.errors += 1
        return replace(frame, image=image, error=why, packet=None,
                       jpeg_quality=jpeg.quality(packet))

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
        capture = self._capture  # None: lost, reopened at the loop's next turn
        index = 0
        attempt = 0
        lost_at: float | None = None
        last_frame_at = time.monotonic()  # a failed read may block for the stream's read timeout
        pending_gap: float | None = None
        not_jpeg = 0  # packets in a row that were no JPEG
        error: str | None = None
        try:
            while not self._stop.is_set():
                if capture is None:
                    with self._lock:
                        self._stats.reconnect_attempts += 1
                    capture, why = self._try_open()
                    if capture is None:
                        with self._lock:
                            read = self._stats.read
                        # what the address answers now (after frames: the stream ended there)
                        reason = network_reason(self.target, frames_read=read)
                        why += f": {reason}" if reason else ""
                        attempt, error = self._failed(attempt, f"reopening failed ({why})")
                        if error:
                            break
                        continue
                ok, image = capture.read()
                if not ok or image is None:
                    capture.release()
                    capture, not_jpeg = None, 0  # a run of bad parts is counted per connection
                    if lost_at is None:
                        lost_at = last_frame_at  # the outage began after the last good frame
                        log.warning("%s lost after frame %s; reconnecting", self._describe(),
                                    index - 1 if index else "none")
                    attempt, error = self._failed(attempt, "read failed", probe=True)
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
                if self._packets:
                    data = np.asarray(image).tobytes()
                    # once a packet was a JPEG, one that is not is a frame damaged in transit:
                    # a skipped line saying so, and the stream stays on packets (a review's one
                    # bad part had switched the run to FFmpeg, which checks no frame and keeps
                    # the first frame's size, so later boxes were in the wrong pixels)
                    if data.startswith(b"\xff\xd8"):
                        self._jpeg_packets_seen, not_jpeg = True, 0
                    else:
                        not_jpeg += 1
                    if not_jpeg and (not self._jpeg_packets_seen or not_jpeg >= NOT_JPEG_RUN):
                        # not JFIF after all (or no longer, for this many packets in a row: a
                        # camera reconfigured): FFmpeg decodes
                        log.warning("%s: its MJPEG packets are not JPEG files; FFmpeg decodes "
                                    "them, and a frame damaged in transit may not be noticed",
                                    self._describe())
                        self._packets_allowed = False
                        capture.release()
                        capture, not_jpeg = None, 0
                        continue
                    # decoded when the frame is taken: a stream faster than decoding must not
                    # back up in the socket behind frames that would be dropped (a review's 60
                    # fps 1536-px stream: frames 0.5-1.1 s old, said nowhere)
                    self._put(Frame(index, self.name, None, None, time.time(), pending_gap,
                                    packet=data))
                else:
                    self._put(Frame(index, self.name, image, None, time.time(), pending_gap,
                                    codec=self._codec))
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

    def _failed(self, attempt: int, why: str, probe: bool = False) -> tuple[int, str | None]:
        """Count a failed attempt and wait; returns (attempt, error if we give up). With
        ``probe``, a last failure says what the address answers (a failed reopening says it
        already)."""
        policy = self.options.reconnect
        attempt += 1
        if policy.exhausted(attempt):
            with self._lock:
                read = self._stats.read
            reason = network_reason(self.target, frames_read=read) if probe else None
            error = (f"{self._describe()} lost: gave up after {attempt - 1} reconnect "
                     f"attempt{'s' if attempt - 1 != 1 else ''} ({why}"
                     f"{': ' + reason if reason else ''})")
            with self._lock:  # no longer reconnecting: the health report says it stopped
                self._stats.reconnecting = None
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
