"""The artifact's metadata schema: what a Vigil .onnx file says about itself.

A Vigil artifact is one ONNX file with one metadata entry, ``vigil``, holding a JSON object.
This module defines that object as frozen dataclasses and converts it to and from plain dicts,
validating every field. Reading it from a file lives in ``vigil.runtime.core.artifact``; writing it into a
file lives in ``vigil.export.package``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

METADATA_KEY = "vigil"
FLOAT32_MAX = 3.4028234663852886e38  # the largest float32: the models' inputs hold no more
SIDECAR_SUFFIX = ".vigil.npz"  # training's calibration data beside NAME.keras: NAME.vigil.npz
MAX_THREADS = 1024  # inference threads: more than the largest machines have cores
SCHEMA_VERSION = 6           # the newest this runtime reads
ADAPTIVE_SCHEMA_VERSION = 2  # written by sensor artifacts with an adaptive threshold or running
                             # normalization (older runtimes would ignore them and alarm
                             # differently, so they refuse)
QUANTILE_SCHEMA_VERSION = 3  # written by sensor artifacts whose adaptive threshold follows a
                             # quantile of the recent scores (a 2 runtime would misread it)
LIKELIHOOD_SCHEMA_VERSION = 4  # written by sensor artifacts with the anomaly-likelihood alarm
                               # (a 3 runtime would ignore it and miss its alarms)
LEVEL_FLOOR_SCHEMA_VERSION = 5  # written when the likelihood also floors the threshold at the
                                # stream's long-run mean score (a 4 runtime would alarm more)
SPREAD_SCHEMA_VERSION = 6  # written when running normalization records the training rows' spread
                           # (a 5 runtime would map onto the floored std and alarm more)

SENSOR = "sensor"
IMAGE = "image"


def sidecar_path(model_path: str | Path) -> Path:
    """Where training keeps a Keras model's calibration data: NAME.vigil.npz beside NAME.keras."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + SIDECAR_SUFFIX)


class ArtifactError(ValueError):
    """A model file is unreadable, not a Vigil artifact, or describes itself inconsistently."""


# The largest counts an artifact may hold: windows, strides, gaps, holds and short averages in
# rows or windows; the adaptive threshold's and the likelihood's histories; the running
# normalization's time constant. Training refuses larger ones, so it never writes a model whose
# artifact this reader would refuse.
MAX_ROWS = 100_000
MAX_HISTORY = 10_000_000
MAX_NORMALIZATION = 100_000_000
# the longest run of one reading a training record may name (and a learned state carry): 10^12
# rows, 31,700 years at 1 Hz; a review's 10^30 overflowed the runtime's counters (a traceback)
MAX_RUN_ROWS = 1_000_000_000_000


@dataclass(frozen=True)
class Threshold:
    """Decision threshold on the score, and how it was chosen."""

    value: float
    method: str
    params: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ScoreStats:
    """Summary of the scores of held-out normal data (after export, of the exported model)."""

    count: int
    mean: float
    std: float
    p50: float
    p95: float
    p99: float
    max: float


@dataclass(frozen=True)
class AdaptiveThresholdSpec:
    """A threshold that follows recent normal scores (``vigil.runtime.sensor.alarms``).

    Its recent part is either ``mean + z * std`` of the recent scores (``z`` set) or ``factor``
    times their ``quantile`` (``quantile`` and ``factor`` set, ``z`` None); never both."""

    memory: int                    # recent normal window scores kept
    warmup: int                    # scores needed before the recent part applies
    z: float | None = None         # max(base, recent mean + z * recent std)
    quantile: float | None = None  # max(base, factor * this quantile of the recent scores)
    factor: float | None = None

    def __post_init__(self) -> None:
        by_spread = self.z is not None and self.quantile is None and self.factor is None
        by_quantile = (self.z is None and self.quantile is not None
                       and self.factor is not None)
        if not (by_spread or by_quantile):
            raise ValueError(f"an adaptive threshold takes either `z` or both `quantile` and "
                             f"`factor`; received z={self.z}, quantile={self.quantile}, "
                             f"factor={self.factor}")

    @property
    def rule(self) -> str:
        """The recent part in words."""
        if self.z is not None:
            return f"recent mean + {self.z:g} std"
        return f"{self.factor:g} x recent {self.quantile:g} quantile"


