"""Keras RNN models for sensor windows, and the scoring wrapper that is exported.

The trained network sees normalized windows. The exported model wraps it: raw window in,
normalization, reconstruction, per-feature error and the window score all inside the graph, so
the .onnx file scores raw readings by itself.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops


class Architecture(str, enum.Enum):
    LSTM_AE = "lstm-ae"            # LSTM encoder -> repeated code -> LSTM decoder
    GRU_AE = "gru-ae"              # the same with GRU cells
    CONV_LSTM_AE = "conv-lstm-ae"  # strided Conv1D front, LSTM bottleneck, upsampling decoder
    LSTM_FORECAST = "lstm-forecast"  # causal LSTM predicting each next row of the window
    GRU_FORECAST = "gru-forecast"    # the same with GRU cells
    TCN_FORECAST = "tcn-forecast"    # causal dilated 1-D convolutions (receptive field 31 rows)

    @property
    def forecasts(self) -> bool:
        return self in (Architecture.LSTM_FORECAST, Architecture.GRU_FORECAST,
                        Architecture.TCN_FORECAST)


class ScoreReduction(str, enum.Enum):
    MEAN = "mean"  # mean over features of the scaled per-feature errors
    MAX = "max"    # the worst feature's scaled error


@dataclass(frozen=True)
class ModelOptions:
    architecture: Architecture = Architecture.LSTM_FORECAST
    units: int = 32
    latent: int = 16
    # 30 beat 15 on NAB, SKAB and ECG (SMD the same) and 45 on NAB, one run each
    # (docs/quality.md, "Training epochs")
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-3
    patience: int = 0     # early-stopping patience in epochs (0: train all epochs)
    score_reduction: ScoreReduction = ScoreReduction.MEAN
    score_last: int | None = None  # score the last k steps of the window (0: the whole window;
                                   # None: 32, or half the window when it is 32 rows or fewer)
    score_decay: float = 0.1  # weigh those steps by (1 - decay)^age, newest heaviest (0: equal)
    burn_in: int | None = None  # forecasters: no loss on the first steps (too little
                                # history); default a third of the window
    scale_features: bool = False  # divide each feature's error by its mean on normal windows
    # Add the distance of the last rows' shape to the nearest normal one (``NeighbourDistance``),
    # each part of the score standardized by its held-out normal scores (0: the error alone).
    # 16 rows was chosen on NAB, SKAB, SMD and ECG together (docs/quality.md, "Alarm defaults").
    neighbour_rows: int = 16
    # Normal shapes kept (evenly spaced) when training has more: 2,048 was as good as 8,192 on the
    # four sets (SMD and ECG gained a little; NAB and SKAB never fill it) at a quarter of the cost.
    neighbour_entries: int = 2048
    # Networks trained alike from seeds seed, seed + 1, ...; the score averages their errors.
    # 3 was chosen on NAB, SKAB, SMD and ECG together (docs/quality.md, "Several networks
    # averaged"): three networks against the mean of one network's seeds 0-2, NAB standard 57.0
    # against 54.4, SKAB F1 0.847 against 0.842, SMD event F1 0.500 against 0.481, ECG event F1
    # 0.659 against 0.636 (above the best single seed on NAB, SMD and ECG; seeds 3-5 gave NAB 56.6,
    # SKAB 0.853, SMD 0.494, but ECG 0.631), for 1.7-2x the batch-1 latency and three times the
    # training.
    members: int = 3
    # At most this many training windows per epoch, a fresh random draw each epoch (0: every
    # window every epoch), so that a long history trains in bounded time. Drawing 8,192 of SMD's
    # 17,700 and ECG's 15,200 gave event F1 0.500 and 0.631, within what two seed triples give
    # with every window (SMD 0.494-0.500, ECG 0.631-0.659; docs/quality.md, "Training windows
    # drawn afresh"); the default lies above all four sets' training windows, so their models are
    # unchanged and only a longer history is bounded.
    epoch_windows: int = 32768
    seed: int = 0


def default_score_last(window: int) -> int:
    """The steps scored when ``score_last`` is not given: 32 (chosen with window 48 on SKAB and
    kept across NAB, SMD and ECG), or half of a window of 32 rows or fewer."""
    return 32 if window > 32 else max(1, window // 2)


def decided_score_last(options: ModelOptions, window: int) -> int:
    """``options.score_last``, or ``default_score_last(window)`` where it is not given."""
    return default_score_last(window) if options.score_last is None else options.score_last


@keras.saving.register_keras_serializable(package="vigil")
class Standardize(layers.Layer):
    """(x - mean) / std with constants fixed at training time; features with a ``bound`` >= 0 are
    clipped to +-bound (inputs-only columns: a status flag that barely changed in training must not
    throw the network off when it changes; a column constant in training is held at its level).
    Features with a ``compress`` scale m > 0 are first compressed to sign(x) log(1 + |x| / m)
    (heavy-tailed columns, ``sensor_data.heavy_tail_scales``; ``mean`` and ``std`` are then the
    compressed values')."""

    def __init__(self, mean, std, bound=None, compress=None, **kwargs):
        super().__init__(**kwargs)
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]
        self.bound = [float(v) for v in bound] if bound is not None else None
        self.compress = ([float(v) for v in compress]
                         if compress is not None and any(v > 0 for v in compress) else None)

    def call(self, x):
        if self.compress is not None:
            scales = np.asarray(self.compress, dtype=np.float64)
            chosen = (scales > 0).astype(np.float32)
            inverse = (chosen / np.where(scales > 0, scales, 1.0)).astype(np.float32)
            # log(1 + .) rather than log1p: tf2onnx has no Log1p
            squeezed = ops.sign(x) * ops.log(1.0 + ops.abs(x) * ops.convert_to_tensor(inverse))
            x = squeezed + x * ops.convert_to_tensor(1.0 - chosen)  # 0 + x where not compressed
        mean = ops.convert_to_tensor(np.asarray(self.mean, dtype=np.float32))
        std = ops.convert_to_tensor(np.asarray(self.std, dtype=np.float32))
        z = (x - mean) / std
        if self.bound is not None and any(b >= 0 for b in self.bound):
            bound = np.asarray(self.bound, dtype=np.float32)
            high = np.where(bound >= 0, bound, np.float32(3e38)).astype(np.float32)
            z = ops.minimum(ops.maximum(z, ops.convert_to_tensor(-high)),
                            ops.convert_to_tensor(high))
        return z

    def get_config(self):
        config = {**super().get_config(), "mean": self.mean, "std": self.std, "bound": self.bound}
        if self.compress is not None:
            config["compress"] = self.compress
        return config


