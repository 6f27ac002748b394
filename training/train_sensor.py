"""Training a sensor-window detector end to end: data -> RNN -> scores -> threshold -> run on disk."""

from __future__ import annotations

import logging
import re
import shlex
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from vigil.runtime.core import metrics
from vigil.runtime.core.progress import clock
from vigil.runtime.core.spec import Threshold, input_ranges
from vigil.runtime.core.thresholds import ThresholdMethod, calibrate_labeled, score_stats
from vigil.runtime.sensor.streaming import input_check

from . import sensor_model
from .checkpoint import TrainingRun, save_run
from .sensor_data import (COPY_CHUNK, SCORED, DataOptions, SensorData, compress, prepare,
                          training_spread)
from .versions import library_versions

log = logging.getLogger("vigil")

CALIBRATION_WINDOWS = 256
MIN_NORMAL_VALIDATION = 4  # normal held-out windows a threshold is calibrated on, at least
# The least normal spread each score part is standardized by, at a resolution of 1 % of a
# feature's normal spread per reading: a noise-free periodic stream repeats its shapes exactly, and
# a spread of 0 would turn float rounding into alarms.
RESOLUTION = 0.01
LIKELIHOOD_STD_FLOOR = 0.01  # the anomaly likelihood's least std, of the normal scores' std


@dataclass(frozen=True)
class CalibrationOptions:
    method: ThresholdMethod = ThresholdMethod.GAUSSIAN
    k: float = 5.0         # Gaussian: mean + k * std
    q: float = 99.5        # percentile
    consecutive: int = 1   # alarm after this many consecutive windows above threshold
    hold: int = 10         # keep an alarm on for this many windows after the score falls
    rearm: int = 0         # an alarm back within this many windows continues its episode
    adaptive: bool = True   # the threshold follows recent normal scores at run time
    adaptive_memory: int = 1000  # recent normal window scores it keeps
    adaptive_warmup: int = 1000  # scores learned before the recent part applies
    adaptive_quantile: float = 0.99   # max(threshold, factor * this quantile of recent scores)
    adaptive_factor: float = 2.0
    adaptive_z: float | None = None   # given: max(threshold, recent mean + z * recent std) instead
    # k, hold, rearm and the adaptive threshold's settings were chosen together on NAB, SKAB, SMD
    # and ECG (benchmarks/sweep_alarms.py; docs/quality.md, "Alarm defaults, chosen on four sets").
    likelihood: bool = True        # also alarm on HTM's anomaly likelihood of the recent scores
    likelihood_short: int = 10     # scores averaged (HTM's published settings, not tuned here;
    likelihood_long: int = 8640    # benchmarks/explore_likelihood.py measured them on the four
    likelihood_z: float = 4.27     # sets: docs/quality.md, "Alarm defaults")
    likelihood_warmup: int = 388
    # the threshold's alarm also needs the score above the stream's long-run level (the mean of
    # the likelihood's means), once that many are learned: a level that has held for most of the
    # history is this stream's normal now (chosen on the four sets: docs/quality.md, "Alarm
    # defaults")
    likelihood_level: bool = True
    likelihood_level_warmup: int = 1000
    running_normalization: bool = False  # follow slow drift of the readings at run time
    normalization_memory: int = 2000     # rows: its time constant (not yet chosen by measurement)
    normalization_warmup: int = 500      # rows learned before it applies

    def params(self) -> dict[str, float]:
        method = ThresholdMethod(self.method)
        if method is ThresholdMethod.GAUSSIAN:
            return {"k": self.k}
        if method is ThresholdMethod.PERCENTILE:
            return {"q": self.q}
        return {}

    def running_normalization_spec(self, spread: np.ndarray) -> dict | None:
        if not self.running_normalization:
            return None
        return {"memory": self.normalization_memory, "warmup": self.normalization_warmup,
                "spread": [float(s) for s in spread]}

    def likelihood_spec(self, normal_scores: np.ndarray) -> dict | None:
        """The anomaly-likelihood rule; its std floor is a fraction of the held-out normal
        scores' std (a noise-free stream's averages may not vary at all)."""
        if not self.likelihood:
            return None
        spread = float(np.std(normal_scores)) if len(normal_scores) else 0.0
        return {"short": self.likelihood_short, "long": self.likelihood_long,
                "z": self.likelihood_z, "warmup": min(self.likelihood_warmup, self.likelihood_long),
                "std_floor": max(LIKELIHOOD_STD_FLOOR * spread, 1e-12),
                "level_warmup": (min(self.likelihood_level_warmup, self.likelihood_long)
                                 if self.likelihood_level else None)}

    def adaptive_spec(self) -> dict | None:
        if not self.adaptive:
            return None
        recent = ({"z": self.adaptive_z} if self.adaptive_z is not None
                  else {"quantile": self.adaptive_quantile, "factor": self.adaptive_factor})
        return {"memory": self.adaptive_memory, "warmup": min(self.adaptive_warmup,
                                                               self.adaptive_memory), **recent}