@dataclass(frozen=True)
class LikelihoodSpec:
    """A second alarm rule, HTM's anomaly likelihood (``vigil.runtime.sensor.alarms``): the mean
    of the last ``short`` scores, ``z`` or more std above the mean of the ``long`` such means
    before it, alarms whatever the threshold, once ``warmup`` means have been learned. Once
    ``level_warmup`` means have been learned, the threshold's own alarm also needs the score above
    their mean, the stream's long-run level (None: never)."""

    short: int         # scores averaged
    long: int          # averages the Gaussian is fitted to (all of them learned)
    z: float           # the tail: 4.27 is a probability of 1e-5
    warmup: int        # averages learned before it applies
    std_floor: float   # least std of the averages (a constant stream's is 0), in score units
    level_warmup: int | None = None  # averages learned before the level floors the threshold


@dataclass(frozen=True)
class RunningNormalizationSpec:
    """Normalization that follows slow drift of the readings (``vigil.runtime.sensor.drift``)."""

    memory: int   # rows: the time constant of the running mean and variance
    warmup: int   # rows learned before it applies
    # each feature's std over the normal training rows, before ``std``'s floor (1 % of the mean's
    # magnitude): the spread the readings are mapped back onto. None (artifacts before 0.3.1):
    # ``std``, which doubled a mains voltage's deviations (std 1.2 floored to 2.3 at mean 230)
    spread: tuple[float, ...] | None = None


@dataclass(frozen=True)
class TimeStepSpec:
    """How far apart the training rows' timestamps lay: ``typical`` is their median step and a
    step beyond ``limit`` is a gap in the record (a logger off for an hour): a window across it
    joins readings from before and after, so the runtime flags it. Seconds for ISO 8601 times,
    the column's own unit where the times are numbers (``numeric``)."""

    numeric: bool
    typical: float
    limit: float


@dataclass(frozen=True)
class InputRange:
    """An input-only column's normal training values (``training.input_ranges``, written since
    0.3): the runtime flags a row where it leaves them, a change the score does not see."""

    feature: str
    column: int                              # its position in ``features``
    low: float
    high: float
    levels: tuple[float, ...] | None = None  # a binary or categorical column's values
    reason: str = "not scored"               # why it is an input only (``training.inputs_only``)


@dataclass(frozen=True)
class SteadyRun:
    """A scored column's longest run of one unchanged reading in the normal training rows
    (``training.steady_runs``, written since 2026-12-07): the runtime flags a reading frozen far
    longer, as a stuck or disconnected sensor's is, at a level the score may find normal."""

    feature: str
    column: int   # its position in ``features``
    longest: int  # rows


@dataclass(frozen=True)
class SensorSpec:
    """Everything the runtime needs to score windows of sensor readings."""

    features: tuple[str, ...]
    window: int
    stride: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    score_reduction: str
    threshold: Threshold
    consecutive: int
    score_stats: ScoreStats
    precision: str
    input_name: str = "window"
    score_output: str = "score"
    feature_output: str = "feature_errors"
    max_gap: int = 3
    hold: int = 0
    time_column: str | None = None
    label_column: str | None = None
    versions: Mapping[str, str] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    parity: Mapping[str, Any] = field(default_factory=dict)
    adaptive: AdaptiveThresholdSpec | None = None
    rearm: int = 0  # windows within which a returning alarm continues its episode
    running_normalization: RunningNormalizationSpec | None = None
    likelihood: LikelihoodSpec | None = None
    time_step: TimeStepSpec | None = None  # None: trained without readable timestamps
    kind: str = SENSOR
    schema_version: int = 1

    @property
    def input_shape(self) -> tuple[int, int]:
        return (self.window, len(self.features))

    @cached_property
    def input_ranges(self) -> tuple[InputRange, ...]:
        """The input-only columns' training values, from the training record (none before 0.3)."""
        return input_ranges(self.training, self.features)

    @cached_property
    def steady_runs(self) -> tuple[SteadyRun, ...]:
        """The scored columns' longest unchanged runs in training (none before 2026-12-07)."""
        return steady_runs(self.training, self.features)


