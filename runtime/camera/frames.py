"""Frame preprocessing: a camera frame and the spec in, the model's uint8 input out.

Explicit and pure: frames must be uint8 (OpenCV's BGR order for 3 or 4 channels, or a single
gray channel); anything else raises. Scaling to [0, 1] happens inside the graph.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core.spec import ImageSpec


def check_frame(frame: object, name: str = "frame") -> np.ndarray:
    """The frame as an array, or ValueError/TypeError saying what is wrong with it."""
    if frame is None:
        raise ValueError(f"`{name}` is None; expected an image array (height, width[, channels])")
    array = np.asarray(frame)
    if array.dtype != np.uint8:
        raise TypeError(f"`{name}` must be uint8 (as OpenCV decodes images); received dtype "
                        f"{array.dtype}")
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ValueError(f"`{name}` must have shape (height, width) or (height, width, 1|3|4); "
                         f"received {array.shape}")
    if array.shape[0] < 2 or array.shape[1] < 2:
        raise ValueError(f"`{name}` must be at least 2x2 pixels; received {array.shape}")
    return array


def to_model_input(frame: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """Convert colors and resize one frame to the model's (height, width, channels) uint8 input."""
    return convert_frame(frame, spec.height, spec.width, spec.color)


def convert_frame(frame: np.ndarray, height: int, width: int, color: str) -> np.ndarray:
    """The one preprocessing of frames, used in training and at run time alike.

    ``color`` is the model's order (``gray``, ``bgr`` or ``rgb``); frames arrive as OpenCV
    decodes them (gray, BGR or BGRA). The frame is stretched to (height, width).
    """
    array = check_frame(frame)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if color == "gray":
        if array.ndim == 3:
            code = cv2.COLOR_BGRA2GRAY if array.shape[2] == 4 else cv2.COLOR_BGR2GRAY
            array = cv2.cvtColor(array, code)
    else:
        if array.ndim == 2:
            array = cv2.cvtColor(array, cv2.COLOR_GRAY2BGR)
        elif array.shape[2] == 4:
            array = cv2.cvtColor(array, cv2.COLOR_BGRA2BGR)
        if color == "rgb":
            array = cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
    if array.shape[:2] != (height, width):
        interpolation = cv2.INTER_AREA if array.shape[0] > height else cv2.INTER_LINEAR
        array = cv2.resize(array, (width, height), interpolation=interpolation)
    if array.ndim == 2:
        array = array[:, :, None]
    return np.ascontiguousarray(array)


def map_to_frame(anomaly_map: np.ndarray, frame_shape: tuple[int, ...]) -> np.ndarray:
    """Resize a model-resolution anomaly map back to the frame's (height, width)."""
    height, width = frame_shape[:2]
    return cv2.resize(np.asarray(anomaly_map, dtype=np.float32), (width, height),
                      interpolation=cv2.INTER_LINEAR)


def regions(anomaly_map: np.ndarray, threshold: float, min_area: int = 4) -> list[dict]:
    """Bounding boxes of connected regions of the map above ``threshold``, largest first."""
    mask = (np.asarray(anomaly_map) > threshold).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    boxes = []
    for label in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[label])
        if area >= min_area:
            peak = float(np.max(anomaly_map[y:y + h, x:x + w]))
            boxes.append({"x": x, "y": y, "w": w, "h": h, "area": area, "peak": peak})
    return sorted(boxes, key=lambda b: -b["area"])


def overlay(frame: np.ndarray, anomaly_map: np.ndarray, spec: ImageSpec, boxes: list[dict],
            label: str) -> np.ndarray:
    """A BGR picture of the frame with the anomaly map as a heatmap and the regions boxed."""
    array = check_frame(frame)
    if array.ndim == 2 or array.shape[2] == 1:
        base = cv2.cvtColor(array.reshape(array.shape[:2]), cv2.COLOR_GRAY2BGR)
    elif array.shape[2] == 4:
        base = cv2.cvtColor(array, cv2.COLOR_BGRA2BGR)
    else:
        base = array.copy()
    full = map_to_frame(anomaly_map, base.shape) if anomaly_map.shape != base.shape[:2] else anomaly_map
    # From the median normal pixel (blue) to the brightest normal pixel or twice the threshold.
    bottom = min(spec.map_stats.p50, spec.pixel_threshold.value)
    top = max(spec.map_stats.max, spec.pixel_threshold.value * 2, bottom + 1e-6)
    heat = cv2.applyColorMap(np.clip((full - bottom) / (top - bottom) * 255, 0, 255
                                     ).astype(np.uint8), cv2.COLORMAP_JET)
    blended = cv2.addWeighted(base, 0.6, heat, 0.4, 0)
    for box in boxes:
        cv2.rectangle(blended, (box["x"], box["y"]), (box["x"] + box["w"], box["y"] + box["h"]),
                      (0, 0, 255), 2)
    cv2.putText(blended, label, (5, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 2)
    cv2.putText(blended, label, (5, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    return blended
