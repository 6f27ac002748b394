"""The Python API as the README shows it: load, score, decision_function, predict, repr, push."""

from __future__ import annotations

import numpy as np
import pytest

import vigil

pytest.importorskip("onnx")


@pytest.fixture
def tiny(tmp_path):
    from sensor_fixtures import write_tiny_sensor_artifact

    return vigil.load(write_tiny_sensor_artifact(tmp_path / "tiny.onnx"))


def test_readme_streaming_loop_numbers_rows_itself(tiny):
    stream = vigil.StreamingScorer(tiny)
    rows = np.zeros((7, 3))
    rows[6] = 5.0
    results = [result for row in rows for result in stream.push(row)]
    assert [r.index for r in results] == [3, 4, 5, 6]
    assert [r.anomaly for r in results] == [False, False, False, True]
    (later,) = stream.push(np.zeros(3), index=100)  # an explicit index still wins
    assert later.index == 100
    assert stream.push(np.zeros(3))[0].index == 101


def test_decision_function_predict_and_repr(tiny):
    windows = np.zeros((3, 4, 3))
    windows[1] = 5.0
    np.testing.assert_array_equal(tiny.decision_function(windows), tiny.score(windows))
    np.testing.assert_array_equal(tiny.predict(windows), [False, True, False])
    text = repr(tiny)
    assert text.startswith("SensorDetector(") and "window=4" in text and "threshold=1" in text


def test_load_names_a_bad_argument(tmp_path):
    from sensor_fixtures import write_tiny_sensor_artifact

    path = write_tiny_sensor_artifact(tmp_path / "tiny.onnx")
    for kwargs, says in (({"path": None}, "`path` must be the path"),
                         ({"path": 123}, "`path` must be the path"),
                         ({"path": path, "threads": "2"}, "`threads` must be an integer"),
                         ({"path": path, "threads": 2.5}, "`threads` must be an integer"),
                         ({"path": path, "providers": 123}, "`providers` must be a device name")):
        with pytest.raises(TypeError, match=says):
            vigil.load(**kwargs)
    assert vigil.load(path, threads=np.int64(1)).threshold == vigil.load(path).threshold


def test_image_detector_repr_and_help_list_it(tiny_image_artifact):
    import vigil.runtime as runtime

    detector = vigil.load(tiny_image_artifact)
    assert repr(detector).startswith("ImageDetector(") and "32x32x1" in repr(detector)
    frame = np.zeros((32, 32), np.uint8)
    np.testing.assert_array_equal(detector.decision_function(frame), detector.score(frame))
    assert "ImageDetector" in dir(runtime)


def test_a_detector_of_the_other_kind_is_refused_by_name(tiny, tiny_image_artifact):
    """A sensor artifact given to ImageDetector, or an image one to SensorDetector, is a
    TypeError naming the file (it was an AttributeError on a field the spec lacks)."""
    from vigil.runtime import ImageDetector, SensorDetector
    from vigil.runtime.core.artifact import open_artifact

    with pytest.raises(TypeError, match="`artifact` must be an image artifact; .* is a sensor"):
        ImageDetector(open_artifact(tiny.path))
    with pytest.raises(TypeError, match="`artifact` must be a sensor artifact; .* is an image"):
        SensorDetector(open_artifact(tiny_image_artifact))


def test_the_readme_python_snippet_runs(tmp_path, monkeypatch, capsys):
    """The README's Python block, run as written against a small artifact named as it names it."""
    import re
    from pathlib import Path

    from image_fixtures import defect_frame, write_tiny_image_artifact
    from sensor_fixtures import write_tiny_sensor_artifact

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "the README has a Python snippet"
    monkeypatch.chdir(tmp_path)
    write_tiny_sensor_artifact(tmp_path / "model.onnx")
    write_tiny_image_artifact(tmp_path / "camera.onnx")
    rows = np.zeros((8, 3))
    rows[-4:] = 5.0  # the last window is all fives: above the snippet's threshold of 3.5
    frame = defect_frame(np.random.default_rng(0))
    names = {"windows": np.zeros((2, 4, 3)), "rows": rows, "frames": [frame, frame],
             "frame": frame}
    ran = []
    for block in blocks:
        if "tritonclient" in block or "get_modelmeta" in block:
            continue  # a server, or plain onnxruntime: tested on their own below
        scope = dict(names)
        exec(compile(block, "README.md", "exec"), scope)  # noqa: S102 (our own README)
        ran.append(scope)
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1].split()[0] == "7" and printed[-1].split()[-1] == "True"
    camera = next(scope for scope in ran if "camera" in scope)
    assert len(camera["scores"]) == 2 and camera["heat"].shape == frame.shape[:2]


