"""A window's score is the same alone or in any batch, whatever extreme readings its neighbours
hold; and every score line is strict JSON, however extreme the readings."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vigil import runtime
from vigil.runtime.sensor.streaming import StreamingScorer
from vigil.runtime.sensor.tables import read_table

pytest.importorskip("onnx")

SENTINELS = (65535.0, -9999.0, 99999.0, 1e6, 1e20, -1e20)
# Same inputs, other batch: only float rounding may differ (GEMM blocking), far below the parity
# tolerance of INT8 against FP32 (1e-2 relative). Scores are standardized sums centred on 0 (a
# threshold near 8 here), so near 0 the rounding is judged in absolute terms: 1e-5, about 1e-6
# of the threshold.
TOLERANCE = dict(rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def test_rows(sensor_artifacts) -> np.ndarray:
    detector = runtime.load(sensor_artifacts.fp32)
    return read_table(sensor_artifacts.test_csv, features=detector.features).values[:300]


@pytest.fixture(scope="module")
def dynamic_int8(sensor_artifacts, tmp_path_factory):
    """The 0.1 export's INT8: dynamic quantization, whose scale comes from the whole batch."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from vigil.export.package import write_artifact

    folder = tmp_path_factory.mktemp("dynamic")
    plain = onnx.load(str(sensor_artifacts.fp32))
    del plain.metadata_props[:]
    onnx.save(plain, str(folder / "plain.onnx"))
    quantize_dynamic(str(folder / "plain.onnx"), str(folder / "dynamic.onnx"),
                     weight_type=QuantType.QInt8, extra_options={"MatMulConstBOnly": True})
    spec = replace(runtime.load(sensor_artifacts.fp32).spec, precision="int8")
    return write_artifact(onnx.load(str(folder / "dynamic.onnx")), spec, folder / "dynamic-int8.onnx")


def windows_with(rows: np.ndarray, window: int, injections) -> np.ndarray:
    values = rows.copy()
    for row, feature, value in injections:
        values[row % len(values), feature % values.shape[1]] = value
    view = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)
    return np.ascontiguousarray(view.transpose(0, 2, 1), dtype=np.float32)


def assert_batch_independent(detector, windows: np.ndarray, cuts: list[int]) -> None:
    alone = np.concatenate([detector.score(w) for w in windows])
    bounds = [0, *sorted({c % len(windows) for c in cuts}), len(windows)]
    batched = np.concatenate([detector.score(windows[a:b]) for a, b in zip(bounds, bounds[1:])
                              if b > a])
    whole = detector.score(windows)
    finite = np.isfinite(alone)
    np.testing.assert_allclose(batched[finite], alone[finite], **TOLERANCE)
    np.testing.assert_allclose(whole[finite], alone[finite], **TOLERANCE)
    assert np.array_equal(~finite, ~np.isfinite(batched))


injections = st.lists(st.tuples(st.integers(0, 299), st.integers(0, 20), st.sampled_from(SENTINELS)),
                      max_size=3)
cuts = st.lists(st.integers(1, 400), max_size=6)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(injected=injections, cut=cuts)
@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_scores_do_not_depend_on_the_batch(sensor_artifacts, test_rows, precision, injected, cut):
    detector = runtime.load(getattr(sensor_artifacts, precision))
    assert detector.spec.precision == precision
    windows = windows_with(test_rows, detector.spec.window, injected)
    assert_batch_independent(detector, windows, cut)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(injected=injections, cut=cuts)
def test_a_dynamically_quantized_artifact_is_scored_one_window_at_a_time(dynamic_int8, test_rows,
                                                                          injected, cut):
    """Artifacts written by 0.1 quantize per call: the runtime keeps them batch-independent."""
    detector = runtime.load(dynamic_int8)
    windows = windows_with(test_rows, detector.spec.window, injected)
    assert_batch_independent(detector, windows, cut)


