"""Supervised sensor training, for users with many labeled anomalies (``--supervised``).

A recurrent classifier reads the same windows as the unsupervised models and says how likely the
window's last row is anomalous. The rare class is weighed up (class weights, by default so that
both classes weigh the same), and normal windows may be turned into synthetic anomalies (a spike,
a level shift, a drift or a stuck sensor in the window's last rows) to widen what it has seen.

The exported graph is the same one-file sensor artifact: raw window in, ``score`` (the classifier's
logit: higher is more anomalous, unbounded like the other scores) and ``feature_errors`` out;
for a classifier the latter is each feature's mean squared distance from its normal level over
the scored steps, in normal spreads, so an alarm's ``why`` still names the columns that moved.
``vigil train sensor --supervised`` calibrates the threshold F1-optimally on the labeled
validation windows unless ``--threshold-method`` says otherwise.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import keras
import numpy as np

from vigil.runtime.core.thresholds import ThresholdMethod
from vigil.runtime.sensor.windows import sliding_windows, window_count

from . import sensor_model
from .checkpoint import TrainingRun, save_run
from .sensor_data import (DataOptions, check_memory, check_normal_rows, file_records,
                          labeled_tables, labels_record,
                          standardization, steady_runs, time_step, training_rows,
                          training_spread, window_last_labels)
from .train_sensor import (MIN_NORMAL_VALIDATION, CalibrationOptions, SensorTrainingOptions,
                           SensorTrainingResult, checked_options, decision_record, fit_threshold,
                           longest_stride, score_windows, validation_check)
from .versions import library_versions

log = logging.getLogger("vigil")

MIN_POSITIVE_WINDOWS = 20   # fewer labeled anomalous training windows: train unsupervised
MIN_POSITIVE_EVENTS = 5     # fewer labeled incidents (runs of rows) in training: warned of
SYNTHETIC_KINDS = ("spike", "level_shift", "drift", "stuck")


@dataclass(frozen=True)
class SupervisedOptions:
    synthetic_fraction: float = 0.0  # this share of normal training windows becomes a synthetic
                                     # anomaly (0: labeled data only)
    class_weight: bool = True        # weigh each class by the inverse of its share
    patience: int = 5                # early stopping on the validation loss (0: all epochs)
    max_windows: int | None = None   # keep every anomalous training window and at most this
                                     # many in all, drawing normal ones at random (long records)


def supervised_calibration(calibration: CalibrationOptions, method_given: bool = False,
                           adaptive_given: bool = False) -> tuple[CalibrationOptions, bool]:
    """Supervised training's alarm defaults: the F1-optimal threshold (labels are plentiful),
    unless a method was given, and no adaptive threshold, unless it was asked for: a classifier's
    threshold is chosen on the labels, on the scale of its logits, and the adaptive threshold (a
    multiple of the recent scores' quantile) overrode it on long streams (a review's 16 SKAB
    valve1 files joined: F1 0.265 with it, 0.802 without). The anomaly likelihood, which alarms
    on a rise of the recent scores against their own history, stays (SKAB's supervised
    benchmark: F1 0.705 with it, 0.697 without). (calibration, whether the adaptive threshold
    was turned off)."""
    if not method_given:
        calibration = replace(calibration, method=ThresholdMethod.F1)
    turned_off = calibration.adaptive and not adaptive_given
    return (replace(calibration, adaptive=False) if turned_off else calibration), turned_off


def inject_anomalies(windows: np.ndarray, std: np.ndarray, count: int,
                     rng: np.random.Generator, last: int) -> np.ndarray:
    """``count`` copies of random normal windows with a synthetic anomaly in their last rows."""
    chosen = windows[rng.integers(0, len(windows), count)].copy()
    steps = chosen.shape[1]
    for window in chosen:
        kind = SYNTHETIC_KINDS[int(rng.integers(len(SYNTHETIC_KINDS)))]
        feature = int(rng.integers(window.shape[1]))
        start = steps - int(rng.integers(1, max(2, last) + 1))
        size = rng.uniform(3.0, 8.0) * std[feature] * rng.choice([-1.0, 1.0])
        if kind == "spike":
            window[-1, feature] += size
        elif kind == "level_shift":
            window[start:, feature] += size
        elif kind == "drift":
            window[start:, feature] += size * np.linspace(0, 1, steps - start + 1)[1:]
        else:  # stuck: the sensor holds the value it had when the fault began
            window[start:, feature] = window[start - 1, feature]
    return chosen


def _check_windows_fit(tables, options: DataOptions, longest: int) -> None:
    """Refuse, before any window is cut, windows that would not fit in memory (the check the
    unsupervised path makes), counting each file's training and validation windows."""
    window, stride = options.window, options.stride
    train = validation = 0
    for table in tables:
        split = training_rows(table, options.validation_fraction)
        train += window_count(split, window, stride)
        validation += window_count(len(table) - max(0, split - window + 1), window, stride)
    check_memory(train, validation, window, len(tables[0].features), stride, longest)


