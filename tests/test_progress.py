"""Progress of training, evaluation, export and bench: a redrawing bar only on a terminal; plain
lines with an estimate of the time left in a file."""

from __future__ import annotations

import io

import pytest

from vigil.cli import commands as cli
from vigil.cli.progress import ConsoleProgress
from vigil.training.progress import StepProgress, keras_verbose


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_keras_verbose_by_where_output_goes():
    assert keras_verbose(quiet=True, stream=FakeTerminal()) == 0
    assert keras_verbose(quiet=False, stream=FakeTerminal()) == 1
    assert keras_verbose(quiet=False, stream=io.StringIO()) == 2  # a file or a pipe


def test_step_progress_in_a_file_is_ten_plain_lines_with_an_estimate():
    out = io.StringIO()
    progress = StepProgress(95, verbose=1, stream=out)
    for step in range(1, 96):
        progress.update(step, loss=1.0 / step)
    lines = out.getvalue().splitlines()
    assert len(lines) == 11  # every 9 steps, and the last
    assert lines[0].startswith("step 9/95  loss 0.1111  elapsed 0:00  left ~")
    assert lines[-1].startswith("step 95/95  loss 0.0105") and lines[-1].endswith("left ~0:00")
    assert "\b" not in out.getvalue() and "\x1b" not in out.getvalue() and "\r" not in out.getvalue()


def test_feature_extraction_says_its_progress_by_chunks_of_images(monkeypatch):
    import numpy as np

    from vigil.training import feature_model

    class Extractor:  # features of each image alone, as the backbone's are
        def predict(self, images, batch_size, verbose):
            return images.astype(np.float32)[:, :2, :2, :1] * 2

    monkeypatch.setattr(feature_model, "FEATURE_CHUNK", 4)
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    images = np.arange(10 * 4 * 4 * 1, dtype=np.uint8).reshape(10, 4, 4, 1)
    features = feature_model.extract_features(Extractor(), images, verbose=2)
    np.testing.assert_array_equal(features, Extractor().predict(images, 8, 0))
    lines = out.getvalue().splitlines()
    assert [line.split("  ")[0] for line in lines] == [
        "features of 10 images 1/3", "features of 10 images 2/3", "features of 10 images 3/3"]
    assert all("elapsed" in line and "left ~" in line for line in lines)


def test_quiet_progress_prints_nothing():
    out = io.StringIO()
    progress = StepProgress(10, verbose=0, stream=out)
    for step in range(1, 11):
        progress.update(step, 0.5)
    assert out.getvalue() == ""


def test_console_progress_in_a_file_is_plain_lines_with_an_estimate():
    out = io.StringIO()
    with ConsoleProgress(stream=out, every=0.0) as progress:
        for done in range(0, 5):
            progress("scoring files", done, 4)
        progress("export: Keras to ONNX", 0, 1)
        progress("export: Keras to ONNX", 1, 1)
    lines = out.getvalue().splitlines()
    assert lines[0] == "vigil: scoring files: 0/4, 0:00 elapsed"
    assert lines[1].startswith("vigil: scoring files: 1/4, 0:00 elapsed, ~0:00 left")
    assert lines[4] == "vigil: scoring files: 4/4, done in 0:00"
    assert lines[-1] == "vigil: export: Keras to ONNX: done in 0:00"
    text = out.getvalue()
    assert "\b" not in text and "\x1b" not in text and "\r" not in text


def test_console_progress_lines_are_rate_limited_but_the_end_is_always_said():
    out = io.StringIO()
    progress = ConsoleProgress(stream=out, every=3600.0)
    for done in range(0, 101):
        progress("scoring images", done, 100)
    assert out.getvalue().splitlines() == ["vigil: scoring images: 100/100, done in 0:00"]


def test_stages_that_take_turns_keep_their_own_clock_and_say_their_end_once():
    """A batch's items and one long item's rows take turns: each keeps its own start and
    estimate, and an end already said is not said again."""
    out = io.StringIO()
    progress = ConsoleProgress(stream=out, every=3600.0)
    progress("batch: items scored", 0, 3)
    progress("scoring big.csv, MB read", 0, 40)
    progress("scoring big.csv, MB read", 40, 40)
    progress("scoring big.csv, MB read", 40, 40)
    progress("batch: items scored", 1, 3)
    progress("batch: items scored", 3, 3)
    assert out.getvalue().splitlines() == ["vigil: scoring big.csv, MB read: 40/40, done in 0:00",
                                           "vigil: batch: items scored: 3/3, done in 0:00"]


def test_console_progress_on_a_terminal_draws_a_live_bar():
    pytest.importorskip("rich")
    out = FakeTerminal()
    with ConsoleProgress(stream=out) as progress:
        progress("bench: timing cells", 2, 4)
        progress("bench: timing cells", 4, 4)
    assert "bench: timing cells" in out.getvalue() and "4/4" in out.getvalue()


def test_eval_reports_progress_on_stderr_unless_quiet(sensor_artifacts, capsys):
    arguments = ["eval", str(sensor_artifacts.fp32), str(sensor_artifacts.test_csv)]
    assert cli.main(arguments) == 0
    err = capsys.readouterr().err
    assert "vigil: scoring files: 1/1, done in" not in err  # one file: a single step
    assert "vigil: scoring files" in err and "vigil: best-F1 threshold search" in err
    assert cli.main(arguments + ["--quiet"]) == 0
    assert "vigil: scoring" not in capsys.readouterr().err


def test_the_time_left_leaves_out_the_first_step_that_compiles_the_graph(monkeypatch):
    """A review's U-Net said 0:51 left at step 6 of 60 where 0:16 were: its first step, which
    compiles the graph, was spread over every step."""
    from vigil.training import progress as progress_module

    now = [0.0]
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: now[0])
    out = io.StringIO()
    progress = StepProgress(60, verbose=2, stream=out)
    for step in range(1, 61):
        now[0] += 30.0 if step == 1 else 0.3  # a 30 s compile, then 0.3 s a step
        progress.update(step, loss=0.5)
    first = out.getvalue().splitlines()[0]
    assert first.startswith("step 6/60") and "elapsed 0:32" in first and first.endswith("~0:16")