def test_the_readme_triton_client_snippet_runs(tmp_path, monkeypatch):
    """docs/deploying.md's Triton client block, run as written; the transport is replaced by the
    repository's model.onnx run in-process (what a stock Triton onnxruntime backend runs), so the
    client's windowing, tensor names and alarm rule are what is tested."""
    import re
    import sys
    import types
    from pathlib import Path

    import onnxruntime as ort

    from sensor_fixtures import write_tiny_sensor_artifact
    from vigil.cli import commands as cli

    guide = (Path(__file__).resolve().parents[1] / "docs" / "deploying.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", guide, flags=re.S)
                if "tritonclient" in b]
    monkeypatch.chdir(tmp_path)
    write_tiny_sensor_artifact(tmp_path / "pump.onnx")
    assert cli.main(["triton", "pump.onnx", "models"]) == 0
    served = ort.InferenceSession("models/pump/1/model.onnx", providers=["CPUExecutionProvider"])

    class InferInput:
        def __init__(self, name, shape, datatype):
            assert datatype == "FP32"
            self.name, self.shape = name, tuple(shape)

        def set_data_from_numpy(self, array):
            assert array.shape == self.shape and array.dtype == np.float32
            self.array = array

    class Client:
        def __init__(self, url):
            assert url == "127.0.0.1:8000"

        def infer(self, model, inputs):
            assert model == "pump"
            outputs = served.run(None, {i.name: i.array for i in inputs})
            named = dict(zip([o.name for o in served.get_outputs()], outputs))
            return types.SimpleNamespace(as_numpy=named.__getitem__)

    http = types.ModuleType("tritonclient.http")
    http.InferenceServerClient, http.InferInput = Client, InferInput
    monkeypatch.setitem(sys.modules, "tritonclient.http", http)
    if "tritonclient" in sys.modules:  # `import a.b as c` takes b from a once a is imported
        monkeypatch.setattr(sys.modules["tritonclient"], "http", http, raising=False)
    readings = np.zeros((10, 3))
    readings[-4:] = 5.0
    scope = {"readings": readings}
    exec(compile(block, "docs/deploying.md", "exec"), scope)  # noqa: S102 (our own guide)
    detector = scope["detector"]
    expected = detector.score(np.lib.stride_tricks.sliding_window_view(
        readings, (4, 3))[:, 0].astype(np.float32))
    np.testing.assert_allclose(scope["scores"], expected, rtol=1e-6)
    np.testing.assert_array_equal(scope["alarms"], detector.alarms(expected))
    assert scope["alarms"][-1]


def test_device_preference_lists_take_the_first_available_and_fall_back_to_cpu(caplog):
    import onnxruntime as ort

    from vigil.runtime.core.providers import providers_for_device

    assert providers_for_device("cpu") == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with caplog.at_level("INFO", logger="vigil"):
            assert providers_for_device("tensorrt,cuda,cpu") == ["CPUExecutionProvider"]
        # the accelerators asked for first are named (as information: falling back is what a
        # preference list asks for)
        assert "devices 'tensorrt' and 'cuda' are not available here" in caplog.text
        assert "using 'cpu', the next in the preference list" in caplog.text
        caplog.clear()
        with caplog.at_level("WARNING", logger="vigil"):
            assert providers_for_device("tensorrt,cuda") == ["CPUExecutionProvider"]
        assert "none of the devices ['tensorrt', 'cuda'] is available" in caplog.text
    with pytest.raises(ValueError, match="preference list"):
        providers_for_device("cuda,tpu")


def test_an_unknown_providers_name_is_named_as_the_python_argument(tiny):
    import vigil

    # the Python API takes `providers`; its error names that, not the CLI's `--device`
    with pytest.raises(ValueError, match=r"^`providers` must be one of .*received 'gpu'"):
        vigil.load(tiny.path, providers="gpu")
    with pytest.raises(ValueError, match=r"^`providers` must be one of .*preference list"):
        vigil.load(tiny.path, providers="cuda,gpu")


def test_score_takes_a_device_preference_list_and_refuses_unknown_ones(sensor_artifacts,
                                                                       tmp_path, capsys):
    from vigil.cli import commands as cli

    out = tmp_path / "s.jsonl"
    assert cli.main(["score", str(sensor_artifacts.fp32), str(sensor_artifacts.test_csv),
                     "--jsonl", str(out), "--device", "tensorrt,cuda,cpu"]) == 0
    assert out.read_text().count("\n") > 0
    with pytest.raises(SystemExit) as stopped:
        cli.main(["score", str(sensor_artifacts.fp32), "-", "--device", "cuda,tpu"])
    assert stopped.value.code == 2 and "tpu" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
def test_nullable_and_arrow_dataframes_score_as_plain_ones(tiny, backend):
    pd = pytest.importorskip("pandas")
    if backend == "pyarrow":
        pytest.importorskip("pyarrow")
    rng = np.random.default_rng(0)
    plain = pd.DataFrame(rng.normal(size=(12, 3)).round(3), columns=["c", "a", "b"])
    typed = plain.convert_dtypes(dtype_backend=backend)
    np.testing.assert_array_equal(tiny.score_signal(typed)[1], tiny.score_signal(plain)[1])
    np.testing.assert_array_equal(tiny.score(typed.iloc[:4]), tiny.score(plain.iloc[:4]))
    typed.loc[5, "b"] = pd.NA  # a missing cell is named, not a float() error
    with pytest.raises(ValueError, match="finite.*feature 'b' is nan"):
        tiny.score_signal(typed)
    words = plain.astype({"a": object})
    words.loc[2, "a"] = "abc"
    with pytest.raises(ValueError, match="column 'a' must hold numbers"):
        tiny.score(words.iloc[:4])


