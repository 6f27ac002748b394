"""With `--compress-heavy-tails` (off by default), heavy-tailed columns (counts, bytes, request
rates) are compressed to log(1 + x / m) before normalization, so that one burst does not dwarf
everything the model learned; the rule is chosen from the normal training rows alone and travels
inside the exported graph."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vigil.training.sensor_data import (SCORED, compress, heavy_tail_scales, skewness)


def _columns(n: int = 4000) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.column_stack([
        rng.pareto(1.5, n) * 10,             # a count: non-negative, skewed far above 2
        rng.normal(5, 1, n),                 # an analog reading: not skewed
        rng.pareto(1.5, n) * 10 - 3,         # skewed, but with negative values
        1000 + rng.pareto(1.5, n) * 10,      # skewed, far from 0: the log barely bends it
        rng.pareto(1.5, n) * 10,             # a count that is an input only
    ])


def test_only_scored_non_negative_heavy_tailed_columns_are_compressed():
    rows = _columns()
    roles = (SCORED, SCORED, SCORED, SCORED, "categorical")
    assert all(skewness(c) > 2 for c in rows.T[[0, 2, 3, 4]])
    scales = heavy_tail_scales(rows, roles)
    assert scales[0] == pytest.approx(np.median(rows[:, 0][rows[:, 0] > 0]))
    assert skewness(compress(rows, scales)[:, 0]) * 2 <= skewness(rows[:, 0])
    assert list(scales[1:]) == [0, 0, 0, 0], "normal, signed, far-from-zero and input-only kept"
    assert np.array_equal(compress(rows, scales)[:, 1:], rows[:, 1:])


def test_the_graph_compresses_as_training_does():
    pytest.importorskip("tensorflow")
    from vigil.training.sensor_model import Standardize

    scales = np.array([2.0, 0.0, 0.5])
    x = np.array([[[0.0, -4.0, 3.0], [7.5, 2.0, -1.0], [1e6, 0.0, 0.25]]], dtype=np.float32)
    layer = Standardize([0.0] * 3, [1.0] * 3, compress=scales)
    expected = compress(x, scales)
    assert np.allclose(np.asarray(layer(x)), expected, rtol=1e-6, atol=1e-6)
    assert expected[0, 0, 1] == -4.0 and expected[0, 1, 0] == pytest.approx(np.log(1 + 7.5 / 2))
    assert Standardize.from_config(layer.get_config()).compress == [2.0, 0.0, 0.5]
    assert "compress" not in Standardize([0.0], [1.0], compress=[0.0]).get_config()


def _write(path, values) -> None:
    lines = ["timestamp,rate,level"] + [f"{i},{a:.6g},{b:.6g}" for i, (a, b) in enumerate(values)]
    path.write_text("\n".join(lines) + "\n")


def test_a_heavy_tailed_column_is_compressed_end_to_end(tmp_path):
    pytest.importorskip("tensorflow")
    from vigil import runtime
    from vigil.export import ExportOptions, Precision
    from vigil.export.export_sensor import export_sensor
    from vigil.training.sensor_data import DataOptions
    from vigil.training.sensor_model import ModelOptions
    from vigil.training.train_sensor import SensorTrainingOptions, train_sensor

    rng = np.random.default_rng(2)
    t = np.arange(2400)
    rate = rng.pareto(1.5, len(t)) * 5 * (1.5 + np.sin(2 * np.pi * t / 60))
    level = np.sin(2 * np.pi * t / 60) + 0.05 * rng.standard_normal(len(t))
    _write(tmp_path / "train.csv", np.column_stack([rate, level]))
    model = ModelOptions(units=8, epochs=2, seed=1, score_last=8, burn_in=4, members=1)
    options = SensorTrainingOptions(data=DataOptions(window=16, compress_heavy_tails=True),
                                    model=model)
    result = train_sensor(tmp_path / "train.csv", tmp_path / "m.keras", options, verbose=0)
    record = result.run.record
    compressed = record["training"]["compressed"]
    assert list(compressed) == ["rate"]
    assert compressed["rate"] == pytest.approx(np.median(rate[:1800][rate[:1800] > 0]), rel=0.05)
    assert "log(1 + |x| / m)" in record["score_reduction"]
    assert record["mean"][0] == pytest.approx(rate[:1800].mean(), rel=1e-6), \
        "the spec keeps the readings' own mean, in their units"

    report = export_sensor(tmp_path / "m.keras", tmp_path / "m.onnx",
                           ExportOptions(precision=Precision.FP32))
    detector = runtime.load(report.path)
    assert detector.spec.training["compressed"] == compressed
    import keras

    from vigil.runtime.sensor.tables import read_table

    values = read_table(tmp_path / "train.csv", features=detector.features).values
    windows = np.stack([values[i:i + 16] for i in range(1800, 2380, 7)]).astype(np.float32)
    windows[3, -1, 0] = 1e6                                    # a burst far beyond training
    keras_scores = np.asarray(keras.models.load_model(tmp_path / "m.keras", compile=False)
                              .predict(windows, verbose=0)["score"]).reshape(-1)
    scores = detector.score(windows)
    assert np.allclose(scores, keras_scores, rtol=1e-4, atol=1e-5)
    assert np.isfinite(scores).all()

    plain = SensorTrainingOptions(data=DataOptions(window=16), model=model)  # the default: off
    result = train_sensor(tmp_path / "train.csv", tmp_path / "plain.keras", plain, verbose=0)
    assert result.run.record["training"]["compressed"] == {}
    config = json.dumps(keras.models.load_model(tmp_path / "plain.keras", compile=False)
                        .get_layer("standardize").get_config())
    assert "compress" not in config


def test_the_cli_flag_turns_it_on():
    from vigil.cli import commands, train_commands

    parser = commands.build_parser()
    args = parser.parse_args(["train", "sensor", "data.csv", "-o", "m.keras",
                              "--compress-heavy-tails"])
    assert train_commands._given(args, "compress_heavy_tails") == {"compress_heavy_tails": True}
    args = parser.parse_args(["train", "sensor", "data.csv", "-o", "m.keras"])
    assert train_commands._given(args, "compress_heavy_tails") == {}
