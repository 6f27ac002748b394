"""Sensor models of several networks (``members``): their errors are averaged, member 0 is the
single model, and the whole exports and scores like one network."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("onnx")

import keras  # noqa: E402

from vigil import runtime  # noqa: E402
from vigil.export import ExportOptions, Precision  # noqa: E402
from vigil.export.export_sensor import export_sensor  # noqa: E402
from vigil.training.checkpoint import load_run  # noqa: E402
from vigil.training.sensor_data import DataOptions  # noqa: E402
from vigil.training.sensor_model import (ModelOptions, build_network,  # noqa: E402
                                         build_scoring_model)
from vigil.training.synthetic import write_sensor_dataset  # noqa: E402
from vigil.training.train_sensor import SensorTrainingOptions, train_sensor  # noqa: E402

WINDOW, FEATURES = 12, 2


def scores_of(model, windows: np.ndarray) -> np.ndarray:
    return np.asarray(model(windows)["score"], dtype=np.float64).ravel()


def test_member_zero_is_the_single_network_and_member_n_starts_from_seed_plus_n():
    options = ModelOptions(units=4, seed=3)
    single = build_network(WINDOW, FEATURES, options)
    first = build_network(WINDOW, FEATURES, options, member=0)
    second = build_network(WINDOW, FEATURES, options, member=2)
    shifted = build_network(WINDOW, FEATURES, replace(options, seed=5))
    assert first.name == single.name and second.name == f"{single.name}_2"
    for a, b in zip(single.get_weights(), first.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(shifted.get_weights(), second.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(single.get_weights()[0], second.get_weights()[0])


def test_the_score_averages_the_members_window_scores():
    options = ModelOptions(units=4, score_last=6, burn_in=2, neighbour_rows=0)
    networks = [build_network(WINDOW, FEATURES, options, member) for member in range(2)]
    mean, std, scale = np.zeros(FEATURES), np.ones(FEATURES), np.ones(FEATURES)
    windows = np.random.default_rng(0).normal(size=(16, WINDOW, FEATURES)).astype(np.float32)
    alone = [scores_of(build_scoring_model(n, WINDOW, mean, std, scale, options), windows)
             for n in networks]
    both = build_scoring_model(networks, WINDOW, mean, std, [scale, scale], options)
    np.testing.assert_allclose(scores_of(both, windows), (alone[0] + alone[1]) / 2, rtol=1e-5)
    with pytest.raises(ValueError, match="one scale per network \\(2\\); received 1"):
        build_scoring_model(networks, WINDOW, mean, std, [scale], options)


@pytest.fixture(scope="module")
def train_csv(tmp_path_factory):
    folder = tmp_path_factory.mktemp("members")
    return write_sensor_dataset(folder, seed=11, train_rows=600, test_rows=200)[0]


def small(members: int) -> SensorTrainingOptions:
    return SensorTrainingOptions(data=DataOptions(window=24),
                                 model=ModelOptions(units=8, epochs=1, score_last=12, burn_in=4,
                                                    neighbour_rows=8, members=members))


def test_two_members_train_export_and_score_like_their_keras_model(train_csv, tmp_path):
    model = tmp_path / "model.keras"
    result = train_sensor(train_csv, model, small(2), verbose=0)
    record = result.run.record
    assert "averaged over 2 networks trained from seeds 0-1" in record["score_reduction"]
    assert record["training"]["model"]["members"] == 2
    artifact = export_sensor(model, tmp_path / "m.onnx", ExportOptions(precision=Precision.FP32))
    windows = load_run(model).validation[:32]
    keras_scores = scores_of(keras.saving.load_model(model, compile=False), windows)
    detector = runtime.load(artifact.path)
    np.testing.assert_allclose(detector.score(windows), keras_scores, rtol=1e-4, atol=1e-4)
    alone = np.concatenate([detector.score(windows[i:i + 1]) for i in range(8)])
    np.testing.assert_allclose(alone, detector.score(windows)[:8], rtol=1e-5, atol=1e-5)


def test_members_below_one_names_the_argument(train_csv, tmp_path):
    with pytest.raises(ValueError, match="`members` must be >= 1.*received 0"):
        train_sensor(train_csv, tmp_path / "m.keras", small(0), verbose=0)