def test_the_dynamic_graph_really_depends_on_its_batch(dynamic_int8, test_rows):
    """Guard against a vacuous pass: run as one batch, the same graph gives other scores."""
    import onnxruntime as ort

    detector = runtime.load(dynamic_int8)
    assert not detector.batch_independent
    windows = windows_with(test_rows, detector.spec.window, [(250, 0, 65535.0)])
    session = ort.InferenceSession(str(dynamic_int8), providers=["CPUExecutionProvider"])
    raw = session.run(["score"], {"window": windows})[0].reshape(-1)
    alone = detector.score(windows)
    first = slice(0, 200)  # windows that end before the sentinel row
    assert np.max(np.abs(raw[first] - alone[first]) / np.abs(alone[first])) > 0.01


def test_triton_never_batches_a_graph_that_quantizes_per_run(dynamic_int8, tmp_path, caplog):
    """Triton's dynamic batcher would put other clients' windows into one run of the graph."""
    from vigil.export.triton import write_triton_repository

    assert not runtime.load(dynamic_int8).batch_independent
    folder = write_triton_repository(dynamic_int8, tmp_path / "repo", name="old")
    for config in (folder / "config.pbtxt", folder / "configs" / "gpu.pbtxt"):
        text = config.read_text()
        assert "max_batch_size: 0" in text and "dynamic_batching" not in text
        assert "dims: [ -1, " in text  # the batch axis stays in the tensor, as one request sent it
    assert "turn dynamic batching off" in caplog.text


def test_default_export_never_quantizes_per_call(sensor_artifacts):
    import onnx

    ops = {node.op_type for node in onnx.load(str(sensor_artifacts.int8)).graph.node}
    assert "QuantizeLinear" in ops and not ops & {"DynamicQuantizeLinear", "DynamicQuantizeLSTM"}
    parity = runtime.load(sensor_artifacts.int8).spec.parity
    assert parity["int8_batch1_max_abs_diff"] < 1e-5


