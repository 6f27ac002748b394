"""StreamingScorer: rows in one by one, a result as soon as each window completes, nothing lost."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from vigil import runtime
from vigil.runtime import StreamingScorer
from vigil.runtime.core.artifact import open_artifact
from vigil.runtime.sensor.detector import SensorDetector
from vigil.runtime.sensor.tables import iter_rows, read_table

INT8_MAX_REL_DIFF = 0.15  # a window scored in a batch vs alone (dynamic quantization ranges)


@pytest.fixture(scope="module")
def fp32(sensor_artifacts):
    return runtime.load(sensor_artifacts.fp32)


@pytest.fixture(scope="module")
def int8(sensor_artifacts):
    return runtime.load(sensor_artifacts.int8)


@pytest.fixture(scope="module")
def rows(sensor_artifacts, fp32) -> np.ndarray:
    """The first 200 rows of the labeled test stream, as float32 (rows, features)."""
    table = read_table(sensor_artifacts.test_csv, features=fp32.features)
    return table.values[:200].astype(np.float32)


def push_each(scorer, values, first=0):
    """Push rows one at a time, numbered from ``first``; all results, in order."""
    results = []
    for k, row in enumerate(values):
        results += scorer.push(row, first + k, time=f"t{first + k}")
    return results


def scored(results):
    return [r for r in results if r.skipped is None]


def skipped(results):
    return [r for r in results if r.skipped is not None]


def test_first_result_exactly_when_window_rows_have_arrived(fp32, rows):
    window = fp32.spec.window
    scorer = StreamingScorer(fp32)
    for i in range(window - 1):
        assert scorer.push(rows[i], i) == []
    (result,) = scorer.push(rows[window - 1], window - 1, time="last")
    assert result.index == window - 1
    assert result.time == "last"
    assert result.skipped is None and not result.filled
    (result,) = scorer.push(rows[window], window)
    assert result.index == window


def test_results_equal_detector_scores_at_batch_1_fp32(fp32, rows):
    window = fp32.spec.window
    results = push_each(StreamingScorer(fp32), rows[:60])
    assert [r.index for r in results] == list(range(window - 1, 60))
    for r in results:
        expected = fp32.score(rows[r.index - window + 1:r.index + 1])[0]
        assert r.score == expected  # same input, same batch size, same session: exact
        assert r.above_threshold == (expected > fp32.threshold)


def test_results_in_batches_match_scores_alone_int8(int8, rows):
    window = int8.spec.window
    scorer = StreamingScorer(int8)
    results = scorer.push_rows((row, i, None, None) for i, row in enumerate(rows[:80]))
    assert [r.index for r in results] == list(range(window - 1, 80))
    alone = np.array([int8.score(rows[r.index - window + 1:r.index + 1])[0] for r in results])
    streamed = np.array([r.score for r in results])
    np.testing.assert_allclose(streamed, alone, rtol=INT8_MAX_REL_DIFF)


def test_pushing_in_chunks_equals_pushing_one_by_one_fp32(fp32, rows):
    one_by_one = push_each(StreamingScorer(fp32), rows[:70])
    scorer, chunked = StreamingScorer(fp32), []
    for start in range(0, 70, 9):
        chunked += scorer.push_rows((rows[i], i, f"t{i}", None)
                                    for i in range(start, min(70, start + 9)))
    assert [r.index for r in chunked] == [r.index for r in one_by_one]
    np.testing.assert_allclose([r.score for r in chunked], [r.score for r in one_by_one],
                               rtol=1e-5, atol=1e-5)


def test_long_windows_are_scored_a_session_run_at_a_time(fp32, rows, monkeypatch):
    """A chunk's completed windows were stacked and scored together whatever their size: a
    review's window of 100,000 rows held 1,024 of them twice, 6.5 GB (118 MB after, one run);
    each session run of the detector holds at most MAX_BATCH_VALUES readings too (r3)."""
    from vigil.runtime.sensor import detector as detector_module, streaming

    expected = push_each(StreamingScorer(fp32), rows[:70])
    per_window = fp32.spec.window * len(fp32.features)
    monkeypatch.setattr(streaming, "MAX_BATCH_VALUES", 3 * per_window)
    batches: list[int] = []
    real = fp32.score_with_features
    monkeypatch.setattr(fp32, "score_with_features",
                        lambda windows: batches.append(len(windows)) or real(windows))
    results = StreamingScorer(fp32).push_rows((rows[i], i, f"t{i}", None) for i in range(70))
    assert batches and max(batches) == 3
    assert [r.index for r in results] == [r.index for r in expected]
    np.testing.assert_allclose([r.score for r in results], [r.score for r in expected],
                               rtol=1e-5, atol=1e-5)  # float rounding of another batch size
    monkeypatch.setattr(detector_module, "MAX_BATCH_VALUES", 5 * per_window)
    assert runtime.load(fp32.path).max_batch == 5


def test_results_explain_by_feature(fp32, rows):
    scorer = StreamingScorer(fp32, top_k=2)
    results = push_each(scorer, rows[:20])
    _, errors = fp32.score_with_features(rows[4:20])
    top = results[-1].top_features
    assert len(top) == 2
    assert top[0][0] == fp32.features[int(np.argmax(errors[0]))]
    assert top[0][1] >= top[1][1]


def test_nan_row_within_max_gap_is_filled_from_the_last_good_row(fp32, rows):
    window, max_gap = fp32.spec.window, fp32.spec.max_gap
    assert max_gap >= 1
    bad = rows[:30].copy()
    bad[20, 2] = np.nan
    scorer = StreamingScorer(fp32)
    results = push_each(scorer, bad)
    assert skipped(results) == []
    result = next(r for r in results if r.index == 20)
    assert result.filled
    assert result.to_json()["filled"] is True
    repaired = bad[20 - window + 1:21].copy()
    repaired[-1, 2] = bad[19, 2]
    assert result.score == fp32.score(repaired)[0]
    assert not any(r.filled for r in results if r.index != 20)
    assert scorer.summary()["rows_filled"] == 1
    # every window holding the filled row says so (a repeated row may look anomalous in itself)
    holding = [r.index for r in results if r.to_json().get("filled_in_window") == 1]
    assert holding == [i for i in range(window - 1, 30) if i - window < 20 <= i]
    assert all("filled_in_window" not in r.to_json() for r in results if r.index not in holding)


def test_gap_of_exactly_max_gap_rows_is_filled_without_restart(fp32, rows):
    window, max_gap = fp32.spec.window, fp32.spec.max_gap
    bad = rows[:40].copy()
    bad[20:20 + max_gap] = np.nan
    scorer = StreamingScorer(fp32)
    results = push_each(scorer, bad)
    assert skipped(results) == []
    assert [r.index for r in results] == list(range(window - 1, 40))
    assert [r.index for r in results if r.filled] == list(range(20, 20 + max_gap))
    assert scorer.summary()["rows_filled"] == max_gap


def test_longer_gap_restarts_the_window_and_reports_each_skipped_row(fp32, rows):
    window, max_gap = fp32.spec.window, fp32.spec.max_gap
    gap = max_gap + 3
    bad = rows[:80].copy()
    bad[30:30 + gap, 1] = np.nan
    scorer = StreamingScorer(fp32)
    results = push_each(scorer, bad)
    # The first max_gap rows of the gap are filled (the scorer cannot know the gap goes on) ...
    assert [r.index for r in results if r.filled] == list(range(30, 30 + max_gap))
    # ... every later row of the gap is reported as skipped, with the reason ...
    lost = skipped(results)
    assert [r.index for r in lost] == list(range(30 + max_gap, 30 + gap))
    for r in lost:
        assert fp32.features[1] in r.skipped
        assert "window restarts" in r.skipped
        assert r.score is None and not r.anomaly
        assert r.to_json() == {"index": r.index, "timestamp": f"t{r.index}", "score": None,
                               "anomaly": None, "skipped": r.skipped}
    # ... and the next result needs a full window of new rows.
    after = [r.index for r in scored(results) if r.index >= 30 + gap]
    assert after[0] == 30 + gap + window - 1
    assert after == list(range(30 + gap + window - 1, 80))
    restarted = next(r for r in results if r.index == after[0])
    assert restarted.score == fp32.score(bad[30 + gap:30 + gap + window])[0]


def test_bad_rows_before_any_good_row_are_skipped(fp32, rows):
    window = fp32.spec.window
    scorer = StreamingScorer(fp32)
    (result,) = scorer.push(np.full(len(fp32.features), np.nan), 0)
    assert "window restarts" in result.skipped
    assert push_each(scorer, rows[:window], first=1)[0].index == window


def test_row_with_wrong_field_count(fp32, rows):
    header = ["timestamp", *fp32.features]
    lines = [",".join(header)]
    lines += [",".join([f"t{i}", *map(str, row)]) for i, row in enumerate(rows[:25])]
    lines[1] = "t0,1.0,2.0"         # first data row: too few fields, nothing to fill from
    lines[21] = lines[21] + ",999"  # data row 20: one field too many
    parsed = [row for _, row in iter_rows(lines, dict(features=fp32.features), "stream") if row is not None]
    expected = f"row has 3 fields; the header has {len(header)}"
    assert parsed[0].problem == expected
    scorer = StreamingScorer(fp32)
    results = scorer.push_parsed(parsed, first_index=0)

    first = results[0]
    assert first.index == 0 and first.skipped.startswith(expected)
    extra = next(r for r in results if r.index == 20)
    assert extra.filled and extra.skipped is None
    summary = scorer.summary()
    # The default adaptive threshold reports what it has learned: every window, none warm yet.
    adaptive = summary.pop("adaptive_threshold")
    assert adaptive["learned"] == len(scored(results)) and adaptive["warm"] is False
    likelihood = summary.pop("anomaly_likelihood")  # and so does the anomaly likelihood
    assert likelihood["learned"] == len(scored(results)) and likelihood["warm"] is False
    assert summary == {"rows": 25, "windows": len(scored(results)), "alarms": 0, "alarm_episodes": 0,
                       "rows_filled": 1, "rows_skipped": 1, "rows_out_of_order": 0,
                       "times_unchecked": 25, "rows_unseen_inputs": 0,  # none: none checked
                       "unchanged_runs": 0}
    # (no time_gaps: its times, "t0", are no times, so none was compared, and each is counted)

    # A pushed array of the wrong length is reported the same way.
    n = len(fp32.features)
    (short,) = StreamingScorer(fp32).push(np.zeros(n - 1), 0)
    assert short.skipped.startswith(f"row has {n - 1} values; the model needs {n}")
    (nested,) = StreamingScorer(fp32).push(np.zeros((1, n)), 0)  # one row, but as a 2-D array
    assert nested.skipped.startswith(f"row has shape (1, {n}); the model needs one reading per "
                                     f"feature, shape ({n},)")


def test_a_reading_frozen_far_longer_than_in_training_is_flagged(fp32, rows, caplog):
    """A stuck sensor repeats a normal-looking reading, which a forecaster finds easy: a scored
    column unchanged for STEADY_FACTOR times its longest run in training (at least
    STEADY_MIN_ROWS rows) is flagged on the windows while it lasts, warned of and counted."""
    from vigil.runtime.sensor.streaming import STEADY_FACTOR, STEADY_MIN_ROWS

    runs = {r.feature: r for r in fp32.spec.steady_runs}
    assert runs, "training records the scored columns' longest unchanged runs"
    stuck = next(iter(runs.values()))
    limit = max(STEADY_FACTOR * stuck.longest, STEADY_MIN_ROWS)
    frozen = rows[:200].copy()
    frozen[20:20 + limit + 10, stuck.column] = frozen[20, stuck.column]  # stuck at row 20
    scorer = StreamingScorer(fp32)
    with caplog.at_level("WARNING", logger="vigil"):
        results = push_each(scorer, frozen)
    flagged = [r for r in scored(results) if r.unchanged]
    # every window that holds a row at the limit or past it: from the row where the run
    # reaches it to the last window that holds the last frozen row
    window = fp32.spec.window
    assert [r.index for r in flagged] == list(range(20 + limit - 1, 20 + limit + 9 + window))
    assert flagged[0].unchanged == ((stuck.feature, float(frozen[20, stuck.column]), limit,
                                     stuck.longest),)
    line = flagged[-1].to_json()
    assert line["unchanged"] == [{"feature": stuck.feature,
                                  "value": pytest.approx(float(frozen[20, stuck.column])),
                                  "rows": limit + 10, "trained_longest": stuck.longest}]
    assert scorer.summary()["unchanged_runs"] == 1
    assert f"column {stuck.feature!r} has read" in caplog.text
    assert f"for {limit} rows in a row" in caplog.text and "stuck or disconnected" in caplog.text
    # the same rows unfrozen: nothing flagged, the count 0 (not unknown)
    plain = StreamingScorer(fp32)
    assert not any(r.unchanged for r in push_each(plain, rows[:200]))
    assert plain.summary()["unchanged_runs"] == 0


def test_a_frozen_reading_is_one_run_across_files_restarts_and_blank_cells(fp32, rows):
    """Rotated files under --state, a restarted scorer and bursts of blank cells (a window
    restart) all cut the count, so a stuck sensor logged in short files was never flagged (a
    review): the runs are carried in the learned state and kept across window restarts."""
    from vigil.runtime.sensor.streaming import STEADY_FACTOR, STEADY_MIN_ROWS

    stuck = fp32.spec.steady_runs[0]
    limit = max(STEADY_FACTOR * stuck.longest, STEADY_MIN_ROWS)
    frozen = rows[:200].copy()
    frozen[:, stuck.column] = frozen[0, stuck.column]
    half = limit // 2 + 5
    first = StreamingScorer(fp32)
    assert not any(r.unchanged for r in push_each(first, frozen[:half]))
    second = StreamingScorer(fp32)  # the next file, or the scorer restarted
    second.restore_learned(first.learned_state())
    results = push_each(second, frozen[half:half + limit], first=half)
    assert [r.index for r in scored(results) if r.unchanged][0] == limit - 1
    assert second.summary()["unchanged_runs"] == 1
    # blank cells past max_gap restart the window, not the run
    gappy = frozen[:limit + 40].copy()
    gappy[30:30 + fp32.spec.max_gap + 2] = np.nan
    restarted = StreamingScorer(fp32)
    results = push_each(restarted, gappy)
    skipped = restarted.summary()["rows_skipped"]
    assert skipped == 2  # (the first max_gap blank rows are filled: the same reading)
    assert [r.index for r in scored(results) if r.unchanged][0] == limit - 1 + skipped
    # a run that ends at the restart leaves no flag on the windows after it (a review: 102
    # windows flagged after a restart whose readings changed on every row)
    ended = np.concatenate([frozen[:limit + 10], np.full((5, rows.shape[1]), np.nan),
                            rows[100:200]])  # (rows[0] holds the frozen reading itself)
    after = push_each(StreamingScorer(fp32), ended)
    assert not [r.index for r in scored(after) if r.unchanged and r.index >= limit + 15]


def test_an_artifact_without_steady_runs_checks_nothing_and_says_unknown(fp32, rows):
    """Artifacts before 0.3.1 record no runs: no flag, and no count (unknown, not 0)."""
    training = {k: v for k, v in fp32.spec.training.items() if k != "steady_runs"}
    old = SensorDetector.__new__(SensorDetector)
    old.__dict__.update(fp32.__dict__)
    old.spec = dataclasses.replace(fp32.spec, training=training)
    frozen = np.repeat(rows[:1], 150, axis=0)
    scorer = StreamingScorer(old)
    assert not any(r.unchanged for r in push_each(scorer, frozen))
    assert "unchanged_runs" not in scorer.summary()


def test_every_row_is_accounted_for(fp32, rows):
    """Each row is scored, reported skipped, or is one of the first window-1 rows of a (re)start."""
    window, max_gap = fp32.spec.window, fp32.spec.max_gap
    bad = rows[:120].copy()
    bad[40:40 + max_gap + 2] = np.nan          # long gap: restart
    bad[75:77, 0] = np.nan                     # short gap: filled
    bad[100, :] = np.nan                       # one bad row: filled
    scorer = StreamingScorer(fp32)
    results = []
    for start in range(0, 120, 7):             # chunks that cut across every event
        results += scorer.push_rows((bad[i], i, None, None)
                                    for i in range(start, min(120, start + 7)))

    indices = [r.index for r in results]
    assert indices == sorted(set(indices)), "each row is reported at most once, in order"
    restart = 40 + max_gap + 2
    warm_up = set(range(0, window - 1)) | set(range(restart, restart + window - 1))
    assert set(indices) | warm_up == set(range(120))
    assert not set(indices) & warm_up
    summary = scorer.summary()
    assert summary["rows"] == 120
    assert summary["windows"] == len(scored(results))
    assert summary["rows_skipped"] == len(skipped(results)) == 2
    assert summary["rows_filled"] == max_gap + 2 + 1
    assert summary["rows"] == summary["windows"] + summary["rows_skipped"] + len(warm_up)


def smoothed_detector(path, consecutive: int, hold: int = 0) -> SensorDetector:
    """The detector of ``path`` with other alarm smoothing settings."""
    artifact = open_artifact(path)
    spec = dataclasses.replace(artifact.spec, consecutive=consecutive, hold=hold)
    return SensorDetector(dataclasses.replace(artifact, spec=spec))


@pytest.fixture
def smoothed(sensor_artifacts) -> SensorDetector:
    """The FP32 detector with alarm smoothing over 3 consecutive windows, no hold."""
    return smoothed_detector(sensor_artifacts.fp32, consecutive=3)


@pytest.mark.parametrize("consecutive, hold", [(3, 0), (2, 4)])
def test_smoothing_matches_batch_alarms_across_pushes(sensor_artifacts, rows, consecutive, hold):
    smoothed = smoothed_detector(sensor_artifacts.fp32, consecutive, hold)
    scores = smoothed.score_signal(rows)[1]
    smoothed.threshold = float(np.quantile(scores, 0.6))
    expected = smoothed.alarms(scores)
    assert expected.any() and not expected.all()
    assert (expected != (scores > smoothed.threshold)).any(), "smoothing must matter here"

    scorer, results = StreamingScorer(smoothed), []
    for start in range(0, len(rows), 11):
        results += scorer.push_rows((rows[i], i, None, None)
                                    for i in range(start, min(len(rows), start + 11)))
    np.testing.assert_array_equal([r.anomaly for r in results], expected)
    np.testing.assert_array_equal([r.above_threshold for r in results], scores > smoothed.threshold)
    assert scorer.summary()["alarms"] == expected.sum()


def test_consecutive_streak_state(smoothed, rows):
    scorer = StreamingScorer(smoothed)
    window = smoothed.spec.window
    push_each(scorer, rows[:window - 1])
    smoothed.threshold = -1.0  # every window is above
    flags = [r.anomaly for r in push_each(scorer, rows[window - 1:window + 4], first=window - 1)]
    assert flags == [False, False, True, True, True]
    smoothed.threshold = 1e9   # one window below breaks the streak
    (below,) = scorer.push(rows[window + 4], window + 4)
    assert not below.above_threshold and not below.anomaly
    smoothed.threshold = -1.0
    flags = [r.anomaly for r in push_each(scorer, rows[window + 5:window + 8], first=window + 5)]
    assert flags == [False, False, True]
    # A restart (long gap) clears the streak as well as the window.
    gap = np.full((smoothed.spec.max_gap + 1, len(smoothed.features)), np.nan, np.float32)
    push_each(scorer, gap, first=100)
    flags = [r.anomaly for r in push_each(scorer, rows[:window + 2], first=200)]
    assert flags == [False, False, True]


def test_a_skipped_row_takes_its_number_and_push_numbers_the_next(fp32, rows):
    scorer = StreamingScorer(fp32)
    scorer.push(rows[0])  # row 0
    assert scorer.skip(1, None, "cut off mid-line").index == 1
    for row in rows[1:fp32.spec.window + 1]:
        results = scorer.push(row)  # rows 2 .. window + 1, numbered after the skipped one
    assert [r.index for r in results] == [fp32.spec.window + 1]


def test_a_pushed_row_with_a_text_cell_fills_that_cell_as_the_csv_reader_does(fp32, rows):
    """push(row) and the CLI's reader of the same row agree: the text cell alone is filled."""
    header = ",".join(fp32.features)
    text = [",".join(f"{v:.6g}" for v in row) for row in rows[:fp32.input_shape[0] + 5]]
    broken = text[-1].split(",")
    broken[1] = "abc"
    text[-1] = ",".join(broken)
    parsed = [row for _, row in iter_rows([header, *text], {}, "f.csv") if row is not None]
    from_csv = StreamingScorer(fp32).push_parsed(parsed, 0)
    pushed_rows = [[float(v) for v in line.split(",")] for line in text[:-1]]
    pushed_rows.append([float(v) if k != 1 else "abc" for k, v in enumerate(broken)])
    scorer = StreamingScorer(fp32)
    pushed = [r for k, row in enumerate(pushed_rows) for r in scorer.push(row, index=k)]
    assert pushed[-1].problem == from_csv[-1].problem == (
        f"column {fp32.features[1]!r} has non-numeric value 'abc'")
    assert pushed[-1].filled and pushed[-1].score == pytest.approx(from_csv[-1].score, abs=1e-5)
    assert [r.score for r in pushed[:-1]] == pytest.approx([r.score for r in from_csv[:-1]],
                                                           abs=1e-5)