COLOR_ORDERS = ("gray", "bgr", "rgb")
RESIZE_MODES = ("stretch",)
# How frames are resized to the model's input (OpenCV), written since 0.3: each side by itself,
# INTER_AREA where it shrinks and INTER_LINEAR where it grows (a frame that shrinks one way and
# grows the other is resized in two passes, the shrinking side first: one INTER_AREA pass over
# both samples the shrinking side instead of averaging it). Before, one pass, INTER_AREA only
# where the rows shrank, so a wide, short frame's width was sampled (aliased: 20 of 20 noisy
# normal 1024x128 frames flagged); artifacts without the field resize so still. Named in the
# artifact so that a plain-onnxruntime user resizes as the runtime does.
AREA_PER_SIDE = "area_per_shrinking_side"
AREA_WHEN_ROWS_SHRINK = "area_when_rows_shrink"
INTERPOLATIONS = (AREA_PER_SIDE, AREA_WHEN_ROWS_SHRINK)
# The rows-only rule's first name, written for a few hours of 2026-12-06 (0.3.0 between commits
# 169e49a and fbf232d): read as the rule it named.
_OLD_INTERPOLATION_NAMES = {"opencv_area_shrinking_linear_enlarging": AREA_WHEN_ROWS_SHRINK}
# mixed: a feature model's network in FP32 and its memory-bank product in INT8
IMAGE_PRECISIONS = ("fp32", "int8", "mixed")


@dataclass(frozen=True)
class ImageSpec:
    """Everything the runtime needs to score camera frames.

    The graph takes uint8 frames (batch, height, width, channels) in ``color`` order, already
    resized to (height, width); scaling to [0, 1] happens inside the graph. It returns an image
    score and a pixel anomaly map (batch, height, width).
    """

    height: int
    width: int
    channels: int
    color: str
    resize: str
    threshold: Threshold
    pixel_threshold: Threshold
    score_reduction: str
    score_stats: ScoreStats
    map_stats: ScoreStats
    precision: str
    input_name: str = "image"
    score_output: str = "score"
    map_output: str = "anomaly_map"
    interpolation: str = AREA_PER_SIDE
    versions: Mapping[str, str] = field(default_factory=dict)
    training: Mapping[str, Any] = field(default_factory=dict)
    parity: Mapping[str, Any] = field(default_factory=dict)
    kind: str = IMAGE
    schema_version: int = 1

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    @cached_property
    def frame_side(self) -> tuple[int, int] | None:
        """[5th percentile, greatest] shorter side of the training images in pixels, from the
        training record (``training.frame_side``, written since 0.3; None before)."""
        return _frame_side(self.training)

    @cached_property
    def jpeg_quality(self) -> tuple[int, int] | None:
        """[5th percentile, greatest] JPEG quality of the training images (a lossless image
        counts as 100), from the training record (``training.jpeg_quality``, written since
        2026-12-07; None before)."""
        pair = _ordered_pair(self.training, "jpeg_quality", "JPEG quality (1-100)", whole=True)
        if pair is not None and pair[1] > 100:
            raise ArtifactError(f"metadata training.jpeg_quality must be [least, greatest] JPEG "
                                f"quality (1-100); received {_short(list(pair))}")
        return pair

    @cached_property
    def channel_means_bgr(self) -> tuple[float, float, float] | None:
        """The training frames' mean blue, green and red levels (0-255) for a colour model, from
        the training record (``training.channel_means_bgr``, written since 0.3; None before and
        for gray models): frames given in RGB order are told by them."""
        value = self.training.get("channel_means_bgr")
        if value is None:
            return None
        if not (isinstance(value, (list, tuple)) and len(value) == 3
                and all(_is_finite(v) and 0 <= v <= 255 for v in value)):
            raise ArtifactError(f"metadata training.channel_means_bgr must be three levels in "
                                f"[0, 255] (blue, green, red); received {_short(value)}")
        return float(value[0]), float(value[1]), float(value[2])

    @cached_property
    def blue_minus_red(self) -> tuple[float, float] | None:
        """[least, greatest] of the training images' mean blue less their mean red, from the
        training record (``training.blue_minus_red``; None before and for gray models)."""
        value = self.training.get("blue_minus_red")
        if value is None:
            return None
        if not (isinstance(value, (list, tuple)) and len(value) == 2
                and all(_is_finite(v) and -255 <= v <= 255 for v in value)
                and value[0] <= value[1]):
            raise ArtifactError(f"metadata training.blue_minus_red must be [least, greatest] "
                                f"levels in [-255, 255]; received {_short(value)}")
        return float(value[0]), float(value[1])

    @cached_property
    def frame_aspect(self) -> tuple[float, float] | None:
        """[least, greatest] width / height of the training images, from the training record
        (``training.frame_aspect``, written since 0.3; None before)."""
        return _frame_aspect(self.training)