@dataclass(frozen=True)
class SensorTrainingOptions:
    data: DataOptions = field(default_factory=DataOptions)
    model: sensor_model.ModelOptions = field(default_factory=sensor_model.ModelOptions)
    calibration: CalibrationOptions = field(default_factory=CalibrationOptions)


@dataclass(frozen=True)
class SensorTrainingResult:
    run: TrainingRun
    threshold: Threshold
    seconds: float
    epochs: int
    validation: dict | None = None  # what the threshold catches of labeled validation windows
    warnings: tuple[str, ...] = ()


# The best threshold's F1 must beat alarming on every window by this much for training to
# recommend it (a review's NAB and SKAB files offered F1s that were exactly that level)
F1_OVER_ALWAYS = 0.01
# Nor does training recommend an F1 threshold that alarms on more than this share of the normal
# validation windows: not a rule chosen on data but what any line would reject (review u1: on
# two SKAB valve1 files the F1 threshold, F1 0.520 against 0.493 for alarming always, alarmed
# on 86 % of the normal rows of six other files)
F1_MAX_FALSE_ALARM_RATE = 0.5


def input_range(column: np.ndarray, role: str) -> list[float] | dict:
    """An input-only column's normal training values, as the runtime checks rows against them:
    the levels of a binary or categorical one (a level never seen is a change), else its range."""
    if role in ("binary", "categorical"):
        return {"levels": [float(v) for v in np.unique(column)]}
    return [float(column.min()), float(column.max())]


def _warn_inputs_leaving_their_range(prepared, training: dict) -> None:
    """Warn where the held-out normal rows leave an input-only column's training values (the
    runtime's own check): the roles are decided on the training part, so a column constant there
    but not in the rest of normal operation is left out of the score (review rC: SMD
    machine-1-3's f4, constant in its first three quarters, at another level in 2,424 held-out
    rows)."""
    check = input_check(input_ranges(training, tuple(prepared.features)))
    normal = prepared.validation[prepared.validation_clean]
    if check is None or not len(normal):
        return
    outside = check.outside(normal[:, -1, :])  # each held-out row once, as a window's last
    left = [f"{r.feature} ({int(n)} of {len(normal)})"
            for r, n in zip(check.ranges, outside.sum(axis=0)) if n]
    if left:
        log.warning("held-out normal rows leave the training values of input-only columns, "
                    "which the score leaves out (so their changes never alarm; vigil score "
                    "flags them as unseen_inputs): %s. If they vary in normal operation, train "
                    "on rows where they do (more data, or a smaller --validation-fraction)",
                    ", ".join(left))


# a binary column named so is more likely labels than a reading (a review's `attack`)
LABEL_LIKE = re.compile(r"(?<![a-z])(anomal|attack|outlier|fault|label)|^y$|^target$",
                        re.IGNORECASE)


def _warn_label_like(inputs_only: dict[str, str]) -> None:
    """A binary column whose name reads as labels (``attack``, ``is_anomalous``), trained on as a
    reading: its marked rows were trained on, and the model then needs it as a feature."""
    named = [f for f, role in inputs_only.items() if role == "binary" and LABEL_LIKE.search(f)]
    if named:
        log.warning("column(s) %s binary and named like labels, but read as readings (inputs "
                    "only), so the rows they mark are trained on; if one marks anomalies, train "
                    "again with --label-column %s (labels are read from a column named "
                    "anomaly, label or is_anomaly, or the one --label-column names)",
                    ", ".join(map(repr, named)) + (" is" if len(named) == 1 else " are"),
                    shlex.quote(named[0]))


def alarm_at_nan(scores: np.ndarray) -> np.ndarray:
    """``scores`` as float64 with each NaN (and +inf) above every finite score, as the runtime
    decides it (an alarm at any threshold) but finite, for cuts searched among the scores."""
    scores = np.asarray(scores, dtype=np.float64)
    top = np.isnan(scores) | (scores == np.inf)
    if not top.any():
        return scores
    finite = scores[np.isfinite(scores)]
    high = float(finite.max()) if finite.size else 0.0
    return np.where(top, high + max(1.0, abs(high)), scores)