@keras.saving.register_keras_serializable(package="vigil")
class WindowScore(layers.Layer):
    """Per-feature squared error (reconstruction or forecast), scaled, and the window score.

    Returns (score (batch,), feature_errors (batch, features)); the score is the mean or max of
    the scaled feature errors, so each feature's entry says how much it contributed.
    """

    def __init__(self, scale, reduction="mean", last=0, decay=0.0, weights=None, **kwargs):
        super().__init__(**kwargs)
        self.scale = [float(v) for v in scale]
        # 0 for inputs-only features (constant, binary, categorical in training): never scored.
        self.feature_weights = [float(v) for v in weights] if weights is not None else None
        self.reduction = ScoreReduction(reduction).value
        self.last = int(last)
        self.decay = float(decay)

    def call(self, inputs):
        target, reconstruction = inputs
        if self.last > 0:
            target, reconstruction = target[:, -self.last:, :], reconstruction[:, -self.last:, :]
        squared = ops.square(reconstruction - target)
        if self.decay > 0:
            steps = self.last if self.last > 0 else squared.shape[1]
            weights = (1.0 - self.decay) ** np.arange(steps - 1, -1, -1, dtype=np.float64)
            weights = (weights / weights.sum()).astype(np.float32).reshape(1, steps, 1)
            error = ops.sum(squared * ops.convert_to_tensor(weights), axis=1)
        else:
            error = ops.mean(squared, axis=1)
        scaled = error / ops.convert_to_tensor(np.asarray(self.scale, dtype=np.float32))
        if self.feature_weights is not None:
            weights = np.asarray(self.feature_weights, dtype=np.float32)
            scaled = scaled * ops.convert_to_tensor(weights)
            if self.reduction != ScoreReduction.MAX.value:
                return ops.sum(scaled, axis=1) / float(weights.sum()), scaled
        if self.reduction == ScoreReduction.MAX.value:
            score = ops.max(scaled, axis=1)
        else:
            score = ops.mean(scaled, axis=1)
        return score, scaled

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "reduction": self.reduction,
                "last": self.last, "decay": self.decay, "weights": self.feature_weights}


