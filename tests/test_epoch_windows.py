"""Training on a fresh draw of windows each epoch (``epoch_windows``): bounded epochs on long
histories, every window reachable, reproducible from the seed, the same model when it does not
bind."""

from __future__ import annotations

import logging

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402

from vigil.training.sensor_data import DataOptions  # noqa: E402
from vigil.training.sensor_model import (EpochSample, ModelOptions, build_network,  # noqa: E402
                                         fit)
from vigil.training.synthetic import write_sensor_dataset  # noqa: E402
from vigil.training.train_sensor import SensorTrainingOptions, train_sensor  # noqa: E402


def pairs(n: int, steps: int = 5, features: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.arange(n, dtype=np.float32)[:, None, None] * np.ones((1, steps, features), np.float32)
    return x, x + 0.5, np.tile(np.arange(steps, dtype=np.float32), (n, 1)) + x[:, :, 0]


def test_each_epoch_draws_distinct_windows_afresh_and_keeps_weights_aligned():
    x, y, w = pairs(100)
    sample = EpochSample(x, y, w, size=30, batch_size=8, seed=4)
    assert len(sample) == 4  # 8 + 8 + 8 + 6
    epochs = []
    for _ in range(6):
        rows = []
        for i in range(len(sample)):
            bx, by, bw = sample[i]
            assert bx.shape[1:] == (5, 2) and len(bx) == len(by) == len(bw) <= 8
            np.testing.assert_array_equal(by, bx + 0.5)
            np.testing.assert_array_equal(bw[:, 0], bx[:, 0, 0])
            rows.extend(bx[:, 0, 0].astype(int).tolist())
        assert len(rows) == 30 and len(set(rows)) == 30
        epochs.append(set(rows))
        sample.on_epoch_end()
    assert len({frozenset(e) for e in epochs}) == 6
    assert len(set().union(*epochs)) > 80  # over epochs the draw reaches most windows


def test_the_draws_repeat_from_the_seed_epoch_after_epoch():
    x, y, w = pairs(100)
    first, second = (EpochSample(x, y, w, size=30, batch_size=8, seed=4) for _ in range(2))
    other = EpochSample(x, y, w, size=30, batch_size=8, seed=5)
    for _ in range(3):
        np.testing.assert_array_equal(first.order, second.order)
        assert not np.array_equal(first.order, other.order)
        for sample in (first, second, other):
            sample.on_epoch_end()


def test_a_real_fit_trains_each_epoch_on_a_new_draw(monkeypatch):
    from vigil.training import sensor_model

    served: list[set[int]] = []

    class Recording(EpochSample):
        def __getitem__(self, index):
            batch = super().__getitem__(index)
            self.__dict__.setdefault("seen", set()).update(
                np.round(batch[0][:, 0, 0]).astype(int).tolist())
            return batch

        def on_epoch_end(self):
            served.append(getattr(self, "seen", set()))
            self.seen = set()
            super().on_epoch_end()

    monkeypatch.setattr(sensor_model, "EpochSample", Recording)
    options = ModelOptions(units=4, epochs=3, batch_size=16, epoch_windows=48, burn_in=2)
    train = np.arange(400, dtype=np.float32)[:, None, None] * np.ones((1, 12, 2), np.float32)
    fit(build_network(12, 2, options), train, train[:40], options, verbose=0)
    epochs = served[-3:]  # before them Keras may read a first batch to learn the shapes
    assert len([rows for rows in served if rows]) in (3, 4)
    assert all(len(rows) == 48 for rows in epochs)
    assert len({frozenset(rows) for rows in epochs}) == 3


def test_fit_takes_the_drawn_windows_per_epoch_when_there_are_more():
    options = ModelOptions(units=4, epochs=2, batch_size=16, epoch_windows=48, burn_in=2)
    train = np.random.default_rng(0).normal(size=(400, 12, 2)).astype(np.float32)
    batches = []

    class Count(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            batches.append(0)

        def on_train_batch_end(self, batch, logs=None):
            batches[-1] += 1

    network = build_network(12, 2, options)
    original = network.fit

    def counted_fit(*args, **kwargs):
        kwargs["callbacks"] = [*kwargs.get("callbacks", []), Count()]
        return original(*args, **kwargs)

    network.fit = counted_fit
    history = fit(network, train, train[:40], options, verbose=0)
    assert batches == [3, 3] and len(history.history["val_loss"]) == 2


def test_training_logs_and_records_the_draw_and_rejects_a_negative_one(tmp_path, caplog):
    csv = write_sensor_dataset(tmp_path, seed=3, train_rows=700, test_rows=100)[0]
    options = SensorTrainingOptions(
        data=DataOptions(window=24),
        model=ModelOptions(units=4, epochs=1, score_last=12, burn_in=4, neighbour_rows=0,
                           members=1, epoch_windows=64))
    with caplog.at_level(logging.INFO, logger="vigil"):
        result = train_sensor(csv, tmp_path / "m.keras", options, verbose=2)
    train_windows = result.run.record["training"]["train_windows"]
    assert train_windows > 64
    assert f"each epoch trains on 64 of the {train_windows} training windows" in caplog.text
    assert result.run.record["training"]["model"]["epoch_windows"] == 64
    bad = SensorTrainingOptions(data=options.data,
                                model=ModelOptions(members=1, epoch_windows=-1))
    with pytest.raises(ValueError, match="`epoch_windows` must be >= 0.*received -1"):
        train_sensor(csv, tmp_path / "bad.keras", bad, verbose=0)


def test_a_draw_as_large_as_the_windows_trains_exactly_as_every_window():
    train = np.random.default_rng(1).normal(size=(120, 12, 2)).astype(np.float32)
    weights = []
    for epoch_windows in (0, 120, 32768):
        options = ModelOptions(units=4, epochs=2, batch_size=16, burn_in=2,
                               epoch_windows=epoch_windows)
        network = build_network(12, 2, options)
        fit(network, train, train[:20], options, verbose=0)
        weights.append(network.get_weights())
    for other in weights[1:]:
        for a, b in zip(weights[0], other):
            np.testing.assert_array_equal(a, b)
