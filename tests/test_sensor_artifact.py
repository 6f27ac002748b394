"""The exported sensor artifact: Keras/FP32/INT8 parity, metadata, input checks, bad files."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from vigil import runtime
from vigil.cli import commands as cli
from vigil.export.precision import rank_correlation
from vigil.runtime import ArtifactError
from vigil.runtime.core.artifact import CONTENT_DIGEST_KEY
from vigil.runtime.core.spec import SCHEMA_VERSION
from vigil.runtime.sensor.tables import read_table
from vigil.runtime.sensor.windows import sliding_windows
from vigil.training.synthetic import FEATURES

FP32_MAX_ABS_DIFF = 1e-4       # Keras vs ONNX FP32 on validation scores (about 0.4 .. 2.5)
INT8_MIN_RANK_CORRELATION = 0.95
INT8_MAX_REL_DIFF = 0.15       # max |INT8 - FP32| over the FP32 scores' std
BATCH1_WINDOWS = 12            # windows scored one at a time (Keras calls are slow)
QUALITY_FLOOR_AUROC = 0.7      # synthetic test stream; the tiny fixture model reaches about 0.8-0.9

onnx = pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def validation(sensor_artifacts) -> np.ndarray:
    from vigil.training.checkpoint import load_run

    windows = load_run(sensor_artifacts.keras_model).validation
    assert windows.ndim == 3 and len(windows) > BATCH1_WINDOWS
    return windows


@pytest.fixture(scope="module")
def fp32(sensor_artifacts):
    return runtime.load(sensor_artifacts.fp32)


@pytest.fixture(scope="module")
def int8(sensor_artifacts):
    return runtime.load(sensor_artifacts.int8)


@pytest.fixture(scope="module")
def labeled_windows(sensor_artifacts, int8) -> np.ndarray:
    table = read_table(sensor_artifacts.test_csv, features=int8.features)
    return sliding_windows(table.values.astype(np.float32), int8.spec.window)


# -- parity ------------------------------------------------------------------------------------

def test_keras_and_onnx_fp32_agree_at_batch_1_and_batch_n(sensor_artifacts, validation, fp32):
    import keras

    import vigil.training.sensor_model  # noqa: F401  (registers the custom layers)

    model = keras.models.load_model(sensor_artifacts.keras_model, safe_mode=True)
    keras_batch = np.asarray(model.predict(validation, batch_size=256, verbose=0)["score"],
                             dtype=np.float64).reshape(-1)
    onnx_batch = fp32.score(validation)
    assert onnx_batch.shape == keras_batch.shape == (len(validation),)
    assert np.max(np.abs(onnx_batch - keras_batch)) < FP32_MAX_ABS_DIFF

    for window in validation[:BATCH1_WINDOWS]:
        keras_one = float(np.asarray(model(window[None], training=False)["score"]).reshape(-1)[0])
        onnx_one = fp32.score(window)
        assert onnx_one.shape == (1,)
        assert abs(onnx_one[0] - keras_one) < FP32_MAX_ABS_DIFF


@pytest.mark.parametrize("batch", [1, 64, None], ids=["batch1", "batch64", "all"])
def test_int8_tracks_fp32(fp32, int8, validation, labeled_windows, batch):
    windows = np.concatenate([validation, labeled_windows[::5]])  # normal and anomalous windows
    if batch == 1:
        windows = windows[::25]
        a = np.array([fp32.score(w)[0] for w in windows])
        b = np.array([int8.score(w)[0] for w in windows])
    elif batch is None:
        a, b = fp32.score(windows), int8.score(windows)
    else:
        starts = range(0, len(windows), batch)
        a = np.concatenate([fp32.score(windows[i:i + batch]) for i in starts])
        b = np.concatenate([int8.score(windows[i:i + batch]) for i in starts])
    assert len(a) > 20
    assert rank_correlation(a, b) >= INT8_MIN_RANK_CORRELATION
    # scores are standardized sums centred on 0: the difference is judged against their spread
    assert np.max(np.abs(b - a)) / np.std(a) <= INT8_MAX_REL_DIFF


def test_scores_separate_anomalies(sensor_artifacts, int8, labeled_windows):
    """A quality floor on the synthetic test stream, not just 'it ran'."""
    from vigil.runtime.core.metrics import auroc

    table = read_table(sensor_artifacts.test_csv, features=int8.features)
    labels = table.labels[int8.spec.window - 1:]
    assert auroc(int8.score(labeled_windows), labels) > QUALITY_FLOOR_AUROC


# -- metadata ----------------------------------------------------------------------------------

def raw_metadata(path) -> dict:
    model = onnx.load(str(path))
    entries = {e.key: e.value for e in model.metadata_props}
    assert list(entries) == ["vigil"], "exactly one namespaced metadata entry"
    return json.loads(entries["vigil"])


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_metadata_contents(sensor_artifacts, precision):
    path = getattr(sensor_artifacts, precision)
    data = raw_metadata(path)
    detector = runtime.load(path)
    spec = detector.spec
    # The default adaptive threshold and anomaly likelihood are part of the alarm rule, so the
    # artifact asks for a runtime that applies them (schema 5: the likelihood's level floor; 4:
    # the likelihood; 3 for the threshold's quantile rule; 2 for mean + z std).
    assert data["schema_version"] == 5 and data["kind"] == "sensor"
    assert data["adaptive"] == {"memory": 1000, "warmup": 1000, "quantile": 0.99, "factor": 2.0}
    likelihood = data["likelihood"]
    assert (likelihood["short"], likelihood["long"], likelihood["z"], likelihood["warmup"],
            likelihood["level_warmup"]) == (10, 8640, 4.27, 388, 1000)
    assert likelihood["std_floor"] == pytest.approx(0.01 * data["training"][
        "keras_score_stats"]["std"], rel=1e-6)
    assert spec.features == FEATURES == tuple(data["features"])
    assert spec.window == data["window"] == 16
    assert detector.input_shape == (16, len(FEATURES))
    assert spec.precision == precision
    assert detector.threshold == spec.threshold.value == data["threshold"]["value"]
    params = spec.threshold.params
    assert spec.threshold.method == "gaussian"
    assert spec.threshold.value == pytest.approx(params["mean"] + params["k"] * params["std"])
    assert np.isfinite(detector.threshold)
    assert len(spec.mean) == len(spec.std) == len(FEATURES)
    assert all(s > 0 for s in spec.std)
    assert spec.time_column == "timestamp"
    # the 1 Hz training rows' step, and the gap beyond which windows are flagged
    from vigil.training.sensor_data import GAP_SLACK
    assert spec.time_step.typical == 1.0 and not spec.time_step.numeric
    assert spec.time_step.limit == (spec.max_gap + GAP_SLACK) * 1.0
    decay = spec.training["model"]["score_decay"]
    assert decay > 0 and f"weighted by (1 - {decay:g})^age, newest heaviest" in spec.score_reduction
    stats = detector.score_stats
    assert stats.count > 0 and stats.p50 <= stats.p95 <= stats.p99 <= stats.max
    for name in ("vigil", "onnxruntime", "numpy", "tensorflow", "keras", "tf2onnx", "onnx"):
        assert spec.versions.get(name), f"versions lacks {name}"
    files = spec.training["files"]
    digest = hashlib.sha256(sensor_artifacts.train_csv.read_bytes()).hexdigest()
    assert files == [{"name": "train.csv", "sha256": digest, "rows": 2500, "labeled_rows": 0}]
    assert spec.training["labels"] == {"from": "none", "labeled_rows": 0}
    losses = spec.training["validation_loss"]  # each network's lowest, when, and its last
    assert len(losses) == spec.training["model"]["members"]
    for loss in losses:
        assert 1 <= loss["best_epoch"] <= spec.training["epochs"] and loss["best"] <= loss["last"]
    assert detector.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    if precision == "int8":
        assert spec.parity["int8_rank_correlation"] >= INT8_MIN_RANK_CORRELATION
    assert spec.parity["fp32_max_abs_diff"] < FP32_MAX_ABS_DIFF


# -- using the detector ------------------------------------------------------------------------

def test_threshold_override_changes_predict(sensor_artifacts, labeled_windows):
    detector = runtime.load(sensor_artifacts.int8)
    original = detector.threshold
    scores = detector.score(labeled_windows)
    np.testing.assert_array_equal(detector.predict(labeled_windows), scores > original)

    middle = float(np.median(scores))
    detector.threshold = middle
    predicted = detector.predict(labeled_windows)
    np.testing.assert_array_equal(predicted, scores > middle)
    assert 0 < predicted.sum() < len(predicted)
    assert not np.array_equal(predicted, scores > original)

    detector.threshold = float(scores.max()) + 1
    assert not detector.predict(labeled_windows).any()
    detector.threshold = float(scores.min()) - 1
    assert detector.predict(labeled_windows).all()

    for bad in (float("nan"), float("inf"), "1.0", True):
        with pytest.raises(ValueError, match="`threshold` must be a finite number"):
            detector.threshold = bad
    assert runtime.load(sensor_artifacts.int8).threshold == original, "the file is unchanged"


def test_score_accepts_one_window_or_a_batch_of_any_numeric_dtype(int8, labeled_windows):
    one = int8.score(labeled_windows[0])
    assert one.shape == (1,) and one.dtype == np.float64
    assert int8.score(labeled_windows[:3]).shape == (3,)
    assert int8.score(labeled_windows[:0]).shape == (0,)
    np.testing.assert_allclose(int8.score(labeled_windows[0].astype(np.float64)), one, rtol=1e-6)
    assert int8.score(np.ones((16, 8), dtype=np.int32)).shape == (1,)
    scores, errors = int8.score_with_features(labeled_windows[:4])
    assert errors.shape == (4, len(FEATURES))


@pytest.mark.parametrize("shape", [(15, 8), (16, 7), (2, 16, 9), (16,), (1, 1, 16, 8)])
def test_score_refuses_wrong_shapes(int8, shape):
    with pytest.raises(ValueError) as error:
        int8.score(np.zeros(shape, dtype=np.float32))
    message = str(error.value)
    assert "`x` must have shape (16, 8) or (n, 16, 8)" in message
    assert f"received {shape}" in message


def test_score_refuses_nan_naming_the_feature(int8, labeled_windows):
    window = labeled_windows[0].copy()
    window[5, FEATURES.index("current")] = np.nan
    with pytest.raises(ValueError, match=r"must be finite in float32 \(\|x\| <= 3.4e38\); "
                                         r"window 0, step 5, feature 'current' is nan"):
        int8.score(window)
    batch = labeled_windows[:3].copy()
    batch[2, 0, FEATURES.index("speed")] = np.inf
    with pytest.raises(ValueError, match="window 2, step 0, feature 'speed' is inf"):
        int8.score(batch)
    beyond = labeled_windows[:2].astype(np.float64)  # finite in float64, infinite in float32
    beyond[1, 3, FEATURES.index("flow")] = 1e39
    with pytest.raises(ValueError, match="window 1, step 3, feature 'flow' is 1e"):
        int8.predict(beyond)


@pytest.mark.parametrize("array", [np.full((16, 8), "1.0"), np.full((16, 8), "x", dtype=object),
                                   np.zeros((16, 8), dtype=bool),
                                   np.zeros((16, 8), dtype=complex)],
                         ids=["str", "object", "bool", "complex"])
def test_score_refuses_non_numeric_dtype(int8, array):
    with pytest.raises(TypeError, match="`x` must be numbers .*; received dtype"):
        int8.score(array)
    # a signal too: booleans all alarmed, a complex number was cut to its real part, text failed
    # in numpy's words
    with pytest.raises(TypeError, match="`values` must be numbers .*; received dtype"):
        int8.score_signal(np.concatenate([array, array]))


def test_a_text_cell_in_a_signal_is_named_and_a_whole_signal_given_as_windows_is_pointed_on(int8):
    rows = np.zeros((40, 8), dtype=object)
    rows[7, 2] = "abc"
    with pytest.raises(TypeError, match="at \\[7, 2\\] it holds 'abc'"):
        int8.score_signal(rows)
    with pytest.raises(ValueError, match="detector.score_signal\\(rows\\)"):
        int8.score(np.zeros((40, 8)))
    assert int8.score([]).shape == (0,) and int8.predict([]).shape == (0,)  # an empty batch
    # object arrays of real numbers (a DataFrame's nullable columns, Decimal rows from a
    # database driver) are numbers; their missing cells are named as missing
    from decimal import Decimal

    values = np.random.default_rng(0).normal(size=(40, 8))
    expected = int8.score_signal(values)[1]
    decimals = np.array([[Decimal(float(v)) for v in row] for row in values], dtype=object)
    np.testing.assert_array_equal(int8.score_signal(decimals)[1], expected)
    np.testing.assert_array_equal(int8.score(values[:16].astype(object)), expected[:1])
    rows[:] = 1.5
    rows[7, 2] = None
    with pytest.raises(ValueError, match="row 7, feature .* is nan"):
        int8.score_signal(rows)


def test_a_streamed_row_of_booleans_or_complex_numbers_is_not_scored(int8):
    import vigil

    stream = vigil.StreamingScorer(int8)
    results = [r for values in ([True] * 8, np.full(8, 1 + 1j)) for _ in range(20)
               for r in stream.push(values)]
    assert results and all(r.score is None and "non-numeric" in r.skipped for r in results)


# -- bad artifacts -----------------------------------------------------------------------------

def without_digest(text: str) -> str:
    """A ``vigil`` entry as an artifact written before the content digest has it (an entry
    that is no JSON object stays as it is)."""
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if not isinstance(data, dict):
        return text
    data.pop(CONTENT_DIGEST_KEY, None)
    return json.dumps(data)


def rewrite_metadata(source, target, change, keep_digest=False):
    """Copy ``source`` to ``target``, the ``vigil`` entry's text replaced by ``change(text)``;
    without its content digest unless ``keep_digest`` (the edit is then refused as one)."""
    model = onnx.load(str(source))
    entry = next(e for e in model.metadata_props if e.key == "vigil")
    entry.value = change(entry.value if keep_digest else without_digest(entry.value))
    onnx.save(model, str(target))
    return target


def with_field(key, value):
    def change(text: str) -> str:
        data = json.loads(text)
        data[key] = value
        return json.dumps(data)
    return change


def without_field(key):
    def change(text: str) -> str:
        data = json.loads(text)
        del data[key]
        return json.dumps(data)
    return change


def foreign_onnx(target):
    """A valid ONNX model shaped like ours, without our metadata."""
    from onnx import TensorProto, helper

    window = helper.make_tensor_value_info("window", TensorProto.FLOAT, [None, 16, 8])
    score = helper.make_tensor_value_info("score", TensorProto.FLOAT, [None, 16, 8])
    graph = helper.make_graph([helper.make_node("Identity", ["window"], ["score"])], "foreign",
                              [window], [score])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return target


def handmade(source, target, *, window_type="FLOAT", batch=None, score="mean", opset=17,
             operator="ReduceMean"):
    """A graph made by hand with ``source``'s metadata: windows (batch, 16, 8) in, each
    feature's mean error and their mean as the score out; each keyword bends one thing."""
    from onnx import TensorProto, helper

    window = helper.make_tensor_value_info("window", getattr(TensorProto, window_type),
                                           [batch, 16, 8])
    nodes = [helper.make_node(operator, ["window"], ["feature_errors"], axes=[1], keepdims=0)]
    if score == "per-step":  # one score per step of each window
        nodes.append(helper.make_node("ReduceMean", ["window"], ["score"], axes=[2], keepdims=0))
        shape, kind = [batch, 16], TensorProto.FLOAT
    else:
        nodes.append(helper.make_node("ReduceMean", ["feature_errors"], ["mean"], axes=[1],
                                      keepdims=0))
        kind = TensorProto.INT64 if score == "int64" else TensorProto.FLOAT
        nodes.append(helper.make_node("Cast", ["mean"], ["score"], to=kind))
        shape = [batch]
    errors_type = TensorProto.DOUBLE if window_type == "DOUBLE" else TensorProto.FLOAT
    graph = helper.make_graph(nodes, "handmade", [window], [
        helper.make_tensor_value_info("feature_errors", errors_type, [batch, 8]),
        helper.make_tensor_value_info("score", kind, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    helper.set_model_props(model, {e.key: without_digest(e.value)
                                   for e in onnx.load(str(source)).metadata_props})
    onnx.save(model, str(target))
    return target


def truncated(source, target):
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    return target


def random_bytes(source, target):
    target.write_bytes(np.random.default_rng(0).bytes(4096))
    return target


def empty(source, target):
    target.write_bytes(b"")
    return target


def keras_zip(target, suffix: str = ".keras"):
    import zipfile

    target = target.with_name(target.stem + suffix)
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr("config.json", "{}")
    return target


BAD_ARTIFACTS = {
    # name: (make(source artifact, target path) -> path, text the error must contain)
    "truncated": (truncated, "is not a loadable ONNX model"),
    "random-bytes": (random_bytes, "is not a loadable ONNX model"),
    "empty": (empty, "is empty; expected a Vigil .onnx artifact"),
    "missing": (lambda s, t: t, "does not exist"),
    "keras-model": (lambda s, t: keras_zip(t), "is a Keras model, not a Vigil .onnx artifact; "
                                               "export it first: vigil export"),
    "training-sidecar": (lambda s, t: keras_zip(t, ".vigil.npz"),
                         "the calibration data `vigil train` writes beside a Keras model, not a "
                         "Vigil .onnx artifact; export the model it belongs to: vigil export"),
    "foreign-onnx": (lambda s, t: foreign_onnx(t), "has no 'vigil' metadata entry"),
    "metadata-not-json": (lambda s, t: rewrite_metadata(s, t, lambda text: text[:-7]),
                          "metadata entry is not valid JSON"),
    "future-schema": (lambda s, t: rewrite_metadata(s, t, with_field("schema_version",
                                                                     SCHEMA_VERSION + 1)),
                      f"schema_version {SCHEMA_VERSION + 1} is newer than this runtime understands"),
    "unknown-precision": (lambda s, t: rewrite_metadata(s, t, with_field("precision", "int4")),
                          "metadata precision must be one of"),
    "missing-threshold": (lambda s, t: rewrite_metadata(s, t, without_field("threshold")),
                          "metadata is missing the required field 'threshold'"),
    # metadata says 32-row windows, the graph takes 16: the error names the metadata shape
    "window-mismatch": (lambda s, t: rewrite_metadata(s, t, with_field("window", 32)),
                        "[32, 8]"),
    # graphs that do not take or give what the detector feeds and reads: refused at load, not
    # met as a wrong score (one per step, misaligned with the windows) or a traceback
    "input-double": (lambda s, t: handmade(s, t, window_type="DOUBLE"),
                     "graph input 'window' takes tensor(double); a sensor artifact takes "
                     "tensor(float)"),
    "fixed-batch": (lambda s, t: handmade(s, t, batch=1), "has a fixed batch of 1"),
    "score-per-step": (lambda s, t: handmade(s, t, score="per-step"),
                       "graph output 'score' has shape [None, 16]; expected [batch] (one value "
                       "per window)"),
    "score-int64": (lambda s, t: handmade(s, t, score="int64"),
                    "graph output 'score' is tensor(int64); expected tensor(float)"),
    # a graph newer than the installed onnxruntime is not called corrupt
    "newer-opset": (lambda s, t: handmade(s, t, opset=99),
                    "needs a newer onnxruntime: the installed"),
    "unknown-operator": (lambda s, t: handmade(s, t, operator="FancyNewOp"),
                         "(operator FancyNewOp, which it does not have)"),
}


def test_a_flipped_bit_or_an_edited_field_is_refused_by_the_content_digest(sensor_artifacts,
                                                                           tmp_path, capsys):
    """A storage card that flips one bit in a weight, or a field edited after export, scored
    silently (a review: 1,876 of 1,953 normal windows alarmed). The digest `vigil export` records
    refuses both, naming the fix; an artifact written before the digest still loads."""
    source = sensor_artifacts.fp32
    assert len(raw_metadata(source)[CONTENT_DIGEST_KEY]) == 64
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0x10  # one bit of the graph's weights (the metadata comes last)
    flipped = tmp_path / "flipped.onnx"
    flipped.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="damaged .* or edited after export"):
        runtime.load(flipped)
    for name, change in (("alarm", with_field("consecutive", 3)), ("window", with_field("window", 32))):
        edited = rewrite_metadata(source, tmp_path / f"{name}.onnx", change, keep_digest=True)
        with pytest.raises(ArtifactError, match="does not match the digest recorded in it"):
            runtime.load(edited)
    code = cli.main(["score", str(edited), str(sensor_artifacts.test_csv)])
    assert code == cli.EXIT_ARTIFACT
    assert "export it again: vigil export MODEL.keras -o MODEL.onnx" in capsys.readouterr().err
    old = rewrite_metadata(source, tmp_path / "old.onnx", lambda text: text)  # no digest
    windows = np.zeros((1, 16, 8), np.float32)
    np.testing.assert_array_equal(runtime.load(old).score(windows),
                                  runtime.load(source).score(windows))


def test_inspect_says_what_an_artifact_holds_and_whether_it_is_as_exported(sensor_artifacts,
                                                                            tmp_path, capsys):
    """An operator on a device sees the threshold, input, alarm rule and versions without
    Python, and whether the file is as exported."""
    model = sensor_artifacts.fp32
    assert cli.main(["inspect", str(model)]) == 0
    text = capsys.readouterr().out
    detector = runtime.load(model)
    assert f"a Vigil sensor artifact, fp32, {model.stat().st_size:,} bytes, sha256 " \
           f"{detector.sha256}" in text
    assert "content: as exported" in text
    assert f"windows of {detector.spec.window} rows of {len(detector.features)} features" in text
    assert f"threshold: {detector.threshold:.6g}" in text and "versions: " in text
    architecture = detector.spec.training["model"]["architecture"]
    assert f"model: {architecture}" in text and "(normal-only training)" in text
    assert cli.main(["inspect", str(model), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["sha256"] == detector.sha256 and shown["content"] == "as exported"
    assert shown["metadata"]["threshold"]["value"] == detector.spec.threshold.value
    assert shown["metadata"][CONTENT_DIGEST_KEY] == raw_metadata(model)[CONTENT_DIGEST_KEY]
    old = rewrite_metadata(model, tmp_path / "old.onnx", lambda text: text)  # no digest
    assert cli.main(["inspect", str(old)]) == 0
    assert "content: not checked" in capsys.readouterr().out
    edited = rewrite_metadata(model, tmp_path / "edited.onnx", with_field("hold", 99),
                              keep_digest=True)
    assert cli.main(["inspect", str(edited)]) == cli.EXIT_ARTIFACT
    assert "does not match the digest recorded in it" in capsys.readouterr().err


def test_the_handmade_graph_unbent_loads_and_scores(sensor_artifacts, tmp_path):
    """So that each handmade case above is refused for what it bends."""
    detector = runtime.load(handmade(sensor_artifacts.fp32, tmp_path / "handmade.onnx"))
    windows = np.arange(2 * 16 * 8, dtype=np.float32).reshape(2, 16, 8)
    np.testing.assert_allclose(detector.score(windows), windows.mean(axis=(1, 2)), rtol=1e-6)


@pytest.mark.parametrize("name", list(BAD_ARTIFACTS))
def test_bad_artifact_is_refused_by_load_and_cli(sensor_artifacts, tmp_path, capsys, name):
    make, expected = BAD_ARTIFACTS[name]
    path = make(sensor_artifacts.fp32, tmp_path / f"{name}.onnx")
    with pytest.raises(ArtifactError) as error:
        runtime.load(path)
    assert expected in str(error.value)

    capsys.readouterr()
    code = cli.main(["score", str(path), str(sensor_artifacts.test_csv),
                     "--jsonl", str(tmp_path / "out.jsonl")])
    assert code == cli.EXIT_ARTIFACT == 3
    assert expected in capsys.readouterr().err


FILE_LEVEL = ("truncated", "random-bytes", "empty", "missing", "foreign-onnx", "metadata-not-json",
              "window-mismatch")
METADATA_LEVEL = ("future-schema", "unknown-precision", "missing-threshold")


@pytest.mark.parametrize("name", [
    *FILE_LEVEL,
    *METADATA_LEVEL,
])
def test_bad_artifact_error_names_the_file(sensor_artifacts, tmp_path, name):
    make, _ = BAD_ARTIFACTS[name]
    path = make(sensor_artifacts.fp32, tmp_path / f"{name}.onnx")
    with pytest.raises(ArtifactError) as error:
        runtime.load(path)
    assert str(path) in str(error.value)


def test_sha256_pin(sensor_artifacts, tmp_path, capsys):
    digest = hashlib.sha256(sensor_artifacts.int8.read_bytes()).hexdigest()
    assert runtime.load(sensor_artifacts.int8, expect_sha256=digest.upper()).sha256 == digest
    wrong = "0" * 64
    with pytest.raises(ArtifactError, match=f"has sha256 {digest}; expected {wrong}"):
        runtime.load(sensor_artifacts.int8, expect_sha256=wrong)

    capsys.readouterr()
    code = cli.main(["score", str(sensor_artifacts.int8), str(sensor_artifacts.test_csv),
                     "--jsonl", str(tmp_path / "out.jsonl"), "--expect-sha256", wrong])
    assert code == 3
    assert f"expected {wrong}" in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()


def test_eval_refuses_a_bad_artifact_with_exit_3(sensor_artifacts, tmp_path, capsys):
    path = truncated(sensor_artifacts.int8, tmp_path / "cut.onnx")
    assert cli.main(["eval", str(path), str(sensor_artifacts.test_csv)]) == 3
    assert "vigil: error:" in capsys.readouterr().err


def test_a_missing_model_says_what_is_there_and_the_command_that_makes_one(tmp_path):
    from vigil.runtime.core.artifact import open_artifact
    from vigil.runtime.core.spec import ArtifactError

    with pytest.raises(ArtifactError, match=r"does not exist; train and export one first \(vigil "
                                            r"train sensor DATA -o MODEL.keras"):
        open_artifact(tmp_path / "pump.onnx")
    (tmp_path / "pump.keras").write_bytes(b"PK")
    with pytest.raises(ArtifactError, match=r"but pump.keras is beside it: export it first "
                                            r"\(vigil export .*pump.keras -o .*pump.onnx\)"):
        open_artifact(tmp_path / "pump.onnx")
    with pytest.raises(ArtifactError, match=r"-o .*pump.onnx\)"):  # named without a suffix
        open_artifact(tmp_path / "pump")
    with pytest.raises(ArtifactError, match=r"'/dev/null' is not a regular file"):
        open_artifact("/dev/null")
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "sensor.onnx").write_bytes(b"x")
    with pytest.raises(ArtifactError, match=r"is a folder; it holds sensor.onnx: give one of them"):
        open_artifact(folder)
    with pytest.raises(ArtifactError, match=r"other.onnx' does not exist; '.*demo' holds "
                                            r"sensor.onnx"):
        open_artifact(folder / "other.onnx")


def test_inspect_escapes_what_the_file_names_rather_than_sending_it_to_the_terminal(tmp_path,
                                                                                     capsys):
    from dataclasses import replace

    from sensor_fixtures import tiny_sensor_graph, tiny_sensor_spec
    from vigil.cli import commands as cli
    from vigil.export.package import write_artifact

    spec = replace(tiny_sensor_spec(), features=("fl\x1b[31mRED\x1b[0m", "b", "c"))
    path = write_artifact(tiny_sensor_graph(), spec, tmp_path / "odd.onnx")
    assert cli.main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "fl\\x1b[31mRED\\x1b[0m, b, c" in out
    other = tmp_path / "other.csv"  # another machine's columns: the error names the model's
    other.write_text("timestamp,x,y,z\n" + "".join(f"{i},1,2,3\n" for i in range(10)))
    assert cli.main(["score", str(path), str(other)]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "fl\\x1b[31mRED\\x1b[0m" in err