def test_a_sentinel_reading_gives_the_same_alarms_from_a_file_and_from_stdin(sensor_artifacts,
                                                                            tmp_path):
    lines = sensor_artifacts.test_csv.read_text().splitlines()[:601]
    header = lines[0].split(",")
    column = next(i for i, name in enumerate(header) if name not in ("timestamp", "anomaly"))
    cells = lines[500].split(",")
    cells[column] = "65535"
    lines[500] = ",".join(cells)
    path = tmp_path / "sentinel.csv"
    path.write_text("\n".join(lines) + "\n")

    def score(*args, stdin=None):
        done = subprocess.run([sys.executable, "-m", "vigil", "score", str(sensor_artifacts.int8),
                               *args], input=stdin, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return [json.loads(line) for line in done.stdout.splitlines()]

    from_file = score(str(path))
    from_stdin = score("-", stdin=path.read_text())
    assert [r["index"] for r in from_file] == [r["index"] for r in from_stdin]
    np.testing.assert_allclose([r["score"] for r in from_file], [r["score"] for r in from_stdin],
                               **TOLERANCE)
    assert [r["anomaly"] for r in from_file] == [r["anomaly"] for r in from_stdin]
    before = [r for r in from_file if r["index"] < 499]
    assert sum(r["anomaly"] for r in before) < len(before) / 2


def test_extreme_readings_give_strict_json(sensor_artifacts, tmp_path):
    """Readings near 1e20 overflow the float32 error: the line stays valid JSON (RFC 8259)."""
    lines = sensor_artifacts.test_csv.read_text().splitlines()[:120]
    header = lines[0].split(",")
    column = next(i for i, name in enumerate(header) if name not in ("timestamp", "anomaly"))
    for row in (60, 61):
        cells = lines[row].split(",")
        cells[column] = "1e20" if row == 60 else "-3e38"
        lines[row] = ",".join(cells)
    path = tmp_path / "extreme.csv"
    path.write_text("\n".join(lines) + "\n")
    done = subprocess.run([sys.executable, "-m", "vigil", "score", str(sensor_artifacts.int8),
                           str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    records = [json.loads(line, parse_constant=refuse) for line in done.stdout.splitlines()]
    overflowed = [r for r in records if r.get("score_overflow")]
    assert overflowed, "some window's score must overflow float32 with readings of 1e20"
    assert all(r["anomaly"] and r["above_threshold"] and r["score"] > 1e300 for r in overflowed)
    json.loads(done.stderr.strip().splitlines()[-1], parse_constant=refuse)


def test_readings_that_overflow_inside_the_graph_score_infinite_and_are_predicted(
        sensor_artifacts):
    """Finite readings near float32's limit pass the input check but overflow inside the graph
    (inf - inf is NaN there): the Python API scores them +inf, and `predict` flags them as
    `alarms` and the CLI do."""
    detector = runtime.load(sensor_artifacts.fp32)
    windows = np.zeros((3, *detector.input_shape), np.float32)
    windows[1, -1, :] = 3.4e38
    windows[2, -1, :] = 1.5e38
    scores = detector.score(windows)
    assert np.isfinite(scores[0]) and not np.isnan(scores).any()
    assert scores[1] == np.inf and scores[2] == np.inf
    assert detector.predict(windows).tolist() == [bool(scores[0] > detector.threshold), True,
                                                  True]


def test_a_dataframe_is_read_by_its_column_names(sensor_artifacts):
    """As the CLI reads a CSV header: named columns in any order score as the model's order;
    a missing name is refused; unnamed columns (DataFrame(array)) are read by position."""
    pd = pytest.importorskip("pandas")
    detector = runtime.load(sensor_artifacts.fp32)
    window = np.random.default_rng(0).normal(size=detector.input_shape).astype(np.float32)
    frame = pd.DataFrame(window, columns=list(detector.features))
    expected = detector.score(window)
    np.testing.assert_array_equal(detector.score(frame[list(reversed(detector.features))]),
                                  expected)
    np.testing.assert_array_equal(detector.score(pd.DataFrame(window)), expected)
    with pytest.raises(ValueError, match=r"`x` has columns .* without the model's"):
        detector.score(frame.rename(columns={detector.features[0]: "other"}))


def test_a_signal_and_streamed_rows_are_read_by_their_names_and_a_mask_is_refused(
        sensor_artifacts):
    """score_signal reads a DataFrame's columns, StreamingScorer.push a Series' or a dict's
    entries by name, as score does: reordered columns scored a million-fold before."""
    pd = pytest.importorskip("pandas")
    detector = runtime.load(sensor_artifacts.fp32)
    rows = read_table(sensor_artifacts.test_csv, features=detector.features).values[:80]
    signal = pd.DataFrame(rows, columns=list(detector.features))
    reversed_signal = signal[list(reversed(detector.features))]
    _, expected, _ = detector.score_signal(rows)
    np.testing.assert_array_equal(detector.score_signal(reversed_signal)[1], expected)

    def streamed(each_row) -> list[float]:
        scorer = StreamingScorer(detector)
        return [r.score for k in range(len(rows)) for r in scorer.push(each_row(k))
                if r.score is not None]

    in_order = streamed(lambda k: rows[k])
    assert len(in_order) == len(rows) - detector.spec.window + 1
    assert streamed(lambda k: reversed_signal.iloc[k]) == in_order
    assert streamed(lambda k: dict(reversed_signal.iloc[k])) == in_order
    # a row without the model's features is skipped with the reason (it raised before 0.3's
    # review u2: a caller that caught it joined the rows around it into one window)
    (skipped,) = StreamingScorer(detector).push({"other": 1.0})
    assert re.search(r"`values` has keys .* without the model's", skipped.skipped)
    for call in (lambda m: detector.score(m), lambda m: detector.score_signal(m[0])):
        with pytest.raises(TypeError, match="masked array: its mask would be ignored"):
            call(np.ma.masked_array(rows[None, :detector.spec.window], mask=False))
