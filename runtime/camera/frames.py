"""Frame preprocessing: a camera frame and the spec in, the model's uint8 input out.

Explicit and pure: frames must be uint8 (OpenCV's BGR order for 3 or 4 channels, or a single
gray channel); anything else raises. Scaling to [0, 1] happens inside the graph.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..core.spec import (AREA_PER_SIDE, AREA_WHEN_ROWS_SHRINK, FLOAT32_MAX,
                         ImageSpec)
from .jpeg import upright


def check_frame(frame: object, name: str = "frame") -> np.ndarray:
    """The frame as an array, or ValueError/TypeError saying what is wrong with it."""
    if frame is None:
        raise ValueError(f"`{name}` is None; expected an image array (height, width[, channels])")
    if isinstance(frame, (str, bytes, bytearray, memoryview)) or hasattr(frame, "__fspath__"):
        what = "an encoded image's bytes" if isinstance(frame, (bytes, bytearray, memoryview)) \
            else f"a path ({str(frame)[:80]!r})"
        raise TypeError(f"`{name}` must be a decoded image array (height, width[, channels]), "
                        f"uint8 BGR as OpenCV decodes; received {what}, which is not read here: "
                        f"decode it first (cv2.imread(path), or cv2.imdecode(np.frombuffer(data, "
                        f"np.uint8), cv2.IMREAD_COLOR)), or score files with `vigil score`")
    array = _from_pil(frame)
    if array is None:
        array = np.asarray(frame)
    if array.dtype == object and array.ndim == 0:  # a generator, a dict, another object
        raise TypeError(f"`{name}` must be an image array (height, width[, channels]) or a PIL "
                        f"image; received {type(frame).__name__} (several frames: give a list "
                        f"of them, list(frames) for a generator)")
    if array.dtype == object and array.size and any(
            np.ndim(cell) >= 2 or _from_pil(cell) is not None for cell in array.reshape(-1)[:8]):
        # a pandas Series or an object array of frames: a container, not a frame of objects
        raise TypeError(f"`{name}` holds frames ({type(frame).__name__} of {array.size} "
                        f"object(s), the first {type(array.reshape(-1)[0]).__name__}), where one "
                        f"frame or a list of them belongs: pass a list of the frames, "
                        f"list(frames), or np.stack(list(frames)) for frames of one size")
    if array.dtype != np.uint8:
        hint = (" (16-bit pixels: (frame >> 8).astype(np.uint8) keeps their top 8 bits, as "
                "`vigil score` reads a 16-bit file; a 12-bit camera's: (frame >> 4).clip(0, 255)"
                ".astype(np.uint8))" if array.dtype == np.uint16 else
                " (floats in [0, 1]: (frame * 255).round().clip(0, 255).astype(np.uint8); in "
                "[0, 255]: frame.round().clip(0, 255).astype(np.uint8))"
                if array.dtype.kind == "f" else
                (" (16-bit levels held as wider integers: (frame >> 8).astype(np.uint8), or "
                 "(frame >> 4).clip(0, 255).astype(np.uint8) for a 12-bit camera's)"
                 if array.size and int(array.max()) > 255 else
                 " (levels 0-255 held as wider integers: frame.astype(np.uint8))")
                if array.dtype.kind in "iu" else "")
        raise TypeError(f"`{name}` must be uint8 (as OpenCV decodes images); received dtype "
                        f"{array.dtype}{hint}")
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        stacked = ""
        if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] > 4:
            # either reading: a review followed the channels-first hint with 4 gray frames, and
            # they were scored as one colour frame without a word
            stacked = (f" (one frame with its channels first, as PyTorch holds images? pass "
                       f"{name}.transpose(1, 2, 0), channels last; {array.shape[0]} gray frames "
                       f"stacked? pass list({name}) or {name}[..., None], one score each)")
        elif array.ndim == 3 and array.shape[2] > 4:
            stacked = (f" (for {array.shape[0]} gray frames stacked, pass a list of frames or an "
                       f"array (n, height, width, 1))")
        raise ValueError(f"`{name}` must have shape (height, width) or (height, width, 1|3|4); "
                         f"received {array.shape}{stacked}")
    if array.shape[0] < 2 or array.shape[1] < 2:
        raise ValueError(f"`{name}` must be at least 2x2 pixels; received {array.shape}")
    return array


EXIF_ORIENTATION = 0x0112  # the EXIF tag PIL's getexif() gives the orientation under


def _from_pil(frame: Any) -> np.ndarray | None:
    """A PIL image as OpenCV holds it (BGR, or gray), or None for anything else (PIL is not
    imported: an image is told by its attributes). PIL holds RGB: read as an array, its red and
    blue would swap (19 of 30 normal tile frames flagged)."""
    mode = getattr(frame, "mode", None)
    if not isinstance(mode, str) or not callable(getattr(frame, "convert", None)) \
            or not hasattr(frame, "getbands"):
        return None
    if mode in ("1", "L", "LA"):
        array = np.asarray(frame.convert("L"))
    elif mode.startswith("I") or mode == "F":  # 16- and 32-bit gray: the dtype check says what
        array = np.asarray(frame)                 # to do
    else:
        array = np.ascontiguousarray(np.asarray(frame.convert("RGB"))[..., ::-1])  # RGB(A), P...
    # turned as its EXIF orientation says, as cv2.imread (and `vigil score`) turns the file
    try:
        turn = int(frame.getexif().get(EXIF_ORIENTATION, 1))
    except (AttributeError, TypeError, ValueError, OSError):
        turn = 1
    return upright(array, turn) if 2 <= turn <= 8 else array


GRAY_SAMPLE_STEP = 7  # every 7th row and column: enough pixels to tell, at 2 % of the work
GRAY_CHECKS = 10  # the first frames looked at for gray pictures given to a colour model
# channels this close are gray: a gray video's frames (MP4, XVID, MJPG) decode 2-3 levels apart
GRAY_TOLERANCE = 4
GRAY_FOR_COLOR = ("frames are gray but the model was trained on colour ({color}) frames: colour "
                  "defects are invisible in them and scores shift; score the camera's colour "
                  "frames, or train a model on gray ones")


COLOR_FOR_GRAY = ("frames are in colour but the model was trained on gray frames: they are read "
                  "as gray, so defects seen only in colour are invisible; score the camera's gray "
                  "frames, or train a model on colour ones (vigil train image ... --color bgr)")


SWAPPED_FOR_BGR = ("frames look like RGB where the runtime takes BGR (OpenCV's order): their mean "
                   "blue and red levels ({given}) are the training frames' ({trained}) with red "
                   "and blue exchanged, so every colour is read wrong and scores shift; frames "
                   "from PIL, imageio or most libraries but OpenCV are RGB: give "
                   "frame[..., ::-1] (or cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))")
# levels beyond the training images' range of blue less red before a frame is called exchanged
SWAP_MARGIN = 12.0


def swapped_channels(frame: np.ndarray, spec: ImageSpec) -> str | None:
    """Why a colour frame looks given in RGB order where the runtime takes BGR, or None: its mean
    blue less its mean red lies outside every training image's range (by ``SWAP_MARGIN``) and,
    exchanged, inside it. None where the model records no range, or where the range holds both
    (a product made in red and in blue, a gray-ish one). Looked at for arrays a Python caller
    hands in; frames Vigil decodes itself are in OpenCV's order."""
    trained, spread = spec.channel_means_bgr, spec.blue_minus_red
    if (trained is None or spread is None or frame.ndim != 3 or frame.shape[2] not in (3, 4)
            or not frame.size):
        return None
    sample = frame[::GRAY_SAMPLE_STEP, ::GRAY_SAMPLE_STEP, :3].reshape(-1, 3)
    b, _, r = sample.mean(axis=0, dtype=np.float64)
    low, high = spread[0] - SWAP_MARGIN, spread[1] + SWAP_MARGIN
    if low <= b - r <= high or not low <= r - b <= high:
        return None
    return SWAPPED_FOR_BGR.format(given=f"B {b:.0f}, R {r:.0f}",
                                  trained=f"B {trained[0]:.0f}, R {trained[2]:.0f}")


