"""The artifact metadata schema: round trip, and every malformed field refused by name."""

from __future__ import annotations

import copy
import json
import math

import pytest

from vigil.runtime.core.spec import (ADAPTIVE_SCHEMA_VERSION, QUANTILE_SCHEMA_VERSION,
                                     SCHEMA_VERSION, AdaptiveThresholdSpec,
                                     ArtifactError, ScoreStats, SensorSpec, Threshold,
                                     spec_from_dict, spec_to_dict)

FEATURES = ("flow", "pressure", "current")


def make_spec() -> SensorSpec:
    return SensorSpec(
        features=FEATURES,
        window=16,
        stride=2,
        mean=(30.0, 2.0, 3.0),
        std=(5.0, 0.25, 0.4),
        score_reduction="mean of per-feature squared reconstruction error",
        threshold=Threshold(2.5, "gaussian", {"k": 4.0, "mean": 1.0, "std": 0.375}),
        consecutive=2,
        score_stats=ScoreStats(count=500, mean=1.0, std=0.375, p50=0.9, p95=1.8, p99=2.2, max=2.3),
        precision="int8",
        max_gap=3,
        hold=2,
        time_column="timestamp",
        label_column="anomaly",
        versions={"vigil": "0.1.0", "onnxruntime": "1.17.0"},
        training={"files": [{"name": "train.csv", "sha256": "ab" * 32, "rows": 2500}]},
        parity={"int8_rank_correlation": 0.999},
    )


@pytest.fixture
def data() -> dict:
    """A valid metadata dict, as read back from JSON."""
    return json.loads(json.dumps(spec_to_dict(make_spec())))


def test_round_trip_through_json():
    spec = make_spec()
    assert spec_from_dict(json.loads(json.dumps(spec_to_dict(spec)))) == spec


def test_to_dict_is_plain_json(data):
    assert data["features"] == list(FEATURES)
    assert data["schema_version"] == 1  # what 0.2 runtimes read: nothing newer is used
    assert "adaptive" not in data
    assert data["kind"] == "sensor"
    assert data["threshold"] == {"value": 2.5, "method": "gaussian",
                                 "params": {"k": 4.0, "mean": 1.0, "std": 0.375}}


def test_adaptive_threshold_round_trips_and_needs_a_newer_runtime():
    spec = SensorSpec(**{**make_spec().__dict__,
                         "adaptive": AdaptiveThresholdSpec(memory=1000, warmup=200, z=6.0)})
    data = json.loads(json.dumps(spec_to_dict(spec)))
    assert data["adaptive"] == {"memory": 1000, "warmup": 200, "z": 6.0}
    # a runtime that ignored it would alarm differently: older ones must refuse the file
    assert data["schema_version"] == ADAPTIVE_SCHEMA_VERSION > 1
    assert SCHEMA_VERSION >= ADAPTIVE_SCHEMA_VERSION
    back = spec_from_dict(data)
    assert back.adaptive == spec.adaptive


def test_quantile_adaptive_threshold_round_trips_and_needs_a_newer_runtime_still():
    spec = SensorSpec(**{**make_spec().__dict__, "adaptive": AdaptiveThresholdSpec(
        memory=1000, warmup=1000, quantile=0.999, factor=1.5)})
    data = json.loads(json.dumps(spec_to_dict(spec)))
    assert data["adaptive"] == {"memory": 1000, "warmup": 1000, "quantile": 0.999, "factor": 1.5}
    # a schema-2 runtime reads z alone and would refuse the file for its missing z at best;
    # the version makes it say why (upgrade)
    assert data["schema_version"] == QUANTILE_SCHEMA_VERSION > ADAPTIVE_SCHEMA_VERSION
    assert SCHEMA_VERSION >= QUANTILE_SCHEMA_VERSION
    assert spec_from_dict(data).adaptive == spec.adaptive


def test_likelihood_round_trips_and_needs_a_newer_runtime_still():
    from vigil.runtime.core.spec import LIKELIHOOD_SCHEMA_VERSION, LikelihoodSpec

    likelihood = LikelihoodSpec(short=10, long=8640, z=4.27, warmup=388, std_floor=0.02)
    spec = SensorSpec(**{**make_spec().__dict__, "likelihood": likelihood, "adaptive":
                         AdaptiveThresholdSpec(memory=1000, warmup=1000, quantile=0.99,
                                               factor=2.0)})
    data = json.loads(json.dumps(spec_to_dict(spec)))
    assert data["likelihood"] == {"short": 10, "long": 8640, "z": 4.27, "warmup": 388,
                                  "std_floor": 0.02}
    # a schema-3 runtime would ignore the rule and miss its alarms: it must refuse the file
    assert data["schema_version"] == LIKELIHOOD_SCHEMA_VERSION > QUANTILE_SCHEMA_VERSION
    assert SCHEMA_VERSION >= LIKELIHOOD_SCHEMA_VERSION
    assert spec_from_dict(data).likelihood == likelihood
    assert "likelihood" not in spec_to_dict(make_spec())