def validation_check(scores: np.ndarray, labels: np.ndarray, threshold: Threshold,
                     method: ThresholdMethod, fitted: np.ndarray | None = None
                     ) -> tuple[dict | None, list[str]]:
    """What the threshold would catch on labeled validation windows, and a warning when it
    catches little of what the best cut would: recommending ``--threshold-method f1`` where the
    threshold it fits does better than alarming always on at most half of the normal operation,
    saying why not otherwise. ``fitted`` marks the windows thresholds are fitted on (all where
    None; the others hold a labeled row but end on a normal one); every window is judged, as
    ``vigil eval`` judges it."""
    if not labels.any() or labels.all():
        return None, []
    # a NaN score is an alarm on the device (the runtime reads it as +inf), so it is here too,
    # above every finite score but finite: the cuts searched among the scores stay numbers a
    # command line takes (review d1: `--threshold inf` was advised)
    raw = np.asarray(scores, dtype=np.float64)
    scores = alarm_at_nan(raw)
    fitted = np.ones(len(scores), dtype=bool) if fitted is None else fitted
    clean = fitted & ~labels  # normal windows that hold no labeled row: normal operation
    after = ~fitted & ~labels  # normal by their last row, holding a labeled row before it
    above = (raw > threshold.value) | np.isnan(raw)  # whatever the threshold, as the runtime
    counts = metrics.counts(above, labels)
    best, cut = metrics.best_f1(scores, labels)
    cut = metrics.strict_threshold(scores, cut)  # alarms are above it, as the runtime's
    # alarming on every window: the F1 any threshold reaches without telling windows apart
    everything = 2 * int(labels.sum()) / (2 * int(labels.sum()) + int((~labels).sum()))
    check: dict[str, float | str | None] = {
        "labeled_windows": int(labels.sum()), "caught": int((above & labels).sum()),
        "false_alarms": int((above & ~labels).sum()), "normal_windows": int((~labels).sum()),
        "f1": counts.f1, "auroc": metrics.auroc(scores, labels),
        "f1_optimal": best, "f1_optimal_threshold": cut,
        **_f1_method_figures(scores, labels, fitted, clean, after),
        "f1_alarming_always": everything}
    if method is ThresholdMethod.F1:
        check["note"] = ("the F1 threshold was chosen on these windows (those that only touch "
                         "a labeled row aside), so their F1 is in-sample, about as high as any "
                         "threshold gives them; `vigil eval` on other data says what it catches")
    warnings = []
    fit, fit_f1 = check["f1_method_threshold"], check["f1_method_f1"]
    fit_share = check["f1_method_false_alarm_rate"]
    in_sample = (f"; the best cut over every held-out window, {cut:.6g}, gives F1 {best:.3f} "
                 f"there (in-sample): try it on other labeled data with vigil eval --threshold "
                 f"{cut:.6g}")
    if best <= everything + F1_OVER_ALWAYS:
        warnings.append(
            f"the validation scores do not tell labeled windows from normal ones (AUROC "
            f"{check['auroc']:.3f}): no threshold gives a better F1 than alarming on every window "
            f"({everything:.3f}); check the labels and the features (--features), or train on "
            "more normal data")
    elif (method is not ThresholdMethod.F1 and counts.f1 < 0.5 * best
          and isinstance(fit, float) and isinstance(fit_f1, float)
          and isinstance(fit_share, float)):
        caught = (f"the {method.value} threshold {threshold.value:.4g} catches {check['caught']} "
                  f"of {check['labeled_windows']} labeled validation windows (F1 "
                  f"{counts.f1:.3f}, AUROC {check['auroc']:.3f})")
        fitted_shares = (f"alarms on {_percent(fit_share)} of the {int(clean.sum())} normal "
                         f"validation windows that hold no labeled row"
                         + (f" (and {_percent(check['f1_method_alarmed_after_anomalies'])} of "
                            f"the {int(after.sum())} that end just after one)"
                            if after.any() else ""))
        if fit_f1 <= everything + F1_OVER_ALWAYS:
            warnings.append(
                f"{caught}; --threshold-method f1 would fit {fit:.4g}, which does no better "
                f"than alarming on every window (F1 {fit_f1:.3f} against {everything:.3f}), so "
                f"it is not recommended{in_sample}")
        elif fit_share > F1_MAX_FALSE_ALARM_RATE:
            warnings.append(
                f"{caught}; --threshold-method f1 would fit {fit:.4g} (F1 {fit_f1:.3f}, alarming "
                f"always {everything:.3f}), which {fitted_shares}: more than half, so it is not "
                "recommended either. The held-out part (the last --validation-fraction of each "
                "file) may hold too little normal operation: train on more normal rows (an "
                "anomaly-free file beside these) or with a larger --validation-fraction"
                f"{in_sample}")
        else:
            warnings.append(
                f"{caught}; the F1-optimal threshold --threshold-method f1 fits ({fit:.4g}) "
                f"would give F1 {fit_f1:.3f} and {fitted_shares}: train with "
                "--threshold-method f1 to use it")
    elif method is ThresholdMethod.F1 and clean.any():
        share = float((above & clean).sum() / clean.sum())
        if share > F1_MAX_FALSE_ALARM_RATE:
            warnings.append(
                f"the f1 threshold {threshold.value:.4g} alarms on {_percent(share)} of the "
                f"{int(clean.sum())} normal validation windows that hold no labeled row (F1 "
                f"{counts.f1:.3f}, alarming always {everything:.3f}): it catches anomalies by "
                "alarming on most normal operation. Train on more normal rows (an anomaly-free "
                "file beside these), or use the default gaussian threshold, and check it with "
                "vigil eval on other labeled data")
    if check["false_alarms"] == check["normal_windows"]:
        warnings.append(f"the {method.value} threshold {threshold.value:.4g} alarms on every one "
                        f"of the {check['normal_windows']} normal validation windows")
    return check, warnings