def test_a_live_backlog_is_scored_together_and_a_trickle_row_by_row(monkeypatch, tmp_path):
    """Live rows were each scored alone, even a backlog that had built up (after an outage:
    1,912 windows/s against 12,678 from a file); rows already waiting are now scored together,
    and a row with none after it at once."""
    import io

    from sensor_fixtures import write_tiny_sensor_artifact
    from vigil.runtime.sensor import scoring

    class Trickle(io.RawIOBase):
        """A pipe that delivers one line per read."""

        def __init__(self, lines: list[bytes]) -> None:
            self.lines = list(lines)

        def readable(self) -> bool:
            return True

        def read1(self, size: int = -1) -> bytes:
            return self.lines.pop(0) if self.lines else b""

        read = read1

    model = runtime.load(write_tiny_sensor_artifact(tmp_path / "tiny.onnx"))
    lines = [b"timestamp,a,b,c\n"] + [b"%d,0.1,0.2,0.3\n" % i for i in range(40)]
    sizes: list[int] = []
    original = scoring.StreamingScorer._push_rows

    def counting(self, rows):
        rows = list(rows)
        sizes.append(len(rows))
        return original(self, rows)

    monkeypatch.setattr(scoring.StreamingScorer, "_push_rows", counting)
    for stream, expected in ((io.BytesIO(b"".join(lines)), [40]), (Trickle(lines), [1] * 40)):
        sizes.clear()
        out = io.StringIO()
        summary = scoring.score_source(model, "-", out, stdin=io.TextIOWrapper(stream))
        assert sizes == expected and summary.windows == 37
        assert len(out.getvalue().splitlines()) == 37