def test_arrow_tables_and_structured_arrays_are_read_by_their_column_names(tiny):
    """A pyarrow Table (or a polars DataFrame, read the same way) was read by position: columns
    in another order scored as other readings, every window alarmed, without a word."""
    rng = np.random.default_rng(1)
    values = rng.normal(size=(12, 3)).round(3)
    ordered = {"c": values[:, 0], "a": values[:, 1], "b": values[:, 2]}  # the model's order
    shuffled = {name: ordered[name] for name in ("b", "c", "a")}
    expected = tiny.score_signal(values)[1]
    structured = np.rec.fromarrays(list(shuffled.values()), names=list(shuffled))
    np.testing.assert_array_equal(tiny.score_signal(structured)[1], expected)
    np.testing.assert_array_equal(tiny.score(structured[:4]), tiny.score(values[:4]))
    with pytest.raises(ValueError, match=r"without the model's \['a'\]"):
        tiny.score_signal(np.rec.fromarrays(list(shuffled.values())[:2], names=["b", "c"]))
    # a library's own names for unnamed columns say nothing: by position, as a plain array
    unnamed = np.rec.fromarrays(list(ordered.values()))  # f0, f1, f2
    np.testing.assert_array_equal(tiny.score_signal(unnamed)[1], expected)
    pa = pytest.importorskip("pyarrow")
    np.testing.assert_array_equal(tiny.score_signal(pa.table(
        {f"column_{i}": v for i, v in enumerate(ordered.values())}))[1], expected)
    table = pa.table(shuffled)
    np.testing.assert_array_equal(tiny.score_signal(table)[1], expected)
    np.testing.assert_array_equal(tiny.score(table.slice(0, 4)), tiny.score(values[:4]))
    holed = pa.table({**shuffled, "a": pa.array([None, *ordered["a"][1:]])})
    with pytest.raises(ValueError, match="finite.*feature 'a' is nan"):
        tiny.score_signal(holed)


def test_a_file_path_given_as_readings_points_to_reading_it(tiny, tmp_path):
    for given in ("pump.csv", tmp_path / "pump.csv"):
        for call in (tiny.score, tiny.score_signal):
            with pytest.raises(TypeError, match=r"not a file's path.*pandas.read_csv\(path\).*"
                                                r"vigil score MODEL.onnx .*pump.csv"):
                call(given)


def test_columns_named_in_another_letter_case_are_read_as_the_cli_reads_them(tiny, caplog):
    """`vigil score` read a CSV whose header said `A` for the model's `a` (a warning); the API
    refused the same table."""
    pd = pytest.importorskip("pandas")
    window = pd.DataFrame(np.arange(12.0).reshape(4, 3), columns=["c", "a", "b"])
    shouted = window.rename(columns={"a": "A", "b": "B"})[["B", "A", "c"]]
    np.testing.assert_array_equal(tiny.score(shouted), tiny.score(window))
    np.testing.assert_array_equal(tiny.score(shouted), tiny.score(shouted))
    assert caplog.text.count("named in another letter case") == 1
    assert "['a', 'b'] read from columns ['A', 'B']" in caplog.text
    with pytest.raises(ValueError, match="without the model's"):  # two matches: no guess
        tiny.score(pd.concat([shouted, shouted[["A"]].rename(columns={"A": "a "})
                              .rename(columns=str.upper)], axis=1))


def test_a_feature_named_twice_or_with_spaces_around_it(tiny):
    pd = pytest.importorskip("pandas")
    window = pd.DataFrame(np.zeros((4, 3)), columns=["a", "b", "c"])
    doubled = pd.concat([window[["a"]] * 1000 + 1, window], axis=1)  # another `a` first
    with pytest.raises(ValueError, match=r"names \['a'\] more than once among its columns"):
        tiny.score(doubled)
    # a pushed row naming one twice is skipped with that reason, as a row without one is
    (result,) = vigil.StreamingScorer(tiny).push(doubled.iloc[0])
    assert "names ['a'] more than once among its entries" in result.skipped
    spaced = window.rename(columns={"b": " b "})  # read as a CSV header is: spaces dropped
    np.testing.assert_array_equal(tiny.score(spaced), tiny.score(window))