def is_gray_picture(frame: np.ndarray, step: int = GRAY_SAMPLE_STEP) -> bool:
    """One channel, or three within ``GRAY_TOLERANCE`` (a gray JPEG or video decoded as colour),
    on every ``step``-th row and column (training looks at every pixel: colour in features
    thinner than a step would be missed). A gray
    frame given to a colour model hides colour defects and shifts scores (9 of the demo video's
    90 frames decided otherwise)."""
    if frame.ndim == 2 or frame.shape[2] == 1:
        return True
    sample = frame[::step, ::step, :3].astype(np.int16)
    return bool(np.abs(sample[..., 0] - sample[..., 1]).max() <= GRAY_TOLERANCE
                and np.abs(sample[..., 1] - sample[..., 2]).max() <= GRAY_TOLERANCE)


def color_mismatch(frame: np.ndarray, spec: ImageSpec) -> str | None:
    """Why a frame's colour does not suit the model (gray for a colour model, colour for a gray
    one), or None (also for an array that is no frame: converting it says why)."""
    if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] in (1, 3, 4))) \
            or frame.size == 0:
        return None
    gray = is_gray_picture(frame)
    if spec.color != "gray" and gray:
        return GRAY_FOR_COLOR.format(color=spec.color)
    if spec.color == "gray" and not gray:
        return COLOR_FOR_GRAY
    return None