Spec = SensorSpec | ImageSpec


def spec_to_dict(spec: Spec) -> dict[str, Any]:
    """Plain JSON-ready dict of a spec (tuples become lists)."""
    data = jsonable(asdict(spec))
    for adapts in ("adaptive", "running_normalization"):
        if data.get(adapts) is None:
            data.pop(adapts, None)
        else:
            data["schema_version"] = max(data["schema_version"], ADAPTIVE_SCHEMA_VERSION)
    if "running_normalization" in data:
        if data["running_normalization"].get("spread") is None:
            data["running_normalization"].pop("spread", None)
        else:
            data["schema_version"] = max(data["schema_version"], SPREAD_SCHEMA_VERSION)
    if data.get("time_step", 0) is None:  # (older runtimes ignore it: it only flags windows)
        data.pop("time_step")
    if data.get("likelihood") is None:
        data.pop("likelihood", None)
    else:
        data["schema_version"] = max(data["schema_version"], LIKELIHOOD_SCHEMA_VERSION)
        if data["likelihood"].get("level_warmup") is None:
            data["likelihood"].pop("level_warmup", None)
        else:
            data["schema_version"] = max(data["schema_version"], LEVEL_FLOOR_SCHEMA_VERSION)
    if "adaptive" in data:
        data["adaptive"] = {k: v for k, v in data["adaptive"].items() if v is not None}
        if "quantile" in data["adaptive"]:
            data["schema_version"] = max(data["schema_version"], QUANTILE_SCHEMA_VERSION)
    return data