def test_likelihood_level_round_trips_and_needs_a_newer_runtime_than_the_likelihood():
    from vigil.runtime.core.spec import (LEVEL_FLOOR_SCHEMA_VERSION, LIKELIHOOD_SCHEMA_VERSION,
                                         LikelihoodSpec)

    likelihood = LikelihoodSpec(short=10, long=8640, z=4.27, warmup=388, std_floor=0.02,
                                level_warmup=1000)
    spec = SensorSpec(**{**make_spec().__dict__, "likelihood": likelihood})
    data = json.loads(json.dumps(spec_to_dict(spec)))
    assert data["likelihood"]["level_warmup"] == 1000
    # a schema-4 runtime would apply the likelihood but not the floor, and alarm more
    assert data["schema_version"] == LEVEL_FLOOR_SCHEMA_VERSION > LIKELIHOOD_SCHEMA_VERSION
    assert SCHEMA_VERSION >= LEVEL_FLOOR_SCHEMA_VERSION
    assert spec_from_dict(data).likelihood == likelihood
    data["likelihood"]["level_warmup"] = 9000  # more than the means it keeps: never applies
    with pytest.raises(ValueError, match="level_warmup"):
        spec_from_dict(data)


@pytest.mark.parametrize("likelihood, message", [
    ({"short": 0, "long": 10, "z": 4.0, "warmup": 5, "std_floor": 0.1},
     "likelihood.short must be an integer"),
    ({"short": 2, "long": 10, "z": 4.0, "warmup": 11, "std_floor": 0.1},
     "likelihood.warmup must be an integer in \\[1, 10\\]"),
    ({"short": 2, "long": 10, "z": 0.0, "warmup": 5, "std_floor": 0.1},
     "likelihood.z must be > 0"),
    ({"short": 2, "long": 10, "z": 4.0, "warmup": 5, "std_floor": 0.0},
     "likelihood.std_floor must be > 0"),
    ({"short": 2, "long": 10, "z": 4.0, "warmup": 5},
     "likelihood is missing the required field 'std_floor'"),
])
def test_bad_likelihood_is_refused_by_name(data, likelihood, message):
    data["likelihood"] = likelihood
    with pytest.raises(ArtifactError, match=message):
        spec_from_dict(data)


@pytest.mark.parametrize("adaptive, message", [
    ({"memory": 0, "warmup": 1, "z": 6.0}, "adaptive.memory must be an integer"),
    ({"memory": 10, "warmup": 11, "z": 6.0}, "adaptive.warmup must be an integer in \\[1, 10\\]"),
    ({"memory": 10, "warmup": 5, "z": -1.0}, "adaptive.z must be >= 0"),
    ({"memory": 10, "warmup": 5, "z": "6"}, "adaptive.z must be a finite number"),
    ([10, 5, 6.0], "adaptive must be a JSON object"),
    ({"memory": 10, "warmup": 5, "quantile": 1.0, "factor": 1.5},
     "adaptive.quantile must be in \\(0, 1\\)"),
    ({"memory": 10, "warmup": 5, "quantile": 0.99, "factor": 0.0}, "adaptive.factor must be > 0"),
    ({"memory": 10, "warmup": 5, "quantile": 0.99},
     "adaptive is missing the required field 'factor'"),
    ({"memory": 10, "warmup": 5, "z": 6.0, "quantile": 0.99, "factor": 1.5},
     "adaptive.z and quantile are exclusive"),
])
def test_bad_adaptive_threshold_is_refused_by_name(data, adaptive, message):
    data["adaptive"] = adaptive
    with pytest.raises(ArtifactError, match=message):
        spec_from_dict(data)


def test_optional_fields_may_be_absent(data):
    for key in ("time_column", "label_column", "versions", "training", "parity"):
        del data[key]
    spec = spec_from_dict(data)
    assert spec.time_column is None
    assert spec.versions == {}