NEIGHBOUR_LAYER = "neighbour_distance"  # its nodes stay float in the INT8 export


@keras.saving.register_keras_serializable(package="vigil")
class NeighbourDistance(layers.Layer):
    """Distance from a window's recent shape to the nearest normal one, in normalized units.

    The shape is the window's last ``rows`` normalized rows of the scored ``features``, each
    feature minus its mean over those rows; the bank holds the shapes of normal training windows
    (a graph constant: a window's distance never depends on its batch). A forecaster's error is
    small for a step it can follow even when the pattern around it was never seen; the nearest
    normal shape sees the pattern (a nearest-neighbour score, as KNN-CAD's on NAB).
    """

    def __init__(self, rows, features, entries, **kwargs):
        super().__init__(**kwargs)
        self.rows = int(rows)
        self.features = [int(f) for f in features]
        self.entries = int(entries)

    @property
    def dimensions(self) -> int:
        return self.rows * len(self.features)

    def build(self, input_shape):
        self.bank = self.add_weight(name="bank", shape=(self.dimensions, self.entries),
                                    initializer="zeros", trainable=False)
        self.bank_norms = self.add_weight(name="bank_norms", shape=(1, self.entries),
                                          initializer="zeros", trainable=False)

    def set_bank(self, shapes: np.ndarray) -> None:
        """Fill the bank with ``shapes`` (entries, dimensions), as ``shapes_of`` gives them."""
        shapes = np.asarray(shapes, dtype=np.float32)
        if shapes.shape != (self.entries, self.dimensions):
            raise ValueError(f"`shapes` must have shape {(self.entries, self.dimensions)}; "
                             f"received {shapes.shape}")
        self.bank.assign(shapes.T)
        self.bank_norms.assign(np.sum(np.square(shapes), axis=1, keepdims=True).T)

    def call(self, normalized):
        x = shapes_of(normalized, self.rows, self.features)
        # The nearest entry by |b|^2 - 2 x.b (|x|^2 is the same for all); its distance is then
        # computed directly, free of that expansion's cancellation (and so of GEMM blocking).
        import tensorflow as tf  # keras.ops.argmin's -0.0 handling exports a Bitcast ONNX lacks

        nearest = tf.argmin(self.bank_norms - 2.0 * ops.matmul(x, self.bank), axis=1)
        closest = ops.transpose(ops.take(self.bank, nearest, axis=1))
        return ops.sqrt(ops.sum(ops.square(x - closest), axis=1))

    def get_config(self):
        return {**super().get_config(), "rows": self.rows, "features": self.features,
                "entries": self.entries}


def shapes_of(normalized, rows: int, features: list[int]):
    """(windows, rows * features): the last ``rows`` rows of the chosen features, each feature
    minus its mean over them, flattened (tensors or numpy arrays)."""
    x = normalized[:, -rows:, :]
    x = ops.take(x, np.asarray(features, dtype=np.int32), axis=2)
    x = x - ops.mean(x, axis=1, keepdims=True)
    return ops.reshape(x, (-1, rows * len(features)))


def normal_shapes(normalized: np.ndarray, rows: int, features: list[int],
                  entries: int) -> np.ndarray:
    """The bank: the shapes of normal training windows, at most ``entries``, evenly spaced."""
    shapes = np.asarray(shapes_of(normalized, rows, features), dtype=np.float32)
    if len(shapes) > entries:
        shapes = shapes[np.linspace(0, len(shapes) - 1, entries).round().astype(int)]
    return shapes


