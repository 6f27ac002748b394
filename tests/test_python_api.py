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


def test_image_detector_repr_and_help_list_it(tiny_image_artifact):
    import vigil.runtime as runtime

    detector = vigil.load(tiny_image_artifact)
    assert repr(detector).startswith("ImageDetector(") and "32x32x1" in repr(detector)
    frame = np.zeros((32, 32), np.uint8)
    np.testing.assert_array_equal(detector.decision_function(frame), detector.score(frame))
    assert "ImageDetector" in dir(runtime)


def test_the_readme_python_snippet_runs(tmp_path, monkeypatch, capsys):
    """The README's Python block, run as written against a small artifact named as it names it."""
    import re
    from pathlib import Path

    from sensor_fixtures import write_tiny_sensor_artifact

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "the README has a Python snippet"
    monkeypatch.chdir(tmp_path)
    write_tiny_sensor_artifact(tmp_path / "model.onnx")
    rows = np.zeros((8, 3))
    rows[-4:] = 5.0  # the last window is all fives: above the snippet's threshold of 3.5
    for block in blocks:
        exec(compile(block, "README.md", "exec"),  # noqa: S102 (our own README)
             {"windows": np.zeros((2, 4, 3)), "rows": rows})
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1].split()[0] == "7" and printed[-1].split()[-1] == "True"


def test_device_preference_lists_take_the_first_available_and_fall_back_to_cpu(caplog):
    import onnxruntime as ort

    from vigil.runtime.core.providers import providers_for_device

    assert providers_for_device("cpu") == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert providers_for_device("cuda,cpu") == ["CPUExecutionProvider"]
        with caplog.at_level("WARNING", logger="vigil"):
            assert providers_for_device("tensorrt,cuda") == ["CPUExecutionProvider"]
        assert "none of the devices ['tensorrt', 'cuda'] is available" in caplog.text
    with pytest.raises(ValueError, match="preference list"):
        providers_for_device("cuda,tpu")


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