def train_supervised(data: str | Path | Sequence[Path], output: str | Path,
                     options: SensorTrainingOptions = SensorTrainingOptions(),
                     supervised: SupervisedOptions = SupervisedOptions(),
                     verbose: int | str = "auto") -> SensorTrainingResult:
    """Train a classifier on labeled windows of ``data`` and write ``output`` (.keras)."""
    sensor_model.classifier_cell(options.model.architecture)  # refused before any reading
    options = checked_options(options, supervised=True)  # before any reading
    if not 0 <= supervised.synthetic_fraction <= 1:
        raise ValueError(f"`synthetic_fraction` must be in [0, 1]; received "
                         f"{supervised.synthetic_fraction}")
    started = time.perf_counter()
    data_options: DataOptions = options.data
    model_options = options.model
    window, stride = data_options.window, data_options.stride
    score_last = sensor_model.decided_score_last(model_options, window)  # as checked_options did
    tables = labeled_tables(data, data_options)
    _check_windows_fit(tables, data_options, longest_stride(window, model_options, supervised=True))
    train_x, train_y, val_x, val_y, normal_rows = [], [], [], [], []
    events = 0  # runs of labeled rows in the training parts: the incidents it learns from
    for table in tables:
        labels = table.labels if table.labels is not None else np.zeros(len(table), bool)
        split = training_rows(table, data_options.validation_fraction)
        normal_rows.append(table.values[:split][~labels[:split]])
        events += int(np.count_nonzero(np.diff(labels[:split].astype(np.int8), prepend=0) == 1))
        if split >= window:
            train_x.append(sliding_windows(table.values[:split], window, stride))
            train_y.append(window_last_labels(labels[:split], window, stride))
        start = max(0, split - window + 1)
        if len(table) - start >= window:
            val_x.append(sliding_windows(table.values[start:], window, stride))
            val_y.append(window_last_labels(labels[start:], window, stride))
    if not train_x or not val_x:
        raise ValueError(f"supervised training needs files of more than {window} rows in both "
                         "the training and the validation part")
    x, y = np.concatenate(train_x, dtype=np.float32), np.concatenate(train_y)
    vx, vy = np.concatenate(val_x, dtype=np.float32), np.concatenate(val_y)
    if (~vy).sum() < MIN_NORMAL_VALIDATION:  # known before any training
        raise ValueError(f"validation has {int((~vy).sum())} normal windows (of {len(vy)}); at "
                         f"least {MIN_NORMAL_VALIDATION} are needed to calibrate a threshold: the "
                         f"last {data_options.validation_fraction:g} of each file is held out for "
                         f"it, and there its rows are labeled; give more data, or a "
                         f"--validation-fraction that reaches normal rows")
    if y.sum() < MIN_POSITIVE_WINDOWS:
        raise ValueError(
            f"--supervised needs labeled anomalies to learn from: the training part holds "
            f"{int(y.sum())} windows ending on a labeled row, at least {MIN_POSITIVE_WINDOWS} "
            "are needed (train without --supervised, or give the labels with --label-column or "
            "--labels)")
    if events < MIN_POSITIVE_EVENTS:
        log.warning("the training part holds %d labeled anomal%s (runs of labeled rows) in %d "
                    "windows: a classifier learns %s, not anomalies in general (a review's two "
                    "incidents: F1 0.51 and a false-alarm rate of 0.44 on files it had not seen, "
                    "0.004 with every incident labeled); label more incidents, or train without "
                    "--supervised", events, "y" if events == 1 else "ies", int(y.sum()),
                    "that one" if events == 1 else "those few")
    normal_readings = np.concatenate(normal_rows)
    check_normal_rows(normal_readings, tables, data)
    mean, std = standardization(normal_readings, data_options.relative_std_floor)
    spread = training_spread(normal_readings, std)
    rng = np.random.default_rng(model_options.seed)
    if supervised.max_windows is not None and len(x) > supervised.max_windows:
        normal = np.flatnonzero(~y)
        room = max(0, supervised.max_windows - int(y.sum()))
        keep = np.sort(np.concatenate([np.flatnonzero(y),
                                       rng.choice(normal, min(room, len(normal)), replace=False)]))
        x, y = x[keep], y[keep]
    synthetic = int(round(supervised.synthetic_fraction * (~y).sum()))
    if synthetic:
        x = np.concatenate([x, inject_anomalies(x[~y], std, synthetic, rng, score_last)])
        y = np.concatenate([y, np.ones(synthetic, bool)])

    keras.utils.set_random_seed(model_options.seed)
    network = sensor_model.build_classifier(window, x.shape[2], model_options)
    normalize = lambda w: ((w - mean) / std).astype(np.float32)  # noqa: E731
    network.compile(optimizer=keras.optimizers.Adam(model_options.learning_rate),
                    loss=keras.losses.BinaryCrossentropy(from_logits=True))
    positives = float(y.mean())
    weights = ({0: 0.5 / (1 - positives), 1: 0.5 / positives} if supervised.class_weight
               else None)
    callbacks = ([keras.callbacks.EarlyStopping(patience=supervised.patience,
                                                restore_best_weights=True)]
                 if supervised.patience > 0 else [])
    history = network.fit(normalize(x), y.astype(np.float32),
                          validation_data=(normalize(vx), vy.astype(np.float32)),
                          epochs=model_options.epochs, batch_size=model_options.batch_size,
                          class_weight=weights, shuffle=True, callbacks=callbacks,
                          verbose=verbose)
    best_epoch = _say_early_stop(history, supervised.patience, model_options.epochs)
    scorer = sensor_model.build_classifier_scoring_model(network, window, mean, std, score_last)
    scores = score_windows(scorer, vx)
    method = ThresholdMethod(options.calibration.method)
    if method is ThresholdMethod.F1 and not vy.any():
        log.warning("no labeled anomaly in the validation part: the threshold is calibrated on "
                    "normal validation windows (gaussian) instead of F1-optimal")
        options = replace(options, calibration=replace(options.calibration,
                                                        method=ThresholdMethod.GAUSSIAN))
        method = ThresholdMethod.GAUSSIAN
    threshold = fit_threshold(options.calibration, scores, vy)
    check, warnings = validation_check(scores, vy, threshold, method)
    for warning in warnings:
        log.warning("%s", warning)
    record = _record(data, tables, events, options, supervised, window, stride, score_last,
                     mean, std, spread,
                     threshold, scores[~vy], len(history.epoch), len(x), int(y.sum()), synthetic,
                     len(vx), best_epoch)
    if check is not None:
        record["training"]["validation_check"] = check
    calibration = x[~y][np.sort(rng.choice(int((~y).sum()), min(256, int((~y).sum())),
                                           replace=False))]
    run = TrainingRun(model_path=Path(output), record=record, validation=vx,
                      validation_labels=vy, calibration=calibration)
    save_run(scorer, run)
    return SensorTrainingResult(run, threshold, time.perf_counter() - started,
                                len(history.epoch), check, tuple(warnings))