ASPECT_TOLERANCE = 1.05  # frames up to 5 % wider or narrower than the training ones pass


def aspect_mismatch(frame: np.ndarray, spec: ImageSpec) -> str | None:
    """Why a frame's shape does not suit the model (its width / height is far from the training
    frames'), or None (also for a model that does not record them: artifacts before 0.3)."""
    recorded = spec.frame_aspect
    if recorded is None or frame.ndim < 2 or not frame.shape[0] or not frame.shape[1]:
        return None
    low, high = recorded
    aspect = frame.shape[1] / frame.shape[0]
    if low / ASPECT_TOLERANCE <= aspect <= high * ASPECT_TOLERANCE:
        return None
    trained = f"{low:.2f}" if abs(high - low) < 0.005 else f"{low:.2f}-{high:.2f}"
    return (f"frames are {frame.shape[1]}x{frame.shape[0]} (width / height {aspect:.2f}) but the "
            f"model was trained on frames of width / height {trained}: each frame is stretched to "
            f"the model's input, so its texture is squeezed otherwise than in training and scores "
            f"shift (normal 2:1 frames on a model trained on square ones: 30 of 30 flagged); "
            f"crop the frames to the training shape, or train on frames as this camera gives them")


SMALL_FRAME = 0.6  # frames whose shorter side is under this share of the training images' least


def size_mismatch(frame: np.ndarray, spec: ImageSpec) -> str | None:
    """Why a frame is too small for the model (its shorter side far under the training
    images'), or None (also for a model that does not record them: artifacts before 0.3)."""
    recorded = spec.frame_side
    if recorded is None or frame.ndim < 2 or not frame.shape[0] or not frame.shape[1]:
        return None
    side = min(frame.shape[:2])
    if side >= SMALL_FRAME * recorded[0]:
        return None
    return (f"frames are {frame.shape[1]}x{frame.shape[0]}, their shorter side {side} px against "
            f"at least {recorded[0]} px in training: enlarged to the model's input, their "
            f"texture is blurred as no training image's was and normal frames score high (a "
            f"model of 300-px cells flagged 29 % of good 100-px ones); give the camera's full "
            f"resolution, or train on frames of this size")


# JPEG frames under this quality, and this far under the training images' (5th percentile),
# are unlike training. The default model's normal test images re-encoded (three sets, one model
# each; docs/quality.md, "Frames compressed otherwise than in training"): at quality 80 and
# over, at most 5 of 238 decisions changed; at 70, 4 of 100 on ELPV mono cells and 14 of 238
# magnetic tiles; at 50, 76 of 100 and 66 of 238.
LOW_JPEG_QUALITY = 75
JPEG_QUALITY_MARGIN = 10


def compression_mismatch(jpeg_quality: int | None, spec: ImageSpec) -> str | None:
    """Why a frame decoded from a JPEG of ``jpeg_quality`` is compressed harder than the
    training images were, or None (also when the quality is unknown, and for a model that does
    not record the training images': artifacts before 2026-12-07)."""
    recorded = spec.jpeg_quality
    if recorded is None or jpeg_quality is None:
        return None
    if jpeg_quality >= LOW_JPEG_QUALITY or jpeg_quality >= recorded[0] - JPEG_QUALITY_MARGIN:
        return None
    trained = ("lossless images (or JPEGs of quality 100)" if recorded[0] >= 99 else
               f"JPEGs of quality {recorded[0]} or more" if recorded[0] < recorded[1] else
               f"JPEGs of quality {recorded[0]}")
    return (f"frames are JPEGs of quality {jpeg_quality}, where the model was trained on "
            f"{trained}: their compression blocks and lost fine texture score as defects "
            f"(the default model's normal images rejected: ELPV mono cells 1 % as PNG, 5 % as "
            f"JPEGs of quality 70, 77 % at 50; magnetic tiles 4 % as read (JPEG 95), 10 % and "
            f"32 %); send frames at JPEG quality 80 or more, or train on frames compressed as "
            f"these are")