@pytest.mark.parametrize("end", [b"\n", b"\n\n", b"\r\r\n", b"\n \n", b"\ntimestamp,a,b,c\n"],
                         ids=["lf", "blank-line", "cr-crlf", "spaces", "header-again"])
def test_a_live_row_is_scored_before_the_next_read_whatever_lines_follow_it(tmp_path, end):
    """A row followed by a line that gives no row (a blank line, a header again, a CR before
    CRLF) waited for the next read, which blocks on a live stream: a double-spaced logger's
    results came out only at 1,024 rows or at the end."""
    import io

    from sensor_fixtures import write_tiny_sensor_artifact
    from vigil.runtime.sensor import scoring

    model = runtime.load(write_tiny_sensor_artifact(tmp_path / "tiny.onnx"))
    out = io.StringIO()
    seen: list[int] = []  # result lines written when each read was made

    class Logger(io.RawIOBase):
        def __init__(self) -> None:
            self.chunks = [b"timestamp,a,b,c\n"] + [b"%d,0.1,0.2,0.3%s" % (i, end)
                                                    for i in range(8)]

        def readable(self) -> bool:
            return True

        def read1(self, size: int = -1) -> bytes:
            seen.append(len(out.getvalue().splitlines()))
            return self.chunks.pop(0) if self.chunks else b""

        read = read1

    scoring.score_source(model, "-", out, stdin=io.TextIOWrapper(Logger()))
    # the reads after rows 3..7 (the tiny model's window is 4): each row's line is out by then
    assert seen[5:10] == [1, 2, 3, 4, 5]


def test_rows_read_before_a_stop_request_have_their_lines(tmp_path, monkeypatch):
    import io

    from sensor_fixtures import write_tiny_sensor_artifact
    from vigil.runtime.sensor import scoring

    model = runtime.load(write_tiny_sensor_artifact(tmp_path / "tiny.onnx"))
    out = io.StringIO()

    class Stopped(io.RawIOBase):
        def __init__(self) -> None:
            self.chunks = [b"timestamp,a,b,c\n" + b"".join(b"%d,0.1,0.2,0.3\n" % i
                                                           for i in range(10)) + b"\n"]

        def readable(self) -> bool:
            return True

        def read1(self, size: int = -1) -> bytes:
            if self.chunks:
                return self.chunks.pop(0)
            raise KeyboardInterrupt("SIGTERM")  # the stop request, while the read waits

        read = read1

    summary = scoring.score_source(model, "-", out, stdin=io.TextIOWrapper(Stopped()))
    assert summary.stopped == "interrupted" and summary.rows == 10
    assert [json.loads(line)["index"] for line in out.getvalue().splitlines()] == list(range(3, 10))