def _say_early_stop(history, patience: int, epochs: int) -> int:
    """The epoch whose weights the classifier keeps (1-based), said where early stopping ended
    training before ``epochs``: Keras restores the best epoch's weights without a word."""
    losses = history.history.get("val_loss") or []
    ran = len(history.epoch)
    if patience <= 0 or not losses:
        return ran
    losses = np.asarray(losses, dtype=np.float64)
    finite = np.isfinite(losses)
    if not finite.all():  # a loss that went NaN: the training diverged there
        log.warning("the validation loss was not a number at epoch(s) %s of %d: the training "
                    "diverged there (a lower --learning-rate, or fewer --epochs)",
                    ", ".join(str(k + 1) for k in np.flatnonzero(~finite)[:5]), ran)
    if not finite.any():
        return ran
    best = int(np.nanargmin(np.where(finite, losses, np.nan))) + 1  # Keras passes NaN over
    if best != ran:  # Keras restores the best weights whether or not training stopped early
        later = losses[1:][finite[1:]]
        rose = best == 1 and later.size > 0 and later.max() > losses[0]
        say = log.warning if rose else log.info
        stopped = (f"did not improve for {patience} epochs after it, so training stopped at "
                   f"epoch {ran} of {epochs}" if ran < epochs else
                   f"did not improve in the {ran - best} epochs after it")
        say("early stopping: the validation loss was lowest at epoch %d (%.4g) and %s; the "
            "classifier keeps epoch %d's weights%s (--patience N to wait longer, 0 to keep the "
            "last epoch's)", best, losses[best - 1], stopped, best,
            ": the validation loss rose from the first epoch on, so the labeled anomalies of the "
            "training part may not be like the validation part's" if rose else "")
    return best