def test_alarms_of_a_stream_scored_in_parts_carry_its_state(tiny):
    scores = np.r_[np.zeros(5), np.full(3, 5.0), np.zeros(4), np.full(6, 5.0)]
    whole = tiny.decisions(scores)
    decider = tiny.alarm_decider()
    parts = [tiny.decisions(part, decider) for part in np.array_split(scores, 4)]
    for n in range(3):
        np.testing.assert_array_equal(np.concatenate([p[n] for p in parts]), whole[n])
    np.testing.assert_array_equal(tiny.alarms(scores[:9], tiny.alarm_decider()),
                                  tiny.alarms(scores[:9]))
    for bad, says in ((None, "`scores` must be one-dimensional"),
                      (["a"], "`scores` must be a sequence of numbers"),
                      (np.ones((3, 2)), r"received shape \(3, 2\)"),
                      ([1.0, np.nan], "NaN; received one at position 1")):
        with pytest.raises((TypeError, ValueError), match=says):
            tiny.alarms(bad)
    with pytest.raises(TypeError, match="`decider` must be what detector.alarm_decider"):
        tiny.alarms(scores, decider="fresh")


def test_push_takes_times_as_python_numpy_and_pandas_hold_them(tiny):
    from datetime import datetime, timedelta, timezone

    pd = pytest.importorskip("pandas")
    start = datetime(2024, 5, 1, 10, tzinfo=timezone.utc)
    stream = vigil.StreamingScorer(tiny)
    stamps = [start, pd.Timestamp(start + timedelta(seconds=1)),
              np.datetime64("2024-05-01T10:00:02"), "2024-05-01T10:00:03", 1714557604,
              1714557605.5]
    results = [r for stamp in stamps for r in stream.push(np.zeros(3), time=stamp)]
    assert [r.time for r in results] == ["2024-05-01T10:00:03", "1714557604", "1714557605.5"]
    assert stream.rows_out_of_order == 0
    with pytest.raises(TypeError, match="`time` must be ISO 8601 text, a number, a datetime"):
        stream.push(np.zeros(3), time=object())
    with pytest.raises(TypeError, match="`index` must be a whole number"):
        stream.push(np.zeros(3), index="7")
    with pytest.raises(ValueError, match="`top_k` must be a whole number >= 0"):
        vigil.StreamingScorer(tiny, top_k=-1)


def test_score_signal_names_the_row_of_a_missing_reading(tiny):
    rows = np.zeros((20, 3))
    rows[13, 1] = np.nan
    with pytest.raises(ValueError, match=r"`values` must be finite .*; row 13, feature 'b' is nan"):
        tiny.score_signal(rows)


def test_score_signal_names_a_reading_beyond_float32_as_given(tiny):
    rows = np.zeros((20, 3))
    rows[5, 0] = 1e39
    with np.errstate(over="raise"):  # no numpy overflow warning on the way
        with pytest.raises(ValueError, match=r"row 5, feature 'a' is 1e\+39"):
            tiny.score_signal(rows)


def test_rows_of_another_width_are_skipped_and_warned_of_once(tiny, caplog):
    stream = vigil.StreamingScorer(tiny)
    for _ in range(5):  # good rows first: a row of another width is still no short gap to fill
        stream.push(np.zeros(3))
    with caplog.at_level("WARNING", logger="vigil"):
        results = [r for _ in range(6) for r in stream.push(np.zeros(2))]
    assert [r.skipped.startswith("row has 2 values; the model needs 3") for r in results] == [True] * 6
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "row 5: row has 2 values; the model needs 3" in warned[0]
    assert "['a', 'b', 'c']" in warned[0]


def test_detectors_pickle_as_their_file_with_the_thresholds_set_since(tiny, tiny_image_artifact,
                                                                       tmp_path):
    import pickle

    tiny.threshold = 0.25
    again = pickle.loads(pickle.dumps(tiny))
    assert type(again) is type(tiny) and again.threshold == 0.25
    windows = np.random.default_rng(0).normal(size=(5, 4, 3))
    np.testing.assert_array_equal(again.score(windows), tiny.score(windows))
    camera = vigil.load(tiny_image_artifact)
    camera.pixel_threshold = 0.5
    copied = pickle.loads(pickle.dumps(camera))
    assert copied.pixel_threshold == 0.5 and copied.threshold == camera.threshold
    frame = np.full((32, 32), 128, np.uint8)
    np.testing.assert_array_equal(copied.score(frame), camera.score(frame))
    # loaded by a relative path, unpickled in another folder
    import os

    here = os.getcwd()
    try:
        os.chdir(tiny.path.parent)
        relative = vigil.load(tiny.path.name)
        elsewhere = tmp_path / "elsewhere"  # not the model's folder: pickled after a chdir
        elsewhere.mkdir()
        os.chdir(elsewhere)
        assert relative.path == tiny.path.resolve()
        assert pickle.loads(pickle.dumps(relative)).path == tiny.path.resolve()
    finally:
        os.chdir(here)
    # the file changed since: refused by its sha256, not scored by another model
    data = pickle.dumps(tiny)
    path = tiny.path
    path.write_bytes(path.read_bytes() + b" ")
    with pytest.raises(vigil.ArtifactError, match="has sha256"):
        pickle.loads(data)