def _f1_method_figures(scores: np.ndarray, labels: np.ndarray, fitted: np.ndarray,
                       clean: np.ndarray, after: np.ndarray) -> dict[str, float | None]:
    """The threshold ``--threshold-method f1`` would fit (on the ``fitted`` windows), its F1 on
    every window (as ``vigil eval`` judges them), and the share it alarms of the ``clean`` normal
    windows and of those ``after`` a labeled row; None where it cannot be fitted. The best cut
    over every window can differ from it where the windows after an anomaly score high (review
    u1: -0.107 quoted, -0.743 fitted, which alarmed on most normal rows of other files)."""
    if not labels[fitted].any() or not clean.any():
        return dict.fromkeys(("f1_method_threshold", "f1_method_f1", "f1_method_false_alarm_rate",
                              "f1_method_alarmed_after_anomalies"))
    fit = calibrate_labeled(ThresholdMethod.F1, scores[fitted], labels[fitted]).value
    alarms = scores > fit
    return {"f1_method_threshold": fit, "f1_method_f1": metrics.counts(alarms, labels).f1,
            "f1_method_false_alarm_rate": float((alarms & clean).sum() / clean.sum()),
            "f1_method_alarmed_after_anomalies": (float((alarms & after).sum() / after.sum())
                                                  if after.any() else None)}


def _percent(share: float | str | None) -> str:
    return f"{100 * float(share):.1f} %" if share is not None else "an unknown share"


def _validation_losses(histories, verbose: int | str) -> list[dict]:
    """Each network's validation loss: its lowest, that epoch (from 1), and the last epoch's,
    whose weights are kept; said where it rose a fifth or more past its lowest. The epochs are
    chosen on detection across four sets (docs/quality.md, "Training epochs"), not on this loss:
    a review's SMD networks bottomed out at epoch 3-4 and rose to 1.2-1.6x by epoch 30, where
    the default 30 epochs of three networks still detected better (AUROC 0.898, against 0.882
    for 3 epochs of one)."""
    losses: list[dict[str, float]] = []
    for history in histories:
        values = [float(v) for v in history.history.get("val_loss") or []]
        if not values or not all(np.isfinite(values)):
            losses.append({})  # NaN is warned of where training met it
            continue
        best = int(np.argmin(values))
        losses.append({"best_epoch": best + 1, "best": values[best], "last": values[-1]})
    rose = [(n, loss) for n, loss in enumerate(losses, 1)
            if loss and loss["last"] >= 1.2 * loss["best"]]
    if rose and verbose != 0:
        log.info("the validation loss rose past its lowest in %d of %d network(s) (network %d: "
                 "%.4g at epoch %d, %.4g at the last, whose weights are kept; "
                 "training.validation_loss in the artifact): the networks fit their training "
                 "windows closer than held-out ones. The default epochs were chosen on "
                 "detection across four data sets, not on this loss; vigil eval on labeled rows "
                 "tells whether fewer (--epochs) detect as well here, in less time",
                 len(rose), len(losses), rose[0][0], rose[0][1]["best"],
                 rose[0][1]["best_epoch"], rose[0][1]["last"])
    return losses


def fit_threshold(calibration: CalibrationOptions, scores: np.ndarray,
                  labels: np.ndarray) -> Threshold:
    """Threshold from validation scores: on the normal ones, or F1-optimal on labeled ones."""
    return calibrate_labeled(calibration.method, scores, labels, calibration.params())