def spec_from_dict(data: Any) -> Spec:
    """Validate a metadata dict and build the spec; raises ArtifactError naming the bad field."""
    if not isinstance(data, Mapping):
        raise ArtifactError(f"metadata must be a JSON object; received {type(data).__name__}")
    version = _int(data, "schema_version", minimum=1)
    if version > SCHEMA_VERSION:
        raise ArtifactError(
            f"metadata schema_version {version} is newer than this runtime understands "
            f"(<= {SCHEMA_VERSION}); upgrade vigil to load this model"
        )
    kind = _str(data, "kind")
    if kind == IMAGE:
        return _image_spec(data, version)
    if kind != SENSOR:
        raise ArtifactError(f"metadata kind must be one of {[SENSOR, IMAGE]}; received {kind!r}")
    features = _str_list(data, "features")
    n = len(features)
    if n == 0:
        raise ArtifactError("metadata features must name at least one feature; received []")
    if len(set(features)) != n:
        raise ArtifactError(f"metadata features must be unique; received {_short(features)}")
    mean = _float_list(data, "mean", length=n)
    std = _float_list(data, "std", length=n)
    if any(s <= 0 for s in std):
        raise ArtifactError(f"metadata std must be positive for every feature; received {std}")
    spec = SensorSpec(
        features=tuple(features),
        window=_int(data, "window", minimum=1, maximum=MAX_ROWS),
        stride=_int(data, "stride", minimum=1, maximum=MAX_ROWS),
        mean=tuple(mean),
        std=tuple(std),
        score_reduction=_str(data, "score_reduction"),
        threshold=_nested(_threshold, data, "threshold"),
        consecutive=_int(data, "consecutive", minimum=1, maximum=MAX_ROWS),
        score_stats=_nested(_score_stats, data, "score_stats"),
        precision=_choice(data, "precision", ("fp32", "int8")),
        input_name=_str(data, "input_name"),
        score_output=_str(data, "score_output"),
        feature_output=_str(data, "feature_output"),
        max_gap=_int(data, "max_gap", minimum=0, maximum=MAX_ROWS),
        hold=_int(data, "hold", minimum=0, maximum=MAX_ROWS) if "hold" in data else 0,
        time_column=_optional_str(data, "time_column"),
        label_column=_optional_str(data, "label_column"),
        versions=_str_map(data, "versions"),
        training=_mapping(data, "training"),
        parity=_mapping(data, "parity"),
        adaptive=_nested(_adaptive, data, "adaptive") if data.get("adaptive") is not None else None,
        rearm=_int(data, "rearm", minimum=0, maximum=MAX_HISTORY) if "rearm" in data else 0,
        running_normalization=(_nested(lambda value: _running_normalization(value, n), data,
                                       "running_normalization")
                               if data.get("running_normalization") is not None else None),
        likelihood=(_nested(_likelihood, data, "likelihood")
                    if data.get("likelihood") is not None else None),
        time_step=(_nested(_time_step, data, "time_step")
                   if data.get("time_step") is not None else None),
        schema_version=version,
    )
    spec.input_ranges  # parsed now, so that a malformed record is refused on loading
    spec.steady_runs
    return spec


def _image_spec(data: Mapping[str, Any], version: int) -> ImageSpec:
    channels = _int(data, "channels", minimum=1, maximum=3)
    color = _choice(data, "color", COLOR_ORDERS)
    if (channels == 1) != (color == "gray"):
        raise ArtifactError(f"metadata color {color!r} does not fit channels {channels}")
    spec = ImageSpec(
        schema_version=version,
        height=_int(data, "height", minimum=8, maximum=8192),
        width=_int(data, "width", minimum=8, maximum=8192),
        channels=channels,
        color=color,
        resize=_choice(data, "resize", RESIZE_MODES),
        threshold=_nested(_threshold, data, "threshold"),
        pixel_threshold=_nested(_threshold, data, "pixel_threshold"),
        score_reduction=_str(data, "score_reduction"),
        score_stats=_nested(_score_stats, data, "score_stats"),
        map_stats=_nested(_score_stats, data, "map_stats"),
        precision=_choice(data, "precision", IMAGE_PRECISIONS),
        input_name=_str(data, "input_name"),
        score_output=_str(data, "score_output"),
        map_output=_str(data, "map_output"),
        interpolation=_interpolation(data),
        versions=_str_map(data, "versions"),
        training=_mapping(data, "training"),
        parity=_mapping(data, "parity"),
    )
    # parsed now: a malformed record is refused on loading
    spec.frame_aspect, spec.frame_side, spec.channel_means_bgr, spec.blue_minus_red
    spec.jpeg_quality
    return spec


