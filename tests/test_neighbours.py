"""The neighbour distance added to the sensor score: what it computes, how it joins the error
score, and that it stays in float and batch-independent through export."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("onnx")

from vigil import runtime  # noqa: E402
from vigil.export import ExportOptions, Precision  # noqa: E402
from vigil.export.export_sensor import export_sensor  # noqa: E402
from vigil.training.checkpoint import load_run  # noqa: E402
from vigil.training.sensor_data import DataOptions  # noqa: E402
from vigil.training.sensor_model import (ModelOptions, NeighbourDistance,  # noqa: E402
                                         normal_shapes)
from vigil.training.synthetic import write_sensor_dataset  # noqa: E402
from vigil.training.train_sensor import SensorTrainingOptions, train_sensor  # noqa: E402


def brute_force(windows: np.ndarray, bank_windows: np.ndarray, rows: int, features: list[int]):
    """Nearest Euclidean distance between centred shapes, one pair at a time."""
    def shape(w):
        x = w[-rows:, features].astype(np.float64)
        return (x - x.mean(axis=0)).ravel()
    bank = [shape(b) for b in bank_windows]
    return np.array([min(np.linalg.norm(shape(w) - b) for b in bank) for w in windows])


def test_neighbour_distance_is_the_nearest_centred_shape():
    rng = np.random.default_rng(3)
    normal = rng.normal(size=(40, 12, 3)).astype(np.float32)
    queries = rng.normal(size=(9, 12, 3)).astype(np.float32)
    layer = NeighbourDistance(rows=5, features=[0, 2], entries=40)
    layer.build(None)
    layer.set_bank(normal_shapes(normal, 5, [0, 2], entries=40))
    got = np.asarray(layer(queries))
    np.testing.assert_allclose(got, brute_force(queries, normal, 5, [0, 2]), rtol=1e-4, atol=1e-4)
    # a bank window is at distance 0 from itself; a level shift of a whole shape changes nothing
    np.testing.assert_allclose(np.asarray(layer(normal[:4] + 7.0)), 0.0, atol=2e-3)
    # the unscored feature (1) never moves the distance
    moved = queries.copy()
    moved[:, :, 1] += 100.0
    np.testing.assert_allclose(np.asarray(layer(moved)), got, rtol=1e-5, atol=1e-5)


def test_bank_keeps_evenly_spaced_shapes_when_training_has_more():
    windows = np.arange(100, dtype=np.float32).reshape(100, 1, 1) * np.ones((1, 4, 2), np.float32)
    windows[:, -1, 0] += np.arange(100)  # each window's shape differs by its last row
    shapes = normal_shapes(windows, 4, [0], entries=10)
    assert shapes.shape == (10, 4)
    last = shapes[:, -1] - shapes[:, 0]
    np.testing.assert_allclose(last, np.linspace(0, 99, 10).round(), atol=1e-4)


def test_set_bank_names_the_expected_shape():
    layer = NeighbourDistance(rows=4, features=[0], entries=3)
    layer.build(None)
    with pytest.raises(ValueError, match=r"`shapes` must have shape \(3, 4\); received \(2, 4\)"):
        layer.set_bank(np.zeros((2, 4)))


@pytest.fixture(scope="module")
def train_csv(tmp_path_factory):
    folder = tmp_path_factory.mktemp("neighbours")
    return write_sensor_dataset(folder, seed=7, train_rows=900, test_rows=300)[0]


def small(rows: int) -> SensorTrainingOptions:
    return SensorTrainingOptions(data=DataOptions(window=24),
                                 model=ModelOptions(units=8, epochs=1, score_last=12, burn_in=4,
                                                    neighbour_rows=rows, members=1))


def test_score_is_the_standardized_sum_and_int8_keeps_the_distance_in_float(train_csv, tmp_path):
    import onnx

    model = tmp_path / "model.keras"
    result = train_sensor(train_csv, model, small(8), verbose=0)
    record = result.run.record
    neighbours = record["training"]["neighbours"]
    assert neighbours["rows"] == 8 and neighbours["entries"] > 100
    assert "nearest normal one" in record["score_reduction"]
    # held-out normal windows: each standardized part has mean 0, so their sum does too
    normal = result.run.validation[~result.run.validation_labels]
    artifact = export_sensor(model, tmp_path / "int8.onnx",
                             ExportOptions(precision=Precision.INT8, force=True)).path
    detector = runtime.load(artifact)
    scores = detector.score(normal)
    assert abs(float(np.mean(scores))) < 0.05 * float(np.std(scores)) + 1e-3
    graph = onnx.load(str(artifact)).graph
    distance_nodes = [n for n in graph.node if "neighbour_distance" in n.name]
    assert any(n.op_type == "MatMul" for n in distance_nodes)
    assert not any(n.op_type in ("QuantizeLinear", "DequantizeLinear", "MatMulInteger")
                   for n in distance_nodes)
    # a window scores the same alone as in a batch
    alone = np.concatenate([detector.score(normal[i:i + 1]) for i in range(16)])
    np.testing.assert_allclose(alone, scores[:16], rtol=1e-5, atol=1e-5)


def test_neighbour_rows_zero_scores_the_error_alone(train_csv, tmp_path):
    model = tmp_path / "model.keras"
    result = train_sensor(train_csv, model, small(0), verbose=0)
    assert "neighbours" not in result.run.record["training"]
    assert "nearest normal one" not in result.run.record["score_reduction"]
    detector = runtime.load(export_sensor(model, tmp_path / "m.onnx",
                                          ExportOptions(precision=Precision.FP32)).path)
    assert float(detector.score(load_run(model).validation[:32]).min()) >= 0.0  # squared errors


def test_neighbour_rows_longer_than_the_window_says_what_is_compared(train_csv, tmp_path, caplog):
    caplog.set_level("WARNING", logger="vigil")
    train_sensor(train_csv, tmp_path / "model.keras", small(40), verbose=0)
    assert "--neighbour-rows 40 is longer than the window of 24 rows" in caplog.text


def test_negative_neighbour_rows_names_the_argument(train_csv, tmp_path):
    options = small(8)
    options = replace(options, model=replace(options.model, neighbour_rows=-1))
    with pytest.raises(ValueError, match="`neighbour_rows` must be >= 0.*received -1"):
        train_sensor(train_csv, tmp_path / "m.keras", options, verbose=0)


@pytest.mark.parametrize("part,field,value,says", [
    ("data", "window", 1, "`window` must be >= 2 rows and `stride` >= 1; received 1 and 1"),
    ("data", "stride", 0, "`window` must be >= 2 rows and `stride` >= 1; received 24 and 0"),
    ("model", "score_last", -1, "`score_last` must be >= 0 (the last steps scored; 0: the whole "
                                "window); received -1")])
def test_window_stride_and_scored_steps_outside_their_range_are_named(train_csv, tmp_path, part,
                                                                      field, value, says):
    options = small(8)
    options = replace(options, **{part: replace(getattr(options, part), **{field: value})})
    with pytest.raises(ValueError, match=re.escape(says)):
        train_sensor(train_csv, tmp_path / "m.keras", options, verbose=0)
    assert not (tmp_path / "m.keras").exists()


def test_a_noise_free_periodic_stream_exports_with_parity(tmp_path):
    """Its shapes repeat exactly, so normal distances are all 0: the distance's spread is floored
    at a resolution of 1 % of a normal spread, or float rounding would decide its scores."""
    from vigil.training.synthetic import write_csv

    rows = np.arange(1200, dtype=np.float64)
    values = (10 + np.sin(2 * np.pi * rows / 24)).reshape(-1, 1)
    csv = write_csv(tmp_path / "periodic.csv", values, features=("value",))
    model = tmp_path / "model.keras"
    result = train_sensor(csv, model, small(8), verbose=0)
    neighbours = result.run.record["training"]["neighbours"]
    assert neighbours["normal_means"][1] < 1e-3
    assert neighbours["normal_stds"][1] == pytest.approx(0.01 * np.sqrt(8))
    detector = runtime.load(export_sensor(model, tmp_path / "m.onnx",
                                          ExportOptions(precision=Precision.FP32)).path)
    shifted = values.copy()
    shifted[1000:1004] += 0.5  # a step the periodic pattern never had
    from vigil.runtime.sensor.windows import sliding_windows
    windows = sliding_windows(shifted.astype(np.float32), 24)
    scores = detector.score(windows)
    assert scores[1000 - 23:1004].max() > detector.threshold > scores[:900].max()


def test_an_adaptive_warmup_longer_than_its_memory_says_what_applies(train_csv, tmp_path, caplog):
    from vigil.training.train_sensor import CalibrationOptions

    caplog.set_level("WARNING", logger="vigil")
    options = replace(small(8), calibration=CalibrationOptions(adaptive_memory=500,
                                                               adaptive_warmup=5000))
    train_sensor(train_csv, tmp_path / "model.keras", options, verbose=0)
    assert "--adaptive-warmup 5000 is longer than --adaptive-memory 500" in caplog.text
