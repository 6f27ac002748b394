"""The training rows' time step, recorded in the artifact so that the runtime can flag windows
across a gap in the record (tests/test_faults.py checks the flags)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from vigil.runtime.sensor.tables import Table
from vigil.training.sensor_data import GAP_FACTOR, GAP_SLACK, time_step


def table(times: list[str] | None) -> Table:
    rows = len(times) if times is not None else 50
    return Table("f.csv", ("a",), np.zeros((rows, 1)), tuple(times) if times else None, None,
                 "timestamp" if times else None, None)


def iso(seconds: list[float]) -> list[str]:
    start = datetime(2024, 5, 1)
    return [(start + timedelta(seconds=s)).isoformat() for s in seconds]


def test_a_regular_record_gets_its_step_and_max_gap_plus_slack_steps_as_the_limit():
    seconds = list(range(200))
    step = time_step([table(iso(seconds))], [200], max_gap=3)
    assert step == {"numeric": False, "typical": 1.0, "limit": (3 + GAP_SLACK) * 1.0}


def test_only_the_training_part_is_measured():
    seconds = list(range(100)) + [100 + 3600 + s for s in range(100)]  # a gap after training
    assert time_step([table(iso(seconds))], [100], max_gap=3)["limit"] == pytest.approx(4.5)


def test_a_logger_that_skips_often_in_training_has_its_skips_as_normal():
    seconds = np.cumsum([60 if k % 20 == 19 else 1 for k in range(400)]).tolist()
    step = time_step([table(iso(seconds))], [400], max_gap=3)
    assert step["typical"] == 1.0 and step["limit"] == pytest.approx(GAP_FACTOR * 60.0)


def test_numbers_repeats_and_steps_back_in_time():
    numbers = [str(k * 0.5) for k in range(100)]  # sample times in the column's own unit
    assert time_step([table(numbers)], [100], max_gap=0) == {
        "numeric": True, "typical": 0.5, "limit": GAP_SLACK * 0.5}
    # several rows a second and one row back in time: neither is a step
    seconds = [k // 4 for k in range(200)] + [10]
    assert time_step([table(iso(seconds))], [201], max_gap=3)["typical"] == 1.0


def test_no_readable_times_means_no_step():
    assert time_step([table(None)], [50], max_gap=3) is None
    assert time_step([table(["n/a"] * 50)], [50], max_gap=3) is None
    assert time_step([table(iso([0] * 50))], [50], max_gap=3) is None  # one time for every row


def test_a_clock_that_never_advances_is_said(caplog):
    """Every row at one time (a logger's stuck clock): no time step is recorded, so scoring
    checks no gap or order; said in training, where it was silent (a review)."""
    caplog.set_level("WARNING", logger="vigil")
    assert time_step([table(["2024-05-01 10:00:00"] * 50)], [50], max_gap=3) is None
    assert "the training rows' times do not advance (49 neighbouring rows" in caplog.text
    caplog.clear()
    assert time_step([table(None)], [50], max_gap=3) is None  # no times at all: nothing to say
    assert "do not advance" not in caplog.text