# video codecs that lose detail between frames (FOURCCs as OpenCV's FFmpeg reports them, in
# upper case; the common ones, not every one): a frame decoded from them is unlike any
# training image, unless those were frames of such video (which no record tells). MJPG is
# judged frame by frame, by its JPEG quality.
LOSSY_VIDEO_CODECS = frozenset({
    "H264", "AVC1", "X264", "HEVC", "HEV1", "HVC1", "H265", "X265", "FMP4", "MP4V", "XVID",
    "DIVX", "DX50", "MP42", "MP43", "DIV3", "DIV4", "VP80", "VP90", "VP08", "VP09", "AV01",
    "MPG1", "MPG2", "MPEG", "PIM1", "WMV1", "WMV2", "WMV3", "WVC1", "THEO", "H263", "FLV1",
    "VP6F"})


def lossy_codec(codec: str | None, live: bool = False) -> str | None:
    """What a frame decoded from video of ``codec`` (a FOURCC) may score like, when that codec
    is one that loses detail between frames (``LOSSY_VIDEO_CODECS``); else None. ``live``: a
    camera's stream (RTSP's H.264), whose codec is the camera's, not a recording's choice."""
    if codec is None or codec.strip().upper() not in LOSSY_VIDEO_CODECS:
        return None
    said = (f"frames are decoded from {codec.strip()} video, a codec that loses fine texture and "
            f"adds block edges: if the training images were not frames of such video, normal "
            f"frames may score higher than they did")
    if live:
        return (said + "; check the threshold on this stream's good parts (vigil eval on frames "
                "saved from it), or train on frames saved from it")
    return (said + " (the default model's normal images as an mp4v video OpenCV wrote: 83 % of "
            "ELPV mono cells rejected against 1 % as PNG, 9 % of magnetic tiles against 4 %); "
            "record frames as PNG or as MJPEG of quality 80 or more, or train on frames "
            "decoded from this codec")


# What a frame is looked at for before it is scored, each said once a run (or per detector):
# gray for colour and colour for gray, another shape, a much smaller size; and, for arrays a
# Python caller hands in, RGB given for BGR
FRAME_CHECKS = (color_mismatch, aspect_mismatch, size_mismatch)
# each check's name on a result line (``unlike_training``)
CHECK_NAMES = {color_mismatch: "colour", aspect_mismatch: "aspect", size_mismatch: "size"}
ARRAY_CHECKS = (*FRAME_CHECKS, swapped_channels)
# the names of the checks of arrays handed in (vigil serve's answers, the Python API)
ARRAY_CHECK_NAMES = {**CHECK_NAMES, swapped_channels: "channel_order"}


