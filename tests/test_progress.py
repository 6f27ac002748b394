"""Training progress: a redrawing bar only on a terminal; plain lines with an ETA in a file."""

from __future__ import annotations

import io

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


def test_quiet_progress_prints_nothing():
    out = io.StringIO()
    progress = StepProgress(10, verbose=0, stream=out)
    for step in range(1, 11):
        progress.update(step, 0.5)
    assert out.getvalue() == ""