def test_device_names_in_a_provider_list_and_any_case(tmp_path, monkeypatch, caplog):
    import onnxruntime as ort

    from sensor_fixtures import write_tiny_sensor_artifact
    from vigil.runtime.core.providers import session_providers

    # a machine with CUDA, as onnxruntime's GPU build reports it
    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert session_providers(["cuda"]) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert session_providers("CUDA") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with caplog.at_level("WARNING", logger="vigil"):
        assert session_providers(["TensorrtExecutionProvider", "cpu"]) == ["CPUExecutionProvider"]
    assert "['TensorrtExecutionProvider'] are not available here" in caplog.text
    with pytest.raises(ValueError, match=r"`providers` names \['gpu'\], which are neither"):
        session_providers(["gpu"])
    monkeypatch.undo()
    # asked for a provider onnxruntime then does not start: said, not silent
    monkeypatch.setattr("vigil.runtime.core.artifact.session_providers",
                        lambda providers: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    caplog.clear()
    with caplog.at_level("WARNING", logger="vigil"):
        vigil.load(write_tiny_sensor_artifact(tmp_path / "tiny.onnx"))
    assert "onnxruntime could not start CUDAExecutionProvider and runs the model on " in (
        caplog.text)


def test_a_bad_frame_in_a_batch_is_named_and_channels_first_is_recognised(tiny_image_artifact):
    camera = vigil.load(tiny_image_artifact)
    frames = [np.zeros((32, 32), np.uint8)] * 5
    with pytest.raises(TypeError, match=r"`frames\[3\]` must be uint8"):
        camera.score(frames[:3] + [np.zeros((32, 32), np.float32)] + frames[3:])
    with pytest.raises(ValueError, match=r"`frames\[1\]` is None"):
        camera.score([frames[0], None])
    with pytest.raises(ValueError, match=r"channels first.*frame.transpose\(1, 2, 0\)"):
        camera.score(np.zeros((3, 32, 32), np.uint8))


def test_dir_lists_the_public_names():
    assert {"load", "StreamingScorer", "ImageDetector", "SensorDetector"} <= set(dir(vigil))


def test_the_readme_plain_onnxruntime_snippet_scores_as_the_runtime(tmp_path, monkeypatch):
    """docs/artifact.md's "Without Vigil" block, run as written on the tiny artifact."""
    import re
    from pathlib import Path

    from sensor_fixtures import write_tiny_sensor_artifact

    guide = (Path(__file__).resolve().parents[1] / "docs" / "artifact.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", guide, flags=re.S)
                if "get_modelmeta" in b]
    monkeypatch.chdir(tmp_path)
    write_tiny_sensor_artifact(tmp_path / "pump.onnx")
    readings = np.zeros((10, 3))
    readings[-4:] = 5.0
    scope = {"readings": readings}
    exec(compile(block, "docs/artifact.md", "exec"), scope)  # noqa: S102 (our own guide)
    detector = vigil.load(tmp_path / "pump.onnx")
    expected = detector.score(np.lib.stride_tricks.sliding_window_view(readings, (4, 3))[:, 0])
    np.testing.assert_allclose(scope["scores"], expected, rtol=1e-6)
    np.testing.assert_array_equal(scope["above"], expected > detector.threshold)


def test_a_nan_frame_score_is_an_anomaly_as_a_nan_window_score_is(tmp_path):
    """An image graph giving NaN (broken after export) passed the frame as normal, where the
    sensor detector alarms on a NaN score."""
    from image_fixtures import normal_frame, write_tiny_image_artifact

    detector = vigil.load(write_tiny_image_artifact(tmp_path / "camera.onnx"))
    session = detector._session
    real_run = session.run

    class NanScores:
        def run(self, names, feeds):
            score, amap = real_run(names, feeds)
            return np.full_like(score, np.nan), amap

    detector._session = NanScores()
    frame = normal_frame(np.random.default_rng(0))
    assert np.isposinf(detector.score(frame)).all()
    assert detector.predict(frame).all()