def input_ranges(training: Mapping[str, Any], features: tuple[str, ...]
                 ) -> tuple[InputRange, ...]:
    """A training record's ``input_ranges`` (with ``inputs_only``'s reasons), parsed and
    checked: what ``SensorSpec.input_ranges`` gives, and what training checks held-out rows by."""
    ranges = _training_object(training, "input_ranges")
    if ranges is None:
        return ()
    reasons = training.get("inputs_only")
    reasons = reasons if isinstance(reasons, Mapping) else {}
    parsed = []
    for name, value in ranges.items():
        where = f"training.input_ranges.{name}"
        if name not in features:
            raise ArtifactError(f"metadata {where} names no feature of the model "
                                f"({_short(list(features))})")
        levels = None
        if isinstance(value, Mapping):
            levels = value.get("levels")
            if not (isinstance(levels, (list, tuple)) and levels and all(_is_finite(v) for v in levels)):
                raise ArtifactError(f"metadata {where}.levels must be a non-empty list of finite "
                                    f"numbers; received {_short(levels)}")
            levels = tuple(sorted(float(v) for v in levels))
            low, high = levels[0], levels[-1]
        elif (isinstance(value, (list, tuple)) and len(value) == 2
              and all(_is_finite(v) for v in value)
              and value[0] <= value[1]):
            low, high = float(value[0]), float(value[1])
        else:
            raise ArtifactError(f"metadata {where} must be [low, high] (low <= high) or "
                                f'{{"levels": [...]}}; received {_short(value)}')
        parsed.append(InputRange(feature=name, column=features.index(name), low=low, high=high,
                                 levels=levels, reason=str(reasons.get(name, "not scored"))))
    return tuple(parsed)


def steady_runs(training: Mapping[str, Any], features: tuple[str, ...]) -> tuple[SteadyRun, ...]:
    """A training record's ``steady_runs``, parsed and checked (``SensorSpec.steady_runs``)."""
    runs = _training_object(training, "steady_runs")
    if runs is None:
        return ()
    parsed = []
    for name, value in runs.items():
        if name not in features:
            raise ArtifactError(f"metadata training.steady_runs.{name} names no feature of the "
                                f"model ({_short(list(features))})")
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_RUN_ROWS:
            raise ArtifactError(f"metadata training.steady_runs.{name} must be a number of rows "
                                f"(a whole number from 1 to {MAX_RUN_ROWS}); received "
                                f"{_short(value)}")
        parsed.append(SteadyRun(feature=name, column=features.index(name), longest=value))
    return tuple(parsed)


def _training_object(training: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    """The training record's ``key`` where it is a JSON object, None where absent (an older
    artifact); ArtifactError naming it otherwise."""
    value = training.get(key)
    if value is not None and not isinstance(value, Mapping):
        raise ArtifactError(f"metadata training.{key} must be a JSON object; received "
                            f"{_short(value)}")
    return value


def _frame_side(training: Mapping[str, Any]) -> tuple[int, int] | None:
    return _ordered_pair(training, "frame_side", "shorter side in pixels", whole=True)


def _frame_aspect(training: Mapping[str, Any]) -> tuple[float, float] | None:
    return _ordered_pair(training, "frame_aspect", "width / height", whole=False)


def _ordered_pair(training: Mapping[str, Any], key: str, what: str, whole: bool):
    """``training[key]``, a [least, greatest] pair of positive numbers (whole ones where
    ``whole``), or None where the record has none; ArtifactError naming it otherwise."""
    value = training.get(key)
    if value is None:
        return None
    fits = (lambda v: isinstance(v, int) and not isinstance(v, bool)) if whole else _is_finite
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(fits(v) for v in value)
            and 0 < value[0] <= value[1]):
        raise ArtifactError(f"metadata training.{key} must be [least, greatest] {what}, 0 < "
                            f"least <= greatest; received {_short(value)}")
    kind = int if whole else float
    return kind(value[0]), kind(value[1])