def _within_artifact_limits(options: SensorTrainingOptions) -> None:
    """ValueError naming the option when a count exceeds what an artifact may hold (the
    runtime's reader would refuse the exported model)."""
    from vigil.runtime.core.spec import MAX_HISTORY, MAX_NORMALIZATION, MAX_ROWS

    c, d = options.calibration, options.data
    for name, value, limit in (("window", d.window, MAX_ROWS), ("stride", d.stride, MAX_ROWS),
                               ("max_gap", d.max_gap, MAX_ROWS),
                               ("consecutive", c.consecutive, MAX_ROWS),
                               ("hold", c.hold, MAX_ROWS), ("rearm", c.rearm, MAX_HISTORY),
                               ("adaptive_memory", c.adaptive_memory, MAX_HISTORY),
                               ("likelihood_short", c.likelihood_short, MAX_ROWS),
                               ("likelihood_long", c.likelihood_long, MAX_HISTORY),
                               ("normalization_memory", c.normalization_memory,
                                MAX_NORMALIZATION),
                               ("normalization_warmup", c.normalization_warmup,
                                MAX_NORMALIZATION)):
        if value > limit:
            raise ValueError(f"`{name}` must be at most {limit:,} (the most an artifact holds); "
                             f"received {value:,}")


def checked_options(options: SensorTrainingOptions,
                    supervised: bool = False) -> SensorTrainingOptions:
    """``options`` with ``score_last`` filled in, or ValueError naming the first option out of
    its range: every sensor trainer (unsupervised and ``--supervised``) checks them here, before
    any data is read, so that nothing trains that the export or the runtime would refuse."""
    calibration = options.calibration
    if options.data.window < 2 or options.data.stride < 1:
        raise ValueError(f"`window` must be >= 2 rows and `stride` >= 1; received "
                         f"{options.data.window} and {options.data.stride}")
    if options.model.score_last is not None and options.model.score_last < 0:
        raise ValueError(f"`score_last` must be >= 0 (the last steps scored; 0: the whole "
                         f"window); received {options.model.score_last}")
    _within_artifact_limits(options)
    if (calibration.adaptive and calibration.adaptive_warmup > calibration.adaptive_memory
            and calibration.adaptive_warmup != CalibrationOptions().adaptive_warmup):
        log.warning("--adaptive-warmup %d is longer than --adaptive-memory %d: the adaptive "
                    "threshold applies once its memory is full, after %d scores",
                    calibration.adaptive_warmup, calibration.adaptive_memory,
                    calibration.adaptive_memory)
    if calibration.consecutive < 1:
        raise ValueError(f"`consecutive` must be >= 1; received {calibration.consecutive}")
    if calibration.hold < 0 or calibration.rearm < 0:
        raise ValueError(f"`hold` and `rearm` must be >= 0; received {calibration.hold} and "
                         f"{calibration.rearm}")
    if calibration.likelihood and (calibration.likelihood_short < 1
                                   or calibration.likelihood_long < 2
                                   or calibration.likelihood_warmup < 1
                                   or calibration.likelihood_level_warmup < 1
                                   or not calibration.likelihood_z > 0):
        raise ValueError(f"the anomaly likelihood needs `likelihood_short` >= 1, `likelihood_long` "
                         f">= 2, `likelihood_warmup` >= 1, `likelihood_level_warmup` >= 1 and "
                         f"`likelihood_z` > 0; received {calibration.likelihood_short}, "
                         f"{calibration.likelihood_long}, {calibration.likelihood_warmup}, "
                         f"{calibration.likelihood_level_warmup} and {calibration.likelihood_z}")
    if calibration.running_normalization and (calibration.normalization_memory < 2
                                              or calibration.normalization_warmup < 1):
        raise ValueError(f"running normalization needs `normalization_memory` >= 2 and "
                         f"`normalization_warmup` >= 1; received {calibration.normalization_memory}"
                         f" and {calibration.normalization_warmup}")
    if calibration.adaptive and (calibration.adaptive_memory < 1 or calibration.adaptive_warmup < 1
                                 or not (calibration.adaptive_z is None
                                         or calibration.adaptive_z >= 0)
                                 or not 0.0 < calibration.adaptive_quantile < 1.0
                                 or not calibration.adaptive_factor > 0):
        raise ValueError(f"the adaptive threshold needs `adaptive_memory` >= 1, `adaptive_warmup` "
                         f">= 1, `adaptive_z` >= 0 (or None), `adaptive_quantile` in (0, 1) and "
                         f"`adaptive_factor` > 0; received {calibration.adaptive_memory}, "
                         f"{calibration.adaptive_warmup}, {calibration.adaptive_z}, "
                         f"{calibration.adaptive_quantile} and {calibration.adaptive_factor}")
    if options.model.members < 1:
        raise ValueError(f"`members` must be >= 1 (networks whose errors are averaged); received "
                         f"{options.model.members}")
    if options.model.epoch_windows < 0:
        raise ValueError(f"`epoch_windows` must be >= 0 (training windows drawn per epoch; 0: "
                         f"all); received {options.model.epoch_windows}")
    if options.model.neighbour_rows < 0 or options.model.neighbour_entries < 1:
        raise ValueError(f"`neighbour_rows` must be >= 0 and `neighbour_entries` >= 1; received "
                         f"{options.model.neighbour_rows} and {options.model.neighbour_entries}")
    window = options.data.window
    score_last = sensor_model.decided_score_last(options.model, window)
    options = replace(options, model=replace(options.model, score_last=score_last))
    model_options = options.model
    if 0 < score_last and score_last >= window:
        raise ValueError(f"`score_last` must be smaller than `window` ({window}); received "
                         f"{score_last}")
    stride, longest = options.data.stride, longest_stride(window, model_options, supervised)
    if stride > longest:  # the runtime scores a window every `stride` rows, as trained
        reads = scored_rows(window, model_options) if not supervised else (
            model_options.score_last or window)
        raise ValueError(
            f"`stride` {stride} is longer than {longest} rows, half of the {reads} rows each "
            f"window's score reads (`--score-last`, or the whole window with 0): the model "
            f"decides once every `stride` rows and weighs a window's older rows less, so a "
            f"short fault between decisions could pass unseen (review rF: a 14-row dropout was "
            f"missed at 119 of 1,152 positions at stride 24, at none up to 16, on SKAB; on ECG "
            f"stuck readings were lost at 9 % at stride 24); give --stride "
            f"{longest} or less" + (f", or --score-last {min(2 * stride, window - 1)} to read "
                                   f"more of each window" if 2 * stride < window else ""))
    return options