def test_to_dict_refuses_non_finite_numbers():
    spec = make_spec()
    bad = SensorSpec(**{**spec.__dict__, "mean": (math.nan, 2.0, 3.0)})
    with pytest.raises(ArtifactError, match="finite"):
        spec_to_dict(bad)


def test_metadata_must_be_an_object():
    with pytest.raises(ArtifactError, match="metadata must be a JSON object; received list"):
        spec_from_dict([1, 2])


REQUIRED = ("schema_version", "kind", "features", "window", "stride", "mean", "std",
            "score_reduction", "threshold", "consecutive", "score_stats", "precision",
            "input_name", "score_output", "feature_output", "max_gap")


@pytest.mark.parametrize("key", REQUIRED)
def test_missing_field_is_named(data, key):
    del data[key]
    with pytest.raises(ArtifactError) as error:
        spec_from_dict(data)
    assert f"metadata is missing the required field '{key}'" in str(error.value) or (
        f"metadata {key} must be a JSON object; received None" in str(error.value))


def put(path: str, value):
    """A mutation setting ``path`` (dots for nesting, ``[i]`` for a list item) to ``value``."""

    def mutate(data: dict) -> None:
        *parents, last = path.split(".")
        target = data
        for part in parents:
            target = target[part]
        if last.endswith("]"):
            name, index = last[:-1].split("[")
            target[name][int(index)] = value
        else:
            target[last] = value

    return mutate


MALFORMED = [
    # (mutation, text the error must contain)
    pytest.param(put("window", "16"), "window", id="window-string"),
    pytest.param(put("window", 16.0), "window", id="window-float"),
    pytest.param(put("window", True), "window", id="window-bool"),
    pytest.param(put("window", 0), "window", id="window-zero"),
    pytest.param(put("stride", -1), "stride", id="stride-negative"),
    pytest.param(put("consecutive", 1.5), "consecutive", id="consecutive-float"),
    pytest.param(put("max_gap", -1), "max_gap", id="max_gap-negative"),
    pytest.param(put("hold", -1), "hold", id="hold-negative"),
    pytest.param(put("hold", "2"), "hold", id="hold-string"),
    pytest.param(put("features", "flow"), "features", id="features-string"),
    pytest.param(put("features", []), "features", id="features-empty"),
    pytest.param(put("features", ["flow", "flow", "current"]), "features", id="features-duplicate"),
    pytest.param(put("features", ["flow", 3, "current"]), "features", id="features-item-type"),
    pytest.param(put("mean", "0,0,0"), "mean", id="mean-string"),
    pytest.param(put("mean[1]", math.nan), "mean", id="mean-nan"),
    pytest.param(put("mean[1]", "2.0"), "mean", id="mean-item-string"),
    pytest.param(put("mean", [30.0, 2.0]), "mean", id="mean-short"),
    pytest.param(put("std", [5.0, 0.25, 0.4, 1.0]), "std", id="std-long"),
    pytest.param(put("std[0]", -5.0), "std", id="std-negative"),
    pytest.param(put("std[2]", 0.0), "std", id="std-zero"),
    pytest.param(put("std[2]", math.inf), "std", id="std-inf"),
    pytest.param(put("kind", "audio"), "kind", id="kind-unknown"),
    pytest.param(put("kind", ""), "kind", id="kind-empty"),
    pytest.param(put("kind", None), "kind", id="kind-null"),
    pytest.param(put("schema_version", SCHEMA_VERSION + 1), "schema_version", id="schema-newer"),
    pytest.param(put("schema_version", 0), "schema_version", id="schema-zero"),
    pytest.param(put("schema_version", "1"), "schema_version", id="schema-string"),
    pytest.param(put("precision", "int4"), "precision", id="precision-unknown"),
    pytest.param(put("precision", 8), "precision", id="precision-type"),
    pytest.param(put("score_reduction", ""), "score_reduction", id="score_reduction-empty"),
    pytest.param(put("input_name", None), "input_name", id="input_name-null"),
    pytest.param(put("time_column", 5), "time_column", id="time_column-type"),
    pytest.param(put("threshold", 2.5), "threshold", id="threshold-number"),
    pytest.param(put("threshold.params", [4.0]), "params", id="threshold-params-list"),
    pytest.param(put("threshold.params.k", "4"), "threshold.params.k", id="threshold-param-string"),
    pytest.param(put("score_stats", [1, 2]), "score_stats", id="score_stats-list"),
    pytest.param(put("versions", {"vigil": 1}), "versions", id="versions-value-type"),
    pytest.param(put("training", ["train.csv"]), "training", id="training-list"),
    pytest.param(put("parity", "good"), "parity", id="parity-string"),
    pytest.param(
        put("threshold.value", math.nan), "threshold.value", id="threshold-value-nan"),
    pytest.param(
        put("threshold.method", 3), "threshold.method", id="threshold-method-type"),
    pytest.param(
        put("score_stats.mean", math.nan), "score_stats.mean", id="score_stats-mean-nan"),
    pytest.param(
        put("score_stats.count", -1), "score_stats.count", id="score_stats-count-negative"),
]


