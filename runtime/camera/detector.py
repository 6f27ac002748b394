"""The frame detector: score camera frames, predict defects, locate them."""

from __future__ import annotations

import logging
from typing import Any, Sequence, Union

import numpy as np

from ..core.artifact import Artifact
from ..core.detector import Detector
from ..core.spec import ArtifactError, ImageSpec
from ..core.thresholds import finite_number, over_threshold
from .frames import (ARRAY_CHECK_NAMES, ARRAY_CHECKS, FRAME_CHECKS, check_frame, frame_boxes,
                     map_to_frame, regions, to_model_input)

log = logging.getLogger("vigil")

MAX_BATCH = 32
# one frame (an H x W x C or H x W array), several (a list), or a 4-D uint8 batch
Frames = Union[np.ndarray, Sequence[np.ndarray]]


class ImageDetector(Detector):
    """Scores frames with a Vigil image artifact.

    ``score(frames)`` gives one float per frame (higher is more anomalous), ``predict`` compares
    it with ``threshold``; ``locate`` returns the anomaly map at frame size and the boxes `vigil
    score` gives. Frames are uint8 arrays as OpenCV decodes them (BGR or gray), of any
    size, or PIL images (converted from RGB): they are converted and resized as the artifact says.
    An empty batch gives empty scores and maps.
    """

    def __init__(self, artifact: Artifact) -> None:
        super().__init__(artifact, MAX_BATCH)
        spec = artifact.spec
        if not isinstance(spec, ImageSpec):
            raise TypeError(f"`artifact` must be an image artifact; {str(artifact.path)!r} is a "
                            f"sensor artifact: vigil.load('MODEL.onnx') returns the detector of "
                            f"its kind")
        self.spec: ImageSpec = spec
        self._pixel_threshold = float(self.spec.pixel_threshold.value)
        self._outputs = [self.spec.score_output, self.spec.map_output]
        self._warned: set = set()  # the mismatches said (colour, aspect): each is said once

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) the model sees."""
        return self.spec.input_shape

    @property
    def pixel_threshold(self) -> float:
        return self._pixel_threshold

    @pixel_threshold.setter
    def pixel_threshold(self, value: float) -> None:
        self._pixel_threshold = finite_number(value, "pixel_threshold")

    def _settings(self) -> dict:
        return {**super()._settings(), "pixel_threshold": self._pixel_threshold}

    def score(self, frames: Frames) -> np.ndarray:
        """Scores of one frame (an array) or several (a list, or a 4-D uint8 batch)."""
        return self.infer(frames)[0]

    def __repr__(self) -> str:
        height, width, channels = self.input_shape
        return (f"ImageDetector({str(self.path)!r}, input={height}x{width}x{channels} "
                f"{self.spec.color}, threshold={self._threshold:.6g}, pixel_threshold="
                f"{self._pixel_threshold:.6g}, precision={self.spec.precision!r}, "
                f"providers={self.providers})")

    def infer(self, frames: Frames, *, decoded: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(scores (n,), anomaly maps at model resolution (n, height, width)); ``decoded``: as
        ``prepare``."""
        batch = self.prepare(frames, decoded=decoded)
        return self.run_prepared(batch)

    def prepare(self, frames: Frames, *, decoded: bool = False) -> np.ndarray:
        """Model input (n, height, width, channels) uint8 for one frame or several. Frames are
        looked at for what does not suit the model (each said once); ``decoded``: read by
        OpenCV here (in its BGR order), so not looked at for RGB order."""
        items: Sequence[Any]  # each frame as given: an array, or a PIL image
        if isinstance(frames, np.ndarray) and frames.ndim == 4:
            items = list(frames)
        elif not isinstance(frames, (list, tuple)):
            items = [frames]
        elif frames and isinstance(frames[0], (list, tuple)) and frames[0] and (
                isinstance(frames[0][0], (list, tuple))  # a colour frame's rows of pixels
                or all(isinstance(v, (int, float, np.number)) for v in frames[0])):  # a gray one's
            # frame.tolist(): one frame's rows, read as frames of one row each
            raise TypeError("`frames` is a nested list: one frame as a list of its rows (as "
                            "frame.tolist() gives)? give each frame as an array: "
                            "np.asarray(frame, dtype=np.uint8)")
        else:
            items = frames
        if not len(items):  # an empty batch scores nothing, as the sensor detector's does
            return np.empty((0, *self.input_shape), dtype=np.uint8)
        checked = [check_frame(f, "frame" if len(items) == 1 else f"frames[{k}]")
                   for k, f in enumerate(items)]
        for check in FRAME_CHECKS if decoded else ARRAY_CHECKS:  # each said once
            if check in self._warned:
                continue
            mismatch = next((m for m in (check(f, self.spec) for f in checked)
                             if m is not None), None)
            if mismatch is not None:
                self._warned.add(check)
                log.warning("%s: %s (said once per detector)", self.path.name, mismatch)
        return np.stack([to_model_input(f, self.spec) for f in checked])

    def run_prepared(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the graph on already-prepared input (n, height, width, channels) uint8."""
        expected = self.input_shape
        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[1:] != expected:
            raise ValueError(f"prepared input must be uint8 with shape (n, {expected[0]}, "
                             f"{expected[1]}, {expected[2]}); received {batch.dtype} {batch.shape}")
        score_parts = [np.empty(0, np.float32)]
        map_parts = [np.empty((0, *expected[:2]), np.float32)]
        for start in range(0, len(batch), self._max_batch):
            chunk = batch[start:start + self._max_batch]
            score, amap = self._session.run(self._outputs, {self.spec.input_name: chunk})
            if score.size != len(chunk) or amap.size != len(chunk) * expected[0] * expected[1]:
                raise ArtifactError(f"model file {str(self.path)!r} returned {score.size} scores "
                                    f"and {amap.size} map values for {len(chunk)} frames; "
                                    f"expected one score and one {expected[0]}x{expected[1]} map "
                                    f"each (its graph was changed after export)")
            score_parts.append(score.reshape(-1))
            map_parts.append(amap.reshape(len(score), expected[0], expected[1]))
        scores = np.concatenate(score_parts).astype(np.float64)
        # a NaN score (a graph broken after export) is as anomalous as a score can say, as the
        # sensor detector's is: a frame is never passed because its score could not be compared
        return np.where(np.isnan(scores), np.inf, scores), np.concatenate(map_parts)

    def unlike_training(self, frame: np.ndarray) -> dict[str, str]:
        """How one frame is unlike the training frames, as `vigil score` marks its lines
        (``colour``, ``aspect``, ``size``; ``channel_order`` for RGB given for BGR), each with why
        it shifts the score; empty for a frame like them. Every call looks (``score`` says each
        kind once per detector), so a service can mark each frame (review u2)."""
        checked = check_frame(frame)
        found: dict[str, str] = {}
        for check in ARRAY_CHECKS:
            why = check(checked, self.spec)
            if why is not None:
                found[ARRAY_CHECK_NAMES[check]] = why
        return found

    def locate(self, frame: np.ndarray, anomaly_map: np.ndarray | None = None,
               score: float | None = None) -> tuple[np.ndarray, list[dict]]:
        """(anomaly map at the frame's size, boxes) of one frame, the boxes `vigil score` gives:
        none for a frame decided normal (score <= ``threshold``); for a reject, its regions above
        ``pixel_threshold`` or, where none is, the region around its map's peak, marked
        ``below_pixel_threshold``. ``anomaly_map``: that frame's map from ``infer`` (2-D), if
        already computed, with its ``score``; a map given without a score gives the regions
        above ``pixel_threshold`` whatever the decision."""
        if getattr(frame, "ndim", 0) == 4 or (isinstance(frame, (list, tuple)) and frame
                                               and getattr(frame[0], "ndim", 0) >= 2):
            raise ValueError(f"`frame` must be one frame: locate takes one at a time (a batch's "
                             f"maps would be cut to one shape); received "
                             f"{'shape ' + str(frame.shape) if hasattr(frame, 'shape') else 'a list'}"
                             f"; loop over the frames (for frame in frames: detector.locate(frame))")
        frame = check_frame(frame)  # one frame: a batch's maps would be cut to its shape
        if score is not None:
            given: Any = score
            if np.ndim(given) == 1 and np.size(given) == 1:
                given = np.asarray(given).reshape(())  # score(frame) of one frame, as it comes
            if (np.ndim(given) != 0 or isinstance(given, (bool, np.bool_, str, bytes))
                    or not np.issubdtype(np.asarray(given).dtype, np.number)):
                raise TypeError(f"`score` must be this frame's score, one number (as "
                                f"detector.score(frame)[0]); received "
                                f"{type(score).__name__} {str(score)[:80]}")
            score = float(given)
        if anomaly_map is None:
            scores, maps = self.infer(frame)
            anomaly_map, score = maps[0], float(scores[0])
        anomaly_map = np.asarray(anomaly_map)
        if anomaly_map.ndim == 3 and anomaly_map.shape[0] == 1:
            anomaly_map = anomaly_map[0]  # infer(frame)[1] of one frame
        if anomaly_map.ndim != 2 or anomaly_map.dtype.kind != "f" or not anomaly_map.size:
            raise ValueError(f"`anomaly_map` must be one frame's map, a 2-D float array (as "
                             f"infer(frame)[1][0]); received shape {anomaly_map.shape}, dtype "
                             f"{anomaly_map.dtype}")
        full = map_to_frame(anomaly_map, frame.shape)
        found = regions(full, self._pixel_threshold)
        if score is None:
            return full, found
        flagged = over_threshold(score, self.threshold)
        return full, frame_boxes(full, self._pixel_threshold, flagged, found)