def train_sensor(data: str | Path | Sequence[Path], output: str | Path,
                 options: SensorTrainingOptions = SensorTrainingOptions(),
                 verbose: int | str = "auto") -> SensorTrainingResult:
    """Train on ``data`` (CSV file, folder, or list of files) and write ``output`` (.keras)."""
    options = checked_options(options)
    started = time.perf_counter()
    window = options.data.window
    model_options = options.model
    prepared = prepare(data, options.data, scored_rows=scored_rows(window, model_options))
    n_features = prepared.train.shape[2]
    if (ThresholdMethod(options.calibration.method) is ThresholdMethod.F1
            and not prepared.validation_labels.any()):  # known before any training
        raise ValueError("--threshold-method f1 needs labeled anomalies in the validation part "
                         "(the last `validation_fraction` of each file); none found: label them "
                         "(an `anomaly` column or --labels FILE), or use --threshold-method "
                         "gaussian or percentile")
    normal_val = prepared.validation[prepared.validation_clean]  # no labeled row in the window
    if len(normal_val) < MIN_NORMAL_VALIDATION:
        raise ValueError(f"validation has {len(normal_val)} normal windows; at least "
                         f"{MIN_NORMAL_VALIDATION} are needed to calibrate a threshold: the "
                         f"last {options.data.validation_fraction:g} of each file is held out "
                         f"for it, and there its rows are labeled or too few; give more data, "
                         f"or a --validation-fraction that reaches normal rows")
    networks = [sensor_model.build_network(window, n_features, model_options, member)
                for member in range(model_options.members)]
    roles = prepared.roles or (SCORED,) * n_features
    inputs_only = {f: r for f, r in zip(prepared.features, roles) if r != SCORED}
    bounds = sensor_model.input_bounds(roles)
    clip = np.where(bounds >= 0, bounds, np.inf)

    compression, mean, std = prepared.compression, prepared.model_mean, prepared.model_std

    def normalize(x):
        out = np.empty(x.shape, dtype=np.float32)
        for start in range(0, len(x), COPY_CHUNK):  # in chunks: no float64 copy of the history
            part = x[start:start + COPY_CHUNK]
            z = ((compress(part, compression) if compression.any() else part) - mean) / std
            out[start:start + COPY_CHUNK] = np.clip(z, -clip, clip)
        return out

    normalized_train, normalized_val = normalize(prepared.train), normalize(normal_val)
    if 0 < model_options.epoch_windows < len(normalized_train) and verbose != 0:
        log.info("each epoch trains on %d of the %d training windows, drawn afresh "
                 "(--epoch-windows)", model_options.epoch_windows, len(normalized_train))
    histories = []
    fitting = time.perf_counter()
    for member, network in enumerate(networks):
        if len(networks) > 1 and verbose != 0:
            log.info("network %d of %d (seed %d)", member + 1, len(networks),
                     model_options.seed + member)
        histories.append(sensor_model.fit(network, normalized_train, normalized_val,
                                          model_options, verbose=verbose, member=member))
        if len(networks) > 1 and verbose != 0 and member + 1 < len(networks):
            elapsed = time.perf_counter() - fitting
            log.info("%d of %d networks trained in %s; about %s left for the others",
                     member + 1, len(networks), clock(elapsed),
                     clock(elapsed / (member + 1) * (len(networks) - member - 1)))
    scales = [sensor_model.feature_error_scale(network, normalized_train, model_options)
              for network in networks]
    network, scale = (networks, scales) if len(networks) > 1 else (networks[0], scales[0])
    scorer = sensor_model.build_scoring_model(network, window, mean, std, scale, model_options,
                                              bounds, compress=compression)
    neighbours = None
    if model_options.neighbour_rows > 0:
        neighbours = neighbour_score(scorer, normalize, normalized_train, prepared, roles,
                                     model_options)
        scorer = sensor_model.build_scoring_model(network, window, mean, std, scale,
                                                  model_options, bounds, neighbours,
                                                  compression)
    scores = score_windows(scorer, prepared.validation)
    labels, clean = prepared.validation_labels, prepared.validation_clean
    # fitted and judged on the normal windows and the labeled ones; a window that only touches
    # a labeled row (it ends after the anomaly) is neither
    use = clean | labels
    threshold = fit_threshold(options.calibration, scores[use], labels[use])
    # judged as `vigil eval` judges them: every held-out window by its last row's label
    check, warnings = validation_check(scores, labels, threshold,
                                       ThresholdMethod(options.calibration.method), use)
    if check is not None and (~use).any():
        check["note_fitted"] = (f"the threshold was fitted without the {int((~use).sum())} "
                                "window(s) that hold a labeled row but end on a normal one; "
                                "these figures count them, as vigil eval does")
    for warning in warnings:
        log.warning("%s", warning)
    epochs = len(histories[0].epoch)
    record = _record(prepared, options, threshold, scores[clean], epochs)
    record["training"]["validation_loss"] = _validation_losses(histories, verbose)
    record["training"]["inputs_only"] = inputs_only
    # their normal training range: the runtime says where a row leaves it (a change the score,
    # which leaves them out, does not see: SMD's near-constant f17 jumping in labeled anomalies)
    record["training"]["input_ranges"] = {
        f: input_range(prepared.train_rows[:, j], inputs_only[f])
        for j, f in enumerate(prepared.features) if f in inputs_only}
    _warn_inputs_leaving_their_range(prepared, record["training"])
    record["training"]["steady_runs"] = prepared.steady_runs or {}
    compressed = {f: float(m) for f, m in zip(prepared.features, compression) if m > 0}
    record["training"]["compressed"] = compressed
    if neighbours is not None:
        record["score_reduction"] += (f"; plus the distance of the last {neighbours.rows} rows' "
                                      "shape to the nearest normal one, the two standardized by "
                                      "their held-out normal mean and std and summed")
        record["training"]["neighbours"] = {
            "rows": neighbours.rows, "entries": int(len(neighbours.shapes)),
            "features": [prepared.features[i] for i in neighbours.features],
            "normal_means": list(neighbours.means), "normal_stds": list(neighbours.stds)}
    if compressed:
        record["score_reduction"] += ("; heavy-tailed features (training.compressed: f -> m) enter "
                                      "as sign(x) log(1 + |x| / m) before their normalization")
    if inputs_only:
        log.info("not scored (inputs only): %s", ", ".join(f"{f} ({r})" for f, r in inputs_only.items()))
        _warn_label_like(inputs_only)
    if compressed:
        log.info("heavy-tailed, compressed to log(1 + x / m) before scaling: %s",
                 ", ".join(f"{f} (m {m:.4g})" for f, m in compressed.items()))
    if check is not None:
        record["training"]["validation_check"] = check
    run = TrainingRun(
        model_path=Path(output),
        record=record,
        validation=prepared.validation,
        validation_labels=labels,
        calibration=_calibration_windows(prepared, model_options.seed),
        validation_clean=clean,
    )
    save_run(scorer, run)
    return SensorTrainingResult(run, threshold, time.perf_counter() - started, epochs,
                                check, tuple(warnings))