def jsonable(value: Any) -> Any:
    """``value`` as JSON holds it (a dataclass's ``asdict``: tuples as lists); ArtifactError for
    a non-finite number."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise ArtifactError(f"metadata values must be finite numbers; received {value}")
    return value


def _get(data: Mapping[str, Any], key: str) -> Any:
    if key not in data:
        raise ArtifactError(f"metadata is missing the required field {key!r}")
    return data[key]


def _str(data: Mapping[str, Any], key: str) -> str:
    value = _get(data, key)
    if not isinstance(value, str) or not value:
        raise ArtifactError(f"metadata {key} must be a non-empty string; received {_short(value)}")
    return value


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    return _str(data, key)


def _interpolation(data: Mapping[str, Any]) -> str:
    """The artifact's resize rule: rows-only where it names none (before 0.3) or its old name."""
    if "interpolation" not in data:
        return AREA_WHEN_ROWS_SHRINK
    old = _OLD_INTERPOLATION_NAMES.get(data["interpolation"]) if isinstance(data["interpolation"], str) else None
    return old or _choice(data, "interpolation", INTERPOLATIONS)


def _choice(data: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = _str(data, key)
    if value not in choices:
        raise ArtifactError(f"metadata {key} must be one of {list(choices)}; received {_short(value)}")
    return value


def _int(data: Mapping[str, Any], key: str, minimum: int, maximum: int = 2**31) -> int:
    value = _get(data, key)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ArtifactError(
            f"metadata {key} must be an integer in [{minimum}, {maximum}]; received {_short(value)}"
        )
    return value


def _float(data: Mapping[str, Any], key: str) -> float:
    value = _get(data, key)
    if not _is_finite(value):
        raise ArtifactError(f"metadata {key} must be a finite number; received {_short(value)}")
    return float(value)


def _is_finite(value: Any) -> bool:
    """A JSON number that fits a finite float (not a bool, NaN, infinity or a 400-digit int)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _float_list(data: Mapping[str, Any], key: str, length: int) -> list[float]:
    value = _get(data, key)
    if not isinstance(value, list) or len(value) != length:
        raise ArtifactError(
            f"metadata {key} must be a list of {length} numbers; received {_short(value)}"
        )
    return [_float({key: v}, key) for v in value]


def _str_list(data: Mapping[str, Any], key: str) -> list[str]:
    value = _get(data, key)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ArtifactError(f"metadata {key} must be a list of strings; received {_short(value)}")
    return list(value)


def _mapping(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise ArtifactError(f"metadata {key} must be a JSON object; received {_short(value)}")
    return dict(value)


def _str_map(data: Mapping[str, Any], key: str) -> dict[str, str]:
    value = _mapping(data, key)
    if not all(isinstance(v, str) for v in value.values()):
        raise ArtifactError(f"metadata {key} must map names to strings; received {_short(value)}")
    return value


def _nested(parse, data: Mapping[str, Any], key: str):
    """Parse an object field, naming it in errors about its members (``threshold.value``)."""
    if key not in data:
        raise ArtifactError(f"metadata is missing the required field {key!r}")
    value = data[key]
    if not isinstance(value, Mapping):
        raise ArtifactError(f"metadata {key} must be a JSON object; received {_short(value)}")
    try:
        return parse(value)
    except ArtifactError as error:
        message = str(error)
        if message.startswith("metadata is "):  # a missing field
            message = f"metadata {key} " + message[len("metadata "):]
        elif message.startswith("metadata "):
            message = f"metadata {key}." + message[len("metadata "):]
        raise ArtifactError(message) from None


def _adaptive(value: Mapping[str, Any]) -> AdaptiveThresholdSpec:
    memory = _int(value, "memory", minimum=1, maximum=MAX_HISTORY)
    warmup = _int(value, "warmup", minimum=1, maximum=memory)
    if "quantile" in value or "factor" in value:
        if "z" in value:
            raise ArtifactError("metadata z and quantile are exclusive: give either z, or quantile "
                                "and factor")
        quantile, factor = _float(value, "quantile"), _float(value, "factor")
        if not 0.0 < quantile < 1.0:
            raise ArtifactError(f"metadata quantile must be in (0, 1); received {quantile}")
        if factor <= 0:
            raise ArtifactError(f"metadata factor must be > 0; received {factor}")
        return AdaptiveThresholdSpec(memory=memory, warmup=warmup, quantile=quantile,
                                     factor=factor)
    z = _float(value, "z")
    if z < 0:
        raise ArtifactError(f"metadata z must be >= 0; received {z}")
    return AdaptiveThresholdSpec(memory=memory, warmup=warmup, z=z)


def _likelihood(value: Mapping[str, Any]) -> LikelihoodSpec:
    long = _int(value, "long", minimum=2, maximum=MAX_HISTORY)
    z, floor = _float(value, "z"), _float(value, "std_floor")
    if not z > 0:
        raise ArtifactError(f"metadata z must be > 0; received {z}")
    if not floor > 0:
        raise ArtifactError(f"metadata std_floor must be > 0; received {floor}")
    level_warmup = (_int(value, "level_warmup", minimum=1, maximum=long)
                    if value.get("level_warmup") is not None else None)
    return LikelihoodSpec(short=_int(value, "short", minimum=1, maximum=MAX_ROWS), long=long, z=z,
                          warmup=_int(value, "warmup", minimum=1, maximum=long),
                          std_floor=floor, level_warmup=level_warmup)


def _time_step(value: Mapping[str, Any]) -> TimeStepSpec:
    numeric = value.get("numeric")
    if not isinstance(numeric, bool):
        raise ArtifactError(f"metadata numeric must be true or false; received {_short(numeric)}")
    typical, limit = _float(value, "typical"), _float(value, "limit")
    if not 0 < typical <= limit:
        raise ArtifactError(f"metadata typical and limit must satisfy 0 < typical <= limit; "
                            f"received {typical} and {limit}")
    return TimeStepSpec(numeric=numeric, typical=typical, limit=limit)


def _running_normalization(value: Mapping[str, Any], features: int) -> RunningNormalizationSpec:
    memory = _int(value, "memory", minimum=2, maximum=MAX_NORMALIZATION)
    spread = None
    if value.get("spread") is not None:
        spread = tuple(_float_list(value, "spread", length=features))
        if any(s <= 0 for s in spread):
            raise ArtifactError(f"metadata spread must be positive for every feature; received "
                                f"{_short(list(spread))}")
    return RunningNormalizationSpec(memory=memory, warmup=_int(value, "warmup", minimum=1,
                                                               maximum=MAX_NORMALIZATION),
                                    spread=spread)


def _threshold(value: Any) -> Threshold:
    if not isinstance(value, Mapping):
        raise ArtifactError(f"metadata threshold must be a JSON object; received {_short(value)}")
    params = _mapping(value, "params")
    for name, param in params.items():
        if not _is_finite(param):
            raise ArtifactError(f"metadata params.{name} must be a finite number; "
                                f"received {_short(param)}")
    return Threshold(value=_float(value, "value"), method=_str(value, "method"), params=params)


def _score_stats(value: Any) -> ScoreStats:
    if not isinstance(value, Mapping):
        raise ArtifactError(f"metadata score_stats must be a JSON object; received {_short(value)}")
    return ScoreStats(
        count=_int(value, "count", minimum=0),
        **{k: _float(value, k) for k in ("mean", "std", "p50", "p95", "p99", "max")},
    )


def _short(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int of 4300+ digits, or deeply nested lists
        return f"<a {type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