def to_model_input(frame: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """Convert colors and resize one frame to the model's (height, width, channels) uint8 input."""
    return convert_frame(frame, spec.height, spec.width, spec.color, spec.interpolation)


def convert_frame(frame: np.ndarray, height: int, width: int, color: str,
                  interpolation: str = AREA_PER_SIDE) -> np.ndarray:
    """The one preprocessing of frames, used in training and at run time alike.

    ``color`` is the model's order (``gray``, ``bgr`` or ``rgb``); frames arrive as OpenCV
    decodes them (gray, BGR or BGRA). The frame is stretched to (height, width), by
    ``interpolation`` (the artifact's: ``ImageSpec.interpolation``).
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
        array = _resize(array, height, width, interpolation)
    if array.ndim == 2:
        array = array[:, :, None]
    return np.ascontiguousarray(array)


def _resize(array: np.ndarray, height: int, width: int, interpolation: str) -> np.ndarray:
    """``array`` resized to (height, width) by the artifact's ``interpolation``."""
    rows, columns = array.shape[:2]
    if interpolation == AREA_WHEN_ROWS_SHRINK:  # artifacts before 0.3
        return cv2.resize(array, (width, height),
                          interpolation=cv2.INTER_AREA if rows > height else cv2.INTER_LINEAR)
    if (rows > height) != (columns > width) and rows != height and columns != width:
        # one side shrinks, the other grows: the shrinking side alone first, averaged
        if rows > height:
            array = cv2.resize(array, (columns, height), interpolation=cv2.INTER_AREA)
        else:
            array = cv2.resize(array, (width, rows), interpolation=cv2.INTER_AREA)
        return cv2.resize(array, (width, height), interpolation=cv2.INTER_LINEAR)
    shrinks = rows > height or columns > width
    return cv2.resize(array, (width, height),
                      interpolation=cv2.INTER_AREA if shrinks else cv2.INTER_LINEAR)


def map_to_frame(anomaly_map: np.ndarray, frame_shape: tuple[int, ...]) -> np.ndarray:
    """Resize a model-resolution anomaly map back to the frame's (height, width)."""
    height, width = frame_shape[:2]
    return cv2.resize(np.asarray(anomaly_map, dtype=np.float32), (width, height),
                      interpolation=cv2.INTER_LINEAR)


def regions(anomaly_map: np.ndarray, threshold: float, min_area: int = 4) -> list[dict]:
    """Bounding boxes of connected regions of the map above ``threshold``, largest first, each
    with its peak's value and place (``peak_x``, ``peak_y``: where the defect most likely is, as
    a box around a faint region can be many times the defect)."""
    mask = (np.asarray(anomaly_map) > threshold).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    boxes = []
    for label in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[label])
        if area >= min_area:  # the region's own peak: its box may hold part of another region
            box = np.asarray(anomaly_map)[y:y + h, x:x + w]
            inside = np.where(labels[y:y + h, x:x + w] == label, box, -np.inf)
            at = np.unravel_index(int(np.argmax(inside)), inside.shape)
            boxes.append({"x": x, "y": y, "w": w, "h": h, "area": area,
                          "peak": float(inside[at]), "peak_x": x + int(at[1]),
                          "peak_y": y + int(at[0])})
    return sorted(boxes, key=lambda b: -b["area"])


MEDIAN_STEP = 4


def frame_boxes(anomaly_map: np.ndarray, pixel_threshold: float, anomaly: bool,
                found: list[dict] | None = None) -> list[dict]:
    """The boxes a frame decided ``anomaly`` carries: its regions above the pixel threshold
    (``found``, when ``regions`` already gave them), or, when none is (an image threshold set
    below what the pixel threshold marks), the region around its map's peak (pixels above
    halfway from the map's median to its peak), marked ``below_pixel_threshold`` when its peak
    is, so that a reject always says where. A normal frame has none."""
    if not anomaly:
        return []
    found = regions(anomaly_map, pixel_threshold) if found is None else found
    if found:
        return found
    values = np.asarray(anomaly_map, dtype=np.float32)
    finite = np.isfinite(values)
    if not finite.all():  # rare: the common case skips these whole-frame passes
        if not finite.any():
            return []
        # an infinite pixel (a reading beyond float32) is the peak; NaN marks nothing
        values = np.where(np.isnan(values), np.min(values[finite]), values)
        values = np.clip(values, -FLOAT32_MAX, FLOAT32_MAX)
    # the median of a large map from every MEDIAN_STEP-th pixel each way (a 1080p frame's map:
    # 130,000 of 2 million pixels), a fraction of the frame time of the whole
    step = MEDIAN_STEP if values.size > MEDIAN_STEP ** 2 * 1024 else 1
    peak, middle = float(values.max()), float(np.median(values[::step, ::step]))
    if not peak > middle:
        return []  # a flat map points nowhere
    around = regions(values, middle + (peak - middle) / 2, min_area=1)
    strongest = max(around, key=lambda box: box["peak"])
    return [{**strongest, "below_pixel_threshold": strongest["peak"] <= pixel_threshold}]