def neighbour_score(error_scorer, normalize, normalized_train: np.ndarray, prepared: SensorData,
                    roles: tuple[str, ...],
                    options: sensor_model.ModelOptions) -> sensor_model.NeighbourScore:
    """The bank of normal shapes, and the error's and the distance's mean and std on the held-out
    normal windows, which put the two on one scale."""
    rows = min(options.neighbour_rows, prepared.train.shape[1])
    if rows < options.neighbour_rows and options.neighbour_rows != sensor_model.ModelOptions().neighbour_rows:
        log.warning("--neighbour-rows %d is longer than the window of %d rows: the distance "
                    "compares the window's %d rows", options.neighbour_rows, rows, rows)
    features = tuple(i for i, r in enumerate(roles) if r == SCORED)
    shapes = sensor_model.normal_shapes(normalized_train, rows, list(features),
                                        options.neighbour_entries)
    normal = prepared.validation[prepared.validation_clean]
    errors = score_windows(error_scorer, normal)
    layer = sensor_model.NeighbourDistance(rows, features, len(shapes))
    layer.build(None)
    layer.set_bank(shapes)
    distances = np.concatenate([np.asarray(layer(normalize(normal[i:i + 1024])), dtype=np.float64)
                                for i in range(0, len(normal), 1024)])
    means = (float(errors.mean()), float(distances.mean()))
    stds = (max(float(errors.std()), RESOLUTION ** 2),  # each at least its resolution's floor
            max(float(distances.std()), RESOLUTION * float(np.sqrt(shapes.shape[1]))))
    return sensor_model.NeighbourScore(rows, features, shapes, means, stds)