@pytest.mark.parametrize("mutate, field", MALFORMED)
def test_malformed_field_is_named(data, mutate, field):
    bad = copy.deepcopy(data)
    mutate(bad)
    with pytest.raises(ArtifactError) as error:
        spec_from_dict(bad)
    assert field in str(error.value)


def test_schema_1_metadata_written_before_hold_existed_still_loads(data):
    del data["hold"]
    assert spec_from_dict(data).hold == 0


def test_newer_schema_says_to_upgrade(data):
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(ArtifactError, match="newer than this runtime understands.*upgrade vigil"):
        spec_from_dict(data)


def test_nested_malformed_values_still_raise_artifact_error(data):
    # Whatever the message, a bad nested value is an ArtifactError (never a KeyError/TypeError).
    for mutate in (put("threshold.value", math.nan), put("score_stats.mean", "x"),
                   put("score_stats.count", -1), put("threshold.method", 3)):
        bad = copy.deepcopy(data)
        mutate(bad)
        with pytest.raises(ArtifactError):
            spec_from_dict(bad)


def test_input_shape():
    assert make_spec().input_shape == (16, 3)


def test_rearm_round_trips_and_defaults_to_zero(data):
    spec = SensorSpec(**{**make_spec().__dict__, "rearm": 100})
    assert spec_from_dict(json.loads(json.dumps(spec_to_dict(spec)))).rearm == 100
    del data["rearm"]  # 0.2 artifacts have none
    assert spec_from_dict(data).rearm == 0
    data["rearm"] = -1
    with pytest.raises(ArtifactError, match="metadata rearm must be an integer in \\[0, "):
        spec_from_dict(data)


def test_time_step_round_trips_without_a_newer_schema():
    from vigil.runtime.core.spec import TimeStepSpec

    step = TimeStepSpec(numeric=False, typical=1.0, limit=4.5)
    spec = SensorSpec(**{**make_spec().__dict__, "time_step": step})
    data = json.loads(json.dumps(spec_to_dict(spec)))
    assert data["time_step"] == {"numeric": False, "typical": 1.0, "limit": 4.5}
    # it only flags windows: a runtime that ignores it decides the same, so no newer schema
    assert data["schema_version"] == 1
    assert spec_from_dict(data).time_step == step
    assert "time_step" not in spec_to_dict(make_spec())


@pytest.mark.parametrize("step, message", [
    ({"numeric": "no", "typical": 1.0, "limit": 4.5}, "numeric must be true or false"),
    ({"numeric": False, "typical": 0.0, "limit": 4.5}, "0 < typical <= limit"),
    ({"numeric": False, "typical": 5.0, "limit": 4.5}, "0 < typical <= limit"),
    ({"numeric": False, "typical": 1.0}, "limit"),
])
def test_bad_time_step_is_refused_by_name(data, step, message):
    data["time_step"] = step
    with pytest.raises(ArtifactError, match=message):
        spec_from_dict(data)


def test_input_ranges_are_read_from_the_training_record(data):
    from vigil.runtime.core.spec import InputRange

    assert spec_from_dict(data).input_ranges == ()  # artifacts before 0.3 record none
    data["training"]["inputs_only"] = {"current": "categorical"}
    data["training"]["input_ranges"] = {"current": {"levels": [3.0, 0.0, 1.0]},
                                        "flow": [20.0, 40.0]}
    assert spec_from_dict(data).input_ranges == (
        InputRange("current", 2, 0.0, 3.0, (0.0, 1.0, 3.0), "categorical"),
        InputRange("flow", 0, 20.0, 40.0, None, "not scored"))


@pytest.mark.parametrize("ranges, message", [
    ([1, 2], "training.input_ranges must be a JSON object"),
    ({"speed": [0, 1]}, "training.input_ranges.speed names no feature"),
    ({"flow": [2, 1]}, r"training.input_ranges.flow must be \[low, high\]"),
    ({"flow": [0, "x"]}, r"training.input_ranges.flow must be \[low, high\]"),
    ({"flow": {"levels": []}}, "training.input_ranges.flow.levels must be a non-empty list"),
])
def test_bad_input_ranges_are_refused_on_loading(data, ranges, message):
    data["training"]["input_ranges"] = ranges
    with pytest.raises(ArtifactError, match=message):
        spec_from_dict(data)