def overlay(frame: np.ndarray, anomaly_map: np.ndarray, spec: ImageSpec, boxes: list[dict],
            label: str, mask: np.ndarray | None = None,
            pixel_threshold: float | None = None) -> np.ndarray:
    """A BGR picture a person reads at a glance: the frame, the anomaly map coloured only where it
    is above the pixel threshold, a colour bar on the right, regions boxed in red, the ground
    truth ``mask`` (if given) outlined in green, and ``label`` in a band above the frame, at a
    size that fits its width."""
    array = check_frame(frame)
    if array.ndim == 2 or array.shape[2] == 1:
        base = cv2.cvtColor(array.reshape(array.shape[:2]), cv2.COLOR_GRAY2BGR)
    elif array.shape[2] == 4:
        base = cv2.cvtColor(array, cv2.COLOR_BGRA2BGR)
    else:
        base = array.copy()
    height, width = base.shape[:2]
    full = map_to_frame(anomaly_map, base.shape) if anomaly_map.shape != base.shape[:2] else anomaly_map
    low, high = _heat_range(spec, pixel_threshold)
    heat = cv2.applyColorMap(_heat_level(full, low, high), cv2.COLORMAP_JET)
    above = full > low
    picture = base.copy()
    picture[above] = cv2.addWeighted(base, 0.45, heat, 0.55, 0)[above]
    line = max(1, round(min(height, width) / 200))
    if mask is not None and np.any(mask):
        contours, _ = cv2.findContours(np.asarray(mask, np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(picture, contours, -1, (0, 255, 0), line)
    for box in boxes:
        cv2.rectangle(picture, (box["x"], box["y"]), (box["x"] + box["w"], box["y"] + box["h"]),
                      (0, 0, 255), line)
    picture = np.hstack([picture, _colour_bar(height, low, high)])
    return np.vstack([_label_band(label, picture.shape[1]), picture])


_FONT = cv2.FONT_HERSHEY_SIMPLEX
_INK = (255, 255, 255)
_PANEL = (40, 40, 40)


def _heat_range(spec: ImageSpec, pixel_threshold: float | None = None) -> tuple[float, float]:
    """Colours run from the pixel threshold (blue; ``pixel_threshold`` where one is set apart
    from the artifact's) to three times its height above the normal pixels' mean (red), or the
    brightest normal pixel if higher. (Up to twice the threshold, the feature model's defects,
    1-16 above a threshold of 29 over a mean of 23, were all blue.)"""
    low = float(spec.pixel_threshold.value if pixel_threshold is None else pixel_threshold)
    rise = max(low - float(spec.map_stats.mean), abs(low) * 1e-3, 1e-6)
    return low, max(float(spec.map_stats.max), low + 2 * rise)


def _heat_level(values: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.clip((values - low) / (high - low) * 255, 0, 255).astype(np.uint8)


def _fitted_scale(text: str, width: int, largest: float = 0.6, smallest: float = 0.3) -> float:
    """The font scale at which ``text`` fits ``width`` pixels (never above ``largest``)."""
    (text_width, _), _ = cv2.getTextSize(text, _FONT, 1.0, 1)
    return float(np.clip(width / max(text_width, 1), smallest, largest))


def _label_band(label: str, width: int, largest: float = 0.6) -> np.ndarray:
    """``label`` on a band as wide as the picture; the band's height does not depend on the label,
    so consecutive frames of a video keep one size."""
    scale = _fitted_scale(label, width - 8, largest)
    (_, tallest), baseline = cv2.getTextSize("Ag", _FONT, largest, 1)
    (_, text_height), _ = cv2.getTextSize(label, _FONT, scale, 1)
    band = np.full((tallest + baseline + 8, width, 3), _PANEL, np.uint8)
    cv2.putText(band, label, (4, 4 + (tallest + text_height) // 2), _FONT, scale, _INK, 1,
                cv2.LINE_AA)
    return band


def _colour_bar(height: int, low: float, high: float) -> np.ndarray:
    """A vertical colour bar for the map's colours, labeled with the values at its ends and the
    middle (bottom: the pixel threshold, below which nothing is coloured)."""
    ticks = [f"{v:.3g}" for v in (high, (low + high) / 2, low)]
    scale = min(_fitted_scale(max(ticks, key=len), 40), max(0.3, height / 600))
    (text_width, text_height), _ = cv2.getTextSize(max(ticks, key=len), _FONT, scale, 1)
    bar_width = max(8, height // 30)
    panel = np.full((height, bar_width + text_width + 10, 3), _PANEL, np.uint8)
    levels = np.linspace(255, 0, height).astype(np.uint8)[:, None].repeat(bar_width, axis=1)
    panel[:, 2:2 + bar_width] = cv2.applyColorMap(levels, cv2.COLORMAP_JET)[:, :bar_width]
    for text, y in zip(ticks, (text_height + 1, (height + text_height) // 2, height - 2)):
        cv2.putText(panel, text, (bar_width + 6, y), _FONT, scale, _INK, 1, cv2.LINE_AA)
    return panel
