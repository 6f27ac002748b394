"""NAB's score from its published definition, checked on cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vigil.runtime.sensor.nab_score import (PROFILES, corpus_score, onsets, probation_rows,
                                            scaled_sigmoid, score_file, window_rows)

STANDARD, LOW_FP, LOW_FN = PROFILES["standard"], PROFILES["low_fp"], PROFILES["low_fn"]
WINDOW = [(10, 19)]  # ten rows
MAX_TP = 2 / (1 + math.exp(-5)) - 1  # sigma(-1) = 0.986614...


def detections(rows: int, *at: int) -> np.ndarray:
    flags = np.zeros(rows, dtype=bool)
    flags[list(at)] = True
    return flags


def test_the_sigmoid_by_hand():
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(-1.0) == pytest.approx(0.986614, abs=1e-6)
    assert scaled_sigmoid(1.0) == pytest.approx(-0.986614, abs=1e-6)
    assert scaled_sigmoid(3.0) == pytest.approx(2 / (1 + math.exp(15)) - 1)
    assert scaled_sigmoid(3.01) == -1.0


def test_a_detection_at_the_left_edge_earns_the_full_reward():
    part = score_file(detections(40, 10), WINDOW, 0, STANDARD)
    assert part.raw == pytest.approx(1.0) and part.hit == 1 and part.false_positives == 0


def test_a_late_detection_earns_less_and_only_the_first_counts():
    # At the window's last row: y = -(19 - 19 + 1) / 10 = -0.1; sigma = 2/(1+e^-0.5) - 1.
    expected = (2 / (1 + math.exp(-0.5)) - 1) / MAX_TP  # 0.244919 / 0.986614 = 0.248242
    assert score_file(detections(40, 19), WINDOW, 0, STANDARD).raw == pytest.approx(expected)
    assert expected == pytest.approx(0.248242, abs=1e-6)
    # A second detection in the same window adds nothing; the earlier one decides.
    assert score_file(detections(40, 15, 19), WINDOW, 0, STANDARD).raw == \
        pytest.approx(scaled_sigmoid(-0.5) / MAX_TP)


def test_false_positives_by_hand():
    # Before any window: -A_fp.
    assert score_file(detections(40, 3, 12), WINDOW, 0, STANDARD).raw == pytest.approx(
        scaled_sigmoid(-0.8) / MAX_TP - 0.11)
    # Just after the window: y = |19 - 20| / (10 - 1) = 0.111; sigma = 2/(1+e^0.5556) - 1.
    just_after = 0.11 * (2 / (1 + math.exp(5 / 9)) - 1)  # 0.11 * -0.270847 = -0.029793
    assert just_after == pytest.approx(-0.029793, abs=1e-6)
    assert score_file(detections(80, 10, 20), WINDOW, 0, STANDARD).raw == pytest.approx(1 + just_after)
    # Far after (y > 3): the full -A_fp, doubled by the low-FP profile.
    assert score_file(detections(80, 10, 60), WINDOW, 0, STANDARD).raw == pytest.approx(1 - 0.11)
    assert score_file(detections(80, 10, 60), WINDOW, 0, LOW_FP).raw == pytest.approx(1 - 0.22)


def test_misses_cost_A_fn_and_probation_is_ignored():
    assert score_file(detections(40), WINDOW, 0, STANDARD).raw == -1.0
    assert score_file(detections(40), WINDOW, 0, LOW_FN).raw == -2.0
    # A detection inside the probationary period is neither a hit nor a false positive.
    assert score_file(detections(40, 2), WINDOW, 5, STANDARD).raw == -1.0
    assert probation_rows(4032) == 604 and probation_rows(22695) == 750


def test_corpus_normalization_null_zero_perfect_hundred():
    labels = np.zeros(100, dtype=bool)
    labels[40:50] = True
    labels[70:80] = True
    assert window_rows(labels) == [(40, 49), (70, 79)]
    null = corpus_score([(np.zeros(100, bool), labels)], STANDARD)
    perfect = corpus_score([(detections(100, 40, 70), labels)], STANDARD)
    assert null["score"] == pytest.approx(0.0) and perfect["score"] == pytest.approx(100.0)
    # One window hit at its left edge, one missed: raw 1 - 1 = 0, so (0 + 2) / (2 + 2) = 50.
    half = corpus_score([(detections(100, 40), labels)], STANDARD)
    assert half["score"] == pytest.approx(50.0) and half["windows_hit"] == 1


def test_a_window_wholly_in_the_probationary_period_is_no_miss_as_nab_scores_it():
    """1,000 rows (probation 150), windows at rows 50-99 and 500-549, the second hit at its left
    edge: NAB's sweeper passes over the first window (its null score too) and its perfect score
    counts both, (1 + 1) / (2 + 1) = 66.7 standard, (1 + 2) / (2 + 2) = 75 low-FN (hand-computed
    with NAB's own code by a review; 50.0 before)."""
    labels = np.zeros(1000, dtype=bool)
    labels[50:100] = True
    labels[500:550] = True
    hit = [(detections(1000, 500), labels)]
    assert corpus_score(hit, STANDARD)["score"] == pytest.approx(200 / 3)
    assert corpus_score(hit, LOW_FN)["score"] == pytest.approx(75.0)
    assert corpus_score([(np.zeros(1000, bool), labels)], STANDARD)["score"] == pytest.approx(0.0)


def test_onsets_are_the_first_row_of_each_alarm_run():
    alarms = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 1], dtype=bool)
    assert np.flatnonzero(onsets(alarms)).tolist() == [1, 4, 7]


def test_the_benchmark_scores_a_flat_probationary_period_as_silence(tmp_path):
    """NAB's art_flatline is constant throughout; ``vigil train`` refuses constant data, so the
    benchmark gives that file no detector and no detection instead of stopping."""
    pytest.importorskip("tensorflow")
    import json

    from vigil.benchmarks.quality_nab import nab_protocol
    from vigil.training.sensor_data import DataOptions
    from vigil.training.sensor_model import ModelOptions
    from vigil.training.train_sensor import SensorTrainingOptions

    times = [f"2014-01-01 {h:02d}:{m:02d}:00" for h in range(24) for m in range(0, 60, 2)][:700]
    for category, name, value in (("artificialNoAnomaly", "flat.csv", lambda i: 45.0),
                                  ("realThings", "wave.csv",
                                   lambda i: 9.0 if 500 <= i < 505 else math.sin(i / 5.0))):
        folder = tmp_path / "data" / category
        folder.mkdir(parents=True)
        (folder / name).write_text("timestamp,value\n" + "".join(
            f"{t},{value(i)}\n" for i, t in enumerate(times)))
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "combined_windows.json").write_text(json.dumps({
        "artificialNoAnomaly/flat.csv": [],
        "realThings/wave.csv": [[f"{times[490]}.000000", f"{times[520]}.000000"]]}))
    options = SensorTrainingOptions(data=DataOptions(window=16),
                                    model=ModelOptions(units=8, epochs=2, members=1))
    result = nab_protocol(tmp_path, options, tmp_path / "scratch", log=lambda _: None)
    assert result["files_not_trained"] == ["artificialNoAnomaly/flat.csv"]
    flat = next(f for f in result["files"] if f["file"] == "artificialNoAnomaly/flat.csv")
    assert flat["false_detections"] == 0 and flat["windows"] == 0
    assert result["windows"] == 1 and len(result["streams"]) == 1
    assert math.isfinite(result["nab_score_standard"])