def test_steady_runs_are_read_from_the_training_record(data):
    from vigil.runtime.core.spec import SteadyRun

    assert spec_from_dict(data).steady_runs == ()  # artifacts before 0.3.1 record none
    data["training"]["steady_runs"] = {"flow": 3, "current": 40}
    assert spec_from_dict(data).steady_runs == (SteadyRun("flow", 0, 3),
                                                SteadyRun("current", 2, 40))


@pytest.mark.parametrize("runs, message", [
    ([1, 2], "training.steady_runs must be a JSON object"),
    ({"speed": 3}, "training.steady_runs.speed names no feature"),
    ({"flow": 0}, r"training.steady_runs.flow must be a number of rows"),
    ({"flow": 2.5}, r"training.steady_runs.flow must be a number of rows"),
    ({"flow": True}, r"training.steady_runs.flow must be a number of rows"),
    ({"flow": 10**30}, r"training.steady_runs.flow must be a number of rows \(a whole number "
                       r"from 1 to 1000000000000\)"),  # overflowed the runtime's counters
])
def test_bad_steady_runs_are_refused_on_loading(data, runs, message):
    data["training"]["steady_runs"] = runs
    with pytest.raises(ArtifactError, match=message):
        spec_from_dict(data)


@pytest.mark.parametrize("key, value, expected", [
    ("frame_aspect", None, None), ("frame_aspect", [0.98, 1.0], (0.98, 1.0)),
    ("frame_aspect", [0, 1], ArtifactError), ("frame_aspect", [2, 1], ArtifactError),
    ("frame_aspect", "wide", ArtifactError),
    ("frame_side", None, None), ("frame_side", [100, 300], (100, 300)),
    ("frame_side", [0, 10], ArtifactError), ("frame_side", [300, 100], ArtifactError),
    ("frame_side", [1.5, 3], ArtifactError)])
def test_the_training_frames_shape_is_read_from_the_training_record(key, value, expected):
    from image_fixtures import tiny_image_spec

    image = json.loads(json.dumps(spec_to_dict(tiny_image_spec())))
    if value is not None:
        image["training"][key] = value
    if expected is ArtifactError:
        with pytest.raises(ArtifactError, match=f"training.{key} must be"):
            spec_from_dict(image)
    else:
        assert getattr(spec_from_dict(image), key) == expected


def test_image_interpolation_is_named_and_defaults_for_older_artifacts():
    from image_fixtures import tiny_image_spec

    image = json.loads(json.dumps(spec_to_dict(tiny_image_spec())))
    assert image["interpolation"] == "area_per_shrinking_side"
    del image["interpolation"]  # written since 0.3: older artifacts resize as they did
    assert spec_from_dict(image).interpolation == "area_when_rows_shrink"
    image["interpolation"] = "opencv_area_shrinking_linear_enlarging"  # its first name, hours old
    assert spec_from_dict(image).interpolation == "area_when_rows_shrink"
    image["interpolation"] = "cubic"
    with pytest.raises(ArtifactError, match="metadata interpolation must be one of"):
        spec_from_dict(image)


def test_a_wide_short_frame_is_shrunk_by_area_unless_the_artifact_predates_it():
    import cv2
    import numpy as np

    from vigil.runtime.camera.frames import convert_frame

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (16, 256, 3), dtype=np.uint8)  # noise: sampling aliases it
    now = convert_frame(frame, 32, 32, "bgr")
    narrow = cv2.resize(frame, (32, 16), interpolation=cv2.INTER_AREA)  # the width averaged
    np.testing.assert_array_equal(now, cv2.resize(narrow, (32, 32),
                                                  interpolation=cv2.INTER_LINEAR))
    before = convert_frame(frame, 32, 32, "bgr", "area_when_rows_shrink")
    np.testing.assert_array_equal(before, cv2.resize(frame, (32, 32),
                                                     interpolation=cv2.INTER_LINEAR))
    assert now.std() < before.std() / 2  # averaged, not sampled
    square = rng.integers(0, 256, (64, 48, 3), dtype=np.uint8)  # both sides shrink: one pass
    np.testing.assert_array_equal(convert_frame(square, 32, 32, "bgr"), cv2.resize(
        square, (32, 32), interpolation=cv2.INTER_AREA))
