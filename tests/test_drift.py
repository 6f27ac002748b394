"""Running normalization (drift on the device): it follows slow drift, pauses while alarms are
on, is stored in the artifact, and scores the same whether a stream is evaluated or streamed."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from vigil import runtime
from vigil.cli import commands as cli
from vigil.runtime.core.spec import (RunningNormalizationSpec, spec_from_dict, spec_to_dict)
from vigil.runtime.sensor.drift import RunningNormalization
from vigil.runtime.sensor.evaluation import row_decisions
from vigil.runtime.sensor.streaming import StreamingScorer

SPEC = RunningNormalizationSpec(memory=200, warmup=50)


def test_it_maps_the_recent_level_onto_the_training_one_after_warmup():
    drift = RunningNormalization(SPEC, mean=[10.0, 0.0], std=[1.0, 2.0])
    row = np.array([13.0, 4.0], dtype=np.float32)
    np.testing.assert_array_equal(drift.adapt(row), row)  # not warm: unchanged
    rng = np.random.default_rng(0)
    for _ in range(1000):  # the readings now sit 3 higher (and 2 higher), same spread
        drift.observe(np.array([13.0, 2.0]) + rng.normal(0, [1.0, 2.0]), alarm=False)
    assert drift.warm
    np.testing.assert_allclose(drift.adapt(np.array([13.0, 2.0])), [10.0, 0.0], atol=0.35)
    state = drift.state()
    assert state["rows_learned"] == 1000 and 2.5 < state["largest_shift_in_training_std"] < 3.5


def test_a_stream_that_does_not_drift_is_left_as_it_is_when_the_std_was_floored():
    """Mains voltage: mean 230, spread 1.2, so the model's std is floored at 1 % of the mean
    (2.3). Mapping onto that std doubled every deviation; the training spread keeps them."""
    rng = np.random.default_rng(3)
    spec = RunningNormalizationSpec(memory=200, warmup=50, spread=(1.2,))
    drift = RunningNormalization(spec, mean=[230.0], std=[2.3])
    for _ in range(2000):
        drift.observe(230.0 + rng.normal(0, 1.2, 1), alarm=False)
    readings = 230.0 + np.array([[-3.0], [0.0], [3.0]])
    np.testing.assert_allclose(drift.adapt(readings), readings, atol=0.35)
    assert drift.state()["largest_shift_in_training_std"] < 0.3
    old = RunningNormalization(replace(spec, spread=None), mean=[230.0], std=[2.3])
    for _ in range(2000):
        old.observe(230.0 + rng.normal(0, 1.2, 1), alarm=False)
    assert abs(old.adapt(readings)[2, 0] - 230.0) > 5.0  # what artifacts without it still do


def test_the_spread_round_trips_and_must_fit_the_features(sensor_artifacts):
    from vigil.runtime.core.spec import ArtifactError

    base = runtime.load(sensor_artifacts.fp32).spec
    spread = tuple(float(i + 1) for i in range(len(base.features)))
    data = spec_to_dict(replace(base, running_normalization=replace(SPEC, spread=spread)))
    assert spec_from_dict(data).running_normalization.spread == spread
    assert data["schema_version"] == 6  # a runtime before it would ignore it: it refuses
    assert "spread" not in spec_to_dict(replace(base, running_normalization=SPEC))[
        "running_normalization"]
    for bad in (list(spread[:-1]), [0.0] * len(spread)):
        data["running_normalization"]["spread"] = bad
        with pytest.raises(ArtifactError, match="spread"):
            spec_from_dict(data)


def test_a_reading_near_the_float32_limit_stays_finite_once_the_spread_is_mapped():
    drift = RunningNormalization(SPEC, mean=[0.0], std=[1.0])
    rng = np.random.default_rng(1)
    for _ in range(100):  # a quiet spell: a quarter of training's spread, so readings are x4
        drift.observe(rng.normal(0, 0.25, 1), alarm=False)
    adapted = drift.adapt(np.array([3e38, -3e38, np.nan], dtype=np.float32).reshape(3, 1))
    assert np.isfinite(adapted[:2]).all() and abs(adapted[0, 0]) == np.finfo(np.float32).max
    assert np.isnan(adapted[2, 0])  # a missing value stays missing


def test_it_learns_nothing_while_an_alarm_is_on():
    drift = RunningNormalization(SPEC, mean=[0.0], std=[1.0])
    for _ in range(100):
        drift.observe(np.array([0.0]), alarm=False)
    before = drift.mean.copy()
    for _ in range(500):
        drift.observe(np.array([50.0]), alarm=True)   # a lasting fault
    np.testing.assert_array_equal(drift.mean, before)
    assert drift.state()["frozen_during_alarms"] == 500
    drift.observe(np.array([np.nan]), alarm=False)    # a missing value teaches nothing
    assert drift.learned == 100


def test_spec_round_trip_marks_the_artifact_for_newer_runtimes(sensor_artifacts):
    spec = replace(runtime.load(sensor_artifacts.fp32).spec, running_normalization=SPEC)
    data = spec_to_dict(spec)
    # 2 for running normalization; 5 here, for the default anomaly likelihood with its level
    assert data["schema_version"] == 5 and data["running_normalization"] == {"memory": 200,
                                                                             "warmup": 50}
    assert spec_from_dict(data).running_normalization == SPEC
    data["running_normalization"] = {"memory": 1, "warmup": 5}
    with pytest.raises(ValueError, match="running_normalization.memory"):
        spec_from_dict(data)


@pytest.fixture
def drifting(sensor_artifacts, tmp_path):
    """The fixture model, as is and with running normalization, and a stream whose first feature
    drifts far beyond its training range, with one abrupt fault near the end."""
    pytest.importorskip("onnx")
    import onnx

    from vigil.export.package import write_artifact
    from vigil.training.synthetic import normal_stream

    plain = runtime.load(sensor_artifacts.fp32)
    adapting = write_artifact(onnx.load(str(sensor_artifacts.fp32)),
                              replace(plain.spec, running_normalization=SPEC),
                              tmp_path / "adapting.onnx")
    values = normal_stream(3000, seed=9)[:, :len(plain.features)]
    std = np.asarray(plain.spec.std)
    values[:, 0] += np.linspace(0, 8 * std[0], len(values))   # slow drift: 8 spreads in 3000 rows
    values[2700:2760, 1] += 10 * std[1]                        # an abrupt fault
    return plain, runtime.load(adapting), values.astype(np.float32)


def test_drift_raises_fewer_false_alarms_and_the_fault_still_alarms(drifting):
    plain, adapting, values = drifting
    _, plain_alarms = row_decisions(plain, values)
    _, adapted_alarms = row_decisions(adapting, values)
    normal = np.ones(len(values), bool)
    normal[2700:2800] = False
    assert adapted_alarms[normal].sum() < plain_alarms[normal].sum()
    assert adapted_alarms[2700:2800].any()


def test_evaluation_equals_streaming_row_by_row(drifting):
    _, adapting, values = drifting
    scores, _ = row_decisions(adapting, values)
    scorer = StreamingScorer(adapting)
    streamed = [r for row, i in zip(values, range(len(values)))
                for r in scorer.push(row, index=i) if r.score is not None]
    np.testing.assert_allclose([r.score for r in streamed],
                               scores[~np.isnan(scores)], rtol=1e-6)
    assert scorer.summary()["running_normalization"]["warm"]


def test_the_python_signal_api_scores_as_the_streaming_scorer_does(drifting):
    """score_signal (and decisions of its scores) give `vigil score`'s figures with running
    normalization, not the windows as given."""
    plain, adapting, values = drifting
    ends, scores, errors = adapting.score_signal(values)
    scorer = StreamingScorer(adapting)
    streamed = [r for i, row in enumerate(values) for r in scorer.push(row, index=i)]
    assert [r.index for r in streamed] == ends.tolist()
    np.testing.assert_array_equal(scores, [r.score for r in streamed])
    np.testing.assert_array_equal(adapting.alarms(scores), [r.anomaly for r in streamed])
    assert errors.shape == (len(ends), len(adapting.features)) and np.isfinite(errors).all()
    top = streamed[-1].top_features[0]
    assert errors[-1, adapting.features.index(top[0])] == pytest.approx(top[1])
    # the same rows without running normalization: windows as given, here far from it
    assert np.abs(plain.score_signal(values)[1] - scores).max() > 1.0
    with pytest.raises(ValueError, match="finite"):
        adapting.score_signal(np.where(np.arange(len(values))[:, None] == 5, np.nan, values))


def test_training_flag_puts_it_in_the_artifact(tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from vigil.training.synthetic import normal_stream, write_csv

    data = write_csv(tmp_path / "normal.csv", normal_stream(800, seed=2))
    model = tmp_path / "m.keras"
    assert cli.main(["train", "sensor", str(data), "-o", str(model), "--window", "8",
                     "--units", "4", "--epochs", "1", "--running-normalization",
                     "--normalization-memory", "300", "--likelihood-z", "5",
                     "--no-likelihood-level", "--quiet"]) == 0
    assert cli.main(["export", str(model), "-o", str(tmp_path / "m.onnx"), "--quiet"]) == 0
    capsys.readouterr()
    spec = runtime.load(tmp_path / "m.onnx").spec
    normalization = spec.running_normalization
    assert (normalization.memory, normalization.warmup) == (300, 500)
    # the training rows' own spread: the model's std where no floor applied, below it where one
    # did (the voltage: mean 230, spread 1.2, std floored to 1 % of the mean)
    spread, std = np.array(normalization.spread), np.array(spec.std)
    assert len(spread) == len(spec.features) and (spread > 0).all() and (spread <= std).all()
    voltage = spec.features.index("voltage")
    assert spread[voltage] < 0.6 * std[voltage]
    assert spec.schema_version == 6  # running normalization's training spread (the likelihood
    # without its level floor alone would write 4)
    assert spec.likelihood.z == 5 and spec.likelihood.level_warmup is None
    assert (spec.likelihood.z, spec.likelihood.short, spec.likelihood.long) == (5.0, 10, 8640)
    out = tmp_path / "s.jsonl"
    assert cli.main(["score", str(tmp_path / "m.onnx"), str(data), "--jsonl", str(out),
                     "--health", str(tmp_path / "h.json")]) == 0
    health = json.loads((tmp_path / "h.json").read_text())
    assert health["running_normalization"]["rows_learned"] > 0


def test_benchmark_flags_turn_each_adaptation_on_or_off_alone():
    import argparse

    from vigil.benchmarks.sensor_options import add_model_arguments, with_model_arguments
    from vigil.training.train_sensor import SensorTrainingOptions

    parser = argparse.ArgumentParser()
    add_model_arguments(parser)

    def calibration(*flags):
        return with_model_arguments(SensorTrainingOptions(), parser.parse_args(flags)).calibration

    # The library's defaults: the adaptive threshold on, running normalization off.
    assert (calibration().adaptive, calibration().running_normalization) == (True, False)
    assert (calibration("--adapt").adaptive, calibration("--adapt").running_normalization) == (
        True, True)
    alone = calibration("--no-adaptive", "--running-normalization", "--normalization-memory",
                        "500")
    assert (alone.adaptive, alone.running_normalization, alone.normalization_memory) == (
        False, True, 500)
    assert (calibration("--adaptive").adaptive,
            calibration("--adaptive").running_normalization) == (True, False)
    assert (calibration("--no-adaptive").adaptive,
            calibration("--no-adaptive").running_normalization) == (False, False)
    # The anomaly likelihood is on by default and turns off alone.
    assert (calibration().likelihood, calibration("--no-likelihood").likelihood,
            calibration("--no-likelihood").adaptive) == (True, False, True)


def test_eval_offers_no_replayed_threshold_for_running_normalization(tmp_path, capsys):
    """With running normalization a window's score depends on the threshold (learning pauses
    during alarms): a threshold found by replaying these scores would not give its F1 on the
    device, so none is offered, and the report says why."""
    pytest.importorskip("onnx")
    import sensor_fixtures

    from vigil.export.package import write_artifact
    from vigil.runtime.core.report import best_threshold_lines

    spec = replace(sensor_fixtures.tiny_sensor_spec(),
                   running_normalization=RunningNormalizationSpec(memory=20, warmup=5))
    model = write_artifact(sensor_fixtures.tiny_sensor_graph(), spec, tmp_path / "rn.onnx")
    rng = np.random.default_rng(0)
    rows = ["timestamp,a,b,c,anomaly"]
    for i in range(300):
        anomalous = i % 60 in range(30, 36)
        values = 0.01 * i + rng.normal(0, 0.3, 3) + (2.5 if anomalous else 0)
        rows.append(f"{i}," + ",".join(f"{v:.4f}" for v in values) + f",{int(anomalous)}")
    data = tmp_path / "rn.csv"
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "metrics.json"
    assert cli.main(["eval", str(model), str(data), "--json", str(out)]) == 0, capsys.readouterr()
    result = json.loads(out.read_text())
    assert result["alarm_best_f1"] is None and result["alarm_best_f1_threshold"] is None
    assert "depends on the threshold" in result["alarm_best_f1_note"]
    assert "depends on the threshold" in best_threshold_lines(result, "vigil eval M D",
                                                              "alarm_best_f1")[0]


def test_an_artifact_without_the_spread_whose_std_was_floored_is_named_at_load(tmp_path, caplog):
    pytest.importorskip("onnx")
    import sensor_fixtures

    from vigil.export.package import write_artifact

    floored = replace(sensor_fixtures.tiny_sensor_spec(), mean=(230.0, 0.0, 0.0),
                      std=(0.01 * 230.0, 1.0, 1.0))
    old = write_artifact(sensor_fixtures.tiny_sensor_graph(),
                         replace(floored, running_normalization=SPEC), tmp_path / "old.onnx")
    with caplog.at_level("WARNING", logger="vigil"):
        runtime.load(old)
    assert "running normalization without the training rows' spread" in caplog.text
    assert "['a']" in caplog.text and "Retrain" in caplog.text
    caplog.clear()
    new = write_artifact(sensor_fixtures.tiny_sensor_graph(),
                         replace(floored, running_normalization=replace(SPEC, spread=(1.2, 1, 1))),
                         tmp_path / "new.onnx")
    with caplog.at_level("WARNING", logger="vigil"):
        runtime.load(new)
    assert not caplog.records