@keras.saving.register_keras_serializable(package="vigil")
class StandardizedSum(layers.Layer):
    """The sum of scores, each minus its held-out normal mean over its normal std: 0 is a
    typical normal window, and each part weighs by how far it is from its own normal."""

    def __init__(self, means, stds, **kwargs):
        super().__init__(**kwargs)
        self.means = [float(v) for v in means]
        self.stds = [float(v) for v in stds]

    def call(self, scores):
        return sum((s - m) / d for s, m, d in zip(scores, self.means, self.stds))

    def get_config(self):
        return {**super().get_config(), "means": self.means, "stds": self.stds}


@dataclass(frozen=True)
class NeighbourScore:
    """What ``build_scoring_model`` needs to add the neighbour distance to the error score."""

    rows: int
    features: tuple[int, ...]
    shapes: np.ndarray           # (entries, rows * features), from ``normal_shapes``
    means: tuple[float, float]   # (error, distance) on held-out normal windows
    stds: tuple[float, float]


def build_network(window: int, features: int, options: ModelOptions,
                  member: int = 0) -> keras.Model:
    """The trainable network on normalized windows.

    Autoencoders map (window, features) to its reconstruction. Forecasters map the first
    ``window - 1`` rows to predictions of rows 1..window-1 (output t forecasts row t + 1).
    Its initial weights come from ``options.seed`` alone, whatever ran before in the process;
    ``member`` n > 0 (of ``options.members``) starts from seed + n and has its own name.
    """
    keras.utils.set_random_seed(options.seed + member)
    arch = Architecture(options.architecture)
    name = f"vigil_{arch.value.replace('-', '_')}" + (f"_{member}" if member else "")
    if arch is Architecture.TCN_FORECAST:
        return _temporal_convolution(window, features, options.units, name)
    if arch.forecasts:
        cell = layers.GRU if arch is Architecture.GRU_FORECAST else layers.LSTM
        inputs = keras.Input((window - 1, features), name="history")
        x = cell(options.units, return_sequences=True)(inputs)
        # Dense acts on a sequence's last axis as it is; TimeDistributed around it exported as
        # one Slice, MatMul and Squeeze per step (about 250 ONNX nodes for a window of 64)
        outputs = layers.Dense(features)(x)
        return keras.Model(inputs, outputs, name=name)
    inputs = keras.Input((window, features), name="window")
    if arch is Architecture.CONV_LSTM_AE:
        if window % 4:
            raise ValueError(f"`window` must be a multiple of 4 for {arch.value}; received {window}")
        x = layers.Conv1D(options.units, 5, strides=2, padding="same", activation="relu")(inputs)
        x = layers.Conv1D(options.units, 3, strides=2, padding="same", activation="relu")(x)
        code = layers.LSTM(options.latent)(x)
        x = layers.RepeatVector(window // 4)(code)
        x = layers.LSTM(options.units, return_sequences=True)(x)
        x = layers.UpSampling1D(2)(x)
        x = layers.Conv1D(options.units, 3, padding="same", activation="relu")(x)
        x = layers.UpSampling1D(2)(x)
        x = layers.Conv1D(options.units, 3, padding="same", activation="relu")(x)
    else:
        cell = layers.GRU if arch is Architecture.GRU_AE else layers.LSTM
        x = cell(options.units, return_sequences=True)(inputs)
        code = cell(options.latent)(x)
        x = layers.RepeatVector(window)(code)
        x = cell(options.latent, return_sequences=True)(x)
        x = cell(options.units, return_sequences=True)(x)
    outputs = layers.Dense(features)(x)  # one MatMul for every step (see above)
    return keras.Model(inputs, outputs, name=name)


TCN_DILATIONS = (1, 2, 4, 8)  # kernel 3: each output sees the 31 rows up to its own


def _temporal_convolution(window: int, features: int, units: int,
                          name: str = "vigil_tcn_forecast") -> keras.Model:
    """Causal residual blocks of dilated Conv1D; output t forecasts row t + 1 from rows <= t."""
    inputs = keras.Input((window - 1, features), name="history")
    x = layers.Conv1D(units, 1)(inputs)
    for dilation in TCN_DILATIONS:
        step = layers.Conv1D(units, 3, padding="causal", dilation_rate=dilation,
                             activation="relu")(x)
        x = layers.Add()([x, step])
    outputs = layers.Conv1D(features, 1)(x)
    return keras.Model(inputs, outputs, name=name)


def targets_and_outputs(network: keras.Model, normalized, forecasts: bool):
    """(what the network should produce, what it produced) for normalized windows."""
    if forecasts:
        return normalized[:, 1:, :], network(normalized[:, :-1, :])
    return normalized, network(normalized)


def training_pairs(normalized: np.ndarray, forecasts: bool) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) to fit the network on."""
    if forecasts:
        return normalized[:, :-1], normalized[:, 1:]
    return normalized, normalized


INPUT_BOUND = 5.0  # inputs-only features are clipped to +-5 normal spreads
NO_BOUND = -1.0


def input_bounds(roles: tuple[str, ...]) -> np.ndarray:
    """Per feature: -1 (scored, not clipped), 0 (constant in training: held at its level), or
    ``INPUT_BOUND`` (another inputs-only column)."""
    return np.array([NO_BOUND if r == "scored" else 0.0 if r == "constant" else INPUT_BOUND
                     for r in roles], dtype=np.float64)


def build_scoring_model(network: keras.Model | Sequence[keras.Model], window: int,
                        mean: np.ndarray, std: np.ndarray,
                        scale: np.ndarray | Sequence[np.ndarray], options: ModelOptions,
                        bounds: np.ndarray | None = None,
                        neighbours: NeighbourScore | None = None,
                        compress: np.ndarray | None = None) -> keras.Model:
    """Raw window in; (score, feature_errors) out. This is the model that is exported.

    ``network`` may be several networks (``members``), each with its ``scale``: their window
    scores and feature errors are averaged. ``bounds`` (``input_bounds`` of the feature roles;
    default: every feature scored) marks the features whose error makes the score (-1); the
    others are inputs only, clipped. With ``neighbours`` the score is the standardized sum of the
    error score and the neighbour distance (``feature_errors`` stay the forecast's or
    reconstruction's). ``compress`` (``sensor_data.heavy_tail_scales``) compresses heavy-tailed
    features before ``mean`` and ``std``, which are then the compressed values'.
    """
    networks = list(network) if isinstance(network, (list, tuple)) else [network]
    scales = list(scale) if isinstance(network, (list, tuple)) else [scale]
    if len(scales) != len(networks):
        raise ValueError(f"`scale` must hold one scale per network ({len(networks)}); received "
                         f"{len(scales)}")
    features = len(mean)
    raw = keras.Input((window, features), name="window")
    weights = bound = None
    if bounds is not None and np.any(np.asarray(bounds) >= 0):
        weights = (np.asarray(bounds) < 0).astype(np.float32)
        bound = np.asarray(bounds, dtype=np.float64)
    normalized = Standardize(mean, std, bound, compress, name="standardize")(raw)
    scores, errors = [], []
    for n, (member, member_scale) in enumerate(zip(networks, scales)):
        target, produced = targets_and_outputs(member, normalized,
                                               Architecture(options.architecture).forecasts)
        member_score, member_errors = WindowScore(
            member_scale, options.score_reduction, options.score_last, options.score_decay,
            weights, name="window_score" + (f"_{n}" if n else ""))([target, produced])
        scores.append(member_score)
        errors.append(member_errors)
    score, feature_errors = scores[0], errors[0]
    if len(networks) > 1:
        score = layers.Average(name="members_score")(scores)
        feature_errors = layers.Average(name="members_feature_errors")(errors)
    if neighbours is not None:
        layer = NeighbourDistance(neighbours.rows, neighbours.features, len(neighbours.shapes),
                                  name=NEIGHBOUR_LAYER)
        distance = layer(normalized)
        layer.set_bank(neighbours.shapes)
        score = StandardizedSum(neighbours.means, neighbours.stds,
                                name="standardized_sum")([score, distance])
    score = layers.Identity(name="score")(score)
    feature_errors = layers.Identity(name="feature_errors")(feature_errors)
    return keras.Model(raw, {"score": score, "feature_errors": feature_errors},
                       name="vigil_sensor_scorer")


def feature_error_scale(network: keras.Model, normalized: np.ndarray,
                        options: ModelOptions) -> np.ndarray:
    """The unit each feature's squared error is scored in.

    With ``scale_features`` it is the feature's mean squared error on normal windows, so that a
    well-predicted feature weighs as much as a noisy one; otherwise 1 for every feature.
    """
    if not options.scale_features:
        return np.ones(normalized.shape[-1])
    inputs, targets = training_pairs(normalized, Architecture(options.architecture).forecasts)
    produced = network.predict(inputs, batch_size=512, verbose=0)
    last = decided_score_last(options, normalized.shape[1])
    if last > 0:
        targets, produced = targets[:, -last:], produced[:, -last:]
    return np.maximum(np.mean((produced - targets) ** 2, axis=(0, 1)), 1e-6)


def fit(network: keras.Model, train: np.ndarray, validation: np.ndarray,
        options: ModelOptions, verbose: int | str = "auto",
        member: int = 0) -> keras.callbacks.History:
    """Fit the network on normal windows (normalized); early stopping when ``patience`` > 0.
    Shuffling comes from ``options.seed`` (plus ``member``, as in ``build_network``)."""
    keras.utils.set_random_seed(options.seed + member)
    forecasts = Architecture(options.architecture).forecasts
    network.compile(optimizer=keras.optimizers.Adam(options.learning_rate), loss="mse")
    callbacks = []
    if options.patience > 0:
        callbacks.append(keras.callbacks.EarlyStopping(patience=options.patience,
                                                       restore_best_weights=True))
    x, y = training_pairs(train, forecasts)
    vx, vy = training_pairs(validation, forecasts)
    weights = validation_weights = None
    burn_in = (train.shape[1] // 3) if options.burn_in is None else options.burn_in
    if forecasts and burn_in > 0:
        steps = y.shape[1]
        if burn_in >= steps:
            raise ValueError(f"`burn_in` must be smaller than the forecast steps ({steps}); "
                             f"received {burn_in}")
        step_weights = (np.arange(steps) >= burn_in).astype(np.float32)
        weights = np.tile(step_weights, (len(y), 1))
        validation_weights = np.tile(step_weights, (len(vy), 1))
    validation_data = (vx, vy) if validation_weights is None else (vx, vy, validation_weights)
    if 0 < options.epoch_windows < len(x):
        sample = EpochSample(x, y, weights, options.epoch_windows, options.batch_size,
                             options.seed + member)
        if len(vx) > options.epoch_windows:  # the validation loss on as many, evenly spaced
            rows = np.linspace(0, len(vx) - 1, options.epoch_windows).round().astype(int)
            validation_data = tuple(part[rows] for part in validation_data)
        return network.fit(sample, validation_data=validation_data, epochs=options.epochs,
                           validation_batch_size=options.batch_size, callbacks=callbacks,
                           verbose=verbose)
    return network.fit(x, y, sample_weight=weights, validation_data=validation_data,
                       epochs=options.epochs, batch_size=options.batch_size, shuffle=True,
                       callbacks=callbacks, verbose=verbose)


class EpochSample(keras.utils.PyDataset):
    """Batches of ``size`` training pairs drawn afresh (without replacement) each epoch from
    all of them, from ``seed``: every window can be seen, and an epoch costs the same however
    long the history."""

    def __init__(self, x: np.ndarray, y: np.ndarray, weights: np.ndarray | None, size: int,
                 batch_size: int, seed: int):
        super().__init__()
        self.x, self.y, self.weights = x, y, weights
        self.size, self.batch_size = size, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self._draw()

    def _draw(self) -> np.ndarray:
        return self.rng.choice(len(self.x), self.size, replace=False)

    def __len__(self) -> int:
        return -(-self.size // self.batch_size)

    def __getitem__(self, index: int):
        rows = np.sort(self.order[index * self.batch_size:(index + 1) * self.batch_size])
        if self.weights is None:
            return self.x[rows], self.y[rows]
        return self.x[rows], self.y[rows], self.weights[rows]

    def on_epoch_end(self) -> None:
        self.order = self._draw()


@keras.saving.register_keras_serializable(package="vigil")
class Deviation(layers.Layer):
    """Each feature's mean squared normalized value over the last ``last`` steps: how far it is
    from its normal level, in normal spreads (a supervised classifier's ``feature_errors``)."""

    def __init__(self, last=0, **kwargs):
        super().__init__(**kwargs)
        self.last = int(last)

    def call(self, normalized):
        x = normalized[:, -self.last:, :] if self.last > 0 else normalized
        return ops.mean(ops.square(x), axis=1)

    def get_config(self):
        return {**super().get_config(), "last": self.last}


@keras.saving.register_keras_serializable(package="vigil")
class FirstColumn(layers.Layer):
    """(batch, 1) -> (batch,): a classifier's logit as a window score."""

    def call(self, x):
        return x[:, 0]


FLOAT32_LIMIT = float(np.finfo(np.float32).max)  # a sum at or beyond it has overflowed


@keras.saving.register_keras_serializable(package="vigil")
class OverflowGuard(layers.Layer):
    """(logit, normalized window) -> the logit, or +inf where the window's sum of squared
    normalized readings overflows float32 (a reading near 1e19 spreads or beyond, anywhere in
    the window: a sentinel): a classifier's logit is bounded, so without it such a window scored
    as normal; the forecasters' errors overflow to inf by themselves. Other windows keep their
    logit bit for bit."""

    def call(self, inputs):
        logit, normalized = inputs
        if len(normalized.shape) == 2:  # a model saved by the first guard (its deviations)
            return logit + 0.0 * ops.sum(normalized, axis=-1)
        energy = ops.sum(ops.square(normalized), axis=(1, 2))
        return ops.where(energy < FLOAT32_LIMIT, logit, float("inf"))


def classifier_cell(architecture: Architecture | str) -> type:
    """The recurrent cell a supervised classifier uses for ``architecture``: GRU for the GRU
    architectures, LSTM for the LSTM ones; ValueError for one with neither cell."""
    arch = Architecture(architecture)
    if arch in (Architecture.TCN_FORECAST, Architecture.CONV_LSTM_AE):
        raise ValueError(f"supervised training trains a recurrent classifier, an LSTM or a GRU "
                         f"over the window; `architecture` {arch.value} is none of its "
                         f"architectures: give lstm-forecast, gru-forecast, lstm-ae or gru-ae "
                         f"(the cell it uses), or leave `architecture` out")
    return layers.GRU if arch in (Architecture.GRU_FORECAST, Architecture.GRU_AE) else layers.LSTM


def build_classifier(window: int, features: int, options: ModelOptions) -> keras.Model:
    """Normalized window in, one logit out (supervised mode): a GRU for the GRU architectures,
    an LSTM for the LSTM ones (``classifier_cell``), over the window, then a small dense head."""
    inputs = keras.Input((window, features), name="window")
    cell = classifier_cell(options.architecture)
    x = cell(options.units)(inputs)
    x = layers.Dense(max(8, options.units // 2), activation="relu")(x)
    return keras.Model(inputs, layers.Dense(1)(x), name="vigil_supervised_classifier")


def build_classifier_scoring_model(network: keras.Model, window: int, mean: np.ndarray,
                                   std: np.ndarray, score_last: int) -> keras.Model:
    """Raw window in; (score = the classifier's logit, feature_errors = ``Deviation``) out."""
    raw = keras.Input((window, len(mean)), name="window")
    normalized = Standardize(mean, std, name="standardize")(raw)
    deviations = Deviation(score_last, name="deviation")(normalized)
    logit = FirstColumn(name="logit")(network(normalized))
    score = layers.Identity(name="score")(OverflowGuard(name="overflow_guard")([logit, normalized]))
    deviation = layers.Identity(name="feature_errors")(deviations)
    return keras.Model(raw, {"score": score, "feature_errors": deviation},
                       name="vigil_sensor_scorer")