def _record(data, tables, events: int, options: SensorTrainingOptions,
            supervised: SupervisedOptions, window: int,
            stride: int, score_last: int, mean, std, spread, threshold, normal_scores, epochs: int,
            train_windows: int, positive_windows: int, synthetic: int,
            validation_windows: int, best_epoch: int) -> dict:
    first = tables[0]
    model = options.model
    cell = "gru" if sensor_model.classifier_cell(model.architecture) is keras.layers.GRU else "lstm"
    # what the classifier was trained with (the normal-only models' settings do not apply)
    classifier = {"architecture": f"{cell}-classifier", "units": model.units,
                  "epochs": model.epochs, "batch_size": model.batch_size,
                  "learning_rate": model.learning_rate, "seed": model.seed,
                  "score_last": score_last, "members": 1,
                  "patience": supervised.patience, "best_epoch": best_epoch}
    return {
        "kind": "sensor",
        "features": list(first.features),
        "window": window,
        "stride": stride,
        "mean": np.asarray(mean).tolist(),
        "std": np.asarray(std).tolist(),
        "max_gap": options.data.max_gap,
        "time_column": first.time_column,
        "time_step": time_step(tables, [training_rows(t, options.data.validation_fraction)
                                        for t in tables], options.data.max_gap),
        "label_column": first.label_column,
        "score_reduction": "supervised classifier's logit that the window's last row is "
                           "anomalous; feature_errors: each feature's mean squared distance "
                           f"from its normal level over the last {score_last} steps",
        **decision_record(options.calibration, threshold, normal_scores, spread),
        "training": {
            "mode": "supervised",
            "files": file_records(tables, data),
            "labels": labels_record(data, options.data, tables),
            "train_windows": train_windows,
            "labeled_anomalous_windows": positive_windows - synthetic,
            "labeled_events": events,
            "synthetic_anomalous_windows": synthetic,
            "class_weight": supervised.class_weight,
            # every column is scored (a classifier has no input-only column): recorded, so that
            # the runtime counts rows_unseen_inputs as 0, not unknown
            "inputs_only": {}, "input_ranges": {},
            "steady_runs": steady_runs(tables, [training_rows(t, options.data.validation_fraction)
                                                for t in tables], first.features),
            "validation_windows": validation_windows,
            "validation_fraction": options.data.validation_fraction,
            "epochs": epochs,  # run; the weights kept are best_epoch's
            "model": classifier,
        },
        "versions": library_versions(),
    }