def test_a_level_an_input_only_column_never_had_is_marked(tmp_path):
    from dataclasses import replace

    from sensor_fixtures import tiny_sensor_graph, tiny_sensor_spec
    from vigil.export.package import write_artifact
    from vigil.training.train_sensor import input_range

    assert input_range(np.array([0.0, 1.0, 3.0, 1.0]), "categorical") == {"levels": [0.0, 1.0, 3.0]}
    assert input_range(np.array([0.0, 0.0, 0.2]), "near-constant") == [0.0, 0.2]
    spec = tiny_sensor_spec()
    spec = replace(spec, training={**spec.training, "inputs_only": {"c": "categorical"},
                                   "input_ranges": {"c": {"levels": [0.0, 1.0, 3.0]}}})
    detector = vigil.load(write_artifact(tiny_sensor_graph(), spec, tmp_path / "levels.onnx"))
    stream = vigil.StreamingScorer(detector)
    rows = [[0.1, 0.1, level] for level in (0, 1, 3, 1, 0, 2, 0, 1)]  # 2 was never seen
    results = [r for row in rows for r in stream.push(np.array(row, float))]
    assert [r.index for r in results if r.unseen_inputs] == [5, 6, 7]  # windows of 4 holding it
    assert results[2].to_json()["unseen_inputs"] == [
        {"feature": "c", "value": 2.0, "trained": [0.0, 3.0], "levels": [0.0, 1.0, 3.0]}]
    # the attribute keeps its 0.3 shape, (feature, reading, low, high); the levels lie beside it
    assert results[2].unseen_inputs == (("c", 2.0, 0.0, 3.0),)
    assert results[2].unseen_levels == ((0.0, 1.0, 3.0),)
    assert stream.summary()["rows_unseen_inputs"] == 1
    from vigil.runtime.sensor.scoring import ScoreSummary

    assert ScoreSummary().to_json()["rows_unseen_inputs"] is None  # nothing checked
    # a model with no input-only column counts 0 (checked, none); only an artifact from before
    # the record says nothing
    for training, expected in (({**spec.training, "inputs_only": {}, "input_ranges": {}}, 0),
                               ({k: v for k, v in spec.training.items()
                                 if k not in ("inputs_only", "input_ranges")}, None)):
        path = write_artifact(tiny_sensor_graph(), replace(spec, training=training),
                              tmp_path / f"none{expected}.onnx")
        stream = vigil.StreamingScorer(vigil.load(path))
        for row in rows:
            stream.push(np.array(row, float))
        assert stream.summary().get("rows_unseen_inputs") == expected


def test_every_input_only_column_is_checked_against_its_own_values(tmp_path):
    """Two categorical columns and a ranged one: each row is flagged exactly when one of them
    holds a value its own training record lacks (another column's level does not count)."""
    from dataclasses import replace

    from sensor_fixtures import tiny_sensor_graph, tiny_sensor_spec
    from vigil.export.package import write_artifact

    spec = tiny_sensor_spec()
    a, b, c = spec.features
    spec = replace(spec, training={**spec.training,
                                   "input_ranges": {a: {"levels": [0.0, 5.0]}, b: [1.0, 2.0],
                                                    c: {"levels": [7.0, 3.0, 4.0]}}})
    detector = vigil.load(write_artifact(tiny_sensor_graph(), spec, tmp_path / "three.onnx"))
    stream = vigil.StreamingScorer(detector)
    rows = [(0, 1, 3), (5, 2, 7), (5, 1.5, 4),  # all seen
            (3, 1, 3),     # a takes c's level
            (0, 2.5, 4),   # b above its range
            (0, 1, 5),     # c takes a's level
            (0, 1, 4.0000001)]  # within c's slack
    flagged = []
    for index, row in enumerate(rows):
        before = stream.rows_unseen_inputs
        stream.push(np.array(row, dtype=np.float64), index=index)
        flagged.append(stream.rows_unseen_inputs > before)
    assert flagged == [False, False, False, True, True, True, False]