def longest_stride(window: int, model: sensor_model.ModelOptions,
                   supervised: bool = False) -> int:
    """The most rows between windows a model may be trained (and so scored) with: half of the
    rows each score reads (``scored_rows``; a classifier's, those its synthetic anomalies and
    per-feature deviations span, ``score_last``), since scores weigh a window's last rows most
    and one every ``stride`` rows is decided."""
    reads = (model.score_last or window) if supervised else scored_rows(window, model)
    return max(1, reads // 2)


def scored_rows(window: int, model: sensor_model.ModelOptions) -> int:
    """The rows at the end of a window that its score reads: the steps scored (``score_last``;
    0: the whole window) and the rows the neighbour distance compares, whichever reach further."""
    return min(window, max(model.score_last or window, model.neighbour_rows))


def score_windows(scorer, windows: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Scores of raw windows from the Keras scoring model."""
    out = scorer.predict(windows.astype(np.float32), batch_size=batch_size, verbose=0)
    return np.asarray(out["score"], dtype=np.float64).reshape(-1)


def _calibration_windows(prepared: SensorData, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    count = min(CALIBRATION_WINDOWS, len(prepared.train))
    return prepared.train[np.sort(rng.choice(len(prepared.train), count, replace=False))]


def _record(prepared: SensorData, options: SensorTrainingOptions, threshold: Threshold,
            normal_scores: np.ndarray, epochs: int) -> dict:
    model = options.model
    return {
        "kind": "sensor",
        "features": list(prepared.features),
        "window": options.data.window,
        "stride": options.data.stride,
        "mean": prepared.mean.tolist(),
        "std": prepared.std.tolist(),
        "max_gap": options.data.max_gap,
        "time_column": prepared.time_column,
        "time_step": prepared.time_step,
        "label_column": prepared.label_column,
        "score_reduction": f"{sensor_model.ScoreReduction(model.score_reduction).value} over features of the squared "
                           + ("next-row forecast" if sensor_model.Architecture(model.architecture).forecasts
                              else "reconstruction")
                           + " error in normalized units"
                           + (" / its normal mean" if model.scale_features else "") + ", over the "
                           + (f"last {model.score_last} steps" if model.score_last else "window")
                           + (f" weighted by (1 - {model.score_decay:g})^age, newest heaviest"
                              if model.score_decay > 0 else "")
                           + (f", averaged over {model.members} networks trained from seeds "
                              f"{model.seed}-{model.seed + model.members - 1}"
                              if model.members > 1 else ""),
        **decision_record(options.calibration, threshold, normal_scores,
                          training_spread(prepared.train_rows, prepared.std)),
        "training": {
            "files": list(prepared.files),
            "labels": prepared.labels,
            "train_windows": int(len(prepared.train)),
            "validation_windows": int(len(prepared.validation)),
            "validation_fraction": options.data.validation_fraction,
            "epochs": epochs,
            "model": plain_options(model),
        },
        "versions": library_versions(),
    }


def decision_record(calibration: CalibrationOptions, threshold: Threshold,
                    normal_scores: np.ndarray, spread: np.ndarray) -> dict:
    """The parts of a training record that say how scores become alarms (read by the export);
    ``spread``: each feature's std over the normal training rows (``training_spread``)."""
    return {
        "threshold": asdict(threshold),
        "calibration": {"method": ThresholdMethod(calibration.method).value,
                        "params": calibration.params()},
        "consecutive": calibration.consecutive,
        "hold": calibration.hold,
        "rearm": calibration.rearm,
        "adaptive": calibration.adaptive_spec(),
        "running_normalization": calibration.running_normalization_spec(spread),
        "likelihood": calibration.likelihood_spec(normal_scores),
        "score_stats": asdict(score_stats(normal_scores)),
    }


def plain_options(options) -> dict:
    """A dataclass of options as JSON-ready values (enums by their value)."""
    return {k: (v.value if hasattr(v, "value") else v) for k, v in asdict(options).items()}
