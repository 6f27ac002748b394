"""Every sensor architecture trains, exports and scores the same in the runtime as in Keras."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("onnx")

from vigil import runtime  # noqa: E402
from vigil.export import ExportOptions, Precision  # noqa: E402
from vigil.export.export_sensor import export_sensor  # noqa: E402
from vigil.training.checkpoint import load_run  # noqa: E402
from vigil.training.sensor_data import DataOptions  # noqa: E402
from vigil.training.sensor_model import Architecture, ModelOptions, build_network  # noqa: E402
from vigil.training.synthetic import write_sensor_dataset  # noqa: E402
from vigil.training.train_sensor import SensorTrainingOptions, train_sensor  # noqa: E402

MAX_ABS_DIFF = 1e-4  # Keras vs ONNX FP32 scores


@pytest.fixture(scope="module")
def train_csv(tmp_path_factory):
    folder = tmp_path_factory.mktemp("architectures")
    return write_sensor_dataset(folder, seed=5, train_rows=900, test_rows=300)[0]


@pytest.mark.parametrize("architecture", [a.value for a in Architecture])
def test_architecture_exports_with_keras_parity(architecture, train_csv, tmp_path):
    import keras

    options = SensorTrainingOptions(
        data=DataOptions(window=16),
        model=ModelOptions(architecture=Architecture(architecture), units=8, latent=4, epochs=1,
                           score_last=8, burn_in=4, members=2))  # averaged, as by default
    model = tmp_path / "model.keras"
    train_sensor(train_csv, model, options, verbose=0)
    report = export_sensor(model, tmp_path / "model.onnx", ExportOptions(precision=Precision.FP32))
    artifact = report.path
    # a GRU becomes a step-by-step Loop (15x an LSTM's time at batch 1): said at export
    slow = any("ONNX Loop" in message for message in report.messages)
    assert slow == architecture.startswith("gru"), report.messages
    detector = runtime.load(artifact)
    validation = load_run(model).validation[:64]
    expected = np.asarray(keras.models.load_model(model, safe_mode=True)
                          .predict(validation, verbose=0)["score"], dtype=np.float64).reshape(-1)
    scores = detector.score(validation)
    assert detector.spec.training["model"]["architecture"] == architecture
    assert detector.spec.training["model"]["members"] == 2
    assert scores.shape == (len(validation),)
    assert np.max(np.abs(scores - expected)) < MAX_ABS_DIFF * max(1.0, float(expected.max()))


def test_temporal_convolution_is_causal():
    """Output t (the forecast of row t + 1) must not see rows after t."""
    network = build_network(48, 3, ModelOptions(architecture=Architecture.TCN_FORECAST, units=8))
    rng = np.random.default_rng(0)
    history = rng.normal(size=(1, 47, 3)).astype(np.float32)
    changed = history.copy()
    changed[:, 30:] += 5.0
    before = np.asarray(network(history))
    after = np.asarray(network(changed))
    np.testing.assert_array_equal(before[:, :30], after[:, :30])
    assert not np.allclose(before[:, 30:], after[:, 30:])


@pytest.mark.parametrize("architecture", list(Architecture))
def test_initial_weights_depend_on_the_seed_alone(architecture):
    """Random draws made earlier in the process (another model, another file) must not change a
    network's initial weights: training the same data twice in one process gives one model."""
    import keras

    options = ModelOptions(architecture=architecture, units=8, seed=3)
    first = build_network(24, 2, options).get_weights()
    keras.random.normal((16,))  # draws from the global seed generator, as training does
    build_network(24, 2, ModelOptions(architecture=architecture, units=8, seed=4))
    second = build_network(24, 2, options).get_weights()
    assert len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_a_model_with_nothing_to_quantize_is_never_labelled_int8(train_csv, tmp_path):
    """The temporal-convolution forecaster has no dense layer: INT8 would be FP32 renamed."""
    options = SensorTrainingOptions(
        data=DataOptions(window=16),
        model=ModelOptions(architecture=Architecture.TCN_FORECAST, units=8, epochs=1,
                           score_last=8, burn_in=4, members=1))
    model = tmp_path / "tcn.keras"
    train_sensor(train_csv, model, options, verbose=0)
    with pytest.raises(ValueError, match="has no layer that quantizes.*use --precision fp32"):
        export_sensor(model, tmp_path / "int8.onnx", ExportOptions(precision=Precision.INT8))
    assert not (tmp_path / "int8.onnx").exists()
    report = export_sensor(model, tmp_path / "auto.onnx", ExportOptions(precision=Precision.AUTO))
    assert report.precision == "fp32"
    assert any("nothing in this model quantizes" in note for note in report.notes)
    assert runtime.load(report.path).spec.precision == "fp32"