def test_push_rows_reads_named_rows_and_times_as_push_does(tiny):
    """push_rows read a pandas Series by position (1,239 alarms against the CLI's 280 in a
    review's run), skipped dict rows and failed on a pandas Timestamp, where push did not."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(30, 3)), columns=["a", "b", "c"])
    frame.iloc[20, 1] = 40.0
    times = pd.date_range("2024-05-01", periods=30, freq="s")
    one = vigil.StreamingScorer(tiny)
    expected = [r.to_json() for i, (_, row) in enumerate(frame.iterrows())
                for r in one.push(row, i, time=times[i])]
    for rows in ((row[["c", "b", "a"]] for _, row in frame.iterrows()),
                 (dict(zip(["b", "c", "a"], row[["b", "c", "a"]])) for _, row in frame.iterrows())):
        stream = vigil.StreamingScorer(tiny)
        got = [r.to_json() for r in stream.push_rows(
            (row, i, times[i], None) for i, row in enumerate(rows))]
        assert got == expected
    with pytest.raises(TypeError, match="a row's `index` must be a whole number"):
        vigil.StreamingScorer(tiny).push_rows([(frame.iloc[0], "0", None, None)])
    # plain readings (a 2-D array's rows): the expected tuple is named, not an unpacking error
    with pytest.raises(TypeError, match=r"`rows\[0\]` must be a tuple \(values, index, time, "
                                        r"problem\).*enumerate\(rows\)"):
        vigil.StreamingScorer(tiny).push_rows(frame.to_numpy()[:5])
    # a row as a list (back from JSON or a queue) is read as its tuple is
    listed = [[list(row), i, None, None] for i, row in enumerate(frame.to_numpy())]
    assert ([r.to_json() for r in vigil.StreamingScorer(tiny).push_rows(listed)]
            == [r.to_json() for r in vigil.StreamingScorer(tiny).push_rows(
                (row, i, None, None) for i, row in enumerate(frame.to_numpy()))])
    with pytest.raises(TypeError, match=r"`rows\[0\]` must be a tuple"):  # four readings
        vigil.StreamingScorer(tiny).push_rows([[1.0, 2.0, 3.0, 4.0]])
    # the tuple with one reading as its values: the values' form is named, not the tuple's
    with pytest.raises(TypeError, match=r"values must be a sequence of the row's 3 reading\(s\).*"
                                        r"e\.g\. \[0\.5, 0\.5, 0\.5\]"):
        vigil.StreamingScorer(tiny).push_rows([(0.5, 0, None, None)])


def test_named_rows_of_itertuples_and_records_are_read_by_their_names(tiny):
    """pandas' itertuples rows (namedtuples) and a structured array's records carry their
    columns' names, and were read by position: columns in another order scored as other
    readings (review u2: every window alarmed), and a pushed record was skipped as no numbers."""
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(3)
    features = list(tiny.features)
    frame = pd.DataFrame(rng.normal(size=(12, 3)), columns=features)
    shuffled = frame[features[::-1]]
    stream = vigil.StreamingScorer(tiny)
    expected = [r.score for row in frame.to_numpy() for r in stream.push(row)]
    for rows in (shuffled.itertuples(index=False), shuffled.itertuples(),  # with its Index
                 shuffled.to_records(index=False)):
        stream = vigil.StreamingScorer(tiny)
        got = [r.score for row in rows for r in stream.push(row)]
        assert stream.rows_skipped == 0
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    window = list(shuffled.iloc[:4].itertuples(index=False))
    np.testing.assert_allclose(tiny.score(window), tiny.score(frame.iloc[:4].to_numpy()),
                               rtol=1e-6)
    np.testing.assert_allclose(tiny.score([window, window]),
                               np.repeat(tiny.score(frame.iloc[:4].to_numpy()), 2), rtol=1e-6)
    # unnamed columns come as _0, _1, ... (with the Index first, _1, _2, ...): by position, as
    # a plain array
    unnamed = pd.DataFrame(frame.to_numpy())
    for rows in (unnamed.itertuples(index=False), unnamed.itertuples()):
        stream = vigil.StreamingScorer(tiny)
        got = [r.score for row in rows for r in stream.push(row)]
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_itertuples_rows_whose_names_pandas_renamed_are_matched_or_refused(tmp_path, caplog):
    """pandas renames a column whose name is no Python identifier (SKAB's `Volume Flow
    RateRMS`) to _N: such rows were skipped; the other names are read by name, and the renamed
    column stands for the one feature the row lacks, whatever the order (review d2: read by
    position, a reordered frame fed `temp` as the flow); what cannot be told apart is refused."""
    from dataclasses import replace

    from sensor_fixtures import tiny_sensor_graph, tiny_sensor_spec
    from vigil.export.package import write_artifact

    pd = pytest.importorskip("pandas")
    spec = replace(tiny_sensor_spec(), features=("Volume Flow RateRMS", "temp", "level"))
    model = vigil.load(write_artifact(tiny_sensor_graph(), spec, tmp_path / "skab.onnx"))
    values = np.arange(30, dtype=float).reshape(10, 3)
    frame = pd.DataFrame(values, columns=spec.features)
    shuffled = frame[["temp", "Volume Flow RateRMS", "level"]].assign(anomaly=0.0)
    with caplog.at_level("WARNING", logger="vigil"):
        for rows in (shuffled.itertuples(index=False), shuffled.itertuples()):
            rows = list(rows)
            assert [model.row_by_name(row) for row in rows] == values.tolist()
            np.testing.assert_array_equal(model.score_signal(rows)[1],
                                          model.score_signal(frame)[1])
            stream = vigil.StreamingScorer(model)
            assert len([r for row in rows for r in stream.push(row) if not r.skipped]) == 7
    assert caplog.text.count("which renamed the column 'Volume Flow RateRMS' to _1") == 1
    # two renamed columns, or a repeated name standing for an identifier, cannot be told apart
    two = replace(spec, features=("Volume Flow RateRMS", "class", "level"))
    model = vigil.load(write_artifact(tiny_sensor_graph(), two, tmp_path / "two.onnx"))
    both = pd.DataFrame(values, columns=two.features)[["class", "Volume Flow RateRMS", "level"]]
    with pytest.raises(ValueError, match=r"columns \['_0', '_1'\] pandas renamed .*"
                                         r"score the DataFrame itself"):
        model.score_signal(list(both.itertuples(index=False)))
    (result, *_) = vigil.StreamingScorer(model).push(next(both.itertuples(index=False)))
    assert "cannot be told apart" in result.skipped
    repeated = pd.DataFrame(values, columns=["a", "a", "b"])  # no `c`: a repeated `a` is not it
    tiny = vigil.load(write_artifact(tiny_sensor_graph(), tiny_sensor_spec(), tmp_path / "t.onnx"))
    with pytest.raises(ValueError, match="cannot be told apart"):
        tiny.score(list(repeated.iloc[:4].itertuples(index=False)))


def test_a_named_row_without_a_feature_is_skipped_and_the_window_restarts(tiny):
    """A dict or Series row lacking one of the model's features raised: a service that caught
    it joined the rows around it into one window and numbered every later row one short
    (review u2), where a row of another width is skipped and restarts the window."""
    features = list(tiny.features)
    rows = [dict(zip(features, (float(i), 0.5, -0.5))) for i in range(12)]
    del rows[6][features[1]]
    stream = vigil.StreamingScorer(tiny)
    results = [r for row in rows for r in stream.push(row)]
    skipped = [r for r in results if r.skipped]
    assert [r.index for r in skipped] == [6] and f"without the model's ['{features[1]}']" in \
        skipped[0].skipped and skipped[0].skipped.endswith("window restarts")
    assert stream.rows_skipped == 1 and stream.rows_in == 12
    # the window restarts after it: the next result ends 4 rows later, numbered as pushed
    assert [r.index for r in results if not r.skipped] == [3, 4, 5, 10, 11]
    stream = vigil.StreamingScorer(tiny)  # push_rows takes the batch, skipping that row alone
    results = stream.push_rows((row, i, None, None) for i, row in enumerate(rows))
    assert [r.index for r in results if r.skipped] == [6] and stream.rows_in == 12


def test_booleans_are_no_readings_in_dataframes_and_pushed_rows(tiny):
    """An array of booleans was refused, but a DataFrame's boolean column and a pushed dict's
    True were read as 1.0 (review u2), where the CLI refuses a CSV's True as no number."""
    pd = pytest.importorskip("pandas")
    features = list(tiny.features)
    frame = pd.DataFrame(np.zeros((4, 3)), columns=features).assign(**{features[0]: True})
    with pytest.raises(TypeError, match=rf"column '{features[0]}' holds booleans.*astype\(float\)"):
        tiny.score(frame)
    mixed = frame.astype(object)
    mixed.loc[1, features[0]] = 0.5  # an object column with a boolean among numbers
    with pytest.raises(TypeError, match="holds booleans"):
        tiny.score(mixed)
    stream = vigil.StreamingScorer(tiny)
    for i in range(5):
        stream.push(dict(zip(features, (0.0, True if i == 4 else 0.0, 0.0))))
    assert stream.rows_filled == 1  # a cell that is no number, filled as a CSV's would be
    stream.push([0.0, np.bool_(True), 0.0])
    assert stream.rows_filled == 2


def test_locate_names_a_score_that_is_no_number(tmp_path):
    from image_fixtures import defect_frame, write_tiny_image_artifact

    camera = vigil.load(write_tiny_image_artifact(tmp_path / "camera.onnx"))
    frame = defect_frame(np.random.default_rng(0))
    scores, maps = camera.infer(frame)
    for bad in (np.array([1.0, 2.0]), "high", True):
        with pytest.raises(TypeError, match=r"^`score` must be this frame's score, one number"):
            camera.locate(frame, maps[0], bad)
    assert camera.locate(frame, maps[0], scores)[1] == camera.locate(frame)[1]


def test_an_onnxruntime_provider_name_is_taken_as_providers(tiny):
    assert vigil.load(tiny.path, providers="CPUExecutionProvider").providers == [
        "CPUExecutionProvider"]
    with pytest.raises(ValueError, match=r"received 'GPU'$"):  # named as given
        vigil.load(tiny.path, providers="GPU")


def test_the_top_level_names_are_the_lazy_ones_and_all_of_them():
    assert set(vigil.__all__) == {"__version__", *vigil._RUNTIME_NAMES}
    for name in vigil._RUNTIME_NAMES:
        assert getattr(vigil, name) is getattr(vigil.runtime, name)


def test_a_series_or_object_array_of_frames_is_named_as_a_container(tmp_path):
    """A pandas Series (or object array) of frames was refused as a frame "of dtype object",
    which reads as a wrong pixel type (review u2)."""
    pd = pytest.importorskip("pandas")
    from image_fixtures import defect_frame, write_tiny_image_artifact

    camera = vigil.load(write_tiny_image_artifact(tmp_path / "camera.onnx"))
    frame = defect_frame(np.random.default_rng(0))
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = frame, frame[:-2]
    for frames in (pd.Series([frame, frame]), ragged):
        with pytest.raises(TypeError, match=r"holds frames .*list\(frames\)"):
            camera.score(frames)
    assert len(camera.score(list(pd.Series([frame, frame])))) == 2


def test_a_frame_unlike_the_training_ones_is_told_for_each_frame(tmp_path):
    """`vigil score` marks each frame's line `unlike_training`; Python said each kind once per
    detector, so a service could not tell which frames were unlike (review u2)."""
    from image_fixtures import write_tiny_image_artifact

    camera = vigil.load(write_tiny_image_artifact(tmp_path / "camera.onnx"))
    assert camera.spec.color == "gray"
    like = np.full((camera.spec.height, camera.spec.width), 120, np.uint8)
    assert camera.unlike_training(like) == {}
    colour = np.dstack([like, like // 2, like // 3])  # colour frames before a gray model
    for _ in range(2):  # every call looks, not only the first
        found = camera.unlike_training(colour)
        assert list(found) == ["colour"] and "colour" in found["colour"]
    camera.score(colour)  # said once by score ...
    assert list(camera.unlike_training(colour)) == ["colour"]  # ... and told here still
